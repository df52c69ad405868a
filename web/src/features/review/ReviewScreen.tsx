// The annotator's review screen: keyboard first, never waiting on the network.
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { ApiError } from "../../api/client";
import * as api from "../../api/endpoints";
import type { Assignment, Category, Project, QueueStats, SubmitOut, Value } from "../../api/types";
import { useOutboxState } from "../../session";
import { useCaptionPreview } from "./captionPreview";
import { HelpOverlay, ProblemDialog, SkipPrompt } from "./Dialogs";
import { EmptyQueue, KeyBar, type Notice, Progress } from "./Panels";
import { Feed } from "./feed";
import { Fields, toggle } from "./Fields";
import { ImageViewer, type ViewerControls } from "./ImageViewer";
import { type Action, actionFor, bindingsFor, eventKey, keyLabel } from "./keys";
import type { Outbox, OutboxEntry } from "./outbox";
import {
  type Answers,
  answersToSubmit,
  applicableCategories,
  changedCount,
  choicesOf,
  displayValue,
  filteredChoices,
  initialAnswers,
  LONG_LIST,
  missingAnswers,
} from "./values";

interface Submitted {
  clientId: string;
  assignment: Assignment;
  answers: Answers;
  out: SubmitOut | null;
}

type Overlay = "help" | "skip" | null;

const STATS_EVERY_MS = 30_000;

export function ReviewScreen({ project, outbox }: { project: Project; outbox: Outbox }) {
  const bindings = useMemo(() => bindingsFor(project.settings), [project.settings]);
  const outboxState = useOutboxState(outbox);
  const feed = useMemo(
    () => new Feed(project.id, (id) => outbox.snapshot.entries.some((e) => e.assignment_id === id)),
    [project.id, outbox],
  );
  useEffect(() => {
    feed.start();
    return () => feed.dispose();
  }, [feed]);
  const feedState = useSyncExternalStore(feed.subscribe, () => feed.snapshot);
  const current = feedState.current;
  const assignment = current?.assignment ?? null;

  const [drafts, setDrafts] = useState<Record<number, Answers>>({});
  const [focusedId, setFocusedId] = useState<number | null>(null);
  const [filter, setFilter] = useState("");
  const [overlay, setOverlay] = useState<Overlay>(null);
  const [skipReason, setSkipReason] = useState("");
  const [saved, setSaved] = useState(0);
  const [stats, setStats] = useState<QueueStats | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const history = useRef<Submitted[]>([]);
  const viewer = useRef<ViewerControls>(null);
  const textInput = useRef<HTMLInputElement>(null);

  const answers = useMemo<Answers>(
    () => (assignment ? (drafts[assignment.id] ?? initialAnswers(assignment.categories)) : {}),
    [assignment, drafts],
  );
  const asked = useMemo(() => (assignment ? applicableCategories(assignment.categories, answers) : []), [assignment, answers]);
  const focused = asked.find((c) => c.id === focusedId) ?? asked[0] ?? null;

  // A new assignment starts on its first question; a notice about the last one is stale.
  useEffect(() => {
    setFocusedId(null);
    setFilter("");
    setNotice((n) => (n?.tone === "error" && n.text.endsWith("has no answer yet.") ? null : n));
  }, [assignment?.id]);

  // Text questions take the keyboard when focused; anything else gives it back to the page.
  useEffect(() => {
    if (focused?.kind === "text") textInput.current?.focus();
    else if (document.activeElement instanceof HTMLInputElement && overlay === null) document.activeElement.blur();
  }, [focused?.id, focused?.kind, overlay]);

  const say = useCallback((text: string, tone: "info" | "error" = "info") => setNotice({ text, tone }), []);
  useEffect(() => {
    if (notice === null) return;
    const timer = setTimeout(() => setNotice(null), notice.tone === "error" ? 8000 : 3500);
    return () => clearTimeout(timer);
  }, [notice]);

  const refreshStats = useCallback(() => {
    api.queueStats(project.id).then(setStats, () => undefined);
  }, [project.id]);
  useEffect(() => {
    refreshStats();
    const timer = setInterval(refreshStats, STATS_EVERY_MS);
    return () => clearInterval(timer);
  }, [refreshStats]);

  useEffect(
    () =>
      outbox.onConfirmed((entry, out) => {
        const submitted = history.current.find((h) => h.clientId === entry.client_id);
        if (submitted) submitted.out = out;
        if (entry.project_id === project.id) setSaved((n) => n + 1);
        refreshStats();
        feed.retry(); // its lease is gone now, which may let the server lease one more ahead
      }),
    [outbox, project.id, refreshStats, feed],
  );

  const setAnswer = useCallback(
    (category: Category, value: Value) => {
      if (!assignment) return;
      setDrafts((all) => ({ ...all, [assignment.id]: { ...(all[assignment.id] ?? initialAnswers(assignment.categories)), [category.id]: value } }));
    },
    [assignment],
  );

  const moveFocus = useCallback(
    (step: number) => {
      if (asked.length === 0 || focused === null) return;
      const index = asked.findIndex((c) => c.id === focused.id);
      const next = asked[(index + step + asked.length) % asked.length];
      if (next) setFocusedId(next.id);
      setFilter("");
    },
    [asked, focused],
  );

  /** A pick on a one-answer question moves on to the next question. */
  const pick = useCallback(
    (category: Category, value: Value) => {
      setAnswer(category, toggle(category, answers[category.id] ?? null, value));
      setFilter("");
      if (category.kind === "single" || category.kind === "boolean") {
        const index = asked.findIndex((c) => c.id === category.id);
        const next = asked[index + 1];
        if (next) setFocusedId(next.id);
      }
    },
    [answers, asked, setAnswer],
  );

  const submit = useCallback(() => {
    if (!current || !assignment) return;
    if (current.leaseLost) {
      say("The lease on that image was lost, so it was not submitted; it went back to the queue.", "error");
      feed.advance();
      return;
    }
    const missing = missingAnswers(assignment.categories, answers);
    if (missing[0]) {
      setFocusedId(missing[0].id);
      say(`“${missing[0].question}” has no answer yet.`, "error");
      return;
    }
    const clientId = newClientId();
    const submitted = answersToSubmit(assignment.categories, answers);
    const byId = new Map(assignment.categories.map((c) => [c.id, c]));
    const entry: OutboxEntry = {
      client_id: clientId,
      assignment_id: assignment.id,
      project_id: assignment.project_id,
      body: {
        client_id: clientId,
        answers: submitted,
        lead_time_ms: Math.max(0, Math.round(performance.now() - (current.shownAt ?? performance.now()))),
      },
      queued_at: Date.now(),
      attempts: 0,
      summary: submitted.map((a) => {
        const category = byId.get(a.category_id) as Category;
        return {
          category_id: a.category_id,
          question: category.question,
          value: a.value,
          shown: displayValue(category, a.value),
          labels: Object.fromEntries(choicesOf(category).map((c) => [c.key, c.label])),
        };
      }),
    };
    outbox.enqueue(entry);
    history.current = [...history.current.slice(-19), { clientId, assignment, answers, out: null }];
    feed.advance();
  }, [current, assignment, answers, outbox, feed, say]);

  const undo = useCallback(async () => {
    const last = history.current.at(-1);
    if (!last) {
      say("Nothing to undo in this session.");
      return;
    }
    const withdrawn = outbox.withdraw(last.clientId);
    if (withdrawn) {
      history.current = history.current.slice(0, -1);
      setDrafts((all) => ({ ...all, [last.assignment.id]: last.answers }));
      feed.showAgain(last.assignment);
      say("Undone before it was sent.");
      return;
    }
    if (outbox.snapshot.sending === last.clientId) {
      say("Still saving that one; press undo again in a moment.");
      return;
    }
    if (last.out === null) {
      say("That submit was refused by the server; there is nothing to undo.", "error");
      history.current = history.current.slice(0, -1);
      return;
    }
    if (last.out.undo_until !== null && Date.parse(last.out.undo_until) < Date.now()) {
      say("Too late to undo that submit.", "error");
      return;
    }
    try {
      const again = await api.undo(last.assignment.id);
      history.current = history.current.slice(0, -1);
      setSaved((n) => Math.max(0, n - 1));
      if (again) {
        // The server put the labels back as they were; the person's answers are shown over
        // them (with the versions now current), ready to be corrected and submitted again.
        setDrafts((all) => ({ ...all, [again.id]: { ...initialAnswers(again.categories), ...last.answers } }));
        feed.showAgain(again);
      }
      refreshStats();
      say("Undone: the image is back, with your answers.");
    } catch (error) {
      say(error instanceof ApiError && error.code === "undo_window_closed" ? "Too late to undo that submit." : errorText(error), "error");
    }
  }, [outbox, feed, say, refreshStats]);

  const skip = useCallback(() => {
    const reason = skipReason.trim();
    if (!assignment || reason === "") return;
    setOverlay(null);
    setSkipReason("");
    const id = assignment.id;
    feed.advance();
    api.skip(id, reason).then(
      () => say(`Skipped: ${reason}`),
      (error: unknown) => say(`The skip was not recorded (${errorText(error)}); the image returns to the queue when its lease ends.`, "error"),
    );
  }, [assignment, skipReason, feed, say]);

  const problem = outboxState.problems[0] ?? null;

  const settleProblem = useCallback(
    async (reviewAgain: boolean) => {
      if (!problem) return;
      outbox.resolve(problem.entry.client_id);
      if (!reviewAgain || problem.error !== "stale_labels") return;
      try {
        const fresh = await api.assignment(problem.entry.assignment_id);
        const mine = Object.fromEntries(problem.entry.summary.map((row) => [row.category_id, row.value]));
        setDrafts((all) => ({ ...all, [fresh.id]: { ...initialAnswers(fresh.categories), ...mine } }));
        feed.showAgain(fresh);
        say("Your answers are shown over the stored values; Enter submits them against the new versions.");
      } catch (error) {
        say(`Could not open it again: ${errorText(error)}`, "error");
      }
    },
    [problem, outbox, feed, say],
  );

  // One keyboard handler for the whole screen, in the capture phase so that a focused button
  // never also acts on Enter. It reads the latest state through a ref.
  const onKey = useRef<(event: KeyboardEvent) => void>(() => undefined);
  onKey.current = (event: KeyboardEvent) => {
    if (event.isComposing) return;
    const key = eventKey(event);
    const handled = (): void => {
      event.preventDefault();
      event.stopPropagation();
    };

    if (problem) {
      if (key === "Enter") void settleProblem(true);
      else if (key === "Escape") void settleProblem(false);
      else return;
      return handled();
    }
    if (overlay === "skip") {
      if (key === "Enter") skip();
      else if (key === "Escape") setOverlay(null);
      else return;
      return handled();
    }
    if (overlay === "help") {
      if (key === "Escape" || bindings.help.includes(key)) setOverlay(null);
      return handled();
    }

    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    const action = actionFor(bindings, key);
    if (typing) {
      if (action === "submit" || action === "next_category" || action === "previous_category") {
        act(action);
        return handled();
      }
      if (key === "Escape") {
        (target as HTMLElement).blur();
        return handled();
      }
      return;
    }

    if (focused && focused.kind !== "text" && /^[0-9]$/.test(key)) {
      const index = key === "0" ? 9 : Number(key) - 1;
      const choice = filteredChoices(focused, filter)[index];
      if (choice) {
        pick(focused, choice.value);
        return handled();
      }
      if (key !== "0") return handled();
    }

    const long = focused !== null && focused.kind !== "text" && choicesOf(focused).length > LONG_LIST;
    if (long && event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey && /^[\p{L} ]$/u.test(event.key)) {
      if (event.key !== " " || filter !== "") setFilter((f) => f + event.key.toLowerCase());
      return handled();
    }
    if (key === "Backspace" && filter !== "") {
      setFilter((f) => f.slice(0, -1));
      return handled();
    }
    if (key === "Escape") {
      if (filter !== "") setFilter("");
      return handled();
    }
    if (focused?.kind === "text" && key === "Enter" && document.activeElement !== textInput.current) {
      textInput.current?.focus();
      return handled();
    }
    if (action === null) return;
    act(action);
    handled();
  };

  const act = (action: Action): void => {
    switch (action) {
      case "submit":
        return submit();
      case "skip":
        if (assignment) setOverlay("skip");
        return;
      case "undo":
        return void undo();
      case "help":
        return setOverlay("help");
      case "next_category":
        return moveFocus(1);
      case "previous_category":
        return moveFocus(-1);
      case "yes":
      case "no":
        if (focused?.kind === "boolean") pick(focused, action === "yes");
        return;
      case "zoom_in":
        return viewer.current?.zoomBy(1.25);
      case "zoom_out":
        return viewer.current?.zoomBy(0.8);
      case "zoom_reset":
        return viewer.current?.reset();
    }
  };

  useEffect(() => {
    const listener = (event: KeyboardEvent): void => onKey.current(event);
    window.addEventListener("keydown", listener, true);
    return () => window.removeEventListener("keydown", listener, true);
  }, []);

  const changed = assignment ? changedCount(asked, answers) : 0;
  const missing = assignment ? missingAnswers(assignment.categories, answers).length : 0;
  const preview = useCaptionPreview(
    project.id,
    assignment?.subject.id ?? null,
    assignment?.caption_preview ?? "",
    assignment?.categories ?? [],
    answers,
    changed > 0,
  );
  const caption = assignment ? preview.text : "";

  return (
    <div className="review" data-testid="review" data-missing={missing}>
      <div className="review__main">
        {assignment ? (
          <ImageViewer
            assignment={assignment}
            parsingIds={focused?.parsing_ids ?? null}
            regionName={focused?.region_name ?? null}
            controls={viewer}
          />
        ) : (
          <EmptyQueue state={feedState} onRetry={() => feed.retry()} />
        )}
      </div>

      <aside className="review__side">
        <Progress saved={saved} stats={stats} />

        {assignment && (
          <>
            <div className="meta">
              <span data-testid="assignment-id" data-assignment-id={assignment.id}>
                #{assignment.id}
              </span>
              <span className={`kind kind--${assignment.kind}`}>{assignment.kind}</span>
              <span>subject {assignment.subject.id}</span>
              <span>
                {asked.length} question{asked.length === 1 ? "" : "s"}
                {changed > 0 && <strong className="meta__changed"> · {changed} changed</strong>}
              </span>
              {feedState.ahead.length > 0 && <span className="muted">{feedState.ahead.length} ready ahead</span>}
            </div>
            {current?.leaseLost && (
              <div className="banner banner--error" data-testid="lease-lost">
                The lease on this image was lost (it went back to the queue). {keyLabel(bindings.submit[0] ?? "Enter")} moves on
                without submitting.
              </div>
            )}
            <div className="caption" data-testid="caption">
              <div className="caption__label">
                {changed === 0 ? "caption" : "caption with your changes (draft)"}
                {preview.pending && <span className="muted"> · updating</span>}
                {preview.trimmed && <span className="muted"> · trimmed to 77 CLIP tokens</span>}
              </div>
              <p className="caption__text">{caption || "—"}</p>
            </div>
            <Fields
              categories={asked}
              answers={answers}
              focusedId={focused?.id ?? null}
              filter={filter}
              textInput={textInput}
              onFocus={(id) => {
                setFocusedId(id);
                setFilter("");
              }}
              onAnswer={(category, value) => {
                setAnswer(category, value);
                if (category.kind !== "text") setFilter("");
              }}
            />
          </>
        )}
      </aside>

      <KeyBar bindings={bindings} notice={notice} />

      {overlay === "help" && <HelpOverlay bindings={bindings} />}
      {overlay === "skip" && <SkipPrompt reason={skipReason} onChange={setSkipReason} />}
      {problem && <ProblemDialog problem={problem} />}
    </div>
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** crypto.randomUUID needs a secure context; a plain-http LAN deployment still gets a v4 id. */
function newClientId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
