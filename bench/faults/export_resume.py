"""Fault drill: SIGKILL the worker writing an export's parts, resume the export, and compare
every file and the manifest, byte for byte, with the same export run without interruption.

    .venv/bin/python bench/faults/export_resume.py --samples 400 --shard-size 40

Its own stack (bench/faults/_stack.py): a throwaway PostgreSQL cluster and Redis server and a
CPU worker. The project is seeded as bench/export.py does (distinct JPEGs, verified labels), the
export is created (snapshot frozen), and then the database is cloned (`CREATE DATABASE ...
TEMPLATE`): the clone holds the very same export, ids and snapshot time, and is exported in this
process without interruption (`service.run_here`) as the reference. The original is exported by
the worker through the broker (plan -> parts -> finish); once a part is done and others remain,
the worker's process group is SIGKILLed while it writes a part's files (a `.tmp` seen; if none
is caught, while a part task is running, and the figures say so). Then: no manifest, no file
under its final name that differs from the reference (atomic writes), the export not `done`.
The export is resumed (`service.resume`, as `POST .../exports/{id}/resume` does), a new worker
finishes it, and the two folders must hold the same names with the same bytes.

Figures to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults._stack import DrillError, Stack, emit, log, rows, scalar, timed, wait_for  # noqa: E402


def _files(root: Path) -> dict[str, str]:
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _tmp_files(root: Path) -> list[str]:
    found = []
    for dirpath, _, names in os.walk(root):
        found += [str(Path(dirpath, n).relative_to(root)) for n in names if n.endswith(".tmp")]
    return found


def _create_export(project_id: int, fmt: str, shard_size: int, destination: Path) -> int:
    from server.core import runtime
    from server.exports import service
    from server.exports.schemas import ExportFilters, ExportOptions
    from server.orm import Project

    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        export = service.start_export(
            session,
            project,
            fmt=fmt,
            destination=str(destination),
            default_root=destination,
            filters=ExportFilters(),
            options=ExportOptions(shard_size=shard_size),
            user_id=None,
            send_jobs=False,
        )
        return int(export.id)


def _parts() -> dict[int, tuple[str, Any]]:
    return {int(i): (str(s), f) for i, s, f in rows("SELECT index, status, finished_at FROM export_parts")}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench import export as export_bench

    started = time.monotonic()
    with Stack("export-resume", keep=args.keep) as stack:
        assert stack.postgres is not None
        postgres = stack.postgres
        stack.use_database(postgres.create_database("drill"))
        with timed(f"seed {args.samples} samples"):
            project_id, _ = export_bench.seed(args.samples)
        postgres.execute(
            "ANALYZE", "drill"
        )  # fresh bulk-loaded tables: plan the export's reads on statistics
        interrupted, reference = stack.root / "interrupted", stack.root / "reference"
        export_id = _create_export(project_id, args.format, args.shard_size, interrupted)
        from server.core import jobs, runtime, tasknames
        from server.exports import service

        runtime.reset()  # no connection may stay on the template database
        stack.use_database(postgres.create_database("reference", template="drill"))
        scalar(
            "UPDATE exports SET destination = :d WHERE id = :i RETURNING id", d=str(reference), i=export_id
        )
        t0 = time.monotonic()
        service.run_here(runtime.database(), runtime.storage().get, export_id)
        log(f"reference export (uninterrupted, in process): {time.monotonic() - t0:.1f} s")
        if scalar("SELECT status FROM exports WHERE id = :i", i=export_id) != "done":
            raise DrillError("the reference export did not finish")
        expected = _files(reference)

        stack.use_database(postgres.url("drill"))
        from server.worker import install_job_sender

        install_job_sender()
        worker = stack.worker("export0", ("cpu",))
        stack.wait_heartbeat("export0", worker)
        with runtime.database().session_scope() as session:
            jobs.enqueue(session, tasknames.EXPORT_PLAN, export_id=export_id)

        # -- the kill: a part done, others left, and a part's file being written right now.
        tmp_seen: list[str] = []
        deadline = time.monotonic() + args.timeout
        writing_since: float | None = None
        while True:
            if time.monotonic() > deadline:
                raise DrillError(f"no kill landed in {args.timeout:.0f} s")
            worker.assert_alive()
            parts = _parts()
            done = sum(1 for s, _ in parts.values() if s == "done")
            if parts and done == len(parts):
                raise DrillError(
                    "every part finished before the kill: the fault could not be created;"
                    " use more --samples or a smaller --shard-size"
                )
            in_part = tasknames.EXPORT_PART in worker.in_flight()
            if done >= 1 and in_part:
                writing_since = writing_since or time.monotonic()
                tmp_seen = _tmp_files(interrupted)
                # A .tmp is the moment of writing; else, past a while, any running part will do.
                if tmp_seen or done >= len(parts) - 2 or time.monotonic() - writing_since > 5:
                    worker.kill()
                    break
            time.sleep(0.002)
        parts_at_kill = _parts()
        done_at_kill = sorted(i for i, (s, _) in parts_at_kill.items() if s == "done")
        after_kill = _files(interrupted)
        recorded = {
            n for (files,) in rows("SELECT files FROM export_parts WHERE status = 'done'") for n in files
        }
        # Files of parts that had not finished: the kill landed in the middle of writing a part.
        unfinished = sorted(n for n in after_kill if n not in recorded and not n.endswith(".tmp"))
        left_tmp = _tmp_files(interrupted)
        status_at_kill = scalar("SELECT status FROM exports WHERE id = :i", i=export_id)
        manifest_at_kill = (interrupted / "manifest.json").exists()
        # A file under its final name must be whole: the same bytes as the reference's.
        torn = sorted(n for n, h in after_kill.items() if not n.endswith(".tmp") and expected.get(n) != h)
        log(
            f"killed: parts done {len(done_at_kill)}/{len(parts_at_kill)}, .tmp at kill {tmp_seen[:3]}, "
            f"{len(after_kill)} files on disk ({len(left_tmp)} .tmp, {len(unfinished)} of unfinished parts), "
            f"manifest {manifest_at_kill}, "
            f"status {status_at_kill}, torn {torn[:5]}"
        )

        with runtime.database().session_scope() as session:
            service.resume(session, service.get_by_id(session, export_id))
        worker = stack.worker("export1", ("cpu",))
        resumed_at = time.monotonic()
        wait_for(
            lambda: scalar("SELECT status FROM exports WHERE id = :i", i=export_id) in ("done", "failed"),
            args.timeout,
            "the resumed export never finished",
            alive=worker.assert_alive,
            interval=0.5,
        )
        resume_s = time.monotonic() - resumed_at
        status = scalar("SELECT status FROM exports WHERE id = :i", i=export_id)
        error = scalar("SELECT error FROM exports WHERE id = :i", i=export_id)
        final_parts = _parts()
        kept = sum(1 for i in done_at_kill if final_parts[i][1] == parts_at_kill[i][1])
        actual = _files(interrupted)
    differing = sorted(n for n in expected.keys() | actual.keys() if expected.get(n) != actual.get(n))
    if differing:
        log(f"differing files: {differing[:10]}")
    manifest_identical = expected.get("manifest.json") is not None and (
        expected.get("manifest.json") == actual.get("manifest.json")
    )
    ok = (
        status == "done"
        and not manifest_at_kill
        and status_at_kill != "done"
        and not torn
        and not differing
        and manifest_identical
        and len(done_at_kill) < len(parts_at_kill)
    )
    return {
        "drill": "export_resume",
        "format": args.format,
        "samples": args.samples,
        "parts": len(parts_at_kill),
        "parts_done_at_kill": len(done_at_kill),
        "tmp_seen_before_kill": bool(tmp_seen),
        "tmp_left_at_kill": len(left_tmp),
        "unfinished_part_files_at_kill": len(unfinished),
        "files_at_kill": len(after_kill),
        "manifest_at_kill": manifest_at_kill,
        "torn_files_at_kill": len(torn),
        "parts_kept_on_resume": kept,
        "status": status,
        "error": error,
        "files": len(actual),
        "files_expected": len(expected),
        "differing_files": len(differing),
        "manifest_identical": manifest_identical,
        "resume_s": round(resume_s, 1),
        "total_s": round(time.monotonic() - started, 1),
        "passed": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--shard-size", type=int, default=40)
    parser.add_argument(
        "--format", choices=["cosmicman", "webdataset", "jsonl", "labelstudio"], default="cosmicman"
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    try:
        result = run(args)
    except DrillError as exc:
        log(f"DRILL FAILED: {exc}")
        result = {"drill": "export_resume", "differing_files": None, "passed": False, "error": str(exc)[:500]}
    emit(result)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
