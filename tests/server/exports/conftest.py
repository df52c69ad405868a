"""A project whose people reviewed some subjects: the material every export test reads."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server.core import runtime
from server.demo.synthetic import render_person
from server.exports import service
from server.exports.schemas import ExportFilters, ExportOptions
from server.orm import Project, Subject
from server.orm.exports import Export
from tests.server.conftest import Api

PEOPLE = 4
REVIEWED = 3
# Format details do not depend on the database: those tests run on SQLite only; snapshots,
# resumption and the API run on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def upload(admin: Api, project_id: int, n: int, seed: int = 100) -> None:
    files = []
    for i in range(n):
        image, _ = render_person(seed + i)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        files.append(("files", (f"p{i}.jpg", buffer.getvalue(), "image/jpeg")))
    assert admin.post(f"/projects/{project_id}/uploads", files=files).status_code == 202


def review_next(api: Api, project_id: int, change: dict[str, Any] | None = None) -> dict[str, Any]:
    """Claim the next assignment and submit it, accepting the pre-filled values but `change`."""
    assignment = api.post(f"/projects/{project_id}/assignments/next").json()
    change = change or {}
    answers = [
        {
            "category_id": c["id"],
            "value": change.get(c["key"], c["label"]["value"]),
            "label_version": c["label"]["version"],
        }
        for c in assignment["categories"]
        if c["label"] is not None
    ]
    body = {"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": 900}
    response = api.post(f"/assignments/{assignment['id']}/submit", json=body)
    assert response.status_code == 200, response.text
    return dict(assignment)


@pytest.fixture
def reviewed(admin: Api, project: dict[str, Any]) -> dict[str, Any]:
    """PEOPLE prelabelled subjects; people reviewed REVIEWED of them (all values verified)."""
    settings = admin.get(f"/projects/{project['id']}").json()["settings"]
    settings["review"]["gold_share"] = 0
    assert admin.put(f"/projects/{project['id']}/settings", json=settings).status_code == 200
    upload(admin, project["id"], PEOPLE)
    done = [review_next(admin, project["id"])["subject"]["id"] for _ in range(REVIEWED)]
    with runtime.database().session_scope() as session:
        subjects = list(session.scalars(select(Subject.id).where(Subject.project_id == project["id"])))
    assert len(subjects) == PEOPLE
    return {"project": project, "reviewed": sorted(done), "subjects": sorted(subjects)}


def start_here(project_id: int, fmt: str, out: Path, *, options: ExportOptions | None = None) -> int:
    """Start an export whose jobs are not sent (`service.run_here` runs it); its id."""
    return _start(project_id, fmt, out, options=options, send_jobs=False)


def _start(
    project_id: int,
    fmt: str,
    out: Path | str,
    *,
    filters: ExportFilters | None = None,
    options: ExportOptions | None = None,
    endpoint_url: str | None = None,
    send_jobs: bool = True,
) -> int:
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        export = service.start_export(
            session,
            project,
            fmt=fmt,
            destination=str(out),
            default_root=Path("/nonexistent"),
            filters=filters or ExportFilters(),
            options=options or ExportOptions(),
            user_id=None,
            endpoint_url=endpoint_url,
            send_jobs=send_jobs,
        )
        return export.id


def run_export(
    project_id: int,
    fmt: str,
    out: Path | str,
    *,
    filters: ExportFilters | None = None,
    options: ExportOptions | None = None,
    endpoint_url: str | None = None,
) -> Export:
    """Start an export through the service; the test's inline jobs run it to the end."""
    export_id = _start(project_id, fmt, out, filters=filters, options=options, endpoint_url=endpoint_url)
    with runtime.database().session_scope() as session:
        export = session.get(Export, export_id)
        assert export is not None
        session.expunge(export)
        return export
