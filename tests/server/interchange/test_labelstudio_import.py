from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from server.core import runtime
from server.orm import Category, Image, Label, LabelEvent, ModelVersion, Prediction, Subject
from tests.server.conftest import Api
from tests.server.interchange.conftest import CATEGORY_MAP


def _post_file(api: Api, project_id: int, tasks: Any, **fields: str) -> Any:
    files = {"file": ("export.json", json.dumps(tasks).encode(), "application/json")}
    return api.post(f"/projects/{project_id}/import/labelstudio", files=files, data=fields)


def _counts() -> dict[str, int]:
    with runtime.database().session_scope() as session:
        return {
            model.__name__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Image, Subject, Prediction, Label, LabelEvent, ModelVersion)
        }


def _labels(task_image_name: str) -> dict[str, tuple[Any, str]]:
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(Category.key, Label.value, Label.state)
            .join(Category, Category.id == Label.category_id)
            .join(Subject, Subject.id == Label.subject_id)
            .join(Image, Image.id == Subject.image_id)
            .where(Image.original_name == task_image_name)
        )
        return {key: (value, state) for key, value, state in rows}


def test_a_label_studio_export_imports_images_predictions_and_verified_labels(
    admin: Api, project: dict[str, Any], ls_export: list[dict[str, Any]]
) -> None:
    response = _post_file(admin, project["id"], ls_export, category_map=json.dumps(CATEGORY_MAP))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["tasks"], report["imported"], report["failed"]) == (6, 3, 3)
    assert report["images_added"] == 3 and report["images_existing"] == 0
    failed = {(p["task_id"], p["code"]) for p in report["problems"] if not p["imported"]}
    assert failed == {("103", "remote_url_refused"), ("104", "path_parent_reference"), ("106", "no_image")}
    kept = {(p["task_id"], p["code"], p["from_name"]) for p in report["problems"] if p["imported"]}
    assert kept == {
        ("102", "unknown_value", "hair.color"),  # "purple" is no value of hair.color
        ("102", "sensitive_category_skipped", "identity.gender"),
        ("102", "unsupported_result_type", "bbox"),
    }

    verified = {k: v for k, (v, s) in _labels("person-1.jpg").items() if s == "verified"}
    # the latest annotation that was not cancelled: red, not the cancelled blue
    assert verified == {
        "shot.type": "full_body",
        "top.type": "hoodie",
        "top.color": "red",
        "accessory.items": ["earrings", "face_mask"],
        "coat.worn": True,
    }
    second = {k: v for k, (v, s) in _labels("person-2.png").items() if s == "verified"}
    assert second == {"shot.type": "headshot", "hair.length": "above_chin"}
    assert "identity.gender" not in _labels("person-2.png")
    assert {k: v for k, (v, s) in _labels("data-uri").items() if s == "verified"} == {"shot.type": "portrait"}

    with runtime.database().session_scope() as session:
        versions = session.scalars(select(ModelVersion).where(ModelVersion.family == "label_studio")).all()
        assert [(v.version, v.status) for v in versions] == [("clip-zero-shot-2024-04", "retired")]
        predictions = dict(
            session.execute(
                select(Category.key, Prediction.confidence)
                .join(Category, Category.id == Prediction.category_id)
                .where(Prediction.model_version_id == versions[0].id)
            ).all()
        )
        # an item's own score, else the prediction's
        assert predictions == {"shot.type": 0.91, "top.type": 0.74, "top.color": 0.74}
        events = session.scalars(select(LabelEvent).where(LabelEvent.reason == "import_label_studio")).all()
        assert len(events) == 8 and all(e.actor_user_id == admin.user["id"] for e in events)

    subject = _subject_of("person-1.jpg")
    caption = admin.get(f"/projects/{project['id']}/subjects/{subject}/caption").json()
    assert caption["caption"].startswith("a full-body shot, ") and "red hoodie" in caption["caption"]


def _subject_of(name: str) -> int:
    with runtime.database().session_scope() as session:
        found = session.scalar(
            select(Subject.id).join(Image, Image.id == Subject.image_id).where(Image.original_name == name)
        )
        assert found is not None
        return int(found)


def test_importing_the_same_file_twice_adds_nothing(
    admin: Api, project: dict[str, Any], ls_export: list[dict[str, Any]]
) -> None:
    body = {"tasks": ls_export, "category_map": CATEGORY_MAP}
    first = admin.post(f"/projects/{project['id']}/import/labelstudio", json=body)
    assert first.status_code == 200, first.text
    before = _counts()
    again = admin.post(f"/projects/{project['id']}/import/labelstudio", json=body)
    assert again.status_code == 200, again.text
    report = again.json()
    assert (report["images_added"], report["images_existing"]) == (0, 3)
    assert (report["predictions_added"], report["labels_verified"], report["labels_unchanged"]) == (0, 0, 8)
    assert _counts() == before


def test_a_label_a_person_verified_here_is_kept_and_the_conflict_reported(
    admin: Api, project: dict[str, Any], ls_export: list[dict[str, Any]]
) -> None:
    body = {"tasks": ls_export, "category_map": CATEGORY_MAP}
    assert admin.post(f"/projects/{project['id']}/import/labelstudio", json=body).status_code == 200
    with runtime.database().session_scope() as session:
        label = session.scalar(
            select(Label)
            .join(Category, Category.id == Label.category_id)
            .where(Label.subject_id == _subject_of("person-1.jpg"), Category.key == "top.color")
        )
        assert label is not None
        label.value = "green"
    report = admin.post(f"/projects/{project['id']}/import/labelstudio", json=body).json()
    assert {
        (p["task_id"], p["code"], p["from_name"]) for p in report["problems"] if p["code"] == "label_conflict"
    } == {("101", "label_conflict", "top.color")}
    assert _labels("person-1.jpg")["top.color"] == ("green", "verified")


def test_bad_input_gets_a_clear_error_and_imports_nothing(
    admin: Api, project: dict[str, Any], member_factory: Any, ls_export: list[dict[str, Any]]
) -> None:
    pid = project["id"]
    before = _counts()
    url = f"/projects/{pid}/import/labelstudio"
    files = {"file": ("export.json", b"{not json", "application/json")}
    bad_json = admin.post(url, files=files)
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "invalid_json"
    not_export = admin.post(url, json={"hello": "world"})
    assert not_export.status_code == 400 and not_export.json()["error"] == "not_an_export"
    bad_map = _post_file(admin, pid, ls_export, category_map="[1, 2]")
    assert bad_map.status_code == 400 and bad_map.json()["error"] == "invalid_options"
    no_file = admin.post(url, files={"other": ("x.json", b"[]", "application/json")})
    assert no_file.status_code == 400 and no_file.json()["error"] == "no_file"
    assert admin.post(url, content=b"[]", headers={"Content-Type": "text/plain"}).status_code == 415
    annotator = member_factory(pid, "annotator")
    assert annotator.post(url, json=ls_export).status_code == 403
    other = admin.post("/projects", json={"name": "Other"}).json()
    outsider = member_factory(other["id"], "lead")
    assert outsider.post(url, json=ls_export).status_code == 404
    assert _counts() == before


def test_every_task_failing_still_answers_with_the_reasons(
    admin: Api, project: dict[str, Any], env: dict[str, Any], tmp_path: Any
) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"not under a root")
    (env["sources"] / "escape.jpg").symlink_to(outside)
    tasks = [
        {"id": 1, "data": {"image": "s3://bucket/a.jpg"}},
        {"id": 2, "data": {"image": "/etc/passwd"}},
        {"id": 3, "data": {"image": "data:image/png;base64,not-base64!"}},
        {"id": 4, "data": {"image": "data:image/png;base64,aGVsbG8="}},  # "hello": not an image
        {"id": 5, "data": {"image": "missing/nowhere.jpg"}},
        "not a task",
        {"id": 7, "data": {"image": "x.jpg"}, "annotations": {"not": "a list"}},
        {"id": 8, "data": {"image": "/data/local-files/?d=escape.jpg"}},
        {"id": "\u0000", "data": {"image": "a\u0000b.jpg"}, "predictions": [{"model_version": "\u0000"}]},
    ]
    response = admin.post(f"/projects/{project['id']}/import/labelstudio", json=tasks)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 0 and report["failed"] == 9
    codes = [p["code"] for p in report["problems"]]
    assert codes[:3] == ["remote_url_refused", "path_outside_roots", "invalid_image_reference"]
    assert codes[3].startswith("image_") and codes[4] == "path_not_found"
    assert codes[5:] == ["invalid_task", "invalid_task", "path_symlink_escape", "invalid_image_reference"]
    assert _counts()["Image"] == 0


def test_label_studio_upload_and_file_urls_resolve_under_the_source_roots(
    admin: Api, project: dict[str, Any], env: dict[str, Any]
) -> None:
    from tests.server.interchange.conftest import person_bytes

    uploads = env["sources"] / "upload" / "7"
    uploads.mkdir(parents=True)
    (uploads / "3b1f-person.jpg").write_bytes(person_bytes(41, "JPEG"))
    (env["sources"] / "by-url.png").write_bytes(person_bytes(42, "PNG"))
    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/upload/7/3b1f-person.jpg"},
            # NUL fits no database text column: it is dropped, never a server error
            "predictions": [{"model_version": "v\u00001", "result": [_choice("shot.type", "headshot")]}],
        },
        {"id": 2, "data": {"image": f"file://{env['sources'] / 'by-url.png'}"}},
        {"id": 3, "data": {"image": "file://elsewhere.example/x.png"}},  # a remote host: refused
    ]
    report = admin.post(f"/projects/{project['id']}/import/labelstudio", json=tasks).json()
    assert (report["imported"], report["images_added"]) == (2, 2)
    assert [p["code"] for p in report["problems"]] == ["remote_url_refused"]
    assert report["predictions_added"] == 1
    with runtime.database().session_scope() as session:
        assert (
            session.scalar(select(ModelVersion.version).where(ModelVersion.family == "label_studio")) == "v1"
        )


def _choice(name: str, choice: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "image", "type": "choices", "value": {"choices": [choice]}}
