// The review screen's pure rules (no browser): key bindings, `when` conditions, answers, caption.
import { expect, test } from "@playwright/test";
import type { Category } from "../../api/types";
import { draftValues } from "./caption";
import { actionFor, bindingsFor, DEFAULT_BINDINGS, keyLabel, normalizeBinding } from "./keys";
import {
  answersToSubmit,
  applicableCategories,
  changedCount,
  filteredChoices,
  initialAnswers,
  missingAnswers,
} from "./values";

function category(id: number, key: string, kind: Category["kind"], values: string[], extra: Partial<Category> = {}): Category {
  const [region = ""] = key.split(".");
  return {
    id,
    key,
    region,
    region_name: region.charAt(0).toUpperCase() + region.slice(1),
    question: `${key}?`,
    kind,
    values: values.map((v) => ({ key: v, label: v.replace(/_/g, " ") })),
    label: null,
    prediction: null,
    parsing_ids: [],
    when: null,
    ...extra,
  };
}

const shot = category(1, "shot.type", "single", ["full_body", "portrait"], {
  label: { value: "full_body", version: 3, state: "predicted", confidence: 0.9 },
});
const coat = category(2, "coat.worn", "boolean", ["true", "false"], {
  prediction: { value: true, confidence: 0.6, distribution: { true: 0.6, false: 0.4 } },
});
const coatColor = category(3, "coat.color", "single", ["black", "blue", "brown", "beige", "red", "green", "white", "grey", "navy", "olive"], {
  when: { category: "coat.worn", equals: "true" },
});
const shoes = category(4, "shoes.type", "single", ["sneakers", "boots"], {
  when: { all: [{ category: "shot.type", in: ["full_body"] }, { category: "elsewhere.unknown", equals: "x" }] },
  prediction: { value: "boots", confidence: 0.5, distribution: {} },
});
const all = [shot, coat, coatColor, shoes];

test("a rebound action loses its default keys, and digits cannot be rebound", () => {
  const bindings = bindingsFor({ review: { key_bindings: { submit: "Ctrl+Enter", skip: "x", undo: "5", yes: "Enter" } } });
  expect(bindings.submit).toEqual(["Ctrl+Enter"]);
  expect(bindings.yes).toEqual(["Enter"]);
  expect(actionFor(bindings, "Enter")).toBe("yes");
  expect(actionFor(bindings, "x")).toBe("skip");
  expect(actionFor(bindings, "s")).toBeNull();
  expect(bindings.undo).toEqual(DEFAULT_BINDINGS.undo);
  expect(bindingsFor(undefined)).toEqual(DEFAULT_BINDINGS);
});

test("bindings are written the way key events are read", () => {
  expect(normalizeBinding("S")).toBe("s");
  expect(normalizeBinding("shift+tab")).toBe("Shift+Tab");
  expect(normalizeBinding("Shift+S")).toBe("s");
  expect(normalizeBinding("ctrl++")).toBe("Ctrl++");
  expect(normalizeBinding("+")).toBe("+");
  expect(keyLabel("Shift+Tab")).toBe("Shift+Tab");
  expect(keyLabel("s")).toBe("S");
  expect(keyLabel("+")).toBe("+");
});

test("when conditions follow the server's rules; unknown categories count as true", () => {
  const answers = initialAnswers(all);
  expect(applicableCategories(all, answers).map((c) => c.key)).toEqual(["shot.type", "coat.worn", "coat.color", "shoes.type"]);
  const noCoatPortrait = { ...answers, [coat.id]: false, [shot.id]: "portrait" };
  expect(applicableCategories(all, noCoatPortrait).map((c) => c.key)).toEqual(["shot.type", "coat.worn"]);
});

test("a submit answers the questions that apply, each with the label version it saw", () => {
  const answers = { ...initialAnswers(all), [coatColor.id]: "navy", [coat.id]: false };
  expect(answersToSubmit(all, answers)).toEqual([
    { category_id: 1, value: "full_body", label_version: 3 },
    { category_id: 2, value: false, label_version: null },
    { category_id: 4, value: "boots", label_version: null },
  ]);
  expect(changedCount(all, answers)).toBe(2);
});

test("an open single or yes/no question that applies blocks the submit", () => {
  const answers = initialAnswers(all);
  expect(missingAnswers(all, answers).map((c) => c.key)).toEqual(["coat.color"]);
  expect(missingAnswers(all, { ...answers, [coatColor.id]: "red" })).toEqual([]);
});

test("typing filters a long list, best matches first", () => {
  expect(filteredChoices(coatColor, "b").map((c) => c.key)).toEqual(["black", "blue", "brown", "beige"]);
  expect(filteredChoices(coatColor, "re").map((c) => c.key)).toEqual(["red", "green", "grey"]);
  expect(filteredChoices(shot, "zzz").map((c) => c.key)).toEqual(["full_body", "portrait"]); // short lists never filter
});

test("the caption preview sends the server the applicable answers by category key", () => {
  const answers = { ...initialAnswers(all), [coatColor.id]: "navy" };
  const draft = draftValues(all, answers);
  expect(draft["coat.color"]).toBe("navy");
  expect(Object.keys(draft).every((key) => key.includes("."))).toBe(true);
  const noCoat = draftValues(all, { ...answers, [coat.id]: false });
  expect("coat.color" in noCoat).toBe(false); // not applicable without a coat: not said
});
