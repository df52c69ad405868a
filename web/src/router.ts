// A small history router: three pages do not need a routing library.
import { useSyncExternalStore } from "react";

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener("popstate", listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("popstate", listener);
  };
}

export function navigate(path: string, { replace = false } = {}): void {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  for (const listener of listeners) listener();
}

/** The current path and query, re-rendering on navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, () => location.pathname + location.search);
  const url = new URL(href, location.origin);
  return { pathname: url.pathname, search: url.searchParams };
}

export type Route =
  | { page: "login"; next: string | null }
  | { page: "projects" }
  | { page: "review"; projectId: number }
  | { page: "dashboard"; projectId: number; section: string }
  | { page: "invite"; token: string }
  | { page: "not_found" };

export function match(pathname: string, search: URLSearchParams): Route {
  if (pathname === "/login") return { page: "login", next: safeNext(search.get("next")) };
  if (pathname === "/" || pathname === "") return { page: "projects" };
  const review = /^\/projects\/(\d+)\/review\/?$/.exec(pathname);
  if (review?.[1]) return { page: "review", projectId: Number(review[1]) };
  const dashboard = /^\/projects\/(\d+)\/dashboard(?:\/([a-z]+))?\/?$/.exec(pathname);
  if (dashboard?.[1]) return { page: "dashboard", projectId: Number(dashboard[1]), section: dashboard[2] ?? "funnel" };
  const invite = /^\/invite\/([A-Za-z0-9_-]+)$/.exec(pathname);
  if (invite?.[1]) return { page: "invite", token: invite[1] };
  return { page: "not_found" };
}

/** Only same-site paths, so a crafted link cannot send someone elsewhere after login. */
function safeNext(next: string | null): string | null {
  return next !== null && next.startsWith("/") && !next.startsWith("//") ? next : null;
}
