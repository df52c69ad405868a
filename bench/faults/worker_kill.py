"""Fault drill: SIGKILL a Celery worker in the middle of a prelabel batch, K times; every image
must end with exactly one prediction per (subject, category, model version).

    .venv/bin/python bench/faults/worker_kill.py --kills 3 --images 120

Its own stack (bench/faults/_stack.py): a throwaway PostgreSQL cluster and Redis server, one
prefork worker consuming the cpu and gpu queues and beat running the reconciler every few
seconds, as production runs them. A kill takes the worker's whole process group (parent and pool
children) once predictions grew since the last kill, work remains and the worker holds a prelabel
batch (computing it or persisting it); a new worker is started after each kill. The messages the
killed worker held are not redelivered by Redis before the visibility timeout (far past the
drill): the reconciler re-sends from database state. A kill that cannot land (the pipeline
finished first) fails the drill instead of counting as a pass.

Figures go to stderr; the last stdout line is one JSON object:
{"kills", "images", "predictions", "duplicated", "missing", ...}; exit status 1 unless it passed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults import _pipeline as pipeline  # noqa: E402
from bench.faults._stack import DrillError, Stack, emit, log, wait_for  # noqa: E402

QUEUES = ("cpu", "gpu")
_PERSISTED = re.compile(r"Task cpu\.persist_predictions\[[0-9a-f-]+\] succeeded")


def run(kills: int, images: int, batch_size: int, timeout: float, keep: bool) -> dict[str, Any]:
    started = time.monotonic()
    prelabel = pipeline.prelabel_task_names()
    with Stack("worker-kill", keep=keep) as stack:
        assert stack.postgres is not None and stack.redis is not None
        stack.use_database(stack.postgres.create_database("drill"))
        stack.migrate()
        stack.beat()
        incarnation = 0
        worker = stack.worker(f"kill{incarnation}", QUEUES)
        stack.wait_heartbeat(f"kill{incarnation}", worker)
        project_id = pipeline.start_ingestion(stack.sources, images, batch_size)
        log(f"ingesting {images} images in batches of {batch_size}")

        record: list[dict[str, Any]] = []
        last_kill_predictions = 0
        deadline = time.monotonic() + timeout
        while len(record) < kills:
            while True:
                if time.monotonic() > deadline:
                    raise DrillError(f"only {len(record)} of {kills} kills landed in {timeout:.0f} s")
                worker.assert_alive()
                if pipeline.finished(project_id, images):
                    raise DrillError(
                        f"the pipeline finished after {len(record)} of {kills} kills: the fault could"
                        " not be created; use more --images or a smaller --batch-size"
                    )
                count = pipeline.predictions()
                holding = sorted(prelabel & set(worker.in_flight()))
                if count > last_kill_predictions and holding:
                    worker.kill()
                    break
                time.sleep(0.05)
            left = pipeline.remaining(project_id, images)
            # What the killed group held, read after the kill: none of it can finish now.
            lost = sorted(prelabel & set(worker.in_flight()))
            record.append({"predictions": count, "remaining": left, "held": lost})
            log(f"kill {len(record)}: {count} predictions, {left} images remaining, held {lost}")
            if left == 0 or not lost:
                raise DrillError(f"kill {len(record)} landed after the work was done: {record[-1]}")
            last_kill_predictions = pipeline.predictions()
            incarnation += 1
            worker = stack.worker(f"kill{incarnation}", QUEUES)
            stack.wait_heartbeat(f"kill{incarnation}", worker)

        recovery_started = time.monotonic()
        wait_for(
            lambda: pipeline.finished(project_id, images),
            timeout,
            f"not every image was prelabeled in {timeout:.0f} s: {pipeline.stages(project_id)}",
            alive=worker.assert_alive,
            interval=0.5,
        )
        recovery = time.monotonic() - recovery_started
        # Whatever is still queued (re-sends, late duplicates) must run and change nothing.
        wait_for(
            lambda: stack.redis.queued(QUEUES) == 0 and not worker.in_flight(),  # type: ignore[union-attr]
            120,
            "the queues never drained",
            alive=worker.assert_alive,
        )
        time.sleep(2)
        figures = pipeline.check(project_id, images)
        persisted = sum(len(_PERSISTED.findall(p.text())) for p in stack.processes)
    ok = pipeline.passed(figures)
    result = {
        "drill": "worker_kill",
        "kills": len(record),
        "images": images,
        "predictions": figures["predictions"],
        "duplicated": figures["duplicated"],
        "missing": figures["missing"],
        "predictions_per_subject": figures["per_subject"],
        "remaining_at_kills": [k["remaining"] for k in record],
        "persist_tasks_seen": persisted,
        "recovery_s": round(recovery, 1),
        "seconds": round(time.monotonic() - started, 1),
        "passed": ok,
    }
    log(f"checks: {figures}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per phase")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    try:
        result = run(args.kills, args.images, args.batch_size, args.timeout, args.keep)
    except DrillError as exc:
        log(f"DRILL FAILED: {exc}")
        result = {"drill": "worker_kill", "kills": None, "images": args.images, "predictions": None}
        result.update(duplicated=None, missing=None, passed=False, error=str(exc)[:500])
    emit(result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
