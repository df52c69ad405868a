import {
  Bar,
  BarChart,
  CartesianGrid,
  ErrorBar,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import * as api from "../../api/dashboard";
import { AXIS, Card, Figure, GRID, Loading, num, PALETTE, pct, TOOLTIP, useLoad, when } from "./common";

const asPct = (x: number): string => `${Math.round(x * 100)}%`;

/** Accuracy per category and round, trust, human share per round, audited accuracy, pace. */
export function FlywheelPanel({ projectId }: { projectId: number }) {
  const loaded = useLoad(() => Promise.all([api.flywheel(projectId), api.rounds(projectId)]), [projectId]);
  return (
    <Loading loaded={loaded}>
      {([flywheel, rounds]) => {
        const ordered = [...rounds].sort((a, b) => a.number - b.number);
        const scored = ordered.filter((r) => r.metrics.candidate?.categories);
        // Categories the evaluation set answered (support > 0): the others have no accuracy to draw.
        const keys = [
          ...new Set(
            scored.flatMap((r) =>
              Object.entries(r.metrics.candidate?.categories ?? {})
                .filter(([, score]) => score.support > 0)
                .map(([key]) => key),
            ),
          ),
        ].sort();
        const perRound = scored.map((r) => {
          const row: Record<string, number | string | null> = { round: `#${r.number}` };
          for (const key of keys) row[key] = r.metrics.candidate?.categories?.[key]?.accuracy ?? null;
          return row;
        });
        const share = ordered.map((r) => ({
          round: `#${r.number}`,
          human: r.activity.human_share ?? 0,
          pace: r.activity.fields_per_person_hour ?? 0,
        }));
        const current = flywheel.categories.map((c) => ({
          key: c.key,
          accuracy: c.accuracy ?? 0,
          interval: [Math.max(0, (c.accuracy ?? 0) - c.low), Math.max(0, c.high - (c.accuracy ?? 0))],
        }));
        const audit = flywheel.activity.audit;
        return (
          <>
            <div className="figures">
              <Figure label="active labeler" value={flywheel.active_model_version} hint={flywheel.cold_start ? "cold start" : undefined} />
              <Figure label="macro accuracy" value={pct(flywheel.macro_accuracy)} testId="fw-macro" />
              <Figure label="trusted categories" value={`${flywheel.trusted.length} / ${flywheel.categories.length}`} testId="fw-trusted" />
              <Figure label="rounds" value={num(flywheel.rounds)} />
              <Figure
                label="audited accuracy of auto-accepted"
                value={pct(audit?.accuracy)}
                hint={audit && audit.low !== null && audit.high !== null ? `95% interval ${pct(audit.low)}–${pct(audit.high)} · ${audit.audited} audited` : "no audits yet"}
                testId="fw-audit"
              />
              <Figure
                label="human share of decided fields"
                value={pct(flywheel.activity.human_share)}
                hint={`counted ${when(flywheel.activity_computed_at)}`}
                testId="fw-share"
              />
              <Figure label="fields decided per person-hour" value={num(flywheel.activity.fields_per_person_hour, 0)} testId="fw-pace" />
              <Figure label="evaluation set" value={`${num(flywheel.eval_set.labeled)} / ${num(flywheel.eval_set.size)}`} hint={`target ${num(flywheel.eval_set.target_size)}`} />
            </div>
            <Card title="Accuracy per category and round (candidate, on the evaluation set)" testId="fw-rounds-chart">
              {perRound.length === 0 ? (
                <p className="muted">No round has been scored yet. Start one on the Models page.</p>
              ) : (
                <div className="chart">
                  <ResponsiveContainer width="100%" height={300}>
                    <LineChart data={perRound} margin={{ top: 8, right: 16, left: 8, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} />
                      <XAxis dataKey="round" tick={AXIS} stroke={AXIS.stroke} />
                      <YAxis domain={[0, 1]} tickFormatter={asPct} tick={AXIS} stroke={AXIS.stroke} />
                      <Tooltip {...TOOLTIP} formatter={(v) => (typeof v === "number" ? pct(v) : String(v))} />
                      <Legend />
                      {keys.map((key, i) => (
                        <Line key={key} dataKey={key} stroke={PALETTE[i % PALETTE.length]} dot isAnimationActive={false} connectNulls />
                      ))}
                    </LineChart>
                  </ResponsiveContainer>
                </div>
              )}
            </Card>
            <Card title="Active labeler: accuracy per category with its 95% interval" testId="fw-categories-chart">
              {current.length === 0 && <p className="muted">No category scored yet: the evaluation set has no answers.</p>}
              <div className="chart" hidden={current.length === 0}>
                <ResponsiveContainer width="100%" height={Math.max(160, 22 * current.length + 40)}>
                  <BarChart data={current} layout="vertical" margin={{ top: 4, right: 24, left: 24, bottom: 4 }}>
                    <CartesianGrid stroke={GRID} horizontal={false} />
                    <XAxis type="number" domain={[0, 1]} tickFormatter={asPct} tick={AXIS} stroke={AXIS.stroke} />
                    <YAxis type="category" dataKey="key" tick={AXIS} stroke={AXIS.stroke} width={160} />
                    <Tooltip {...TOOLTIP} formatter={(v) => (typeof v === "number" ? pct(v) : String(v))} />
                    <Bar dataKey="accuracy" fill="#4cc2ff" isAnimationActive={false}>
                      <ErrorBar dataKey="interval" width={4} stroke="#e4e7ec" direction="x" />
                    </Bar>
                  </BarChart>
                </ResponsiveContainer>
              </div>
              <p className="muted">
                Trusted (auto-accepted above their confidence cut):{" "}
                {flywheel.trusted.length === 0 ? "none yet" : flywheel.trusted.join(", ")}
              </p>
            </Card>
            <Card title="Human share and fields per person-hour, per round" testId="fw-share-chart">
              {share.length === 0 ? (
                <p className="muted">No rounds yet.</p>
              ) : (
                <div className="chart">
                  <ResponsiveContainer width="100%" height={240}>
                    <BarChart data={share} margin={{ top: 8, right: 16, left: 8, bottom: 4 }}>
                      <CartesianGrid stroke={GRID} vertical={false} />
                      <XAxis dataKey="round" tick={AXIS} stroke={AXIS.stroke} />
                      <YAxis yAxisId="share" domain={[0, 1]} tickFormatter={asPct} tick={AXIS} stroke={AXIS.stroke} />
                      <YAxis yAxisId="pace" orientation="right" tick={AXIS} stroke={AXIS.stroke} />
                      <Tooltip {...TOOLTIP} />
                      <Legend />
                      <Bar yAxisId="share" dataKey="human" name="human share" fill="#f5a524" isAnimationActive={false} />
                      <Bar yAxisId="pace" dataKey="pace" name="fields / person-hour" fill="#3ecf8e" isAnimationActive={false} />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
            </Card>
          </>
        );
      }}
    </Loading>
  );
}
