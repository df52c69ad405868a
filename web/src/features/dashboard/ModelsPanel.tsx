import { useState } from "react";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import * as api from "../../api/dashboard";
import { AXIS, Card, GRID, Loading, message, pct, Problem, TOOLTIP, usePoll, useLoad, when } from "./common";

const RUNNING = new Set(["queued", "training"]);

/** Labeler versions and rounds: start a round, compare its candidate with the baseline, promote a
 * rejected candidate (a lead's override, with a reason), roll back. */
export function ModelsPanel({ projectId, isLead }: { projectId: number; isLead: boolean }) {
  const loaded = useLoad(
    () => Promise.all([api.modelVersions(projectId), api.rounds(projectId)]),
    [projectId],
  );
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [picked, setPicked] = useState<number | null>(null);
  const running = (loaded.data?.[1] ?? []).some((r) => RUNNING.has(r.status));
  usePoll(running, loaded.reload);

  const act = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setProblem(null);
    try {
      await action();
      loaded.reload();
    } catch (err) {
      setProblem(message(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Loading loaded={loaded}>
      {([versions, rounds]) => {
        const ordered = [...rounds].sort((a, b) => b.number - a.number);
        const compared = ordered.find((r) => r.id === picked) ?? ordered.find((r) => r.metrics.candidate?.categories);
        const candidate = compared?.metrics.candidate?.categories ?? {};
        const baseline = compared?.metrics.baseline?.categories ?? {};
        const comparison = Object.keys({ ...candidate, ...baseline })
          .sort()
          .map((key) => ({
            key,
            candidate: candidate[key]?.accuracy ?? null,
            active: baseline[key]?.accuracy ?? null,
          }));
        const active = versions.find((v) => v.status === "active");
        return (
          <>
            <Problem error={problem} />
            {isLead && (
              <div className="toolbar">
                <button
                  type="button"
                  className="button button--primary"
                  disabled={busy || running}
                  onClick={() => void act(() => api.startRound(projectId))}
                  data-testid="start-round"
                >
                  {running ? "A round is running…" : "Start a round"}
                </button>
                <span className="muted">
                  A round trains a candidate on verified labels, scores it on the evaluation set and promotes it only if no
                  category falls by more than the margin.
                </span>
              </div>
            )}
            <Card title="Compare a candidate with the active version, per category" testId="models-compare">
              {ordered.length > 0 && (
                <div className="toolbar">
                  <label className="toolbar__label" htmlFor="compare-round">
                    Round
                  </label>
                  <select
                    id="compare-round"
                    className="input"
                    value={compared?.id ?? ""}
                    onChange={(event) => setPicked(Number(event.target.value))}
                  >
                    {ordered.map((r) => (
                      <option key={r.id} value={r.id}>
                        #{r.number} · {r.status}
                      </option>
                    ))}
                  </select>
                </div>
              )}
              {comparison.length === 0 ? (
                <p className="muted">No scored round yet: the chart fills in when a round finishes.</p>
              ) : (
                <div className="chart">
                  <ResponsiveContainer width="100%" height={Math.max(160, 16 * comparison.length + 60)}>
                    <BarChart data={comparison} layout="vertical" barGap={0} margin={{ top: 8, right: 24, left: 24, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} horizontal={false} />
                      <XAxis type="number" domain={[0, 1]} tickFormatter={(x: number) => `${Math.round(x * 100)}%`} tick={AXIS} stroke={AXIS.stroke} />
                      <YAxis type="category" dataKey="key" tick={AXIS} stroke={AXIS.stroke} width={170} interval={0} />
                      <Tooltip {...TOOLTIP} formatter={(v) => (typeof v === "number" ? pct(v) : String(v))} />
                      <Legend verticalAlign="top" />
                      <Bar dataKey="active" name="active (baseline)" fill="#7d8696" isAnimationActive={false} />
                      <Bar dataKey="candidate" name="candidate" fill="#4cc2ff" isAnimationActive={false} />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
            </Card>
            <Card title="Rounds" testId="rounds">
              {ordered.length === 0 ? (
                <p className="muted">No rounds yet.</p>
              ) : (
                <table className="table">
                  <thead>
                    <tr>
                      <th>Round</th>
                      <th>Status</th>
                      <th>Trigger</th>
                      <th>Started</th>
                      <th>Finished</th>
                      <th className="num">Macro accuracy (candidate / baseline)</th>
                      <th>Why</th>
                    </tr>
                  </thead>
                  <tbody>
                    {ordered.map((r) => (
                      <tr key={r.id} data-testid={`round-${r.number}`}>
                        <td>#{r.number}</td>
                        <td>
                          <span className={`status status--${r.status}`}>{r.status}</span>
                        </td>
                        <td>{r.trigger}</td>
                        <td>{when(r.started_at)}</td>
                        <td>{when(r.finished_at)}</td>
                        <td className="num">
                          {pct(r.metrics.candidate?.macro_accuracy)} / {pct(r.metrics.baseline?.macro_accuracy)}
                        </td>
                        <td className="muted">{r.error ?? r.reasons.map((x) => (typeof x === "object" && x !== null && "code" in x ? String((x as { code: unknown }).code) : String(x))).join(", ")}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Card>
            <Card title="Labeler versions" testId="versions">
              <table className="table">
                <thead>
                  <tr>
                    <th>Version</th>
                    <th>Family</th>
                    <th>Status</th>
                    <th className="num">Macro accuracy</th>
                    <th>Created</th>
                    <th>Promoted</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {versions.map((v) => (
                    <tr key={v.id} data-testid={`version-${v.id}`}>
                      <td>{v.version}</td>
                      <td>{v.family}</td>
                      <td>
                        <span className={`status status--${v.status}`}>{v.status}</span>
                      </td>
                      <td className="num">{pct(v.metrics.macro_accuracy)}</td>
                      <td>{when(v.created_at)}</td>
                      <td>{when(v.promoted_at)}</td>
                      <td>
                        {isLead && v.status === "rejected" && (
                          <button
                            type="button"
                            className="button"
                            data-testid={`promote-${v.id}`}
                            disabled={busy || running}
                            onClick={() => {
                              const reason = window.prompt(
                                `Promote ${v.version} although its round rejected it? Say why (kept with the version):`,
                              );
                              if (reason !== null && reason.trim().length >= 3) {
                                void act(() => api.promoteRejected(projectId, v.id, reason.trim()));
                              }
                            }}
                          >
                            Promote anyway
                          </button>
                        )}
                        {isLead && v.status === "retired" && (
                          <button
                            type="button"
                            className="button"
                            disabled={busy || running}
                            onClick={() => {
                              if (window.confirm(`Make ${v.version} the active labeler again (instead of ${active?.version ?? "none"})?`)) {
                                void act(() => api.rollback(projectId, v.id));
                              }
                            }}
                          >
                            Roll back to this
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p className="muted">
                Candidates are promoted by their round when they pass the gate; a lead can promote a rejected one anyway,
                with a reason, and a retired version can be made active again.
              </p>
            </Card>
          </>
        );
      }}
    </Loading>
  );
}
