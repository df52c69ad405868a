// The routed categories, grouped by region, each pre-filled and answerable with the keyboard.
import { type RefObject, useEffect, useRef } from "react";
import type { Category, Value } from "../../api/types";
import {
  type Answers,
  choicesOf,
  confidenceOf,
  displayValue,
  filteredChoices,
  fullKey,
  initialValue,
  LONG_LIST,
  probabilityOf,
  sameValue,
} from "./values";

export function Fields({
  categories,
  answers,
  focusedId,
  filter,
  textInput,
  onFocus,
  onAnswer,
}: {
  categories: Category[];
  answers: Answers;
  focusedId: number | null;
  filter: string;
  textInput: RefObject<HTMLInputElement | null>;
  onFocus(categoryId: number): void;
  onAnswer(category: Category, value: Value): void;
}) {
  const regions: { key: string; name: string; categories: Category[] }[] = [];
  for (const category of categories) {
    const last = regions.at(-1);
    if (last?.key === category.region) last.categories.push(category);
    else regions.push({ key: category.region, name: category.region_name || category.region, categories: [category] });
  }
  return (
    <div className="fields" data-testid="fields">
      {regions.map((region) => (
        <section key={region.key} className="region">
          <h3 className="region__name">{region.name}</h3>
          {region.categories.map((category) => (
            <Field
              key={category.id}
              category={category}
              value={answers[category.id] ?? null}
              focused={category.id === focusedId}
              filter={category.id === focusedId ? filter : ""}
              textInput={textInput}
              onFocus={() => onFocus(category.id)}
              onAnswer={(value) => onAnswer(category, value)}
            />
          ))}
        </section>
      ))}
    </div>
  );
}

function Field({
  category,
  value,
  focused,
  filter,
  textInput,
  onFocus,
  onAnswer,
}: {
  category: Category;
  value: Value;
  focused: boolean;
  filter: string;
  textInput: RefObject<HTMLInputElement | null>;
  onFocus(): void;
  onAnswer(value: Value): void;
}) {
  const element = useRef<HTMLDivElement>(null);
  const initial = initialValue(category);
  const changed = !sameValue(value, initial);
  const confidence = confidenceOf(category);
  const state = category.label?.state ?? (category.prediction ? "predicted" : "empty");

  useEffect(() => {
    if (focused) element.current?.scrollIntoView({ block: "nearest" });
  }, [focused]);

  return (
    <div
      ref={element}
      className={"field" + (focused ? " field--focused" : "") + (changed ? " field--changed" : "")}
      data-testid={`field-${fullKey(category)}`}
      data-category-id={category.id}
      onClick={onFocus}
    >
      <div className="field__row">
        <span className="field__question">{category.question}</span>
        <span className="field__value" data-testid="field-value">
          {displayValue(category, value)}
        </span>
        <span
          className={confidence === null ? "confidence" : `confidence confidence--${confidenceBand(confidence)}`}
          title={confidence === null ? "no confidence" : `${state}, confidence`}
        >
          {confidence === null ? "" : `${Math.round(confidence * 100)}%`}
        </span>
      </div>
      {focused && (
        <div className="field__status">
          {changed ? (
            <>
              changed, was <span className="field__was">{displayValue(category, initial)}</span>
            </>
          ) : (
            <span className={`state state--${state}`}>{stateText(state)}</span>
          )}
        </div>
      )}
      {focused && category.kind === "text" && (
        <input
          ref={textInput}
          className="field__text"
          type="text"
          value={typeof value === "string" ? value : ""}
          placeholder="type; Enter submits, Tab moves on, Esc leaves the field"
          onChange={(event) => onAnswer(event.target.value)}
        />
      )}
      {focused && category.kind !== "text" && <Choices category={category} value={value} filter={filter} onAnswer={onAnswer} />}
    </div>
  );
}

function Choices({
  category,
  value,
  filter,
  onAnswer,
}: {
  category: Category;
  value: Value;
  filter: string;
  onAnswer(value: Value): void;
}) {
  const all = choicesOf(category);
  const long = all.length > LONG_LIST;
  const shown = filteredChoices(category, filter);
  const chosen = (choiceValue: Value): boolean =>
    Array.isArray(value) ? typeof choiceValue === "string" && value.includes(choiceValue) : value === choiceValue;

  return (
    <div className="choices-wrap">
      {long && (
        <div className={"typeahead" + (filter ? " typeahead--active" : "")} data-testid="typeahead">
          {filter ? (
            <>
              filter <span className="typeahead__text">{filter}</span>
              <span className="typeahead__caret" /> · {shown.length} of {all.length} · Esc clears
            </>
          ) : (
            `type to filter ${all.length} values`
          )}
        </div>
      )}
      <ol className={"choices" + (category.kind === "multi" ? " choices--multi" : "")}>
        {shown.map((choice, index) => {
          const p = probabilityOf(category, choice.key);
          const hotkey = index < 9 ? String(index + 1) : index === 9 ? "0" : "";
          return (
            <li
              key={choice.key}
              className={"choice" + (chosen(choice.value) ? " choice--chosen" : "")}
              data-testid={`choice-${choice.key}`}
              onClick={(event) => {
                event.stopPropagation();
                onAnswer(toggle(category, value, choice.value));
              }}
            >
              <kbd className="choice__key">{hotkey}</kbd>
              {category.kind === "multi" && <span className="choice__check" aria-hidden="true" />}
              <span className="choice__label">{choice.label}</span>
              {p !== null && (
                <span className="choice__p" title="model probability">
                  <span className="choice__bar" style={{ width: `${Math.round(p * 100)}%` }} />
                  <span className="choice__pnum">{p < 0.005 ? "" : Math.round(p * 100)}</span>
                </span>
              )}
            </li>
          );
        })}
        {shown.length === 0 && <li className="choice choice--none">no value matches “{filter}”</li>}
      </ol>
    </div>
  );
}

/** The answer after choosing `choice`: replaces a single value, toggles one of a multi's. */
export function toggle(category: Category, current: Value, choice: Value): Value {
  if (category.kind !== "multi" || typeof choice !== "string") return choice;
  const list = Array.isArray(current) ? current : [];
  return list.includes(choice) ? list.filter((k) => k !== choice) : [...list, choice];
}

function stateText(state: string): string {
  switch (state) {
    case "predicted":
      return "model prediction: Enter accepts it";
    case "auto_accepted":
      return "auto-accepted by the model";
    case "verified":
      return "verified by a person";
    case "gold":
      return "gold";
    case "empty":
      return "no prediction: pick a value";
    default:
      return state.replace(/_/g, " ");
  }
}

function confidenceBand(confidence: number): "low" | "mid" | "high" {
  return confidence < 0.5 ? "low" : confidence < 0.8 ? "mid" : "high";
}
