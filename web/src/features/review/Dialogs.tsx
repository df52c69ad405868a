// The review screen's overlays: help, the skip reason, and a submit the server refused.
import { useEffect, useRef } from "react";
import type { LabelState } from "../../api/types";
import { type Action, ACTION_HELP, type KeyBindings, keyLabel } from "./keys";
import type { OutboxProblem } from "./outbox";

function Keys({ keys }: { keys: string[] }) {
  return (
    <span className="keys">
      {keys.map((k) => (
        <kbd key={k}>{keyLabel(k)}</kbd>
      ))}
    </span>
  );
}

const HELP_ORDER: Action[] = [
  "submit",
  "skip",
  "undo",
  "next_category",
  "previous_category",
  "yes",
  "no",
  "zoom_in",
  "zoom_out",
  "zoom_reset",
  "help",
];

export function HelpOverlay({ bindings }: { bindings: KeyBindings }) {
  return (
    <div className="overlay" role="dialog" aria-label="keyboard help" data-testid="help">
      <div className="dialog dialog--wide">
        <h2>Keyboard</h2>
        <table className="help">
          <tbody>
            <tr>
              <td>
                <Keys keys={["1", "…", "9", "0"]} />
              </td>
              <td>pick a value (multi: toggle); 0 is the 10th</td>
            </tr>
            {HELP_ORDER.map((action) => (
              <tr key={action}>
                <td>
                  <Keys keys={bindings[action]} />
                </td>
                <td>{ACTION_HELP[action]}</td>
              </tr>
            ))}
            <tr>
              <td>
                <Keys keys={["a", "…", "z", "Backspace", "Escape"]} />
              </td>
              <td>long lists: type to filter, Backspace edits, Esc clears; action letters work again outside the list</td>
            </tr>
            <tr>
              <td>
                <Keys keys={["Enter", "Tab", "Escape"]} />
              </td>
              <td>in a text field only these act: submit, move on, leave the field</td>
            </tr>
            <tr>
              <td>mouse</td>
              <td>wheel zooms at the pointer, drag pans, double-click fits</td>
            </tr>
          </tbody>
        </table>
        <p className="dialog__hint">
          <Keys keys={bindings.help} /> or <Keys keys={["Escape"]} /> closes
        </p>
      </div>
    </div>
  );
}

export function SkipPrompt({ reason, onChange }: { reason: string; onChange(reason: string): void }) {
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div className="overlay" role="dialog" aria-label="skip" data-testid="skip-prompt">
      <div className="dialog">
        <h2>Skip this image</h2>
        <label className="dialog__label" htmlFor="skip-reason">
          Why? (the lead sees this)
        </label>
        <input
          id="skip-reason"
          ref={input}
          className="dialog__input"
          value={reason}
          maxLength={500}
          onChange={(event) => onChange(event.target.value)}
        />
        <p className="dialog__hint">
          <kbd>Enter</kbd> skips · <kbd>Esc</kbd> cancels
        </p>
      </div>
    </div>
  );
}

function shownValue(value: LabelState["value"], labels: Record<string, string>): string {
  if (value === null) return "—";
  if (typeof value === "boolean") return labels[String(value)] ?? (value ? "yes" : "no");
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map((k) => labels[k] ?? k).join(", ");
  return labels[value] ?? value;
}

export function ProblemDialog({ problem }: { problem: OutboxProblem }) {
  const { entry } = problem;
  const stale = problem.error === "stale_labels";
  const current = new Map(problem.current.map((c) => [c.category_id, c]));
  const rows = stale ? entry.summary.filter((row) => current.has(row.category_id)) : entry.summary;
  const hidden = entry.summary.length - rows.length;
  const title = stale
    ? "Someone changed these labels first"
    : problem.error === "lease_lost"
      ? "This image is no longer yours"
      : "The server refused this submit";
  return (
    <div className="overlay" role="alertdialog" aria-label={title} data-testid="conflict">
      <div className="dialog dialog--wide">
        <h2>{title}</h2>
        <p className="dialog__detail">
          {problem.detail} <span className="muted">(assignment {entry.assignment_id}, HTTP {problem.status || "—"})</span>
        </p>
        <p className="dialog__hint">
          {stale ? (
            <>
              <kbd>Enter</kbd> review it again with the stored values shown · <kbd>Esc</kbd> discard my answers
            </>
          ) : (
            <>
              <kbd>Enter</kbd> / <kbd>Esc</kbd> dismiss
            </>
          )}
        </p>
        <p>
          Your answers were <strong>not saved</strong>
          {stale && hidden > 0 ? ` (below, the ${rows.length} in conflict; ${hidden} others were not)` : ""}:
        </p>
        <table className="conflict">
          <thead>
            <tr>
              <th>question</th>
              <th>your answer</th>
              {stale && <th>now stored</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const now = current.get(row.category_id);
              const differs = now !== undefined && JSON.stringify(now.value) !== JSON.stringify(row.value);
              return (
                <tr key={row.category_id} className={differs ? "conflict__row--differs" : undefined}>
                  <td>{row.question}</td>
                  <td>{row.shown}</td>
                  {stale && (
                    <td>
                      {now ? (
                        <>
                          {shownValue(now.value, row.labels)}{" "}
                          <span className="muted">
                            ({(now.state ?? "no label").replace(/_/g, " ")}, v{now.version})
                          </span>
                        </>
                      ) : (
                        "—"
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}
