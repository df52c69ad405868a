import { useState } from "react";
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import * as api from "../../api/dashboard";
import { AXIS, Card, Figure, GRID, KIND_COLOURS, Loading, num, pct, TOOLTIP, useLoad } from "./common";

const WINDOWS = [12, 48, 168];

function hourLabel(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getDate()).padStart(2, "0")}/${String(d.getMonth() + 1).padStart(2, "0")} ${String(d.getHours()).padStart(2, "0")}h`;
}

/** Rows of {hour, kind1, kind2, ...} for one per-kind series, keeping only kinds that ever had work. */
function rows(hours: string[], series: Record<string, number[]>): { kinds: string[]; data: Record<string, number | string>[] } {
  const kinds = Object.keys(series).filter((k) => (series[k] ?? []).some((n) => n !== 0));
  const data = hours.map((hour, i) => {
    const row: Record<string, number | string> = { hour: hourLabel(hour) };
    for (const kind of kinds) row[kind] = series[kind]?.[i] ?? 0;
    return row;
  });
  return { kinds, data };
}

/** Queue depth by kind over time, throughput per hour, and the annotators table. */
export function WorkPanel({ projectId, canSeePeople }: { projectId: number; canSeePeople: boolean }) {
  const [hours, setHours] = useState(48);
  const loaded = useLoad(() => api.work(projectId, hours), [projectId, hours]);
  return (
    <>
      <div className="toolbar">
        <span className="toolbar__label">Window</span>
        {WINDOWS.map((h) => (
          <button
            key={h}
            type="button"
            className={"button" + (h === hours ? " button--primary" : "")}
            onClick={() => setHours(h)}
          >
            {h < 48 ? `${h} h` : `${h / 24} days`}
          </button>
        ))}
      </div>
      <Loading loaded={loaded}>
        {(data) => {
          const depth = rows(data.hours, data.queue_depth);
          const through = rows(data.hours, data.throughput);
          const perHour = Object.values(data.throughput).reduce((sum, s) => sum + s.reduce((a, b) => a + b, 0), 0) / data.hours.length;
          return (
            <>
              <div className="figures">
                {Object.entries(data.open_now)
                  .filter(([, n]) => n > 0)
                  .map(([kind, n]) => (
                    <Figure key={kind} label={`${kind} open`} value={num(n)} testId={`open-${kind}`} />
                  ))}
                <Figure label="submitted, all time" value={num(data.submitted_total)} testId="submitted-total" />
                <Figure label="submits per hour" value={num(perHour, 1)} hint={`mean over ${data.hours.length} h`} />
              </div>
              <Card title="Queue depth by kind" testId="work-depth">
                <div className="chart">
                  <ResponsiveContainer width="100%" height={260}>
                    <AreaChart data={depth.data} margin={{ top: 8, right: 16, left: 8, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} vertical={false} />
                      <XAxis dataKey="hour" tick={AXIS} stroke={AXIS.stroke} minTickGap={24} />
                      <YAxis tick={AXIS} stroke={AXIS.stroke} allowDecimals={false} />
                      <Tooltip {...TOOLTIP} />
                      <Legend />
                      {depth.kinds.map((kind) => (
                        <Area
                          key={kind}
                          type="stepAfter"
                          dataKey={kind}
                          stackId="depth"
                          stroke={KIND_COLOURS[kind] ?? "#4cc2ff"}
                          fill={KIND_COLOURS[kind] ?? "#4cc2ff"}
                          fillOpacity={0.25}
                          isAnimationActive={false}
                        />
                      ))}
                    </AreaChart>
                  </ResponsiveContainer>
                </div>
                {depth.kinds.length === 0 && <p className="muted">No open work in this window.</p>}
              </Card>
              <Card title="Throughput: submits per hour" testId="work-throughput">
                <div className="chart">
                  <ResponsiveContainer width="100%" height={220}>
                    <BarChart data={through.data} margin={{ top: 8, right: 16, left: 8, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} vertical={false} />
                      <XAxis dataKey="hour" tick={AXIS} stroke={AXIS.stroke} minTickGap={24} />
                      <YAxis tick={AXIS} stroke={AXIS.stroke} allowDecimals={false} />
                      <Tooltip {...TOOLTIP} cursor={{ fill: "rgba(255,255,255,0.04)" }} />
                      <Legend />
                      {through.kinds.map((kind) => (
                        <Bar key={kind} dataKey={kind} stackId="t" fill={KIND_COLOURS[kind] ?? "#4cc2ff"} isAnimationActive={false} />
                      ))}
                    </BarChart>
                  </ResponsiveContainer>
                </div>
                {through.kinds.length === 0 && <p className="muted">Nothing submitted in this window.</p>}
              </Card>
            </>
          );
        }}
      </Loading>
      {canSeePeople && <AnnotatorsTable projectId={projectId} />}
    </>
  );
}

function AnnotatorsTable({ projectId }: { projectId: number }) {
  const loaded = useLoad(() => api.annotators(projectId), [projectId]);
  return (
    <Card title="Annotators" testId="annotators">
      <Loading loaded={loaded}>
        {(people) => (
          <table className="table" data-testid="annotators-table">
            <thead>
              <tr>
                <th>Person</th>
                <th>Role</th>
                <th className="num">Submitted</th>
                <th className="num">Items / hour</th>
                <th className="num">Median lead time</th>
                <th className="num">Gold accuracy</th>
                <th className="num">Audited (changed)</th>
                <th className="num">Audits done</th>
                <th className="num">Adjudications done</th>
              </tr>
            </thead>
            <tbody>
              {people.map((p) => (
                <tr key={p.user_id} data-testid={`annotator-${p.user_id}`}>
                  <td>
                    {p.display_name || p.email}
                    {p.display_name && <span className="muted"> {p.email}</span>}
                  </td>
                  <td>{p.role}</td>
                  <td className="num">{num(p.submitted)}</td>
                  <td className="num">{num(p.items_per_hour, 1)}</td>
                  <td className="num">{p.median_lead_time_ms === null ? "–" : `${(p.median_lead_time_ms / 1000).toFixed(1)} s`}</td>
                  <td className="num">
                    {pct(p.gold_accuracy)} <span className="muted">({p.gold_correct}/{p.gold_answers})</span>
                  </td>
                  <td className="num">
                    {num(p.audited)} <span className="muted">({num(p.audit_changed)})</span>
                  </td>
                  <td className="num">{num(p.audits_done)}</td>
                  <td className="num">{num(p.adjudications_done)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </Card>
  );
}
