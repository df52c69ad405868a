// The review screen's quieter parts: session progress, the key bar, the empty queue.
import type { QueueStats } from "../../api/types";
import type { FeedState } from "./feed";
import { type Action, type KeyBindings, keyLabel } from "./keys";

export interface Notice {
  text: string;
  tone: "info" | "error";
}

export function Progress({ saved, stats }: { saved: number; stats: QueueStats | null }) {
  return (
    <div className="progress" data-testid="progress">
      <div className="progress__item">
        <span className="progress__num" data-testid="session-saved">
          {saved}
        </span>
        <span className="progress__label">saved now</span>
      </div>
      <div className="progress__item">
        <span className="progress__num" data-testid="queue-remaining">
          {stats ? stats.queued : "–"}
        </span>
        <span className="progress__label">queued</span>
      </div>
      <div className="progress__item">
        <span className="progress__num">{stats ? stats.mine_submitted : "–"}</span>
        <span className="progress__label">yours, all time</span>
      </div>
    </div>
  );
}

const KEYBAR: [Action, string][] = [
  ["submit", "submit"],
  ["skip", "skip"],
  ["undo", "undo"],
  ["next_category", "next"],
  ["previous_category", "previous"],
  ["help", "all keys"],
];

export function KeyBar({ bindings, notice }: { bindings: KeyBindings; notice: Notice | null }) {
  return (
    <footer className="keybar">
      {KEYBAR.map(([action, label]) => (
        <span key={action} className="keybar__item">
          <kbd>{keyLabel(bindings[action][0] ?? "")}</kbd> {label}
        </span>
      ))}
      <span className="keybar__item">
        <kbd>1</kbd>–<kbd>9</kbd> pick
      </span>
      <span className="keybar__item">
        <kbd>+</kbd>
        <kbd>-</kbd>
        <kbd>0</kbd> zoom
      </span>
      {notice && (
        <span className={`notice notice--${notice.tone}`} role="status" data-testid="notice">
          {notice.text}
        </span>
      )}
    </footer>
  );
}

export function EmptyQueue({ state, onRetry }: { state: FeedState; onRetry(): void }) {
  let body;
  if (state.loading) body = "loading the next image…";
  else if (state.exhausted || state.error) {
    body = (
      <div className="empty">
        <p>{state.error ? `Could not get work: ${state.error}` : "Nothing is queued for you in this project right now."}</p>
        <button type="button" className="button" onClick={onRetry}>
          {state.error ? "Try again" : "Check again"}
        </button>
      </div>
    );
  } else body = "…";
  return (
    <div className="viewer viewer--empty" data-testid="queue-empty">
      {body}
    </div>
  );
}
