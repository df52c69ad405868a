// The live caption preview: the server's caption of the draft answers, debounced, with the last
// answer shown meanwhile. Nothing waits on it: keys, answers and submits never depend on it.
import { useEffect, useRef, useState } from "react";
import * as api from "../../api/endpoints";
import type { Category, Value } from "../../api/types";
import { draftValues } from "./caption";
import type { Answers } from "./values";

export const PREVIEW_DEBOUNCE_MS = 250;

export interface CaptionPreview {
  text: string;
  /** The draft changed and the server's caption for it has not arrived yet. */
  pending: boolean;
  trimmed: boolean;
}

/**
 * The caption for the draft: `stored` (the assignment's caption) while nothing changed, else the
 * server's caption of the draft answers, fetched `PREVIEW_DEBOUNCE_MS` after the last change.
 * Answers that arrive out of order are dropped; a failed fetch keeps the last caption shown.
 */
export function useCaptionPreview(
  projectId: number,
  subjectId: number | null,
  stored: string,
  categories: Category[],
  answers: Answers,
  changed: boolean,
): CaptionPreview {
  const [preview, setPreview] = useState<CaptionPreview>({ text: stored, pending: false, trimmed: false });
  const sequence = useRef(0);
  const body = changed ? JSON.stringify(draftValues(categories, answers)) : null;

  useEffect(() => {
    const mine = ++sequence.current;
    if (subjectId === null || body === null) {
      setPreview({ text: stored, pending: false, trimmed: false });
      return;
    }
    setPreview((last) => ({ ...last, pending: true }));
    const timer = window.setTimeout(() => {
      api
        .captionPreview(projectId, subjectId, JSON.parse(body) as Record<string, Value>)
        .then((out) => {
          if (mine === sequence.current && out !== null) {
            setPreview({ text: out.caption, pending: false, trimmed: out.trimmed });
          }
        })
        .catch(() => {
          if (mine === sequence.current) setPreview((last) => ({ ...last, pending: false }));
        });
    }, PREVIEW_DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [projectId, subjectId, stored, body]);

  return preview;
}
