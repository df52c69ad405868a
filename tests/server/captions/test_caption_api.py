from __future__ import annotations

import io
from typing import Any

from sqlalchemy import select

from server.captions.tokens import context_tokens
from server.core import runtime
from server.core.time import utcnow
from server.demo.synthetic import render_person
from server.orm import Category, Label, Subject
from tests.server.conftest import Api


def _upload_one(api: Api, project_id: int, seed: int = 7) -> int:
    image, _ = render_person(seed)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    files = [("files", (f"p{seed}.jpg", buffer.getvalue(), "image/jpeg"))]
    assert api.post(f"/projects/{project_id}/uploads", files=files).status_code == 202
    with runtime.database().session_scope() as session:
        subject_id = session.scalar(select(Subject.id).where(Subject.project_id == project_id))
        assert subject_id is not None
        return int(subject_id)


def _set(subject_id: int, states: dict[str, tuple[Any, str]]) -> None:
    """category key -> (value, state) for the subject's labels; every other label stays as it is."""
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(Label, Category.key)
            .join(Category, Category.id == Label.category_id)
            .where(Label.subject_id == subject_id)
        ).all()
        by_key = {key: label for label, key in rows}
        any_label = rows[0][0]
        for key, (value, state) in states.items():
            if key not in by_key:
                category_id = session.scalar(
                    select(Category.id).where(
                        Category.key == key, Category.taxonomy_version_id == any_label.taxonomy_version_id
                    )
                )
                by_key[key] = Label(
                    subject_id=subject_id,
                    category_id=category_id,
                    taxonomy_version_id=any_label.taxonomy_version_id,
                    value=value,
                    state=state,
                    updated_at=utcnow(),
                )
                session.add(by_key[key])
            by_key[key].value, by_key[key].state = value, state
        for key, label in by_key.items():
            if key not in states and label.state != "predicted":
                label.state = "predicted"


def test_the_caption_says_only_labels_in_the_chosen_states_and_refuses_other_states(
    admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    subject = _upload_one(admin, pid)
    _set(
        subject,
        {
            "shot.type": ("full_body", "verified"),
            "hair.color": ("blonde", "gold"),
            "hair.length": ("above_chin", "verified"),
            "top.type": ("hoodie", "auto_accepted"),
            "top.color": ("red", "auto_accepted"),
        },
    )
    verified = admin.get(f"/projects/{pid}/subjects/{subject}/caption?states=verified")
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["values"] == {"shot.type": "full_body", "hair.color": "blonde", "hair.length": "above_chin"}
    assert body["caption"] == "a full-body shot, blonde above chin hair"
    assert body["trimmed"] is False and body["tokens"] == context_tokens(body["caption"]) == 12

    both = admin.get(f"/projects/{pid}/subjects/{subject}/caption?states=verified,auto_accepted").json()
    assert both["caption"] == "a full-body shot, blonde above chin hair, red hoodie"
    assert set(both["values"]) == {"shot.type", "hair.color", "hair.length", "top.type", "top.color"}
    # the default is verified only
    assert admin.get(f"/projects/{pid}/subjects/{subject}/caption").json() == body
    # only the two states a caption is composed from
    for bad in ("predicted", "verified,nonsense", ",", "gold"):
        response = admin.get(f"/projects/{pid}/subjects/{subject}/caption", params={"states": bad})
        assert response.status_code == 400 and response.json()["error"] == "bad_states", bad


def test_only_members_see_a_caption_or_a_preview_and_the_preview_composes_draft_answers(
    admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    pid = project["id"]
    subject = _upload_one(admin, pid)
    other = admin.post("/projects", json={"name": "Other"}).json()
    outsider = member_factory(other["id"], "lead")
    assert outsider.get(f"/projects/{pid}/subjects/{subject}/caption").status_code == 404
    assert outsider.get(f"/projects/{other['id']}/subjects/{subject}/caption").status_code == 404
    preview = outsider.post(
        f"/projects/{other['id']}/subjects/{subject}/caption/preview", json={"values": {}}
    )
    assert preview.status_code == 404
    annotator = member_factory(pid, "annotator")
    assert annotator.get(f"/projects/{pid}/subjects/{subject}/caption").status_code == 200
    assert admin.get(f"/projects/{pid}/subjects/{2**70}/caption").status_code == 422  # past BIGINT
    # the preview: draft answers, sensitive and unknown ones left out
    draft = {
        "shot.type": "headshot",
        "identity.gender": "female",
        "hair.color": "black",
        "hair.length": "above_eyes",
        "no.such": "x",
        "top.color": {"not": "a value"},
    }
    response = admin.post(f"/projects/{pid}/subjects/{subject}/caption/preview", json={"values": draft})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["caption"] == "a headshot, black above eyes hair"
    assert "no.such" not in body["values"] and "top.color" not in body["values"]
