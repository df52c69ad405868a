// Who is signed in, and the submit outbox that belongs to them.
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { ApiError, hasCsrfToken, onUnauthorized, refreshCsrfToken, setCsrfToken } from "./api/client";
import * as api from "./api/endpoints";
import type { Me, SubmitOut } from "./api/types";
import { Outbox, type OutboxState } from "./features/review/outbox";

type SessionState =
  | { status: "loading" }
  | { status: "anonymous" }
  | { status: "unreachable"; detail: string }
  | { status: "signed_in"; me: Me };

interface SessionValue {
  state: SessionState;
  signIn(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  retry(): void;
  outbox: Outbox | null;
}

const SessionContext = createContext<SessionValue | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<SessionState>({ status: "loading" });

  const load = useCallback(async () => {
    try {
      const me = await api.me();
      // After a reload the cookie is still there but the token in memory is not.
      if (!hasCsrfToken()) await refreshCsrfToken();
      setState({ status: "signed_in", me });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setCsrfToken(null);
        setState({ status: "anonymous" });
      } else {
        setState({ status: "unreachable", detail: error instanceof Error ? error.message : String(error) });
      }
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(
    () =>
      onUnauthorized(() => {
        setCsrfToken(null);
        setState((s) => (s.status === "anonymous" ? s : { status: "anonymous" }));
      }),
    [],
  );

  const userId = state.status === "signed_in" ? state.me.user.id : null;
  const [outbox, setOutbox] = useState<Outbox | null>(null);
  useEffect(() => {
    if (userId === null) {
      setOutbox(null);
      return;
    }
    const created = new Outbox(`aa.outbox.v1.user-${userId}`, async (entry) => {
      const out = await api.submit(entry.assignment_id, entry.body);
      return out as SubmitOut;
    });
    setOutbox(created);
    void created.pump(); // what an earlier page left unsent goes first
    return () => created.dispose();
  }, [userId]);

  const value = useMemo<SessionValue>(
    () => ({
      state,
      outbox,
      retry: () => {
        setState({ status: "loading" });
        void load();
      },
      signIn: async (email, password) => {
        await api.login(email, password);
        await load();
      },
      signOut: async () => {
        try {
          await api.logout();
        } finally {
          setState({ status: "anonymous" });
        }
      },
    }),
    [state, outbox, load],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (value === null) throw new Error("useSession outside SessionProvider");
  return value;
}

const EMPTY_OUTBOX: OutboxState = {
  entries: [],
  problems: [],
  sending: null,
  retryAt: null,
  lastError: null,
  paused: false,
};

export function useOutboxState(outbox: Outbox | null): OutboxState {
  return useSyncExternalStore(
    useCallback((listener: () => void) => (outbox ? outbox.subscribe(listener) : () => undefined), [outbox]),
    () => outbox?.snapshot ?? EMPTY_OUTBOX,
  );
}
