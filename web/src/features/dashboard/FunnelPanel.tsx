import { useState } from "react";
import { Bar, BarChart, CartesianGrid, Cell, LabelList, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import * as api from "../../api/dashboard";
import { AXIS, Card, Figure, GRID, Loading, num, PALETTE, pct, TOOLTIP, useLoad, when } from "./common";

const STAGE_NAMES: Record<string, string> = {
  ingested: "Ingested",
  prelabeled: "Pre-labelled",
  routed: "Routed",
  verified: "Verified",
  exported: "Exported",
};

/** Ingested → filtered → pre-labelled → routed → verified → exported, for the project or one source. */
export function FunnelPanel({ projectId }: { projectId: number }) {
  const loaded = useLoad(() => api.funnel(projectId), [projectId]);
  const [source, setSource] = useState<string>("all");
  return (
    <Loading loaded={loaded}>
      {(data) => {
        const chosen = data.sources.find((s) => String(s.source_id) === source);
        const funnel = chosen ? chosen.funnel : data.project;
        const stages = funnel.stages.map((s) => ({ ...s, name: STAGE_NAMES[s.key] ?? s.key, rateText: pct(s.rate, 0) }));
        const reasons = [
          ...Object.entries(funnel.filtered_by_reason).map(([reason, n]) => ({ reason, n, where: "analysis" })),
          ...Object.entries(funnel.rejected_by_reason).map(([reason, n]) => ({ reason, n, where: "ingest" })),
        ];
        return (
          <>
            <div className="toolbar">
              <label className="toolbar__label" htmlFor="funnel-source">
                Source
              </label>
              <select
                id="funnel-source"
                className="input"
                value={source}
                onChange={(event) => setSource(event.target.value)}
                data-testid="funnel-source"
              >
                <option value="all">All sources</option>
                {data.sources.map((s) => (
                  <option key={String(s.source_id)} value={String(s.source_id)}>
                    {s.name}
                    {s.kind ? ` (${s.kind})` : ""}
                  </option>
                ))}
              </select>
              <span className="muted" data-testid="funnel-counted">
                counted {when(data.computed_at)}
              </span>
            </div>
            <div className="figures">
              {stages.map((s) => (
                <Figure key={s.key} label={s.name} value={num(s.count)} hint={s.rate === null ? undefined : `${pct(s.rate)} of previous`} testId={`funnel-${s.key}`} />
              ))}
              <Figure label="Filtered" value={num(funnel.filtered)} hint="kept out by analysis" testId="funnel-filtered" />
              <Figure label="Rejected at ingest" value={num(funnel.rejected_at_ingest)} testId="funnel-rejected" />
            </div>
            <Card title="Funnel" testId="funnel-chart">
              <div className="chart">
                <ResponsiveContainer width="100%" height={280}>
                  <BarChart data={stages} margin={{ top: 24, right: 16, left: 8, bottom: 4 }}>
                    <CartesianGrid stroke={GRID} vertical={false} />
                    <XAxis dataKey="name" tick={AXIS} stroke={AXIS.stroke} />
                    <YAxis tick={AXIS} stroke={AXIS.stroke} allowDecimals={false} />
                    <Tooltip {...TOOLTIP} cursor={{ fill: "rgba(255,255,255,0.04)" }} />
                    <Bar dataKey="count" name="count" isAnimationActive={false}>
                      {stages.map((s, i) => (
                        <Cell key={s.key} fill={PALETTE[i % PALETTE.length]} />
                      ))}
                      <LabelList dataKey="rateText" position="top" fill="#b4bbc6" fontSize={11} />
                    </Bar>
                  </BarChart>
                </ResponsiveContainer>
              </div>
              <p className="muted">
                Images for the first two stages, subjects (a person in an image) after; the label over each bar is its share
                of the stage before.
              </p>
            </Card>
            <Card title="Why images were kept out" testId="funnel-reasons">
              {reasons.length === 0 ? (
                <p className="muted">Nothing filtered or rejected.</p>
              ) : (
                <div className="chart">
                  <ResponsiveContainer width="100%" height={Math.max(120, 34 * reasons.length + 40)}>
                    <BarChart data={reasons} layout="vertical" margin={{ top: 4, right: 24, left: 24, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} horizontal={false} />
                      <XAxis type="number" tick={AXIS} stroke={AXIS.stroke} allowDecimals={false} />
                      <YAxis type="category" dataKey="reason" tick={AXIS} stroke={AXIS.stroke} width={150} />
                      <Tooltip {...TOOLTIP} cursor={{ fill: "rgba(255,255,255,0.04)" }} />
                      <Bar dataKey="n" name="images" isAnimationActive={false}>
                        {reasons.map((r) => (
                          <Cell key={`${r.where}-${r.reason}`} fill={r.where === "ingest" ? "#f2555a" : "#f5a524"} />
                        ))}
                      </Bar>
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
            </Card>
            <Card title="Per source">
              <table className="table" data-testid="funnel-sources">
                <thead>
                  <tr>
                    <th>Source</th>
                    {stages.map((s) => (
                      <th key={s.key} className="num">
                        {s.name}
                      </th>
                    ))}
                    <th className="num">Filtered</th>
                    <th className="num">Rejected</th>
                  </tr>
                </thead>
                <tbody>
                  {data.sources.map((s) => (
                    <tr key={String(s.source_id)}>
                      <td>{s.name}</td>
                      {s.funnel.stages.map((stage) => (
                        <td key={stage.key} className="num">
                          {num(stage.count)} <span className="muted">{stage.rate === null ? "" : pct(stage.rate, 0)}</span>
                        </td>
                      ))}
                      <td className="num">{num(s.funnel.filtered)}</td>
                      <td className="num">{num(s.funnel.rejected_at_ingest)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Card>
          </>
        );
      }}
    </Loading>
  );
}
