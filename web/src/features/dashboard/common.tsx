// What every dashboard panel shares: loading with reload, error lines, figures and chart colours.
import { type ReactNode, useCallback, useEffect, useState } from "react";
import { ApiError } from "../../api/client";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
}

/** Calls `load` when `key` changes and on reload(); keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, key: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const run = useCallback(load, key);
  useEffect(() => {
    let live = true;
    run().then(
      (value) => {
        if (live) {
          setData(value);
          setError(null);
        }
      },
      (err: unknown) => {
        if (live) setError(message(err));
      },
    );
    return () => {
      live = false;
    };
  }, [run, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** Calls `reload` every `ms` while `active` (progress of runs, exports, rounds). */
export function usePoll(active: boolean, reload: () => void, ms = 1500): void {
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(reload, ms);
    return () => window.clearInterval(timer);
  }, [active, reload, ms]);
}

export function message(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

export function Problem({ error }: { error: string | null }) {
  return error ? (
    <p className="login__error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Loading<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ReactNode }) {
  if (loaded.data === null) {
    return loaded.error ? <Problem error={loaded.error} /> : <p className="muted">loading…</p>;
  }
  return (
    <>
      <Problem error={loaded.error} />
      {children(loaded.data)}
    </>
  );
}

export function Figure({ label, value, hint, testId }: { label: string; value: ReactNode; hint?: string; testId?: string }) {
  return (
    <div className="figure" data-testid={testId}>
      <div className="figure__value">{value}</div>
      <div className="figure__label">{label}</div>
      {hint && <div className="figure__hint muted">{hint}</div>}
    </div>
  );
}

export function Card({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  return (
    <section className="card" data-testid={testId}>
      <h2 className="card__title">{title}</h2>
      {children}
    </section>
  );
}

export const pct = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`;

export const num = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined ? "–" : x.toLocaleString("en", { maximumFractionDigits: digits });

export const when = (iso: string | null | undefined): string =>
  iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "short", timeStyle: "short" }) : "–";

/** Readable on the dark surface, distinct from each other; kinds keep their colour everywhere. */
export const PALETTE = ["#4cc2ff", "#3ecf8e", "#f5a524", "#f2555a", "#b48cff", "#ffb81c", "#6ee7d8", "#e879b9"];
export const KIND_COLOURS: Record<string, string> = {
  review: "#4cc2ff",
  audit: "#f5a524",
  eval: "#b48cff",
  gold: "#ffb81c",
  adjudicate: "#f2555a",
};
export const AXIS = { stroke: "#7d8696", fontSize: 11 };
export const GRID = "#2a303a";
export const TOOLTIP = {
  contentStyle: { background: "#1b1f26", border: "1px solid #3a4250", borderRadius: 5, color: "#e4e7ec" },
  labelStyle: { color: "#b4bbc6" },
  itemStyle: { color: "#e4e7ec" },
};
