// A caption preview recomputed as answers change. Deliberately simple: the shot phrase first,
// then each region's chosen values in order. The server's caption (captions domain) is the
// reference; this only shows the person what their answers say before they submit.
import type { Category } from "../../api/types";
import { type Answers, applicableCategories, displayValue } from "./values";

const SHOT_REGION = "shot";

export function previewCaption(categories: Category[], answers: Answers): string {
  const asked = applicableCategories(categories, answers);
  const regions: { name: string; key: string; parts: string[] }[] = [];
  for (const category of asked) {
    const value = answers[category.id] ?? null;
    const part = phrase(category, value);
    if (part === null) continue;
    let region = regions.find((r) => r.key === category.region);
    if (region === undefined) {
      region = { name: category.region_name || category.region, key: category.region, parts: [] };
      regions.push(region);
    }
    region.parts.push(part);
  }
  const shot = regions.find((r) => r.key === SHOT_REGION);
  const rest = regions.filter((r) => r !== shot).map((r) => `${r.name.toLowerCase()}: ${r.parts.join(", ")}`);
  return [shot?.parts.join(", "), ...rest].filter(Boolean).join("; ");
}

function phrase(category: Category, value: Answers[number]): string | null {
  if (value === null || (Array.isArray(value) && value.length === 0) || value === "") return null;
  if (typeof value === "boolean") {
    // "hat: worn" reads better than "hat: yes"; a "no" adds nothing to a caption.
    return value ? (category.key.split(".").at(-1) ?? category.key).replace(/_/g, " ") : null;
  }
  return displayValue(category, value);
}
