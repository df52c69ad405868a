// The API's shapes as the UI uses them (server/*/schemas.py are the source of truth).

export type Role = "annotator" | "reviewer" | "lead" | "admin";

export interface User {
  id: number;
  email: string;
  display_name: string;
  is_admin: boolean;
}

export interface LoginOut {
  user: User;
  csrf_token: string;
}

export interface Me {
  user: User;
  memberships: { project_id: number; role: Role }[];
}

export interface Project {
  id: number;
  name: string;
  slug: string;
  description: string;
  role: Role | null;
  settings: ProjectSettings;
}

export interface ProjectSettings {
  review?: { key_bindings?: Record<string, string> };
  key_bindings?: Record<string, string>;
}

export type CategoryKind = "single" | "multi" | "boolean" | "text";

/** A label or prediction value: a value key, several keys, a bool or free text. */
export type Value = string | string[] | boolean | null;

export interface CategoryValue {
  key: string;
  label: string;
}

export interface Label {
  value: Value;
  version: number;
  state: string;
  confidence: number | null;
}

export interface Prediction {
  value: Value;
  confidence: number;
  distribution: Record<string, number>;
}

/** A `when` condition (server/taxonomy/format.py: Condition). */
export interface Condition {
  category?: string;
  equals?: string;
  in?: string[];
  not_in?: string[];
  all?: Condition[];
  any?: Condition[];
}

export interface Category {
  id: number;
  key: string;
  region: string;
  region_name: string;
  question: string;
  kind: CategoryKind;
  values: CategoryValue[];
  label: Label | null;
  prediction: Prediction | null;
  parsing_ids: number[];
  when: Condition | null;
}

export interface Assignment {
  id: number;
  project_id: number;
  kind: string;
  status?: string;
  lease_expires_at: string | null;
  priority: number;
  subject: {
    id: number;
    image_id: number;
    bbox: [number, number, number, number] | null;
    shot_type: string | null;
    parsing_mask_url: string | null;
  };
  image: { id: number; width: number; height: number; url: string; thumbnail_url: string };
  categories: Category[];
  caption_preview: string;
}

export interface Answer {
  category_id: number;
  value: Value;
  label_version: number | null;
}

export interface SubmitIn {
  client_id: string;
  answers: Answer[];
  lead_time_ms: number;
}

export interface LabelState {
  category_id: number;
  value: Value;
  version: number;
  /** null in a stale-labels answer for a category that had no label yet */
  state: string | null;
}

export interface SubmitOut {
  assignment_id: number;
  status: string;
  changed_fields: number;
  labels: LabelState[];
  undo_until: string | null;
}

export interface QueueStats {
  queued: number;
  leased: number;
  submitted: number;
  by_kind: Record<string, Record<string, number>>;
  mine_submitted: number;
}

/** Every expected failure: `{"error": code, "detail": message, ...extra}`. */
export interface ErrorBody {
  error: string;
  detail?: string;
  current?: LabelState[];
  [extra: string]: unknown;
}

/** A subject's caption: CosmicMan-style, trimmed to CLIP's 77 tokens (server/captions). */
export interface CaptionOut {
  caption: string;
  tokens: number;
  trimmed: boolean;
  values: Record<string, Value>;
}
