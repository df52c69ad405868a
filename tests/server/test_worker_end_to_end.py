"""A real Celery worker process ingests and pre-labels a folder: Redis + Postgres (production)
and the filesystem broker + SQLite (the embedded default)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.core import runtime
from server.core.config import get_settings
from server.images import repository as images
from server.orm import WorkerHeartbeat
from tests.conftest import REDIS_URL, ROOT, unavailable


def _broker_for(database_url: str, data_dir: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"filesystem://{data_dir / 'broker'}"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except Exception as exc:  # any failure to reach Redis
        unavailable("Redis", f"{REDIS_URL}: {type(exc).__name__}")
    return REDIS_URL


@pytest.fixture
def worker(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    broker = _broker_for(env["database_url"], env["data_dir"])
    monkeypatch.setenv("AA_BROKER_URL", broker)
    monkeypatch.setenv("AA_JOBS_EAGER", "false")
    monkeypatch.setenv("AA_WORKER_HEARTBEAT_SECONDS", "1")
    runtime.reset()
    from server.worker import install_job_sender

    install_job_sender()
    log = open(env["data_dir"].parent / "worker.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "server.worker",
            "worker",
            "-Q",
            "cpu,gpu",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "-n",
            "e2e@%h",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: _heartbeats() > 0, 60, "the worker never sent a heartbeat", process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _heartbeats() -> int:
    with runtime.database().session_scope() as session:
        return session.query(WorkerHeartbeat).count()


def _wait(condition: Any, timeout: float, message: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the worker exited with {process.returncode}"
        time.sleep(0.3)
    raise AssertionError(message)


@pytest.mark.slow
def test_a_real_worker_ingests_and_prelabels_a_folder(env: dict[str, Any], worker: Any) -> None:
    from server.auth import service as auth
    from server.projects import service as projects
    from server.sources import service as sources

    folder = env["sources"] / "people"
    folder.mkdir()
    for n in range(40):
        Image.new("RGB", (320, 400), (n * 5, 100, 200 - n * 4)).save(folder / f"p{n:02d}.png")
    (folder / "bad.jpg").write_text("not an image")
    settings = get_settings()
    with runtime.database().session_scope() as session:
        admin = auth.create_user(session, "lead@example.com", "a long password", is_admin=True)
        project = projects.create_project(session, admin, "E2E")
        source = sources.create_folder_source(session, project, "people", "people", settings.source_roots)
        sources.start_run(session, source)
        project_id = project.id

    def ready() -> bool:
        with runtime.database().session_scope() as session:
            return images.stage_counts(session, project_id).get("prelabeled", 0) == 40

    _wait(ready, 120, "the images were never pre-labelled", worker)
    with runtime.database().session_scope() as session:
        from server.sources.repository import runs_of

        (run,) = runs_of(session, project_id, 10)
        assert (run.status, run.added, run.rejected) == ("succeeded", 40, 1)
