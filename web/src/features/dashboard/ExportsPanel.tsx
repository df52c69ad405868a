import { type FormEvent, useState } from "react";
import * as api from "../../api/dashboard";
import { Card, Loading, message, num, Problem, usePoll, useLoad, when } from "./common";

const FORMATS: api.ExportFormat[] = ["webdataset", "jsonl", "cosmicman", "labelstudio"];
const ACTIVE = new Set(["planning", "running"]);

/** Create an export with filters; its progress; the manifest and the files to download. */
export function ExportsPanel({ projectId, isLead }: { projectId: number; isLead: boolean }) {
  const loaded = useLoad(() => Promise.all([api.exports(projectId), api.sources(projectId)]), [projectId]);
  const [format, setFormat] = useState<api.ExportFormat>("webdataset");
  const [states, setStates] = useState<Set<"verified" | "auto_accepted">>(new Set(["verified"]));
  const [sourceIds, setSourceIds] = useState<Set<number>>(new Set());
  const [minSharpness, setMinSharpness] = useState("");
  const [sinceExport, setSinceExport] = useState("");
  const [shardSize, setShardSize] = useState("1000");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  usePoll((loaded.data?.[0] ?? []).some((e) => ACTIVE.has(e.status)), loaded.reload);

  const create = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const body: api.ExportCreate = {
        format,
        filters: {
          states: [...states],
          min_quality: minSharpness.trim() === "" ? {} : { sharpness: Number(minSharpness) },
          source_ids: sourceIds.size === 0 ? null : [...sourceIds],
          since_export_id: sinceExport === "" ? null : Number(sinceExport),
        },
        options: { shard_size: Number(shardSize) || 1000 },
      };
      const created = await api.createExport(projectId, body);
      setOpen(created.id);
      loaded.reload();
    } catch (err) {
      setProblem(message(err));
    } finally {
      setBusy(false);
    }
  };

  const toggle = <T,>(set: Set<T>, value: T): Set<T> => {
    const next = new Set(set);
    if (next.has(value)) next.delete(value);
    else next.add(value);
    return next;
  };

  return (
    <Loading loaded={loaded}>
      {([exports, sources]) => (
        <>
          {isLead && (
            <Card title="New export" testId="export-form">
              <form className="form form--wide" onSubmit={(event) => void create(event)}>
                <label className="form__row">
                  <span className="form__label">format</span>
                  <select className="input" value={format} onChange={(event) => setFormat(event.target.value as api.ExportFormat)} name="format">
                    {FORMATS.map((f) => (
                      <option key={f} value={f}>
                        {f}
                      </option>
                    ))}
                  </select>
                </label>
                <fieldset className="form__row">
                  <span className="form__label">labels</span>
                  {(["verified", "auto_accepted"] as const).map((state) => (
                    <label key={state} className="check">
                      <input type="checkbox" checked={states.has(state)} onChange={() => setStates(toggle(states, state))} /> {state}
                    </label>
                  ))}
                </fieldset>
                <fieldset className="form__row">
                  <span className="form__label">sources (none: all)</span>
                  {sources.map((s) => (
                    <label key={s.id} className="check">
                      <input type="checkbox" checked={sourceIds.has(s.id)} onChange={() => setSourceIds(toggle(sourceIds, s.id))} /> {s.name}
                    </label>
                  ))}
                </fieldset>
                <label className="form__row">
                  <span className="form__label">min sharpness</span>
                  <input className="input" type="number" min={0} step="any" value={minSharpness} onChange={(event) => setMinSharpness(event.target.value)} />
                </label>
                <label className="form__row">
                  <span className="form__label">only changed since export</span>
                  <select className="input" value={sinceExport} onChange={(event) => setSinceExport(event.target.value)}>
                    <option value="">(everything)</option>
                    {exports
                      .filter((e) => e.status === "done")
                      .map((e) => (
                        <option key={e.id} value={e.id}>
                          #{e.id} · {e.format} · {when(e.created_at)}
                        </option>
                      ))}
                  </select>
                </label>
                <label className="form__row">
                  <span className="form__label">samples per shard</span>
                  <input className="input" type="number" min={1} value={shardSize} onChange={(event) => setShardSize(event.target.value)} />
                </label>
                <button type="submit" className="button button--primary" disabled={busy || states.size === 0} data-testid="export-create">
                  Start export
                </button>
              </form>
              <Problem error={problem} />
            </Card>
          )}
          <Card title="Exports" testId="exports">
            {exports.length === 0 ? (
              <p className="muted">No exports yet.</p>
            ) : (
              <table className="table">
                <thead>
                  <tr>
                    <th>Export</th>
                    <th>Format</th>
                    <th>Status</th>
                    <th>Progress</th>
                    <th className="num">Samples</th>
                    <th>Created</th>
                    <th>Finished</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {exports.map((e) => (
                    <tr key={e.id} data-testid={`export-${e.id}`} data-status={e.status}>
                      <td>#{e.id}</td>
                      <td>{e.format}</td>
                      <td>
                        <span className={`status status--${e.status}`}>{e.status}</span>
                        {e.error && <span className="muted"> {e.error}</span>}
                      </td>
                      <td>
                        <progress max={1} value={e.progress} /> {Math.round(e.progress * 100)}%
                      </td>
                      <td className="num">{num(typeof e.counts.samples === "number" ? e.counts.samples : null)}</td>
                      <td>{when(e.created_at)}</td>
                      <td>{when(e.finished_at)}</td>
                      <td>
                        <button type="button" className="button" onClick={() => setOpen(open === e.id ? null : e.id)}>
                          {open === e.id ? "Hide" : "Manifest"}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
          {open !== null && <ExportDetail key={open} projectId={projectId} exportId={open} />}
        </>
      )}
    </Loading>
  );
}

function ExportDetail({ projectId, exportId }: { projectId: number; exportId: number }) {
  const loaded = useLoad(() => api.exportDetail(projectId, exportId), [projectId, exportId]);
  usePoll(loaded.data !== null && ACTIVE.has(loaded.data.status), loaded.reload);
  return (
    <Card title={`Export #${exportId}`} testId="export-detail">
      <Loading loaded={loaded}>
        {(detail) => {
          const files = Object.entries(detail.manifest?.files ?? {});
          return (
            <>
              <p>
                <span className={`status status--${detail.status}`}>{detail.status}</span> · {detail.destination} ·{" "}
                <span data-testid="export-sensitive">
                  {detail.include_sensitive ? "with" : "without"} sensitive categories
                </span>
              </p>
              {detail.note !== null && (
                <p className="banner" role="status" data-testid="export-note">
                  {detail.note}
                </p>
              )}
              {detail.manifest === null ? (
                <p className="muted">The manifest is written when every part is done.</p>
              ) : (
                <>
                  <p>
                    <a href={api.exportFileUrl(projectId, exportId, "manifest.json")} download data-testid="manifest-link">
                      manifest.json
                    </a>
                  </p>
                  <table className="table" data-testid="export-files">
                    <thead>
                      <tr>
                        <th>File</th>
                        <th className="num">Bytes</th>
                        <th>sha256</th>
                      </tr>
                    </thead>
                    <tbody>
                      {files.map(([name, info]) => (
                        <tr key={name}>
                          <td>
                            <a href={api.exportFileUrl(projectId, exportId, name)} download>
                              {name}
                            </a>
                          </td>
                          <td className="num">{num(info.bytes)}</td>
                          <td className="mono muted">{info.sha256.slice(0, 16)}…</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                  <details>
                    <summary>Manifest</summary>
                    <pre className="code">{JSON.stringify(detail.manifest, null, 1)}</pre>
                  </details>
                </>
              )}
            </>
          );
        }}
      </Loading>
    </Card>
  );
}
