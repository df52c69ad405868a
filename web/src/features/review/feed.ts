// The assignments this page holds: the one shown and one leased ahead, so that the next one
// shows at once after a submit. Leases are kept alive by a heartbeat. On start the page takes
// back the leases it already holds (a reload); leaving the review screen gives them back;
// closing the tab leaves them to expire (the project's lease_seconds) or to be resumed.
import { ApiError } from "../../api/client";
import * as api from "../../api/endpoints";
import type { Assignment } from "../../api/types";

export interface Held {
  assignment: Assignment;
  /** When it was first shown (performance.now()), for the lead time; null while ahead. */
  shownAt: number | null;
  /** The heartbeat was refused: someone else may hold it now. */
  leaseLost: boolean;
}

export interface FeedState {
  current: Held | null;
  ahead: Held[];
  /** Nothing more is queued for this person right now (the server answered 204). */
  exhausted: boolean;
  loading: boolean;
  error: string | null;
}

export const HEARTBEAT_MS = 30_000;
const EMPTY_POLL_MS = 15_000;
const RETRY_MS = [1000, 2000, 5000, 10000];

export class Feed {
  private state: FeedState = { current: null, ahead: [], exhausted: false, loading: true, error: null };
  private readonly listeners = new Set<() => void>();
  private readonly images = new Map<number, HTMLImageElement>();
  private filling = false;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private disposed = false;

  /**
   * @param isBeingSaved an assignment whose submit is still in the outbox: if `next` hands it
   *   back (its lease is still ours until the submit lands), it is not shown twice.
   */
  constructor(
    private readonly projectId: number,
    private readonly isBeingSaved: (assignmentId: number) => boolean,
    private readonly ahead = 1,
  ) {}

  start(): void {
    this.disposed = false;
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    void this.resume().then(() => this.fill());
  }

  /** Takes back what this person already holds in the project (after a reload). */
  private async resume(): Promise<void> {
    let mine: Assignment[];
    try {
      mine = await api.myAssignments(this.projectId);
    } catch {
      return; // `next` answers with the same leases anyway
    }
    const usable = mine.filter((a) => !this.isBeingSaved(a.id) && !this.held().some((h) => h.assignment.id === a.id));
    if (this.disposed || usable.length === 0) return;
    usable.forEach((a) => this.preload(a));
    const [first, ...rest] = usable.map((assignment): Held => ({ assignment, shownAt: null, leaseLost: false }));
    if (this.state.current === null && first) {
      this.set({ current: { ...first, shownAt: performance.now() }, ahead: [...this.state.ahead, ...rest] });
    } else {
      this.set({ ahead: [...this.state.ahead, ...(first ? [first] : []), ...rest] });
    }
  }

  /** Gives back every lease this page holds and stops. */
  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.releaseAll();
    this.listeners.clear();
  }

  get snapshot(): FeedState {
    return this.state;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** The shown assignment is done (submitted or skipped): show the next one held ahead. */
  advance(): void {
    const [next, ...rest] = this.state.ahead;
    if (this.state.current) this.images.delete(this.state.current.assignment.id);
    this.set({ current: next ? { ...next, shownAt: performance.now() } : null, ahead: rest });
    void this.fill();
  }

  /** Shows an assignment again (undo); the one shown goes back to the front of the line. */
  showAgain(assignment: Assignment): void {
    const ahead = this.state.current ? [{ ...this.state.current, shownAt: null }, ...this.state.ahead] : this.state.ahead;
    this.preload(assignment);
    this.set({
      current: { assignment, shownAt: performance.now(), leaseLost: false },
      ahead: ahead.filter((h) => h.assignment.id !== assignment.id),
    });
  }

  /** Replaces the shown assignment's data (after a conflict, the server's current labels). */
  refreshCurrent(assignment: Assignment): void {
    if (this.state.current?.assignment.id !== assignment.id) return;
    this.set({ current: { ...this.state.current, assignment } });
  }

  /** Asks for more work now: after the queue was empty, or once a submit landed (a lease freed). */
  retry(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.set({ exhausted: false, error: null });
    void this.fill();
  }

  private held(): Held[] {
    return this.state.current ? [this.state.current, ...this.state.ahead] : this.state.ahead;
  }

  private async fill(): Promise<void> {
    if (this.filling || this.disposed) return;
    this.filling = true;
    try {
      while (!this.disposed && !this.state.exhausted && this.wantsMore()) {
        this.set({ loading: this.state.current === null });
        let assignment: Assignment | null;
        try {
          assignment = await api.nextAssignment(this.projectId);
        } catch (error) {
          this.failures += 1;
          const delay = RETRY_MS[Math.min(this.failures - 1, RETRY_MS.length - 1)] ?? 10000;
          this.set({ loading: false, error: error instanceof Error ? error.message : String(error) });
          if (!(error instanceof ApiError && error.status === 401)) this.later(delay);
          return;
        }
        this.failures = 0;
        if (this.disposed) {
          if (assignment) void api.release(assignment.id).catch(() => undefined);
          return;
        }
        if (assignment === null) {
          this.set({ exhausted: true, loading: false, error: null });
          this.later(EMPTY_POLL_MS, true);
          return;
        }
        const known = this.held().some((h) => h.assignment.id === assignment.id);
        if (known || this.isBeingSaved(assignment.id)) {
          // The server handed back a lease we already hold: there is nothing new for us yet.
          this.set({ loading: false, error: null });
          this.later(known ? EMPTY_POLL_MS : 1000, true);
          return;
        }
        this.preload(assignment);
        const held: Held = { assignment, shownAt: null, leaseLost: false };
        if (this.state.current === null) this.set({ current: { ...held, shownAt: performance.now() }, error: null });
        else this.set({ ahead: [...this.state.ahead, held], error: null });
      }
      this.set({ loading: false });
    } finally {
      this.filling = false;
    }
  }

  private wantsMore(): boolean {
    return this.state.current === null || this.state.ahead.length < this.ahead;
  }

  private later(delay: number, asExhausted = false): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (asExhausted) this.set({ exhausted: false });
      void this.fill();
    }, delay);
  }

  /** Starts downloading the image (and mask) so that it is in the cache when shown. */
  private preload(assignment: Assignment): void {
    if (this.images.has(assignment.id)) return;
    const image = new Image();
    image.decoding = "async";
    image.src = assignment.image.url;
    this.images.set(assignment.id, image);
    if (assignment.subject.parsing_mask_url) void fetch(assignment.subject.parsing_mask_url).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    for (const held of this.held()) {
      try {
        await api.heartbeat(held.assignment.id);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409)) continue;
        if (this.state.current?.assignment.id === held.assignment.id) {
          this.set({ current: { ...this.state.current, leaseLost: true } });
        } else {
          this.set({ ahead: this.state.ahead.filter((h) => h.assignment.id !== held.assignment.id) });
          void this.fill();
        }
      }
    }
  }

  private releaseAll(): void {
    for (const held of this.held()) {
      if (this.isBeingSaved(held.assignment.id)) continue;
      void api.release(held.assignment.id).catch(() => undefined);
    }
  }

  private set(patch: Partial<FeedState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }
}
