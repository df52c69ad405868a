"""Drill: N simulated annotators for T minutes with a recorded history and a checker:
0 lost, 0 duplicated, 0 silent overwrites, 0 assignment collisions.

    .venv/bin/python bench/faults/annotators.py --annotators 8 --minutes 1

Its own stack (bench/faults/_stack.py): a throwaway PostgreSQL cluster and Redis server, the API
under uvicorn (2 processes) and a CPU worker. The queue is seeded as bench/review_api.py does,
plus a second review assignment for `--shared` of the subjects, next to the first in queue
order, so two people write the same labels at nearly the same time. Annotators (see
bench/faults/_review.py) change `--change` of the pre-filled values, resolve a 409 by deciding
again on the current values, retry errors with the same client id, and resend every 20th
acknowledged submit as if its response was lost. Every request and response goes to
`--history` (JSON lines).

The checker reads the database against the history: every acknowledged submit stored exactly
once (lost, duplicated), every person's label write made on the version its writer saw (else a
silent overwrite), no assignment leased to or submitted by two people (collisions), and every
label's version equal to one plus its events. A run without a single 409 did not exercise the
overwrite check and fails. Figures to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults import _review as review  # noqa: E402
from bench.faults._stack import DrillError, Stack, emit, log  # noqa: E402


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    seconds = args.minutes * 60
    with Stack("annotators", keep=args.keep) as stack:
        setup, base, worker = review.serve(
            stack, args.subjects, args.annotators, args.categories, args.shared, 2
        )
        history = review.History()
        wall = review.load(
            base, setup.users, setup.project_id, seconds, args.think_ms / 1000, args.change, history
        )
        worker.assert_alive()
        figures = review.check(stack.env["AA_DATABASE_URL"], setup.project_id, history)
        path = Path(args.history)
        history.write(path)
        log(f"statuses: {dict(sorted(history.out.statuses.items()))}")
        log(f"figures: {figures}")
        if history.out.error_samples:
            log("errors (first 10):\n  " + "\n  ".join(history.out.error_samples))
    exercised = history.conflicts > 0 and len(history.acked) > 0
    if not exercised:
        log("no 409 was met: the overwrite check was not exercised (raise --shared or --annotators)")
    ok = (
        exercised
        and figures["lost"] == 0
        and figures["duplicated"] == 0
        and figures["silent_overwrites"] == 0
        and figures["collisions"] == 0
        and figures["label_version_mismatches"] == 0
        and history.out.retry_mismatches == 0
        and not history.unsaved
        and history.out.errors == 0
    )
    return {
        "drill": "annotators",
        "annotators": args.annotators,
        "minutes": args.minutes,
        **review.summary(history),
        "server_errors": history.out.errors,
        "submits_per_s": round(len(history.acked) / wall, 2),
        "lost": figures["lost"],
        "duplicated": figures["duplicated"],
        "silent_overwrites": figures["silent_overwrites"],
        "collisions": figures["collisions"],
        "served_to_two_people": figures["served_to_two_people"],
        "label_version_mismatches": figures["label_version_mismatches"],
        "writes_never_acknowledged": figures["writes_never_acknowledged"],
        "total_s": round(time.monotonic() - started, 1),
        "history": str(path),
        "passed": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--think-ms", type=float, default=300.0)
    parser.add_argument("--change", type=float, default=0.3, help="share of values an annotator changes")
    parser.add_argument("--shared", type=float, default=0.3, help="share of subjects with two assignments")
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=5)
    parser.add_argument("--history", default="/tmp/aa-fault-annotators-history.jsonl")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    try:
        result = run(args)
    except DrillError as exc:
        log(f"DRILL FAILED: {exc}")
        result = {"drill": "annotators", "lost": None, "passed": False, "error": str(exc)[:500]}
    emit(result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
