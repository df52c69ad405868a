// The caption preview's pure half: what the draft says, by category key. The server's composer
// (server/captions) is the only one: it says the shot first, then each caption group in taxonomy
// order, leaves sensitive categories out unless the project opts in, and trims to CLIP's 77
// tokens counted with CLIP's own tokenizer. Rather than a second, drifting copy of those rules
// (and of CLIP's vocabulary) here, the screen asks the API for the caption of the draft answers
// (useCaptionPreview in captionPreview.ts).
import type { Category, Value } from "../../api/types";
import { type Answers, applicableCategories, fullKey } from "./values";

/** Category key -> draft value, for the categories the answers make applicable. */
export function draftValues(categories: Category[], answers: Answers): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const category of applicableCategories(categories, answers)) {
    const value = answers[category.id] ?? null;
    if (value === null || value === "" || (Array.isArray(value) && value.length === 0)) continue;
    out[fullKey(category)] = value;
  }
  return out;
}
