// The routes the dashboard pages call, typed (server/{dashboard,flywheel,exports,sources,taxonomy,
// invites,projects,labelers}/schemas.py are the source of truth). Paths are relative to /api/v1.
import { del, get, post, postForm, request } from "./client";
import type { LoginOut, Role } from "./types";

export interface FunnelStage {
  key: "ingested" | "prelabeled" | "routed" | "verified" | "exported";
  count: number;
  rate: number | null;
}

export interface Funnel {
  stages: FunnelStage[];
  filtered: number;
  filtered_by_reason: Record<string, number>;
  rejected_at_ingest: number;
  rejected_by_reason: Record<string, number>;
}

export interface FunnelOut {
  /** When the counts were taken: now, or by the beat for a large project. */
  computed_at: string;
  project: Funnel;
  sources: { source_id: number | null; name: string; kind: string | null; funnel: Funnel }[];
}

export interface WorkOut {
  since: string;
  hours: string[];
  queue_depth: Record<string, number[]>;
  throughput: Record<string, number[]>;
  open_now: Record<string, number>;
  submitted_total: number;
}

export interface AnnotatorRow {
  user_id: number;
  email: string;
  display_name: string;
  role: Role;
  submitted: number;
  items_per_hour: number | null;
  median_lead_time_ms: number | null;
  gold_answers: number;
  gold_correct: number;
  gold_accuracy: number | null;
  audited: number;
  audit_changed: number;
  audits_done: number;
  adjudications_done: number;
  last_submitted_at: string | null;
}

export interface CategoryScore {
  support: number;
  correct: number;
  accuracy: number | null;
  low: number;
  high: number;
  cut: number | null;
  trusted: boolean;
}

export interface Audit {
  audited: number;
  correct: number;
  accuracy: number | null;
  low: number | null;
  high: number | null;
}

export interface Activity {
  fields_by_people?: number;
  fields_auto_accepted?: number;
  human_share?: number | null;
  fields_per_person_hour?: number | null;
  audit?: Audit;
}

export interface EvalSet {
  size: number;
  target_size: number;
  labeled: number;
  fields_labeled: number;
}

export interface FlywheelOut {
  active_model_version_id: number;
  active_model_version: string;
  cold_start: boolean;
  eval_set: EvalSet;
  categories: (CategoryScore & { key: string })[];
  trusted: string[];
  macro_accuracy: number | null;
  rounds: number;
  activity: Activity;
  /** When the activity was counted: now, or by the beat for a large project. */
  activity_computed_at: string;
}

export interface RoundScores {
  categories?: Record<string, CategoryScore>;
  macro_accuracy?: number | null;
  eval_subjects?: number;
}

export interface RoundOut {
  id: number;
  number: number;
  status: string;
  trigger: string;
  decision: string | null;
  reasons: unknown[];
  candidate_id: number | null;
  baseline_id: number | null;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
  metrics: { candidate?: RoundScores; baseline?: RoundScores; examples?: number; [extra: string]: unknown };
  activity: Activity;
}

export interface ModelVersion {
  id: number;
  family: string;
  version: string;
  status: string;
  spec: Record<string, unknown>;
  metrics: RoundScores;
  created_at: string;
  promoted_at: string | null;
}

export interface TaxonomyValue {
  key: string;
  label: string;
}

export interface TaxonomyCategory {
  id: number;
  key: string;
  question: string;
  kind: string;
  sensitive: boolean;
  trust_threshold: number;
  values: TaxonomyValue[];
}

export interface TaxonomyTree {
  id: number;
  name: string;
  version: number;
  content_hash: string;
  created_at: string;
  current: boolean;
  regions: { key: string; name: string; categories: TaxonomyCategory[] }[];
}

export interface TaxonomyVersionSummary {
  id: number;
  name: string;
  version: number;
  created_at: string;
  current: boolean;
}

export interface Source {
  id: number;
  kind: string;
  name: string;
  config: Record<string, unknown>;
  licence: string;
  consent: string;
  /** Watched: the beat ingests what is new this long after the last run; null: not watched. */
  watch_every_seconds: number | null;
  created_at: string;
}

export interface IngestRun {
  id: number;
  source_id: number;
  status: string;
  /** manual: every file looked at again; watch: only what the source had not seen. */
  trigger: string;
  items_total: number;
  items_done: number;
  added: number;
  duplicates: number;
  rejected: number;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface Rejection {
  id: number;
  run_id: number | null;
  name: string;
  reason: string;
  detail: string;
  created_at: string;
}

export type ExportFormat = "webdataset" | "cosmicman" | "jsonl" | "labelstudio";

export interface ExportCreate {
  format: ExportFormat;
  filters: {
    states: ("verified" | "auto_accepted")[];
    min_quality?: Record<string, number>;
    source_ids?: number[] | null;
    since_export_id?: number | null;
  };
  options?: { shard_size?: number };
}

export interface ExportOut {
  id: number;
  snapshot_id: number;
  format: string;
  destination: string;
  status: string;
  progress: number;
  counts: Record<string, unknown>;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface ExportDetail extends ExportOut {
  filters: Record<string, unknown>;
  label_event_high_water: number;
  /** The project's setting when the export began: every part and the manifest follow it. */
  include_sensitive: boolean;
  manifest: { files?: Record<string, { sha256: string; bytes: number }>; [extra: string]: unknown } | null;
  /** Why a finished export holds no sample, and how to get some; null otherwise. */
  note: string | null;
}

export interface Member {
  user_id: number;
  email: string;
  display_name: string;
  role: Role;
}

export interface Invite {
  id: number;
  email: string;
  role: Role;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  revoked_at: string | null;
}

export interface InviteCreated extends Invite {
  token: string;
  url: string;
}

export interface InvitePreview {
  project_name: string;
  email: string;
  role: Role;
  expires_at: string;
  account_exists?: boolean;
}

const p = (projectId: number): string => `/projects/${projectId}`;

export const funnel = (id: number): Promise<FunnelOut> => get<FunnelOut>(`${p(id)}/dashboard/funnel`);
export const work = (id: number, hours = 48): Promise<WorkOut> => get<WorkOut>(`${p(id)}/dashboard/work?hours=${hours}`);
export const annotators = (id: number): Promise<AnnotatorRow[]> => get<AnnotatorRow[]>(`${p(id)}/dashboard/annotators`);

export const flywheel = (id: number): Promise<FlywheelOut> => get<FlywheelOut>(`${p(id)}/flywheel`);
export const rounds = (id: number): Promise<RoundOut[]> => get<RoundOut[]>(`${p(id)}/rounds`);
export const startRound = async (id: number): Promise<RoundOut> =>
  (await post<RoundOut>(`${p(id)}/rounds`, { trigger: "manual" })) as RoundOut;
export const rollback = async (id: number, modelVersionId: number): Promise<FlywheelOut> =>
  (await post<FlywheelOut>(`${p(id)}/rollback`, { model_version_id: modelVersionId })) as FlywheelOut;
/** A lead's override of the gate: the rejected candidate becomes active; the reason is kept. */
export const promoteRejected = async (id: number, modelVersionId: number, reason: string): Promise<FlywheelOut> =>
  (await post<FlywheelOut>(`${p(id)}/promote`, { model_version_id: modelVersionId, reason })) as FlywheelOut;
export const modelVersions = (id: number): Promise<ModelVersion[]> => get<ModelVersion[]>(`${p(id)}/model-versions`);

export const taxonomy = (id: number): Promise<TaxonomyTree> => get<TaxonomyTree>(`${p(id)}/taxonomy`);
export const taxonomyVersions = (id: number): Promise<TaxonomyVersionSummary[]> =>
  get<TaxonomyVersionSummary[]>(`${p(id)}/taxonomy/versions`);
export const uploadTaxonomy = async (id: number, yaml: string): Promise<TaxonomyTree> =>
  (await post<TaxonomyTree>(`${p(id)}/taxonomy`, { yaml })) as TaxonomyTree;

export const sources = (id: number): Promise<Source[]> => get<Source[]>(`${p(id)}/sources`);
export const addFolder = async (id: number, body: { name: string; path: string; licence: string; consent: string }) =>
  (await post<Source>(`${p(id)}/sources`, { kind: "folder", ...body })) as Source;
/** A URL list (CSV or parquet with a column of image URLs, as img2dataset takes it). */
export function addUrlList(
  id: number,
  file: File,
  body: { name: string; column: string; licence: string; consent: string },
): Promise<Source> {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [key, value] of Object.entries(body)) form.append(key, value);
  return postForm<Source>(`${p(id)}/sources/url-list`, form);
}
export const runSource = async (id: number, sourceId: number): Promise<IngestRun> =>
  (await post<IngestRun>(`${p(id)}/sources/${sourceId}/runs`, {})) as IngestRun;
export const watchSource = async (id: number, sourceId: number, everySeconds: number | null): Promise<Source> =>
  (await request<Source>("PUT", `${p(id)}/sources/${sourceId}/watch`, { body: { every_seconds: everySeconds } })) as Source;
export const ingestRuns = (id: number): Promise<IngestRun[]> => get<IngestRun[]>(`${p(id)}/ingest-runs`);
export const rejections = (id: number): Promise<Rejection[]> => get<Rejection[]>(`${p(id)}/rejections`);
export function uploadImages(id: number, files: FileList | File[]): Promise<IngestRun> {
  const form = new FormData();
  for (const file of Array.from(files)) form.append("files", file, file.name);
  return postForm<IngestRun>(`${p(id)}/uploads`, form);
}

export const exports = (id: number): Promise<ExportOut[]> => get<ExportOut[]>(`${p(id)}/exports`);
export const exportDetail = (id: number, exportId: number): Promise<ExportDetail> =>
  get<ExportDetail>(`${p(id)}/exports/${exportId}`);
export const createExport = async (id: number, body: ExportCreate): Promise<ExportDetail> =>
  (await post<ExportDetail>(`${p(id)}/exports`, body)) as ExportDetail;
export const exportFileUrl = (id: number, exportId: number, name: string): string =>
  `/api/v1${p(id)}/exports/${exportId}/files/${name.split("/").map(encodeURIComponent).join("/")}`;

export const members = (id: number): Promise<Member[]> => get<Member[]>(`${p(id)}/members`);
export const setMember = async (id: number, email: string, role: Role): Promise<Member> =>
  (await post<Member>(`${p(id)}/members`, { email, role })) as Member;
export const removeMember = (id: number, userId: number): Promise<void> => del(`${p(id)}/members/${userId}`);
export const invites = (id: number): Promise<Invite[]> => get<Invite[]>(`${p(id)}/invites`);
export const createInvite = async (
  id: number,
  body: { email: string; role: Role; expires_in_hours: number },
): Promise<InviteCreated> => (await post<InviteCreated>(`${p(id)}/invites`, body)) as InviteCreated;
export const revokeInvite = (id: number, inviteId: number): Promise<void> => del(`${p(id)}/invites/${inviteId}`);
export const deactivateUser = async (userId: number): Promise<void> => {
  await request("POST", `/users/${userId}/deactivate`, { body: {} });
};

export const invitePreview = (token: string): Promise<InvitePreview> =>
  get<InvitePreview>(`/auth/invites/${encodeURIComponent(token)}`);
export const acceptInvite = async (token: string, body: { display_name: string; password: string }): Promise<LoginOut> =>
  (await post<LoginOut>(`/auth/invites/${encodeURIComponent(token)}/accept`, body)) as LoginOut;
