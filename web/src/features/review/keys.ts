// Keyboard actions of the review screen and the keys they are bound to.
//
// A lead rebinds actions per project in `settings.review.key_bindings` (action -> key, validated by
// server/projects/schemas.py: ReviewSettings). Digits always pick values and cannot be rebound.
import type { ProjectSettings } from "../../api/types";

export type Action =
  | "submit"
  | "skip"
  | "undo"
  | "help"
  | "next_category"
  | "previous_category"
  | "yes"
  | "no"
  | "zoom_in"
  | "zoom_out"
  | "zoom_reset";

export type KeyBindings = Record<Action, string[]>;

export const DEFAULT_BINDINGS: KeyBindings = {
  submit: ["Enter"],
  skip: ["s"],
  undo: ["u"],
  help: ["?"],
  next_category: ["Tab", "ArrowDown"],
  previous_category: ["Shift+Tab", "ArrowUp"],
  yes: ["y"],
  no: ["n"],
  zoom_in: ["+", "="],
  zoom_out: ["-"],
  zoom_reset: ["0"],
};

export const ACTION_HELP: Record<Action, string> = {
  submit: "submit: accept every value not changed, save what changed",
  skip: "skip this image (asks for a reason)",
  undo: "undo the last submit",
  help: "show or hide this help",
  next_category: "next question",
  previous_category: "previous question",
  yes: "answer yes (yes/no questions)",
  no: "answer no (yes/no questions)",
  zoom_in: "zoom in",
  zoom_out: "zoom out",
  zoom_reset: "fit the image (when no 10th value is listed)",
};

/** A binding as written by a person ("S", "shift+tab", "ctrl+enter") in the form eventKey() gives. */
export function normalizeBinding(binding: string): string {
  const [modifiers, key] = splitBinding(binding.trim());
  const named: Record<string, string> = { enter: "Enter", tab: "Tab", escape: "Escape", esc: "Escape", space: " " };
  const name = named[key.toLowerCase()] ?? (key.length === 1 ? key.toLowerCase() : key);
  const aliases: Record<string, string> = { ctrl: "Ctrl", control: "Ctrl", alt: "Alt", meta: "Meta", cmd: "Meta", shift: "Shift" };
  const set = new Set(modifiers.map((m) => aliases[m.toLowerCase()] ?? m));
  // Shift is part of a printable character already (see eventKey).
  if (name.length === 1) set.delete("Shift");
  return [...["Ctrl", "Alt", "Meta", "Shift"].filter((m) => set.has(m)), name].join("+");
}

/** "ctrl+shift+a" -> [["ctrl", "shift"], "a"]; the plus key itself is "+" or "ctrl++". */
function splitBinding(binding: string): [string[], string] {
  if (binding === "+") return [[], "+"];
  if (binding.endsWith("++")) return [binding.slice(0, -2).split("+").filter(Boolean), "+"];
  const parts = binding.split("+");
  const key = parts.pop() ?? "";
  return [parts.filter(Boolean), key];
}

/**
 * A keydown as a binding string. Shift is only named for keys that do not print ("Shift+Tab"):
 * for printable keys it is already in the character ("?", "+", "S" -> "s").
 */
export function eventKey(event: KeyboardEvent): string {
  const printable = event.key.length === 1;
  const modifiers: string[] = [];
  if (event.ctrlKey) modifiers.push("Ctrl");
  if (event.altKey) modifiers.push("Alt");
  if (event.metaKey) modifiers.push("Meta");
  if (event.shiftKey && !printable) modifiers.push("Shift");
  return [...modifiers, printable ? event.key.toLowerCase() : event.key].join("+");
}

/** The project's bindings over the defaults. A rebound action loses its default keys. */
export function bindingsFor(settings: ProjectSettings | undefined): KeyBindings {
  const custom = settings?.review?.key_bindings ?? settings?.key_bindings ?? {};
  const bindings: KeyBindings = { ...DEFAULT_BINDINGS };
  const taken = new Set<string>();
  for (const [action, key] of Object.entries(custom)) {
    if (!(action in DEFAULT_BINDINGS) || typeof key !== "string" || key === "") continue;
    const normalized = normalizeBinding(key);
    if (/^[0-9]$/.test(normalized)) continue; // digits pick values
    bindings[action as Action] = [normalized];
    taken.add(normalized);
  }
  // A key a lead gave to one action no longer does what it did by default.
  for (const action of Object.keys(bindings) as Action[]) {
    const own = custom[action] !== undefined;
    if (!own) bindings[action] = bindings[action].filter((k) => !taken.has(k));
  }
  return bindings;
}

export function actionFor(bindings: KeyBindings, key: string): Action | null {
  for (const action of Object.keys(bindings) as Action[]) {
    if (bindings[action].includes(key)) return action;
  }
  return null;
}

/** How a binding is shown in the help and the status bar. */
export function keyLabel(binding: string): string {
  const names: Record<string, string> = {
    Enter: "Enter",
    Tab: "Tab",
    Escape: "Esc",
    " ": "Space",
    ArrowUp: "↑",
    ArrowDown: "↓",
  };
  const [modifiers, key] = splitBinding(binding);
  const shown = names[key] ?? (key.length === 1 ? key.toUpperCase() : key);
  return [...modifiers, shown].join("+");
}
