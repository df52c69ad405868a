"""Fault drill: kill the broker (Redis, no persistence) during pre-labelling and start it again,
R times: nothing lost, nothing duplicated.

    .venv/bin/python bench/faults/broker_restart.py --restarts 2 --images 120 --down-seconds 5

Its own stack (bench/faults/_stack.py): a throwaway PostgreSQL cluster and Redis server, one
prefork worker (cpu and gpu queues) and beat running the reconciler every few seconds. Once
predictions are being written and work remains, Redis is SIGKILLed with every message it held
(queued batches, results on their way to be persisted, unacknowledged deliveries), kept down for
`--down-seconds` while the worker and beat keep running, then started empty on the same port.
The worker must reconnect by itself and the reconciler must re-send from database state; at the
end every image has exactly one prediction per (subject, category, model version). A restart
that cannot land while work remains fails the drill.

Figures go to stderr; the last stdout line is one JSON object:
{"restarts", "images", "predictions", "duplicated", "missing", "messages_lost", ...}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults import _pipeline as pipeline  # noqa: E402
from bench.faults._stack import DrillError, Stack, emit, log, wait_for  # noqa: E402

QUEUES = ("cpu", "gpu")


def run(
    restarts: int, images: int, batch_size: int, down: float, timeout: float, keep: bool
) -> dict[str, Any]:
    started = time.monotonic()
    with Stack("broker-restart", keep=keep) as stack:
        assert stack.postgres is not None and stack.redis is not None
        redis = stack.redis
        stack.use_database(stack.postgres.create_database("drill"))
        stack.migrate()
        beat = stack.beat()
        worker = stack.worker("broker0", QUEUES)
        stack.wait_heartbeat("broker0", worker)
        project_id = pipeline.start_ingestion(stack.sources, images, batch_size)
        log(f"ingesting {images} images in batches of {batch_size}")

        record: list[dict[str, Any]] = []
        last = 0
        deadline = time.monotonic() + timeout
        while len(record) < restarts:
            wait_for(
                lambda last=last: pipeline.predictions() > last or pipeline.finished(project_id, images),
                max(1.0, deadline - time.monotonic()),
                f"only {len(record)} of {restarts} broker restarts landed in {timeout:.0f} s",
                alive=worker.assert_alive,
                interval=0.1,
            )
            left = pipeline.remaining(project_id, images)
            if left == 0:
                raise DrillError(
                    f"the pipeline finished after {len(record)} of {restarts} restarts: the fault could"
                    " not be created; use more --images or a smaller --batch-size"
                )
            queued = redis.queued(QUEUES)
            held = worker.in_flight()
            redis.stop()
            count = pipeline.predictions()
            log(f"broker killed: {queued} queued messages, worker held {held}, {left} images remaining")
            time.sleep(down)
            for process in (worker, beat):
                process.assert_alive()
            redis.start()
            record.append({"remaining": left, "queued": queued, "held": len(held), "predictions": count})
            if queued + len(held) == 0:
                raise DrillError(f"restart {len(record)}: the broker held no message when it died")
            last = pipeline.predictions()
            log(f"broker back after {down:.0f} s; {last} predictions")

        recovery_started = time.monotonic()
        wait_for(
            lambda: pipeline.finished(project_id, images),
            timeout,
            f"not every image was prelabeled in {timeout:.0f} s after the broker came back: "
            f"{pipeline.stages(project_id)}",
            alive=worker.assert_alive,
            interval=0.5,
        )
        recovery = time.monotonic() - recovery_started
        wait_for(
            lambda: redis.queued(QUEUES) == 0 and not worker.in_flight(),
            120,
            "the queues never drained",
            alive=worker.assert_alive,
        )
        time.sleep(2)
        figures = pipeline.check(project_id, images)
        reconnects = worker.text().count("Connected to redis://")
    ok = pipeline.passed(figures)
    log(f"checks: {figures}")
    return {
        "drill": "broker_restart",
        "restarts": len(record),
        "images": images,
        "predictions": figures["predictions"],
        "duplicated": figures["duplicated"],
        "missing": figures["missing"],
        "messages_lost": sum(r["queued"] + r["held"] for r in record),
        "remaining_at_restarts": [r["remaining"] for r in record],
        "worker_connections": reconnects,
        "down_s": down,
        "recovery_s": round(recovery, 1),
        "seconds": round(time.monotonic() - started, 1),
        "passed": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--down-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per phase")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    try:
        result = run(args.restarts, args.images, args.batch_size, args.down_seconds, args.timeout, args.keep)
    except DrillError as exc:
        log(f"DRILL FAILED: {exc}")
        result = {"drill": "broker_restart", "restarts": None, "images": args.images, "predictions": None}
        result.update(duplicated=None, missing=None, passed=False, error=str(exc)[:500])
    emit(result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
