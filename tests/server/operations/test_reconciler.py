"""Lost messages only delay work: the reconciler re-sends from database state, and re-sending
repeats nothing."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select

from server.core import jobs, runtime, tasknames
from server.core.config import ReconcilerSettings
from server.operations.reconciler import Resent, reconcile
from server.orm import Image, IngestItem, IngestRun
from server.orm.enums import ImageStage
from server.sources import tasks as source_tasks
from server.worker import _run_inline
from tests.server.conftest import Api

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NOW = ReconcilerSettings(stuck_after_seconds=0)
INGEST_TASKS = {tasknames.INGEST_SCAN, tasknames.INGEST_BATCH}


def _nothing(job: jobs.Job) -> bool:
    return False


def _named(*names: str) -> Callable[[jobs.Job], bool]:
    return lambda job: job.name in names


def _image_pipeline(job: jobs.Job) -> bool:
    """Every job after ingestion: the analysis of new images and whatever follows it."""
    return job.name not in INGEST_TASKS | {tasknames.RECONCILE}


def _resent_nothing(resent: Resent) -> bool:
    return not any(dataclasses.astuple(resent))


@dataclass
class Broker:
    """Runs jobs inline like the eager sender, except those it is told to lose."""

    lose: Callable[[jobs.Job], bool] = _nothing
    delivered: list[jobs.Job] = field(default_factory=list)
    lost: list[jobs.Job] = field(default_factory=list)

    def __call__(self, job: jobs.Job) -> None:
        if self.lose(job):
            self.lost.append(job)
            return
        self.delivered.append(job)
        _run_inline(job)


@pytest.fixture
def broker(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """Installed after the app started, whose lifespan installs the eager sender."""
    monkeypatch.setenv("AA_INGEST__BATCH_SIZE", "2")
    runtime.reset()
    recorder = Broker()
    jobs.configure(recorder)
    yield recorder
    jobs.configure(None)


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (300, 260), (seed * 40 % 256, 90, 200)).save(out, format="JPEG")
    return out.getvalue()


def _upload(admin: Api, project_id: int, count: int) -> int:
    files = [("files", (f"p{n}.jpg", _jpeg(n), "image/jpeg")) for n in range(count)]
    response = admin.post(f"/projects/{project_id}/uploads", files=files)
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _reconcile(settings: ReconcilerSettings = NOW) -> Resent:
    with runtime.database().session_scope() as session:
        return reconcile(session, settings)


def _run(run_id: int) -> IngestRun:
    with runtime.database().session_scope() as session:
        run = session.get(IngestRun, run_id)
        assert run is not None
        return run


def _images() -> tuple[int, int]:
    """(images stored, of which still pooled: waiting for an analysis)."""
    with runtime.database().session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Image))
        pooled = session.scalar(select(func.count()).where(Image.stage == ImageStage.pooled.value))
        return int(total or 0), int(pooled or 0)


def _items(run_id: int) -> list[tuple[str, int, bool]]:
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(IngestItem.name, IngestItem.batch, IngestItem.done)
            .where(IngestItem.run_id == run_id)
            .order_by(IngestItem.id)
        )
        return [(str(n), int(b), bool(d)) for n, b, d in rows]


def test_an_ingest_run_whose_batches_were_lost_is_finished_by_the_reconciler(
    broker: Broker, admin: Api, project: dict[str, Any]
) -> None:
    broker.lose = _named(tasknames.INGEST_BATCH)
    run_id = _upload(admin, project["id"], 5)
    assert [j.kwargs["batch"] for j in broker.lost] == [0, 1, 2]
    assert _run(run_id).status == "running"
    assert _images() == (0, 0)

    # Not stuck yet under the default timeout: nothing is re-sent early.
    assert _resent_nothing(_reconcile(ReconcilerSettings()))

    broker.lose = _nothing
    resent = _reconcile()
    assert (resent.scans, resent.batches) == (0, 3)
    run = _run(run_id)
    assert (run.status, run.items_done, run.added, run.duplicates, run.rejected) == ("succeeded", 5, 5, 0, 0)
    assert run.finished_at is not None
    assert _images() == (5, 0)

    delivered = len(broker.delivered)
    assert _resent_nothing(_reconcile())
    assert len(broker.delivered) == delivered
    assert _images() == (5, 0)
    assert _run(run_id).added == 5


def test_a_batch_delivered_twice_repeats_nothing(broker: Broker, admin: Api, project: dict[str, Any]) -> None:
    run_id = _upload(admin, project["id"], 3)
    assert _run(run_id).status == "succeeded"
    # A redelivery (the worker died after committing, before acknowledging) of every batch.
    batches = [j for j in broker.delivered if j.name == tasknames.INGEST_BATCH]
    assert len(batches) == 2
    for job in batches:
        _run_inline(job)
    run = _run(run_id)
    assert (run.items_done, run.added, run.duplicates) == (3, 3, 0)
    assert _images() == (3, 0)


def test_pooled_images_whose_analysis_was_lost_get_it_re_sent(
    broker: Broker, admin: Api, project: dict[str, Any]
) -> None:
    broker.lose = _image_pipeline
    run_id = _upload(admin, project["id"], 3)
    assert _run(run_id).status == "succeeded"
    assert broker.lost, "ingestion asked for no analysis"
    assert _images() == (3, 3)
    assert _resent_nothing(_reconcile(ReconcilerSettings()))

    broker.lose = _nothing
    resent = _reconcile()
    assert (resent.scans, resent.batches) == (0, 0)
    assert _images() == (3, 0)
    assert _resent_nothing(_reconcile())
    assert _images() == (3, 0)


def test_a_folder_run_whose_scan_was_lost_is_planned_and_finished_by_the_reconciler(
    env: dict[str, Any], broker: Broker, admin: Api, project: dict[str, Any]
) -> None:
    folder = env["sources"] / "shoot"
    folder.mkdir()
    for n in range(3):
        (folder / f"p{n}.jpg").write_bytes(_jpeg(n))
    source = admin.post(f"/projects/{project['id']}/sources", json={"name": "shoot", "path": "shoot"}).json()
    broker.lose = _named(tasknames.INGEST_SCAN)
    run_id = admin.post(f"/projects/{project['id']}/sources/{source['id']}/runs").json()["id"]
    assert _run(run_id).status == "queued"

    broker.lose = _nothing
    resent = _reconcile()
    assert (resent.scans, resent.batches) == (1, 0)
    run = _run(run_id)
    assert (run.status, run.items_total, run.added) == ("succeeded", 3, 3)
    assert _resent_nothing(_reconcile())
    assert len(_items(run_id)) == 3
    assert _images() == (3, 0)


def test_a_scan_re_sent_for_a_run_already_planned_creates_no_duplicate_items(
    env: dict[str, Any], broker: Broker, admin: Api, project: dict[str, Any]
) -> None:
    folder = env["sources"] / "shoot"
    folder.mkdir()
    for n in range(5):
        (folder / f"p{n}.jpg").write_bytes(_jpeg(n))
    source = admin.post(f"/projects/{project['id']}/sources", json={"name": "shoot", "path": "shoot"}).json()
    broker.lose = _named(tasknames.INGEST_BATCH)
    run_id = admin.post(f"/projects/{project['id']}/sources/{source['id']}/runs").json()["id"]
    planned = _items(run_id)
    assert [(b, d) for _, b, d in planned] == [(0, False), (0, False), (1, False), (1, False), (2, False)]
    assert _run(run_id).status == "running"

    # The scan message again (redelivered, or re-sent by hand): only the open batches go out.
    lost_before = len(broker.lost)
    source_tasks.scan.apply(kwargs={"run_id": run_id}, throw=True)
    assert _items(run_id) == planned
    assert sorted(j.kwargs["batch"] for j in broker.lost[lost_before:]) == [0, 1, 2]

    broker.lose = _nothing
    source_tasks.scan.apply(kwargs={"run_id": run_id}, throw=True)
    run = _run(run_id)
    assert (run.status, run.items_total, run.items_done, run.added) == ("succeeded", 5, 5, 5)
    assert [name for name, _, done in _items(run_id) if done] == [name for name, _, _ in planned]
    # A scan for a finished run does nothing at all.
    source_tasks.scan.apply(kwargs={"run_id": run_id}, throw=True)
    assert len(_items(run_id)) == 5
    assert _images() == (5, 0)


def test_a_cancelled_run_is_not_revived_by_the_reconciler(
    broker: Broker, admin: Api, project: dict[str, Any]
) -> None:
    broker.lose = _named(tasknames.INGEST_BATCH)
    run_id = _upload(admin, project["id"], 3)
    cancelled = admin.post(f"/projects/{project['id']}/ingest-runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    broker.lose = _nothing
    assert _resent_nothing(_reconcile())
    assert _run(run_id).status == "cancelled"
    assert _images() == (0, 0)
