import { type ChangeEvent, useState } from "react";
import { ApiError } from "../../api/client";
import * as api from "../../api/dashboard";
import { Card, Loading, message, Problem, useLoad, when } from "./common";

interface PathError {
  path: string;
  message: string;
}

function pathErrors(err: unknown): PathError[] | null {
  if (!(err instanceof ApiError) || !Array.isArray(err.body.errors)) return null;
  return (err.body.errors as unknown[]).flatMap((e) =>
    typeof e === "object" && e !== null && "message" in e
      ? [{ path: String((e as { path?: unknown }).path ?? ""), message: String((e as { message: unknown }).message) }]
      : [],
  );
}

/** The active version as a tree; upload a new version, with each problem at its field's path. */
export function TaxonomyPanel({ projectId, isLead }: { projectId: number; isLead: boolean }) {
  const loaded = useLoad(() => Promise.all([api.taxonomy(projectId), api.taxonomyVersions(projectId)]), [projectId]);
  const [yaml, setYaml] = useState("");
  const [errors, setErrors] = useState<PathError[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const readFile = (event: ChangeEvent<HTMLInputElement>): void => {
    const file = event.target.files?.[0];
    if (file) void file.text().then(setYaml);
  };

  const upload = async (): Promise<void> => {
    setBusy(true);
    setErrors(null);
    setProblem(null);
    setSaved(null);
    try {
      const tree = await api.uploadTaxonomy(projectId, yaml);
      setSaved(`Version ${tree.version} of ${tree.name} is now current.`);
      loaded.reload();
    } catch (err) {
      const found = pathErrors(err);
      if (found && found.length > 0) setErrors(found);
      else setProblem(message(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <Loading loaded={loaded}>
        {([tree, versions]) => (
          <div className="columns">
            <Card title={`${tree.name} · version ${tree.version}`} testId="taxonomy-tree">
              <ul className="tree" role="tree">
                {tree.regions.map((region) => (
                  <li key={region.key} role="treeitem" aria-expanded="true">
                    <details open>
                      <summary>
                        <strong>{region.name}</strong> <span className="muted">{region.key}</span>
                      </summary>
                      <ul role="group">
                        {region.categories.map((category) => (
                          <li key={category.id} role="treeitem" data-testid={`tax-${category.key}`}>
                            <details>
                              <summary>
                                {category.question || category.key} <span className="muted">{category.key}</span>{" "}
                                <span className="chip">{category.kind}</span>
                                {category.sensitive && <span className="chip chip--warn">sensitive</span>}
                              </summary>
                              <ul role="group">
                                {category.values.map((value) => (
                                  <li key={value.key} role="treeitem">
                                    {value.label} <span className="muted">{value.key}</span>
                                  </li>
                                ))}
                              </ul>
                            </details>
                          </li>
                        ))}
                      </ul>
                    </details>
                  </li>
                ))}
              </ul>
            </Card>
            <Card title="Versions">
              <table className="table">
                <tbody>
                  {versions.map((v) => (
                    <tr key={v.id}>
                      <td>
                        {v.name} v{v.version}
                      </td>
                      <td>{when(v.created_at)}</td>
                      <td>{v.current ? <span className="chip">current</span> : ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Card>
          </div>
        )}
      </Loading>
      {isLead && (
        <Card title="Upload a new version (YAML)" testId="taxonomy-upload">
          <div className="toolbar">
            <input type="file" accept=".yaml,.yml,text/yaml" onChange={readFile} aria-label="YAML file" />
          </div>
          <textarea
            className="input input--code"
            rows={12}
            value={yaml}
            onChange={(event) => setYaml(event.target.value)}
            spellCheck={false}
            aria-label="taxonomy YAML"
            data-testid="taxonomy-yaml"
          />
          <div className="toolbar">
            <button type="button" className="button button--primary" disabled={busy || yaml.trim() === ""} onClick={() => void upload()} data-testid="taxonomy-submit">
              Validate and upload
            </button>
            {saved && <span className="ok">{saved}</span>}
          </div>
          <Problem error={problem} />
          {errors && (
            <ul className="errors" data-testid="taxonomy-errors">
              {errors.map((e, i) => (
                <li key={i} className="errors__item">
                  <code className="errors__path">{e.path || "(document)"}</code> {e.message}
                </li>
              ))}
            </ul>
          )}
        </Card>
      )}
    </>
  );
}
