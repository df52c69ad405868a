"""The exports API and the CLI: create, progress, list, download, cancel, resume; tenancy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select

from server.cli import main
from server.core import jobs, runtime, tasknames
from server.exports import service
from server.orm.exports import Export, ExportDocument
from tests.server.conftest import Api
from tests.server.exports.conftest import REVIEWED, run_export, sqlite_only


def test_a_lead_exports_through_the_api_and_downloads_the_files(admin: Api, reviewed: dict[str, Any]) -> None:
    project_id = reviewed["project"]["id"]
    body = {"format": "webdataset", "options": {"shard_size": 2}, "filters": {"states": ["verified"]}}
    created = admin.post(f"/projects/{project_id}/exports", json=body)
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]
    got = admin.get(f"/projects/{project_id}/exports/{export_id}").json()
    assert got["status"] == "done" and got["progress"] == 1.0
    assert got["counts"]["samples"] == REVIEWED and got["manifest"]["counts"] == got["counts"]
    assert got["label_event_high_water"] > 0 and got["filters"]["states"] == ["verified"]
    assert got["include_sensitive"] is False is got["manifest"]["include_sensitive"]
    assert got["note"] is None
    assert [e["id"] for e in admin.get(f"/projects/{project_id}/exports").json()] == [export_id]
    manifest = admin.get(f"/projects/{project_id}/exports/{export_id}/files/manifest.json")
    assert manifest.status_code == 200 and json.loads(manifest.content) == got["manifest"]
    shard = admin.get(f"/projects/{project_id}/exports/{export_id}/files/00000.tar")
    assert shard.status_code == 200 and len(shard.content) == got["manifest"]["files"]["00000.tar"]["bytes"]
    for name in ("../secret_key", "00000.tar.tmp", "nothing.tar"):
        assert admin.get(f"/projects/{project_id}/exports/{export_id}/files/{name}").status_code == 404
    assert admin.post(f"/projects/{project_id}/exports/{export_id}/cancel").status_code == 409


def test_an_export_that_finds_no_subject_says_why(admin: Api, reviewed: dict[str, Any]) -> None:
    project_id = reviewed["project"]["id"]

    def export(filters: dict[str, Any]) -> dict[str, Any]:
        created = admin.post(f"/projects/{project_id}/exports", json={"format": "jsonl", "filters": filters})
        assert created.status_code == 202, created.text
        got: dict[str, Any] = admin.get(f"/projects/{project_id}/exports/{created.json()['id']}").json()
        assert got["status"] == "done", got
        return got

    # The labeler is trusted with no category yet: people decided every label there is.
    alone = export({"states": ["auto_accepted"]})
    assert alone["counts"]["samples"] == 0 and alone["manifest"]["counts"]["samples"] == 0
    assert alone["note"].startswith("No subject had a label in the chosen states (auto_accepted) as of")
    assert "filters kept" not in alone["note"] and "choose auto_accepted" not in alone["note"]
    first = export({"states": ["verified"]})
    assert first["counts"]["samples"] == REVIEWED and first["note"] is None
    # Nothing changed since: the filter, not the states, left nothing.
    since = export({"states": ["verified"], "since_export_id": first["id"]})
    assert since["counts"]["samples"] == 0
    assert f"filters kept (changed since export {first['id']})" in since["note"]
    assert "choose auto_accepted as well" in since["note"]


@sqlite_only
def test_local_paths_cannot_be_chosen_over_the_api(admin: Api, project: dict[str, Any]) -> None:
    for destination in ("/etc", "file:///tmp/x", "../x"):
        body = {"format": "jsonl", "destination": destination}
        assert admin.post(f"/projects/{project['id']}/exports", json=body).status_code == 422


@sqlite_only
def test_a_quality_floor_must_name_a_metric_and_a_finite_value(admin: Api, project: dict[str, Any]) -> None:
    for floors in ({'sharp"ness': 0.5}, {"": 0.5}, {"sharpness": "NaN"}, {"sharpness": "Infinity"}):
        body = {"format": "jsonl", "filters": {"min_quality": floors}}
        response = admin.post(f"/projects/{project['id']}/exports", json=body)
        assert response.status_code == 422, floors
        assert "min_quality" in response.text


def test_exports_of_another_project_are_404_and_annotators_cannot_start_one(
    admin: Api, reviewed: dict[str, Any], member_factory: Any
) -> None:
    project_id = reviewed["project"]["id"]
    export_id = admin.post(f"/projects/{project_id}/exports", json={"format": "jsonl"}).json()["id"]
    other = admin.post("/projects", json={"name": "Other"}).json()
    outsider = member_factory(other["id"], "lead")
    for method, path in (
        ("GET", f"/projects/{project_id}/exports"),
        ("POST", f"/projects/{project_id}/exports"),
        ("GET", f"/projects/{project_id}/exports/{export_id}"),
        ("POST", f"/projects/{project_id}/exports/{export_id}/cancel"),
        ("GET", f"/projects/{project_id}/exports/{export_id}/files/manifest.json"),
        ("GET", f"/projects/{other['id']}/exports/{export_id}"),
    ):
        kwargs = {"json": {"format": "jsonl"}} if method == "POST" else {}
        assert outsider.request(method, path, **kwargs).status_code == 404, path
    refresh = f"/projects/{project_id}/exports/documents/refresh"
    assert outsider.post(refresh).status_code == 404
    annotator = member_factory(project_id, "annotator")
    assert annotator.post(f"/projects/{project_id}/exports", json={"format": "jsonl"}).status_code == 403
    assert annotator.get(f"/projects/{project_id}/exports/{export_id}").status_code == 200
    assert annotator.post(refresh).status_code == 403


def test_a_cancelled_export_writes_nothing_more_and_can_be_resumed(
    admin: Api, reviewed: dict[str, Any]
) -> None:
    project_id = reviewed["project"]["id"]
    sent: list[jobs.Job] = []
    jobs.configure(sent.append)  # hold the jobs, to step through them
    body = {"format": "webdataset", "options": {"shard_size": 1}}
    export_id = admin.post(f"/projects/{project_id}/exports", json=body).json()["id"]
    assert [j.name for j in sent] == ["cpu.export.plan"]
    with runtime.database().session_scope() as session:
        service.plan(session, export_id)
    db, read = runtime.database(), runtime.storage().get
    assert service.write_part(db, read, export_id, 0)
    progress = admin.get(f"/projects/{project_id}/exports/{export_id}").json()
    assert progress["status"] == "running" and progress["progress"] == pytest.approx(1 / REVIEWED)
    cancelled = admin.post(f"/projects/{project_id}/exports/{export_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not service.write_part(db, read, export_id, 1)
    service.finish(db, read, export_id)
    with runtime.database().session_scope() as session:
        export = session.get(Export, export_id)
        assert export is not None and export.status == "cancelled"
        out = Path(export.destination)
    assert sorted(p.name for p in out.iterdir()) == ["00000.parquet", "00000.tar"]

    resumed = admin.post(f"/projects/{project_id}/exports/{export_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    for job in [j for j in sent if j.name == "cpu.export.part"][-REVIEWED:]:
        service.write_part(db, read, export_id, job.kwargs["index"])
    service.finish(db, read, export_id)
    done = admin.get(f"/projects/{project_id}/exports/{export_id}").json()
    assert done["status"] == "done" and done["counts"]["samples"] == REVIEWED
    assert (out / "manifest.json").is_file()


def test_a_lead_queues_a_refresh_of_the_documents_labels_made_stale(
    admin: Api, reviewed: dict[str, Any]
) -> None:
    project_id = reviewed["project"]["id"]
    admin.post(f"/projects/{project_id}/exports", json={"format": "jsonl"})  # runs inline
    with runtime.database().session_scope() as session:
        session.execute(delete(ExportDocument))
    sent: list[jobs.Job] = []
    jobs.configure(sent.append)
    response = admin.post(f"/projects/{project_id}/exports/documents/refresh")
    assert (response.status_code, response.json()) == (202, {"queued": True, "full": False})
    assert [(j.name, j.kwargs) for j in sent] == [
        (tasknames.EXPORT_REFRESH_DOCUMENTS, {"project_id": project_id})
    ]
    from server.exports import tasks

    assert tasks.refresh_documents() == {project_id: REVIEWED}  # the beat's call: every project

    # That walk was complete, so the next looks only at what changed since: documents deleted
    # without a label event are found by a full walk alone, which a lead can ask for.
    with runtime.database().session_scope() as session:
        session.execute(delete(ExportDocument))
    sent.clear()
    response = admin.post(f"/projects/{project_id}/exports/documents/refresh?full=true")
    assert (response.status_code, response.json()) == (202, {"queued": True, "full": True})
    [job] = sent
    assert (job.name, job.kwargs) == (
        tasknames.EXPORT_REFRESH_DOCUMENTS,
        {"project_id": project_id, "full": True},
    )
    assert tasks.refresh_documents(project_id) == {project_id: 0}
    assert tasks.refresh_documents(**job.kwargs) == {project_id: REVIEWED}


def test_one_projects_failed_refresh_does_not_stop_the_beats_refresh_of_the_others(
    reviewed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.exports import tasks

    project_id = reviewed["project"]["id"]
    run_export(project_id, "jsonl", tmp_path / "first")
    with runtime.database().session_scope() as session:
        session.execute(delete(ExportDocument))
    broken = project_id + 1000  # a project listed before it whose refresh fails
    real = service.refresh_documents

    def refresh(db: Any, project: int, **kwargs: Any) -> service.Refreshed:
        if project == broken:
            raise OSError("disk full")
        return real(db, project, **kwargs)

    monkeypatch.setattr(service, "projects_to_refresh", lambda _session: [broken, project_id])
    monkeypatch.setattr(service, "refresh_documents", refresh)
    with pytest.raises(RuntimeError, match=rf"projects {broken} \(OSError: disk full\)"):
        tasks.refresh_documents()
    with runtime.database().session_scope() as session:
        kept = session.scalar(select(func.count()).select_from(ExportDocument))
    assert kept == REVIEWED  # the project after the failed one was refreshed all the same


def test_the_beat_refreshes_export_documents() -> None:
    from server.worker import app

    assert tasknames.EXPORT_REFRESH_DOCUMENTS in {e["task"] for e in app.conf.beat_schedule.values()}


@sqlite_only
def test_the_cli_exports_with_a_progress_bar(reviewed: dict[str, Any], tmp_path: Path) -> None:
    slug = reviewed["project"]["slug"]
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        main, ["export", "--project", slug, "--format", "jsonl", "--out", str(out), "--shard-size", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "parts" in result.output and "done:" in result.output
    assert "No subject had" not in result.output
    assert len((out / "labels.jsonl").read_text().splitlines()) == REVIEWED
    missing = CliRunner().invoke(main, ["export", "--project", "nope", "--out", str(out)])
    assert missing.exit_code != 0 and "no project" in missing.output
    forked = tmp_path / "forked"
    result = CliRunner().invoke(
        main,
        ["export", "--project", slug, "--format", "jsonl", "--out", str(forked), "--shard-size", "1"]
        + ["--processes", "2"],
    )
    assert result.exit_code == 0, result.output
    assert (forked / "labels.jsonl").read_bytes().count(b"\n") == REVIEWED
    refused = CliRunner().invoke(
        main, ["export", "--project", slug, "--out", str(forked), "--workers", "--processes", "2"]
    )
    assert refused.exit_code != 0 and "own pool" in refused.output
    with runtime.database().session_scope() as session:
        session.execute(delete(ExportDocument))
    refreshed = CliRunner().invoke(main, ["export-documents", "--project", slug])
    assert refreshed.exit_code == 0, refreshed.output
    assert f"kept {REVIEWED} documents for 1 label-state sets" in refreshed.output
    with runtime.database().session_scope() as session:
        session.execute(delete(ExportDocument))  # lost without a label event since that refresh
    since = CliRunner().invoke(main, ["export-documents", "--project", slug])
    assert "kept 0 documents" in since.output, since.output
    full = CliRunner().invoke(main, ["export-documents", "--project", slug, "--full"])
    assert f"kept {REVIEWED} documents" in full.output, full.output
    missing = CliRunner().invoke(main, ["export-documents", "--project", "nope"])
    assert missing.exit_code != 0 and "no project" in missing.output
    # A project whose labeler is trusted with nothing has no auto-accepted label: the CLI says so.
    empty = CliRunner().invoke(
        main, ["export", "--project", slug, "--out", str(tmp_path / "empty"), "--state", "auto_accepted"]
    )
    assert empty.exit_code == 0, empty.output
    assert "No subject had a label in the chosen states (auto_accepted)" in empty.output
