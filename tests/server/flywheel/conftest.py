"""Fixtures for the flywheel: a pre-labelled project whose people's answers are known."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from server.core import runtime
from server.demo.synthetic import render_person
from server.orm import Image, Label, LabelEvent, Subject
from tests.server.conftest import Api


def upload_people(admin: Api, project_id: int, n: int, seed: int = 500) -> None:
    files = []
    for i in range(n):
        image, _ = render_person(seed + i)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        files.append(("files", (f"f{seed + i}.jpg", buffer.getvalue(), "image/jpeg")))
    assert admin.post(f"/projects/{project_id}/uploads", files=files).status_code == 202


@pytest.fixture
def second_person(people: dict[str, Any], member_factory: Any) -> Api:
    """A reviewer beside the admin: evaluation passes go to different people."""
    api: Api = member_factory(people["id"], "reviewer", "second-opinion@example.com")
    return api


def set_settings(admin: Api, project_id: int, **changes: Any) -> None:
    settings = admin.get(f"/projects/{project_id}").json()["settings"]
    settings["review"]["gold_share"] = 0
    for key, value in changes.items():
        if isinstance(value, dict):
            settings[key].update(value)
        else:
            settings[key] = value
    response = admin.put(f"/projects/{project_id}/settings", json=settings)
    assert response.status_code == 200, response.text


def work_queue(people: Api | Sequence[Api], project_id: int, change: dict[str, Any] | None = None) -> int:
    """Each person in turn takes every assignment the queue serves them and submits it,
    accepting the pre-filled value of each field (changing the keys in `change`), until the
    queue serves none of them anything. Returns how many. (An evaluation subject's second pass
    is served only to someone who did not answer its first.)"""
    team = [people] if isinstance(people, Api) else list(people)
    done = 0
    while True:
        worked = sum(_work(api, project_id, change) for api in team)
        if worked == 0:
            return done
        done += worked


def _work(api: Api, project_id: int, change: dict[str, Any] | None) -> int:
    done = 0
    while True:
        response = api.post(f"/projects/{project_id}/assignments/next")
        if response.status_code == 204:
            return done
        assignment = response.json()
        answers = []
        for category in assignment["categories"]:
            label = category["label"]
            value = label["value"] if label is not None else None
            answers.append(
                {
                    "category_id": category["id"],
                    "value": (change or {}).get(category["key"], value),
                    "label_version": label["version"] if label is not None else None,
                }
            )
        body = {"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": 1000}
        submitted = api.post(f"/assignments/{assignment['id']}/submit", json=body)
        assert submitted.status_code == 200, submitted.text
        done += 1


def label_snapshot() -> tuple[list[tuple[Any, ...]], int]:
    with runtime.database().session_scope() as session:
        labels = [
            (label.id, repr(label.value), label.state, label.version, label.model_version_id)
            for label in session.scalars(select(Label).order_by(Label.id))
        ]
        events = len(list(session.scalars(select(LabelEvent.id))))
    return labels, events


def subject_of_image() -> dict[int, int]:
    with runtime.database().session_scope() as session:
        return {int(i): int(s) for s, i in session.execute(select(Subject.id, Subject.image_id))}


def image_ids() -> list[int]:
    with runtime.database().session_scope() as session:
        return [int(i) for i in session.scalars(select(Image.id).order_by(Image.id))]


@pytest.fixture
def people(admin: Api, project: dict[str, Any]) -> dict[str, Any]:
    """Twelve pre-labelled people, no gold, cold start: every subject queued for review."""
    set_settings(admin, project["id"])
    upload_people(admin, project["id"], 12)
    return project
