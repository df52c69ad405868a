import { type FormEvent, useState } from "react";
import * as api from "../../api/dashboard";
import { Card, Loading, message, num, Problem, usePoll, useLoad, when } from "./common";

const ACTIVE = new Set(["queued", "running"]);
// How often a watched source is looked at again (seconds); the server takes 60 s to 30 days.
const WATCH_CHOICES: [number | null, string][] = [
  [null, "not watched"],
  [60, "every minute"],
  [300, "every 5 min"],
  [900, "every 15 min"],
  [3600, "every hour"],
  [86400, "every day"],
];
const watchable = (s: api.Source): boolean =>
  s.kind === "folder" || s.kind === "s3" || (s.kind === "url_list" && typeof s.config.list_url === "string");
const where = (s: api.Source): string => {
  for (const key of ["path", "url", "list_url", "filename"]) if (typeof s.config[key] === "string") return s.config[key];
  return "";
};
const watchLabel = (seconds: number | null): string =>
  WATCH_CHOICES.find(([value]) => value === seconds)?.[1] ?? (seconds === null ? "not watched" : `every ${seconds} s`);

/** Add a folder or upload images; run a source; each run's status and what it refused, and why. */
export function SourcesPanel({ projectId, isLead }: { projectId: number; isLead: boolean }) {
  const loaded = useLoad(
    () => Promise.all([api.sources(projectId), api.ingestRuns(projectId), api.rejections(projectId)]),
    [projectId],
  );
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [folder, setFolder] = useState({ name: "", path: "", licence: "", consent: "" });
  const [files, setFiles] = useState<FileList | null>(null);
  const [urlList, setUrlList] = useState({ name: "", column: "url", licence: "", consent: "" });
  const [urlFile, setUrlFile] = useState<File | null>(null);
  usePoll((loaded.data?.[1] ?? []).some((r) => ACTIVE.has(r.status)), loaded.reload);

  const act = async (action: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setProblem(null);
    try {
      await action();
      loaded.reload();
      return true;
    } catch (err) {
      setProblem(message(err));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const addFolder = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    if (await act(() => api.addFolder(projectId, folder))) setFolder({ name: "", path: "", licence: "", consent: "" });
  };

  return (
    <>
      <Problem error={problem} />
      {isLead && (
        <div className="columns columns--even">
          <Card title="Add a folder">
            <form className="form" onSubmit={(event) => void addFolder(event)} data-testid="folder-form">
              {(["name", "path", "licence", "consent"] as const).map((field) => (
                <label key={field} className="form__row">
                  <span className="form__label">{field === "path" ? "path (inside a configured source root)" : field}</span>
                  <input
                    className="input"
                    value={folder[field]}
                    required={field === "name" || field === "path"}
                    onChange={(event) => setFolder({ ...folder, [field]: event.target.value })}
                    name={field}
                  />
                </label>
              ))}
              <button type="submit" className="button button--primary" disabled={busy}>
                Add folder
              </button>
            </form>
          </Card>
          <Card title="Add a URL list (CSV or parquet)">
            <form
              className="form"
              onSubmit={(event) => {
                event.preventDefault();
                if (urlFile) {
                  void act(() => api.addUrlList(projectId, urlFile, urlList)).then((ok) => {
                    if (ok) setUrlList({ name: "", column: "url", licence: "", consent: "" });
                  });
                }
              }}
              data-testid="url-list-form"
            >
              <input
                type="file"
                accept=".csv,.parquet,text/csv"
                onChange={(event) => setUrlFile(event.target.files?.[0] ?? null)}
                aria-label="URL list file"
              />
              {(["name", "column", "licence", "consent"] as const).map((field) => (
                <label key={field} className="form__row">
                  <span className="form__label">{field === "column" ? "column of URLs" : field}</span>
                  <input
                    className="input"
                    value={urlList[field]}
                    required={field === "name" || field === "column"}
                    onChange={(event) => setUrlList({ ...urlList, [field]: event.target.value })}
                    name={`url-${field}`}
                  />
                </label>
              ))}
              <button type="submit" className="button button--primary" disabled={busy || !urlFile}>
                Add URL list
              </button>
              <span className="muted">A run fetches public http(s) URLs only; refused ones are listed below with the reason.</span>
            </form>
          </Card>
          <Card title="Upload images">
            <form
              className="form"
              onSubmit={(event) => {
                event.preventDefault();
                if (files && files.length > 0) void act(() => api.uploadImages(projectId, files));
              }}
              data-testid="upload-form"
            >
              <input type="file" multiple accept="image/jpeg,image/png,image/webp" onChange={(event) => setFiles(event.target.files)} aria-label="images" />
              <button type="submit" className="button button--primary" disabled={busy || !files || files.length === 0}>
                Upload {files && files.length > 0 ? `${files.length} file${files.length > 1 ? "s" : ""}` : ""}
              </button>
            </form>
          </Card>
        </div>
      )}
      <Loading loaded={loaded}>
        {([sources, runs, rejections]) => {
          const reasons = new Map<string, number>();
          for (const r of rejections) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
          const latest = new Map<number, api.IngestRun>();
          for (const run of runs) {
            const seen = latest.get(run.source_id);
            if (!seen || seen.id < run.id) latest.set(run.source_id, run);
          }
          return (
            <>
              <Card title="Sources" testId="sources">
                <table className="table">
                  <thead>
                    <tr>
                      <th>Name</th>
                      <th>Kind</th>
                      <th>Where</th>
                      <th>Licence / consent</th>
                      <th>Watch</th>
                      <th>Last run</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {sources.map((s) => {
                      const run = latest.get(s.id);
                      return (
                        <tr key={s.id} data-testid={`source-${s.id}`}>
                          <td>{s.name}</td>
                          <td>{s.kind}</td>
                          <td className="muted">{where(s)}</td>
                          <td>
                            {s.licence || "–"} / {s.consent || "–"}
                          </td>
                          <td>
                            {isLead && watchable(s) ? (
                              <select
                                className="input"
                                aria-label={`watch ${s.name}`}
                                disabled={busy}
                                value={String(s.watch_every_seconds ?? "")}
                                onChange={(event) =>
                                  void act(() =>
                                    api.watchSource(projectId, s.id, event.target.value === "" ? null : Number(event.target.value)),
                                  )
                                }
                              >
                                {!WATCH_CHOICES.some(([value]) => value === s.watch_every_seconds) && (
                                  <option value={String(s.watch_every_seconds)}>{watchLabel(s.watch_every_seconds)}</option>
                                )}
                                {WATCH_CHOICES.map(([value, label]) => (
                                  <option key={label} value={value === null ? "" : String(value)}>
                                    {label}
                                  </option>
                                ))}
                              </select>
                            ) : (
                              <span className="muted">{watchLabel(s.watch_every_seconds)}</span>
                            )}
                          </td>
                          <td>{run ? `${run.status} · ${when(run.created_at)}` : "never"}</td>
                          <td>
                            {isLead && s.kind !== "upload" && (
                              <button type="button" className="button" disabled={busy} onClick={() => void act(() => api.runSource(projectId, s.id))}>
                                Run
                              </button>
                            )}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </Card>
              <Card title="Runs" testId="runs">
                <table className="table">
                  <thead>
                    <tr>
                      <th>Run</th>
                      <th>Source</th>
                      <th>Status</th>
                      <th>Progress</th>
                      <th className="num">Added</th>
                      <th className="num">Duplicates</th>
                      <th className="num">Rejected</th>
                      <th>Started</th>
                    </tr>
                  </thead>
                  <tbody>
                    {runs.map((run) => (
                      <tr key={run.id}>
                        <td>#{run.id}</td>
                        <td>{sources.find((s) => s.id === run.source_id)?.name ?? run.source_id}</td>
                        <td>
                          <span className={`status status--${run.status}`}>{run.status}</span>
                          {run.error && <span className="muted"> {run.error}</span>}
                        </td>
                        <td>
                          <progress max={Math.max(1, run.items_total)} value={run.items_done} /> {run.items_done}/{run.items_total}
                        </td>
                        <td className="num">{num(run.added)}</td>
                        <td className="num">{num(run.duplicates)}</td>
                        <td className="num">{num(run.rejected)}</td>
                        <td>
                          {when(run.created_at)}
                          {run.trigger === "watch" && <span className="muted"> · watched</span>}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Card>
              <Card title="Rejected files" testId="rejections">
                <p>
                  {[...reasons.entries()].map(([reason, n]) => (
                    <span key={reason} className="chip chip--warn">
                      {reason}: {n}
                    </span>
                  ))}
                  {reasons.size === 0 && <span className="muted">Nothing rejected.</span>}
                </p>
                {rejections.length > 0 && (
                  <table className="table">
                    <thead>
                      <tr>
                        <th>File</th>
                        <th>Reason</th>
                        <th>Detail</th>
                        <th>When</th>
                      </tr>
                    </thead>
                    <tbody>
                      {rejections.map((r) => (
                        <tr key={r.id}>
                          <td>{r.name}</td>
                          <td>{r.reason}</td>
                          <td className="muted">{r.detail}</td>
                          <td>{when(r.created_at)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Card>
            </>
          );
        }}
      </Loading>
    </>
  );
}
