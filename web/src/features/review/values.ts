// Answers on the client: what a category starts with, what changed, which categories apply.
import type { Answer, Category, Condition, Value } from "../../api/types";

export type Answers = Record<number, Value>;

/** The pre-filled value: the current label, else the prediction, else nothing chosen. */
export function initialValue(category: Category): Value {
  const value = category.label?.value ?? category.prediction?.value ?? null;
  if (category.kind === "multi") return Array.isArray(value) ? [...value] : value === null ? [] : [String(value)];
  if (category.kind === "boolean" && (value === "true" || value === "false")) return value === "true";
  return value;
}

export function initialAnswers(categories: Category[]): Answers {
  return Object.fromEntries(categories.map((c) => [c.id, initialValue(c)]));
}

/** The confidence shown next to a category: the label's when it has one, else the prediction's. */
export function confidenceOf(category: Category): number | null {
  return category.label?.confidence ?? category.prediction?.confidence ?? null;
}

export function sameValue(a: Value, b: Value): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && [...a].sort().join("\u0000") === [...b].sort().join("\u0000");
  }
  return a === b;
}

export function changedCount(categories: Category[], answers: Answers): number {
  return categories.filter((c) => !sameValue(answers[c.id] ?? null, initialValue(c))).length;
}

/** `region.key`, the name `when` conditions use. */
export function fullKey(category: Category): string {
  return category.key.includes(".") ? category.key : `${category.region}.${category.key}`;
}

function chosenKeys(value: Value | undefined): Set<string> | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return new Set(value);
  return new Set([typeof value === "boolean" ? String(value) : value]);
}

/**
 * Whether a `when` condition holds, with the same rules as the server (taxonomy/format.py).
 * A leaf about a category this assignment does not ask is taken as true: the server already
 * decided that one when it routed the category here.
 */
export function conditionHolds(condition: Condition, values: Map<string, Value>): boolean {
  if (condition.all) return condition.all.every((c) => conditionHolds(c, values));
  if (condition.any) return condition.any.some((c) => conditionHolds(c, values));
  if (condition.category === undefined || !values.has(condition.category)) return true;
  const chosen = chosenKeys(values.get(condition.category));
  if (chosen === null) return false;
  if (condition.equals !== undefined) return chosen.has(String(condition.equals));
  if (condition.in) return condition.in.some((k) => chosen.has(String(k)));
  return !(condition.not_in ?? []).some((k) => chosen.has(String(k)));
}

/** The categories whose `when` condition holds for the current answers, in the server's order. */
export function applicableCategories(categories: Category[], answers: Answers): Category[] {
  const values = new Map(categories.map((c) => [fullKey(c), answers[c.id] ?? null]));
  return categories.filter((c) => c.when === null || conditionHolds(c.when, values));
}

/** One answer per applicable category, each naming the label version it was based on. */
export function answersToSubmit(categories: Category[], answers: Answers): Answer[] {
  return applicableCategories(categories, answers).map((c) => ({
    category_id: c.id,
    value: answers[c.id] ?? null,
    label_version: c.label?.version ?? null,
  }));
}

/** Categories that would be submitted with no value (a single or yes/no question left open). */
export function missingAnswers(categories: Category[], answers: Answers): Category[] {
  return applicableCategories(categories, answers).filter(
    (c) => (c.kind === "single" || c.kind === "boolean") && (answers[c.id] ?? null) === null,
  );
}

/** The values a person chooses from; yes/no questions get their two answers. */
export function choicesOf(category: Category): { key: string; label: string; value: Value }[] {
  if (category.kind === "boolean") {
    const label = (key: string, fallback: string): string =>
      category.values.find((v) => v.key === key)?.label || fallback;
    return [
      { key: "true", label: label("true", "yes"), value: true },
      { key: "false", label: label("false", "no"), value: false },
    ];
  }
  return category.values.map((v) => ({ key: v.key, label: v.label || v.key, value: v.key }));
}

/** A value as a person reads it: labels, not keys. */
export function displayValue(category: Category, value: Value | undefined): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return choicesOf(category)[value ? 0 : 1]?.label ?? String(value);
  const label = (key: string): string => category.values.find((v) => v.key === key)?.label || key;
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map(label).join(", ");
  return category.kind === "text" ? value : label(value);
}

/** The probability the model gave a value, for the little bars beside each choice. */
export function probabilityOf(category: Category, key: string): number | null {
  const distribution = category.prediction?.distribution;
  if (!distribution) return null;
  const p = distribution[key];
  return typeof p === "number" ? p : null;
}

export const LONG_LIST = 9;

/** The choices still shown under a type-ahead filter (label or key contains the typed text). */
export function filteredChoices(category: Category, filter: string): ReturnType<typeof choicesOf> {
  const choices = choicesOf(category);
  if (filter === "" || choices.length <= LONG_LIST) return choices;
  const needle = filter.toLowerCase();
  const starts = choices.filter((c) => c.label.toLowerCase().startsWith(needle));
  const contains = choices.filter(
    (c) => !starts.includes(c) && (c.label.toLowerCase().includes(needle) || c.key.includes(needle)),
  );
  return [...starts, ...contains];
}
