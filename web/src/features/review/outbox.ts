// The durable client queue of submits.
//
// A submit is written to localStorage before anything is sent, then sent in order, one at a time,
// until the server answers. Network failures, 5xx and 503 are retried with backoff (and at once
// when the browser comes back online); the server answers a retried client_id with the first
// answer, so a retry after a lost response is applied once. A 409 (stale labels, lost lease) or
// another 4xx is never retried blindly: the entry moves to `problems` for the person to decide.
// What is in `entries` is "unsaved"; only a 200 removes it.
import { ApiError, NetworkError } from "../../api/client";
import type { LabelState, SubmitIn, SubmitOut, Value } from "../../api/types";

export interface OutboxEntry {
  client_id: string;
  assignment_id: number;
  project_id: number;
  body: SubmitIn;
  queued_at: number;
  attempts: number;
  /** What the person saw, for showing a conflict without the assignment at hand. */
  summary: { category_id: number; question: string; shown: string; value: Value; labels: Record<string, string> }[];
}

export interface OutboxProblem {
  entry: OutboxEntry;
  status: number;
  error: string;
  detail: string;
  current: LabelState[];
}

export interface OutboxState {
  entries: OutboxEntry[];
  problems: OutboxProblem[];
  sending: string | null;
  /** When the next try is due after a failure (epoch ms), and why the last try failed. */
  retryAt: number | null;
  lastError: string | null;
  /** Paused: the session ended (401); resumes after the person signs in again. */
  paused: boolean;
}

export type Send = (entry: OutboxEntry) => Promise<SubmitOut>;

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

interface Stored {
  entries: OutboxEntry[];
  problems: OutboxProblem[];
}

export class Outbox {
  private state: OutboxState;
  private readonly listeners = new Set<(state: OutboxState) => void>();
  private readonly confirmedListeners = new Set<(entry: OutboxEntry, out: SubmitOut) => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pumping = false;
  private stopped = false;
  private durable = true;
  /** Failed tries in a row on this page: the backoff starts short again after a reload. */
  private failures = 0;

  constructor(
    private readonly storageKey: string,
    private readonly send: Send,
  ) {
    this.state = { entries: [], problems: [], sending: null, retryAt: null, lastError: null, paused: false };
    this.state = { ...this.state, ...this.read() };
    window.addEventListener("online", this.onOnline);
    window.addEventListener("storage", this.onStorage);
  }

  /** Stops timers and listeners; what is stored stays for the next page. */
  dispose(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("storage", this.onStorage);
    this.listeners.clear();
    this.confirmedListeners.clear();
  }

  get snapshot(): OutboxState {
    return this.state;
  }

  subscribe(listener: (state: OutboxState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onConfirmed(listener: (entry: OutboxEntry, out: SubmitOut) => void): () => void {
    this.confirmedListeners.add(listener);
    return () => this.confirmedListeners.delete(listener);
  }

  enqueue(entry: OutboxEntry): void {
    this.update((stored) => ({ ...stored, entries: [...stored.entries, entry] }));
    void this.pump();
  }

  /** Takes back an entry not yet sent (undo before it left). False when it is on its way. */
  withdraw(clientId: string): OutboxEntry | null {
    if (this.state.sending === clientId) return null;
    const entry = this.state.entries.find((e) => e.client_id === clientId) ?? null;
    if (entry !== null) this.update((s) => ({ ...s, entries: s.entries.filter((e) => e.client_id !== clientId) }));
    return entry;
  }

  /** The person decided about a problem: drop it, or send a new entry in its place. */
  resolve(clientId: string, replacement: OutboxEntry | null = null): void {
    this.update((s) => ({
      entries: replacement === null ? s.entries : [...s.entries, replacement],
      problems: s.problems.filter((p) => p.entry.client_id !== clientId),
    }));
    void this.pump();
  }

  pause(): void {
    this.set({ paused: true });
  }

  resume(): void {
    this.set({ paused: false });
    this.retryNow();
  }

  retryNow(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.set({ retryAt: null });
    void this.pump();
  }

  /** Sends the queue head until it is empty, a try fails, or the outbox is paused. */
  async pump(): Promise<void> {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      while (!this.stopped && !this.state.paused && this.state.retryAt === null) {
        const head = this.state.entries[0];
        if (head === undefined) break;
        this.set({ sending: head.client_id });
        const outcome = await this.attempt(head);
        this.set({ sending: null });
        if (outcome !== "sent") break;
      }
    } finally {
      this.pumping = false;
    }
  }

  private async attempt(entry: OutboxEntry): Promise<"sent" | "retry" | "stop"> {
    try {
      const out = await this.send(entry);
      this.update((s) => ({ ...s, entries: s.entries.filter((e) => e.client_id !== entry.client_id) }));
      this.failures = 0;
      this.set({ lastError: null });
      for (const listener of this.confirmedListeners) listener(entry, out);
      return "sent";
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.set({ paused: true, lastError: "signed out" });
        return "stop";
      }
      if (error instanceof NetworkError || (error instanceof ApiError && error.transient)) {
        this.scheduleRetry(entry, error instanceof ApiError ? `server error ${error.status}` : "offline");
        return "retry";
      }
      const api = error instanceof ApiError ? error : null;
      const problem: OutboxProblem = {
        entry,
        status: api?.status ?? 0,
        error: api?.code ?? "client_error",
        detail: api?.message ?? String(error),
        current: api?.body.current ?? [],
      };
      this.update((s) => ({
        entries: s.entries.filter((e) => e.client_id !== entry.client_id),
        problems: [...s.problems, problem],
      }));
      return "sent"; // the next entries do not wait for the person's decision on this one
    }
  }

  private scheduleRetry(entry: OutboxEntry, reason: string): void {
    const attempts = entry.attempts + 1;
    this.update((s) => ({
      ...s,
      entries: s.entries.map((e) => (e.client_id === entry.client_id ? { ...e, attempts } : e)),
    }));
    this.failures += 1;
    const base = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)] ?? 15000;
    const delay = base * (0.75 + Math.random() * 0.5);
    this.set({ retryAt: Date.now() + delay, lastError: reason });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.set({ retryAt: null });
      void this.pump();
    }, delay);
  }

  private readonly onOnline = (): void => this.retryNow();

  /** Another tab changed the queue: take its version (its sends are idempotent by client_id). */
  private readonly onStorage = (event: StorageEvent): void => {
    if (event.key !== this.storageKey) return;
    this.set(this.read());
    void this.pump();
  };

  private read(): Stored {
    if (!this.durable) return { entries: this.state.entries, problems: this.state.problems };
    try {
      const raw = localStorage.getItem(this.storageKey);
      if (raw === null) return { entries: [], problems: [] };
      const parsed = JSON.parse(raw) as Partial<Stored>;
      return { entries: parsed.entries ?? [], problems: parsed.problems ?? [] };
    } catch {
      return { entries: [], problems: [] };
    }
  }

  /** Read-modify-write against storage, so that two tabs never drop each other's entries. */
  private update(change: (stored: Stored) => Stored): void {
    const next = change(this.read());
    if (this.durable) {
      try {
        localStorage.setItem(this.storageKey, JSON.stringify(next));
      } catch {
        // Storage full or refused: keep going in memory, and say so.
        this.durable = false;
      }
    }
    this.set({ ...next, lastError: this.durable ? this.state.lastError : "not stored on this device" });
  }

  private set(patch: Partial<OutboxState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
  }
}
