"""SIGKILL a worker in the middle of a prelabel batch, K times: every image ends with exactly one
prediction per model version (RELIABILITY.md, "Workers and faults").

The production topology for real: PostgreSQL, Redis, and a prefork Celery worker consuming both
queues, killed whole (parent and pool children) while work remains. A killed worker's reserved
and unacknowledged messages only come back from Redis after the visibility timeout, far past this
test: recovery is the reconciler's job, nudged here the way beat does it in production. What must
hold at the end: no image lost, and at-least-once delivery plus unique keys leave exactly one
prediction per (subject, category, model version) and one creation event per label.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from server.core import jobs, runtime
from tests.conftest import REDIS_URL, create_postgres_database, drop_postgres_database, migrate, unavailable
from tests.server.workers_harness import Worker, wait_for
from workers import contracts

IMAGES = 120
BATCH_SIZE = 10  # several prelabel batches, so that a kill lands while batches remain
KILLS = 3
KILL_PHASE_TIMEOUT = 120.0
RECOVERY_TIMEOUT = 180.0
STALL_SECONDS = 3.0  # no progress this long during the kill phase: nudge as beat would
QUEUES = ("cpu", "gpu")
# A prelabel batch: computed on the gpu queue, its result persisted on the cpu queue.
PRELABEL_TASKS = {contracts.PRELABEL, contracts.PERSIST_PREDICTIONS}
_RECEIVED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] received")
_FINISHED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] (?!received)")
_PERSIST = re.escape(contracts.PERSIST_PREDICTIONS)
_PERSISTED = re.compile(rf"Task {_PERSIST}\[[0-9a-f-]+\] succeeded in \S+: (\d+)")


def _redis_url() -> str:
    return REDIS_URL.rsplit("/", 1)[0] + "/13"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A fresh migrated Postgres database and a Redis db of this test's own, dropped after."""
    try:
        import redis

        broker = redis.Redis.from_url(_redis_url(), socket_connect_timeout=2)
        broker.flushdb()
    except Exception as exc:  # any failure to reach Redis
        unavailable("Redis", f"{_redis_url()}: {type(exc).__name__}")
    database_url = create_postgres_database()
    try:
        migrate(database_url)
        data_dir = tmp_path / "data"
        sources = tmp_path / "sources"
        sources.mkdir()
        values = {
            "AA_DATABASE_URL": database_url,
            "AA_BROKER_URL": _redis_url(),
            "AA_DATA_DIR": str(data_dir),
            "AA_SOURCE_ROOTS": f'["{sources}"]',
            "AA_JOBS_EAGER": "false",
            "AA_WORKER_HEARTBEAT_SECONDS": "1",
            "AA_ADMIN_PASSWORD": "",
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        runtime.reset()
        from server.worker import install_job_sender

        install_job_sender()
        yield {"database_url": database_url, "data_dir": data_dir, "sources": sources, "tmp": tmp_path}
    finally:
        jobs.configure(None)
        runtime.reset()
        drop_postgres_database(database_url)
        broker.flushdb()


def _scalar(sql: str, **params: Any) -> Any:
    with runtime.database().session_scope() as session:
        return session.execute(text(sql), params).scalar()


def _rows(sql: str, **params: Any) -> list[Any]:
    with runtime.database().session_scope() as session:
        return list(session.execute(text(sql), params))


def _stages(project_id: int) -> dict[str, int]:
    rows = _rows("SELECT stage, count(*) FROM images WHERE project_id = :p GROUP BY stage", p=project_id)
    return {str(stage): int(n) for stage, n in rows}


def _predictions() -> int:
    return int(_scalar("SELECT count(*) FROM predictions") or 0)


def _finished(project_id: int) -> bool:
    stages = _stages(project_id)
    return sum(stages.values()) == IMAGES and set(stages) <= {"prelabeled", "filtered"}


def _progress(project_id: int) -> tuple[Any, ...]:
    done = _scalar("SELECT coalesce(sum(items_done), 0) FROM ingest_runs")
    return (_predictions(), tuple(sorted(_stages(project_id).items())), done)


def _reconcile() -> Any:
    from server.core.config import ReconcilerSettings
    from server.operations.reconciler import reconcile

    with runtime.database().session_scope() as session:
        return reconcile(session, ReconcilerSettings(stuck_after_seconds=0))


def _has_heartbeat(name: str) -> bool:
    return bool(_scalar("SELECT count(*) FROM worker_heartbeats WHERE hostname LIKE :n", n=f"{name}@%"))


def _start_worker(incarnation: int, log_dir: Path, workers: list[Worker]) -> Worker:
    name = f"kill{incarnation}"
    worker = Worker(f"{name}@%h", QUEUES, log_dir / f"{name}.log")
    workers.append(worker)
    wait_for(
        lambda: _has_heartbeat(name), 60, f"worker {name} never sent a heartbeat", alive=worker.assert_alive
    )
    return worker


def _log_of(worker: Worker) -> str:
    try:
        return worker.log_path.read_text(errors="replace")
    except OSError:
        return ""


def _in_flight(worker: Worker) -> list[str]:
    """Tasks this worker received and has not finished (running, or reserved and unacknowledged)."""
    log = _log_of(worker)
    finished = {m.group(2) for m in _FINISHED.finditer(log)}
    return [name for name, task_id in _RECEIVED.findall(log) if task_id not in finished]


def _start_ingestion(sources: Path) -> int:
    from server.auth import service as auth
    from server.core.config import get_settings
    from server.demo.synthetic import generate_dataset
    from server.projects import service as projects
    from server.projects.schemas import PipelineSettings, ProjectSettings
    from server.sources import service as sources_service

    generate_dataset(sources / "people", IMAGES, seed=20240611)
    settings = ProjectSettings(pipeline=PipelineSettings(batch_size=BATCH_SIZE))
    with runtime.database().session_scope() as session:
        admin = auth.create_user(session, "lead@example.com", "a long password", is_admin=True)
        project = projects.create_project(session, admin, "Kill", settings=settings)
        source = sources_service.create_folder_source(
            session, project, "people", "people/images", get_settings().source_roots
        )
        sources_service.start_run(session, source)
        return int(project.id)


@pytest.mark.slow
def test_sigkilled_workers_leave_exactly_one_prediction_per_model_version(stack: dict[str, Any]) -> None:
    started = time.monotonic()
    log_dir = stack["tmp"]
    workers: list[Worker] = []
    kills: list[dict[str, Any]] = []
    nudges = 0
    try:
        worker = _start_worker(0, log_dir, workers)
        project_id = _start_ingestion(stack["sources"])

        # -- the kill phase, K times: once predictions grew since the last kill, work remains and
        # this worker holds a prelabel batch (computing it or persisting it), kill the whole group.
        last_kill_predictions = 0
        deadline = time.monotonic() + KILL_PHASE_TIMEOUT
        while len(kills) < KILLS:
            last = _progress(project_id)
            last_change = time.monotonic()
            while True:
                assert time.monotonic() < deadline, (
                    f"only {len(kills)} kills in {KILL_PHASE_TIMEOUT}s: {kills}"
                )
                worker.assert_alive()
                assert not _finished(project_id), (
                    f"the pipeline finished after {len(kills)} kills: make the work larger or slower"
                )
                predictions = _predictions()
                in_flight = [t for t in _in_flight(worker) if t in PRELABEL_TASKS]
                if predictions > last_kill_predictions and in_flight:
                    worker.kill()
                    break
                now = _progress(project_id)
                if now != last:
                    last, last_change = now, time.monotonic()
                elif time.monotonic() - last_change > STALL_SECONDS:
                    _reconcile()  # what beat does every minute in production
                    nudges += 1
                    last_change = time.monotonic()
                time.sleep(0.05)
            stages = _stages(project_id)
            kills.append(
                {
                    "predictions": predictions,
                    "remaining": IMAGES - stages.get("prelabeled", 0) - stages.get("filtered", 0),
                    "stages": stages,
                    # What the killed group held, read after the kill: nothing it held can finish now.
                    "lost": sorted(_in_flight(worker)),
                }
            )
            last_kill_predictions = _predictions()
            worker = _start_worker(len(kills), log_dir, workers)

        # -- recovery: the reconciler re-sends what the kills lost, until every image is done.
        recovery_started = time.monotonic()
        next_nudge = 0.0

        def recovered() -> bool:
            nonlocal next_nudge, nudges
            if _finished(project_id):
                return True
            if time.monotonic() >= next_nudge:
                _reconcile()
                nudges += 1
                next_nudge = time.monotonic() + 2.0
            return False

        wait_for(
            recovered,
            RECOVERY_TIMEOUT,
            f"not every image was prelabeled: {_stages(project_id)}",
            alive=worker.assert_alive,
            interval=0.25,
        )
        recovery_seconds = time.monotonic() - recovery_started
        # Let what is still queued (re-sends, late duplicates) run: it must change nothing.
        wait_for(
            lambda: _queued() == 0 and not _in_flight(worker),
            60,
            "the queues never drained",
            alive=worker.assert_alive,
        )
    except BaseException:
        if workers:
            print(f"\n--- {workers[-1].log_path} ---\n{workers[-1].tail(80)}")
        raise
    finally:
        for w in workers:
            w.stop()

    # -- every claim by SQL against the database.
    assert len(kills) == KILLS
    assert all(k["remaining"] > 0 for k in kills), kills
    assert all(PRELABEL_TASKS & set(k["lost"]) for k in kills), kills
    assert _stages(project_id) == {"prelabeled": IMAGES}, "an image was lost or filtered"
    ((status, added),) = _rows("SELECT status, added FROM ingest_runs")
    assert (status, added) == ("succeeded", IMAGES)
    duplicates = _rows(
        "SELECT subject_id, category_id, model_version_id, count(*) FROM predictions"
        " GROUP BY subject_id, category_id, model_version_id HAVING count(*) > 1"
    )
    assert duplicates == []
    predictions = _predictions()
    labels = int(_scalar("SELECT count(*) FROM labels"))
    assert predictions == labels > 0
    assert _scalar("SELECT count(DISTINCT subject_id) FROM predictions") == IMAGES
    assert _scalar("SELECT count(DISTINCT model_version_id) FROM predictions") == 1
    per_subject = _rows("SELECT DISTINCT count(*) FROM predictions GROUP BY subject_id")
    assert len(per_subject) == 1, f"subjects with differing prediction counts: {per_subject}"
    events_per_label = _rows(
        "SELECT l.id, count(e.id) FROM labels l"
        " LEFT JOIN label_events e ON e.label_id = l.id AND e.reason = 'prelabel'"
        " GROUP BY l.id HAVING count(e.id) <> 1"
    )
    assert events_per_label == [], f"labels without exactly one prelabel event: {events_per_label[:5]}"
    assert _scalar("SELECT count(*) FROM label_events") == labels
    assert (
        _rows('SELECT image_id FROM subjects WHERE "index" = 0 GROUP BY image_id HAVING count(*) > 1') == []
    )
    assert _scalar("SELECT count(*) FROM subjects") == IMAGES

    # Images whose predictions were persisted more than once: redelivery the unique keys absorbed.
    persisted = sum(int(n) for w in workers for n in _PERSISTED.findall(_log_of(w)))
    print(
        f"\nworker kills: {len(kills)}, each with work remaining ({[k['remaining'] for k in kills]} images) "
        f"and a prelabel batch in flight ({[sorted(PRELABEL_TASKS & set(k['lost'])) for k in kills]}); "
        f"images: {IMAGES} prelabeled; predictions: {predictions} = labels "
        f"({predictions // IMAGES} per image), "
        f"duplicates: {len(duplicates)}; image results persisted: {persisted} "
        f"({persisted - IMAGES} redundant, absorbed); reconciler passes: {nudges}; "
        f"recovery after the last restart: {recovery_seconds:.1f}s; total: {time.monotonic() - started:.1f}s"
    )


def _queued() -> int:
    import redis

    client = redis.Redis.from_url(_redis_url())
    try:
        return sum(int(client.llen(queue)) for queue in QUEUES)
    finally:
        client.close()
