"""Watched sources: the beat ingests what is new in a folder, once, without anyone starting a run."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from server.core import jobs, runtime, tasknames
from server.core.time import utcnow
from server.orm import Image as ImageRow
from server.orm import IngestRun
from server.sources import watch
from tests.server.conftest import Api
from tests.server.prelabel.test_pipeline import Recorder


def _jpeg(path: Path, color: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 500), color).save(path, format="JPEG")


def _watched(admin: Api, project_id: int, folder: str, every: int | None = 60) -> dict[str, Any]:
    body = {"name": folder, "path": folder, "watch_every_seconds": every}
    response = admin.post(f"/projects/{project_id}/sources", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _beat(after_seconds: float = 0) -> list[int]:
    with runtime.database().session_scope() as session:
        return watch.start_due_runs(session, utcnow() + timedelta(seconds=after_seconds))


def _runs(admin: Api, project_id: int) -> list[dict[str, Any]]:
    return list(reversed(admin.get(f"/projects/{project_id}/ingest-runs").json()))


def _image_count() -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(ImageRow)) or 0)


def test_a_file_added_to_a_watched_folder_is_ingested_by_the_next_beat_and_only_it(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    folder = env["sources"] / "shoot"
    _jpeg(folder / "a.jpg", "red")
    _jpeg(folder / "b.jpg", "green")
    source = _watched(admin, pid, "shoot")
    assert source["watch_every_seconds"] == 60

    # The real beat task, as Celery beat sends it: the first run of a new watched source.
    from server.sources.tasks import watch_sources

    assert len(watch_sources.apply().get()) == 1
    (first,) = _runs(admin, pid)
    assert (first["trigger"], first["status"], first["added"]) == ("watch", "succeeded", 2)

    _jpeg(folder / "c.jpg", "blue")
    assert _beat() == []  # the interval has not passed since the last run finished
    (run_id,) = _beat(after_seconds=61)
    second = admin.get(f"/projects/{pid}/ingest-runs/{run_id}").json()
    # Only the new file was looked at: the others were remembered by path, size and mtime.
    assert (second["items_total"], second["added"], second["duplicates"]) == (1, 1, 0)

    (run_id,) = _beat(after_seconds=200)
    third = admin.get(f"/projects/{pid}/ingest-runs/{run_id}").json()
    assert (third["status"], third["items_total"], third["added"]) == ("succeeded", 0, 0)
    assert _image_count() == 3


def test_a_changed_file_is_read_again_and_an_unchanged_one_is_not(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    folder = env["sources"] / "shoot"
    _jpeg(folder / "a.jpg", "red")
    _jpeg(folder / "b.jpg", "green")
    _watched(admin, pid, "shoot")
    _beat()
    _jpeg(folder / "a.jpg", "yellow")
    stat = (folder / "a.jpg").stat()
    os.utime(folder / "a.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (run_id,) = _beat(after_seconds=61)
    run = admin.get(f"/projects/{pid}/ingest-runs/{run_id}").json()
    assert (run["items_total"], run["added"]) == (1, 1)
    assert _image_count() == 3


def test_a_manual_run_of_a_watched_folder_still_looks_at_every_file(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    _jpeg(env["sources"] / "shoot" / "a.jpg", "red")
    source = _watched(admin, pid, "shoot")
    _beat()
    manual = admin.post(f"/projects/{pid}/sources/{source['id']}/runs").json()
    manual = admin.get(f"/projects/{pid}/ingest-runs/{manual['id']}").json()
    assert (manual["trigger"], manual["items_total"], manual["duplicates"]) == ("manual", 1, 1)
    assert _image_count() == 1


def test_an_unwatched_source_is_left_alone(env: dict[str, Any], admin: Api, project: dict[str, Any]) -> None:
    pid = project["id"]
    _jpeg(env["sources"] / "quiet" / "a.jpg", "red")
    _jpeg(env["sources"] / "loud" / "a.jpg", "blue")
    _watched(admin, pid, "quiet", every=None)
    loud = _watched(admin, pid, "loud")
    assert len(_beat()) == 1
    # Watching stops when the lead says so.
    stopped = admin.put(f"/projects/{pid}/sources/{loud['id']}/watch", json={"every_seconds": None})
    assert stopped.status_code == 200 and stopped.json()["watch_every_seconds"] is None
    assert _beat(after_seconds=10**6) == []
    assert [r["source_id"] for r in _runs(admin, pid)] == [loud["id"]]


def test_a_run_in_progress_is_not_doubled_even_by_concurrent_beats(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    _jpeg(env["sources"] / "shoot" / "a.jpg", "red")
    _watched(admin, pid, "shoot")
    recorder = Recorder()  # the scan is never delivered: the run stays queued
    jobs.configure(recorder)
    started: list[list[int]] = []
    barrier = threading.Barrier(4)

    def beat() -> None:
        barrier.wait()
        started.append(_beat(after_seconds=10))

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(s) for s in started) == [0, 0, 0, 1]
    assert _beat(after_seconds=10**6) == []
    with runtime.database().session_scope() as session:
        (run,) = session.scalars(select(IngestRun))
        assert run.status == "queued"
    assert len(recorder.take(tasknames.INGEST_SCAN)) == 1


def test_a_lead_sets_the_watch_an_annotator_cannot_and_uploads_are_not_watched(
    env: dict[str, Any], admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    pid = project["id"]
    (env["sources"] / "shoot").mkdir()
    source = _watched(admin, pid, "shoot", every=None)
    lead = member_factory(pid, "lead", "lead@example.com")
    annotator = member_factory(pid, "annotator", "ann@example.com")
    path = f"/projects/{pid}/sources/{source['id']}/watch"
    assert annotator.put(path, json={"every_seconds": 600}).status_code == 403
    assert lead.put(path, json={"every_seconds": 10}).status_code == 422
    response = lead.put(path, json={"every_seconds": 600})
    assert response.status_code == 200 and response.json()["watch_every_seconds"] == 600
    listed = {s["id"]: s for s in admin.get(f"/projects/{pid}/sources").json()}
    assert listed[source["id"]]["watch_every_seconds"] == 600

    upload = admin.post(f"/projects/{pid}/uploads", files=[("files", ("a.jpg", b"x", "image/jpeg"))])
    refused = admin.put(
        f"/projects/{pid}/sources/{upload.json()['source_id']}/watch", json={"every_seconds": 60}
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "source_not_watchable")


def test_the_beat_schedules_watched_sources_and_due_rounds() -> None:
    """Flowing data: new files in, and (server.flywheel.service.due_rounds, tested in
    tests/server/flywheel/test_rounds.py) a round once `auto_round_after` verified subjects arrive."""
    from server.worker import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {tasknames.SOURCES_WATCH, tasknames.FLYWHEEL_DUE_ROUNDS} <= tasks
