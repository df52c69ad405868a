from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import distinct, func, select

from server.core import runtime
from server.orm import Assignment, Image, IngestRejection, Label, Subject
from server.orm.exports import Export, SnapshotSubject
from tests.server.conftest import Api
from tests.server.exports.conftest import review_next, upload


def _jpeg(path: Path, size: tuple[int, int], color: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, color).save(path, format="JPEG")


@pytest.fixture
def worked(env: dict[str, Any], admin: Api, project: dict[str, Any]) -> dict[str, Any]:
    """Two sources (a folder with a bad file and a small image, and uploads), two subjects
    reviewed, one export written."""
    pid = project["id"]
    settings = admin.get(f"/projects/{pid}").json()["settings"]
    settings["review"]["gold_share"] = 0
    assert admin.put(f"/projects/{pid}/settings", json=settings).status_code == 200
    folder = env["sources"] / "mixed"
    _jpeg(folder / "a.jpg", (400, 500), "red")
    _jpeg(folder / "b.jpg", (400, 500), "green")
    _jpeg(folder / "tiny.jpg", (100, 120), "blue")
    (folder / "notes.jpg").write_text("this is text, not a picture")
    source = admin.post(f"/projects/{pid}/sources", json={"name": "mixed", "path": "mixed"})
    assert source.status_code == 201, source.text
    assert admin.post(f"/projects/{pid}/sources/{source.json()['id']}/runs").status_code == 202
    upload(admin, pid, 3)
    reviewed = [review_next(admin, pid)["subject"]["id"] for _ in range(2)]
    export = admin.post(f"/projects/{pid}/exports", json={"format": "jsonl"})
    assert export.status_code == 202, export.text
    assert admin.get(f"/projects/{pid}/exports/{export.json()['id']}").json()["status"] == "done"
    return {"project_id": pid, "folder_source": source.json()["id"], "reviewed": reviewed}


def _scalar(query: Any) -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(query) or 0)


def _subjects_of(source_id: int | None) -> Any:
    query = select(Subject.id).join(Image, Image.id == Subject.image_id)
    return query.where(Image.source_id == source_id)


def _stages_in_db(project_id: int, source_id: int) -> dict[str, int]:
    """The funnel of one source counted straight from the tables."""
    subjects = _subjects_of(source_id)
    return {
        "ingested": _scalar(
            select(func.count()).where(Image.project_id == project_id, Image.source_id == source_id)
        ),
        "prelabeled": _scalar(
            select(func.count()).where(Image.source_id == source_id, Image.stage == "prelabeled")
        ),
        "routed": _scalar(
            select(func.count(distinct(Assignment.subject_id))).where(
                Assignment.kind == "review", Assignment.subject_id.in_(subjects)
            )
        ),
        "verified": _scalar(
            select(func.count(distinct(Label.subject_id))).where(
                Label.state.in_(["verified", "gold"]), Label.subject_id.in_(subjects)
            )
        ),
        "exported": _scalar(
            select(func.count(distinct(SnapshotSubject.subject_id)))
            .join(Export, Export.snapshot_id == SnapshotSubject.snapshot_id)
            .where(Export.status == "done", SnapshotSubject.subject_id.in_(subjects))
        ),
    }


def test_funnel_counts_per_source_equal_what_the_database_holds(admin: Api, worked: dict[str, Any]) -> None:
    pid = worked["project_id"]
    body = admin.get(f"/projects/{pid}/dashboard/funnel")
    assert body.status_code == 200, body.text
    funnel = body.json()
    per_source = {s["source_id"]: s for s in funnel["sources"]}
    assert set(per_source) == set(
        _scalar_list(select(Image.source_id).where(Image.project_id == pid).distinct())
    )
    totals: dict[str, int] = {}
    for source_id, entry in per_source.items():
        stages = {s["key"]: s["count"] for s in entry["funnel"]["stages"]}
        assert stages == _stages_in_db(pid, source_id)
        for key, n in stages.items():
            totals[key] = totals.get(key, 0) + n
    project_stages = {s["key"]: s["count"] for s in funnel["project"]["stages"]}
    assert project_stages == totals
    # What was built: 3 uploads + 3 folder images (one too small), 2 reviewed, both exported.
    assert project_stages == {"ingested": 6, "prelabeled": 5, "routed": 5, "verified": 2, "exported": 2}
    rates = {s["key"]: s["rate"] for s in funnel["project"]["stages"]}
    assert rates["ingested"] is None and rates["prelabeled"] == pytest.approx(5 / 6)
    assert rates["verified"] == pytest.approx(2 / 5) and rates["exported"] == pytest.approx(1.0)
    folder = per_source[worked["folder_source"]]["funnel"]
    assert folder["filtered_by_reason"] == {"min_resolution": 1} and folder["filtered"] == 1
    assert folder["rejected_by_reason"] == {"not_an_image": 1}
    assert funnel["project"]["rejected_at_ingest"] == _scalar(
        select(func.count()).where(IngestRejection.project_id == pid)
    )


def _scalar_list(query: Any) -> list[Any]:
    with runtime.database().session_scope() as session:
        return list(session.scalars(query))


def test_work_replays_queue_depth_and_counts_submits_per_hour(admin: Api, worked: dict[str, Any]) -> None:
    pid = worked["project_id"]
    work = admin.get(f"/projects/{pid}/dashboard/work", params={"hours": 6}).json()
    assert len(work["hours"]) == 6
    for kind, series in work["queue_depth"].items():
        assert len(series) == 6
        still_open = _scalar(
            select(func.count()).where(
                Assignment.project_id == pid,
                Assignment.kind == kind,
                Assignment.status.in_(["queued", "leased"]),
            )
        )
        assert series[-1] == work["open_now"][kind] == still_open
    assert work["queue_depth"]["review"][-1] == 3
    submitted = _scalar(
        select(func.count()).where(Assignment.project_id == pid, Assignment.status == "submitted")
    )
    per_hour = sum(sum(series) for series in work["throughput"].values())
    assert per_hour == submitted == work["submitted_total"] == 2
    assert admin.get(f"/projects/{pid}/dashboard/work", params={"hours": 100_000}).status_code == 422


def test_annotators_table_counts_each_persons_submits_and_lead_time(
    admin: Api, worked: dict[str, Any], member_factory: Any
) -> None:
    pid = worked["project_id"]
    annotator = member_factory(pid, "annotator", "ann@example.com")
    review_next(annotator, pid)
    rows = {r["email"]: r for r in admin.get(f"/projects/{pid}/dashboard/annotators").json()}
    assert rows["ann@example.com"]["submitted"] == 1
    assert rows["ann@example.com"]["median_lead_time_ms"] == 900
    # 1 submit in 900 ms of lead time: 4000 per hour.
    assert rows["ann@example.com"]["items_per_hour"] == pytest.approx(3_600_000 / 900)
    assert rows["ann@example.com"]["gold_accuracy"] is None
    assert annotator.get(f"/projects/{pid}/dashboard/annotators").status_code == 403


def test_dashboard_is_404_for_someone_outside_the_project(
    admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    other = admin.post("/projects", json={"name": "Other"}).json()
    outsider = member_factory(other["id"], "lead", "outsider@example.com")
    for path in ("funnel", "work", "annotators"):
        response = outsider.get(f"/projects/{project['id']}/dashboard/{path}")
        assert response.status_code == 404, (path, response.text)
        assert outsider.get(f"/projects/{other['id']}/dashboard/{path}").status_code == 200


def test_a_large_projects_funnel_is_read_from_what_the_beat_stored(
    admin: Api, worked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.dashboard import service
    from server.dashboard.tasks import store_funnels

    pid = worked["project_id"]
    path = f"/projects/{pid}/dashboard/funnel"
    assert store_funnels() == []  # small projects are counted live
    live = admin.get(path).json()
    monkeypatch.setattr(service, "STORED_FROM_SUBJECTS", 1)
    assert store_funnels() == [pid]
    stored = admin.get(path).json()
    assert stored["project"] == live["project"] and stored["computed_at"] > live["computed_at"]
    upload(admin, pid, 1, seed=400)
    assert admin.get(path).json() == stored  # fresh enough: the stored row, not a count
    monkeypatch.setattr(service, "RECOUNT_AFTER", timedelta(0))
    store_funnels()
    after = admin.get(path).json()
    ingested = {s["key"]: s["count"] for s in after["project"]["stages"]}["ingested"]
    assert ingested == 1 + {s["key"]: s["count"] for s in stored["project"]["stages"]}["ingested"]
    monkeypatch.setattr(service, "STORED_FRESH_FOR", timedelta(0))
    upload(admin, pid, 1, seed=500)
    recounted = {s["key"]: s["count"] for s in admin.get(path).json()["project"]["stages"]}
    assert recounted["ingested"] == ingested + 1  # stale: counted now


def test_the_beat_recounts_a_stored_funnel_only_once_it_is_old_enough(
    admin: Api, worked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.dashboard import service
    from server.dashboard.tasks import store_funnels

    pid = worked["project_id"]
    monkeypatch.setattr(service, "STORED_FROM_SUBJECTS", 1)
    assert store_funnels() == [pid]
    assert store_funnels() == []  # counted a moment ago: left alone
    assert service.RECOUNT_AFTER + timedelta(minutes=1) < service.STORED_FRESH_FOR
    monkeypatch.setattr(service, "RECOUNT_AFTER", timedelta(0))
    assert store_funnels() == [pid]


def test_a_large_projects_work_is_the_stored_series_last_hours(
    admin: Api, worked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.dashboard import service
    from server.dashboard.tasks import store_funnels

    pid = worked["project_id"]
    path = f"/projects/{pid}/dashboard/work"
    replayed = {hours: admin.get(path, params={"hours": hours}).json() for hours in (1, 6, 48)}
    monkeypatch.setattr(service, "STORED_FROM_SUBJECTS", 1)
    store_funnels()
    for hours, live in replayed.items():
        assert admin.get(path, params={"hours": hours}).json() == live  # a slice equals the replay
    review_next(admin, pid)
    assert admin.get(path, params={"hours": 6}).json() == replayed[6]  # fresh: the stored series
    monkeypatch.setattr(service, "RECOUNT_AFTER", timedelta(0))
    store_funnels()
    after = admin.get(path, params={"hours": 6}).json()
    assert after["submitted_total"] == replayed[6]["submitted_total"] + 1
    assert after["queue_depth"]["review"][-1] == replayed[6]["queue_depth"]["review"][-1] - 1


def test_the_beat_stores_each_slow_figure_of_a_large_project_and_none_of_a_small_one(
    worked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.dashboard import service
    from server.dashboard.tasks import store_funnels
    from server.orm.dashboard import DashboardFigure

    def stored() -> set[tuple[int, str]]:
        with runtime.database().session_scope() as session:
            return {(f.project_id, f.name) for f in session.scalars(select(DashboardFigure))}

    store_funnels()
    assert stored() == set()
    monkeypatch.setattr(service, "STORED_FROM_SUBJECTS", 1)
    store_funnels()
    pid = worked["project_id"]
    assert stored() == {(pid, name) for name in ("funnel", "work", "flywheel_activity", "predictions")}
