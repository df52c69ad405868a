// The routes the UI calls, typed. Paths are relative to /api/v1.
import { get, post, setCsrfToken } from "./client";
import type { Assignment, CaptionOut, LoginOut, Me, Project, QueueStats, SubmitIn, SubmitOut, Value } from "./types";

export async function login(email: string, password: string): Promise<LoginOut> {
  const out = (await post<LoginOut>("/auth/login", { email, password })) as LoginOut;
  setCsrfToken(out.csrf_token);
  return out;
}

export async function logout(): Promise<void> {
  try {
    await post("/auth/logout");
  } finally {
    setCsrfToken(null);
  }
}

export const me = (): Promise<Me> => get<Me>("/auth/me");
export const projects = (): Promise<Project[]> => get<Project[]>("/projects");
export const project = (id: number): Promise<Project> => get<Project>(`/projects/${id}`);
export const queueStats = (projectId: number): Promise<QueueStats> =>
  get<QueueStats>(`/projects/${projectId}/assignments/stats`);

/** The next assignment leased to this user, or null when nothing is queued for them (204). */
export const nextAssignment = (projectId: number): Promise<Assignment | null> =>
  post<Assignment>(`/projects/${projectId}/assignments/next`, {});

/** The assignments leased to this user now, to resume after a reload. */
export const myAssignments = (projectId: number): Promise<Assignment[]> =>
  get<Assignment[]>(`/projects/${projectId}/assignments/mine`);

export const assignment = (id: number): Promise<Assignment> => get<Assignment>(`/assignments/${id}`);

export const heartbeat = (id: number): Promise<{ lease_expires_at: string } | null> =>
  post<{ lease_expires_at: string }>(`/assignments/${id}/heartbeat`, {});

export async function release(id: number): Promise<void> {
  await post(`/assignments/${id}/release`, {});
}

export async function skip(id: number, reason: string): Promise<void> {
  await post(`/assignments/${id}/skip`, { reason });
}

export const submit = (id: number, body: SubmitIn): Promise<SubmitOut | null> =>
  post<SubmitOut>(`/assignments/${id}/submit`, body);

export const undo = (id: number): Promise<Assignment | null> => post<Assignment>(`/assignments/${id}/undo`, {});

/** The caption that draft answers would give (composed and trimmed by the server; stores nothing). */
export const captionPreview = (
  projectId: number,
  subjectId: number,
  values: Record<string, Value>,
): Promise<CaptionOut | null> =>
  post<CaptionOut>(`/projects/${projectId}/subjects/${subjectId}/caption/preview`, { values });
