"""Fault drill: restart PostgreSQL under review load; no acknowledged submit is lost.

    .venv/bin/python bench/faults/postgres_restart.py --restarts 2 --annotators 8 --seconds 45

Its own stack (bench/faults/_stack.py): a throwaway PostgreSQL cluster and Redis server, the
API under uvicorn (2 processes) and a CPU worker. The queue is seeded as bench/review_api.py
does; simulated annotators (bench/faults/_review.py) claim and submit over HTTP, each submit
retried with the same client id after an error as the review UI's outbox does. During the load
the cluster is stopped `--mode immediate` (a crash: in-flight transactions die, recovery from
the WAL on start) or `fast`, kept down `--down-seconds`, and started again, R times.

Passes when every acknowledged (2xx) submit is stored exactly once with its label events, no
assignment was held by two people, the clients met the outage (errors seen) and submits were
acknowledged before the first restart and after the last. Figures to stderr; the last stdout
line is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults import _review as review  # noqa: E402
from bench.faults._stack import DrillError, Stack, emit, log  # noqa: E402


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    with Stack("postgres-restart", keep=args.keep) as stack:
        assert stack.postgres is not None
        postgres = stack.postgres
        setup, base, worker = review.serve(stack, args.subjects, args.annotators, args.categories, 0.0, 2)
        history = review.History()
        outages: list[tuple[float, float]] = []
        failures: list[str] = []

        def restarts() -> None:
            try:
                if not history.ready.wait(timeout=120):
                    raise DrillError("the annotators never logged in")
                for n in range(args.restarts):
                    at = args.seconds * (n + 1) / (args.restarts + 1)
                    time.sleep(max(0.0, history.started + at - time.monotonic()))
                    down_at = time.monotonic() - history.started
                    postgres.stop(args.mode)
                    time.sleep(args.down_seconds)
                    postgres.start()
                    outages.append((down_at, time.monotonic() - history.started))
                    log(f"postgres restarted ({args.mode}): down {down_at:.1f}-{outages[-1][1]:.1f} s")
            except Exception as exc:  # reported below: a restart that failed is no pass
                failures.append(f"{type(exc).__name__}: {exc}")

        restarter = threading.Thread(target=restarts, name="restarts", daemon=True)
        restarter.start()
        wall = review.load(
            base, setup.users, setup.project_id, args.seconds, args.think_ms / 1000, args.change, history
        )
        restarter.join(timeout=120)
        if failures or len(outages) != args.restarts:
            raise DrillError(f"the restarts did not all happen: {failures or outages}")
        worker.assert_alive()
        figures = review.check(stack.env["AA_DATABASE_URL"], setup.project_id, history)
        path = Path(args.history)
        history.write(path)
        acked_at = [e["t"] for e in history.entries if e.get("status") == 200 and "submit" in e["op"]]
        errors_during = sum(
            1
            for e in history.entries
            if (e.get("error") or e.get("status", 0) >= 500)
            and any(a - 1 <= e["t"] <= b + 30 for a, b in outages)
        )
        before = sum(1 for t in acked_at if t < outages[0][0])
        after = sum(1 for t in acked_at if t > outages[-1][1])
        statuses = sorted({str(e.get("status") or e.get("error", "")[:40]) for e in history.entries})
        log(f"statuses seen: {statuses}")
        log(f"figures: {figures}")
    landed = errors_during > 0 and before > 0 and after > 0
    if not landed:
        log("the fault did not land under load: no error met the outage, or no submit before/after it")
    ok = (
        landed
        and figures["lost"] == 0
        and figures["duplicated"] == 0
        and figures["collisions"] == 0
        and figures["silent_overwrites"] == 0
        and figures["label_version_mismatches"] == 0
        and history.out.retry_mismatches == 0
    )
    return {
        "drill": "postgres_restart",
        "restarts": len(outages),
        "mode": args.mode,
        "annotators": args.annotators,
        "seconds": args.seconds,
        **review.summary(history),
        "errors_during_outages": errors_during,
        "acknowledged_before": before,
        "acknowledged_after": after,
        "lost": figures["lost"],
        "duplicated": figures["duplicated"],
        "collisions": figures["collisions"],
        "silent_overwrites": figures["silent_overwrites"],
        "label_version_mismatches": figures["label_version_mismatches"],
        "load_s": round(wall, 1),
        "total_s": round(time.monotonic() - started, 1),
        "history": str(path),
        "passed": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--mode", choices=["immediate", "fast"], default="immediate")
    parser.add_argument("--down-seconds", type=float, default=3.0)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--think-ms", type=float, default=200.0)
    parser.add_argument("--change", type=float, default=0.2, help="share of values an annotator changes")
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=5)
    parser.add_argument("--history", default="/tmp/aa-fault-postgres-restart-history.jsonl")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    try:
        result = run(args)
    except DrillError as exc:
        log(f"DRILL FAILED: {exc}")
        result = {"drill": "postgres_restart", "restarts": None, "lost": None, "passed": False}
        result["error"] = str(exc)[:500]
    emit(result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
