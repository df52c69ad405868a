// The dashboard's pages, in navigation order (kept apart so the router does not load the charts).
export const SECTIONS = [
  { key: "funnel", title: "Funnel" },
  { key: "flywheel", title: "Flywheel" },
  { key: "work", title: "Work" },
  { key: "models", title: "Models" },
  { key: "taxonomy", title: "Taxonomy" },
  { key: "sources", title: "Sources" },
  { key: "exports", title: "Exports" },
  { key: "people", title: "People" },
] as const;

export type Section = (typeof SECTIONS)[number]["key"];

export function isSection(value: string): value is Section {
  return SECTIONS.some((s) => s.key === value);
}
