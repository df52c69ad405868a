// The one way the UI talks to the API: JSON, the session cookie, and the CSRF header on writes.
import type { ErrorBody } from "./types";

export const API = "/api/v1";
const CSRF_STORAGE_KEY = "aa.csrf";

/** The server answered with a status that is not 2xx. `body` is its `{error, detail}` when JSON. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.detail ?? body.error);
  }
  get code(): string {
    return this.body.error;
  }
  /** Worth retrying as is: the server or the path to it is having trouble, not the request. */
  get transient(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** No answer at all: offline, DNS, connection refused, aborted. Always worth retrying. */
export class NetworkError extends Error {}

let csrfToken: string | null = sessionStorage.getItem(CSRF_STORAGE_KEY);
const unauthorizedListeners = new Set<() => void>();

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
  if (token === null) sessionStorage.removeItem(CSRF_STORAGE_KEY);
  else sessionStorage.setItem(CSRF_STORAGE_KEY, token);
}

export function hasCsrfToken(): boolean {
  return csrfToken !== null;
}

/** Called on any 401: the session is gone, the app sends the person to /login. */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export interface RequestOptions {
  body?: unknown;
  keepalive?: boolean;
  signal?: AbortSignal;
}

async function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken !== null) headers["X-CSRF-Token"] = csrfToken;
  try {
    return await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      keepalive: options.keepalive,
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new NetworkError(error instanceof Error ? error.message : String(error));
  }
}

async function errorBody(response: Response): Promise<ErrorBody> {
  try {
    const body: unknown = await response.json();
    if (body !== null && typeof body === "object" && "error" in body) return body as ErrorBody;
  } catch {
    // not JSON: a proxy's error page, an empty body
  }
  return { error: `http_${response.status}`, detail: response.statusText || `HTTP ${response.status}` };
}

/** One request. Resolves to the JSON body, or null for 204; rejects with ApiError or NetworkError. */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T | null> {
  let response = await send(method, path, options);
  if (response.status === 403 && method !== "GET") {
    const body = await errorBody(response);
    if (body.error !== "csrf_failed") throw new ApiError(403, body);
    // The token in this tab is older than the session (another login): fetch it, try once more.
    await refreshCsrfToken();
    response = await send(method, path, options);
  }
  if (response.status === 401) {
    const body = await errorBody(response);
    for (const listener of unauthorizedListeners) listener();
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, await errorBody(response));
  if (response.status === 204) return null;
  return (await response.json()) as T;
}

export async function get<T>(path: string, options?: RequestOptions): Promise<T> {
  return (await request<T>("GET", path, options)) as T;
}

export async function post<T>(path: string, body: unknown = {}, options?: RequestOptions): Promise<T | null> {
  return request<T>("POST", path, { ...options, body });
}

export async function refreshCsrfToken(): Promise<void> {
  const response = await send("GET", "/auth/csrf", {});
  if (!response.ok) throw new ApiError(response.status, await errorBody(response));
  const body = (await response.json()) as { csrf_token: string };
  setCsrfToken(body.csrf_token);
}

export async function del(path: string): Promise<void> {
  await request("DELETE", path);
}

/** A multipart POST (file uploads): the browser sets the boundary; the CSRF header as on any write. */
export async function postForm<T>(path: string, form: FormData): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (csrfToken !== null) headers["X-CSRF-Token"] = csrfToken;
  let response: Response;
  try {
    response = await fetch(API + path, { method: "POST", headers, credentials: "same-origin", body: form });
  } catch (error) {
    throw new NetworkError(error instanceof Error ? error.message : String(error));
  }
  if (!response.ok) throw new ApiError(response.status, await errorBody(response));
  return (await response.json()) as T;
}
