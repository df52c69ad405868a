"""A Label Studio export imports; the same project exported back (server.exports) loads in
Label Studio's format and imports again into a fresh project with the same decisions."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.core import runtime
from server.orm import Category, Image, Label, Subject
from tests.server.conftest import Api
from tests.server.interchange.conftest import CATEGORY_MAP
from tests.server.interchange.labelstudio_format import problems


def _verified(project_id: int) -> dict[str, dict[str, Any]]:
    """image sha256 -> {category key: value} of the project's verified labels."""
    out: dict[str, dict[str, Any]] = {}
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(Image.sha256, Category.key, Label.value)
            .join(Subject, Subject.image_id == Image.id)
            .join(Label, Label.subject_id == Subject.id)
            .join(Category, Category.id == Label.category_id)
            .where(Image.project_id == project_id, Label.state == "verified")
        )
        for sha, key, value in rows:
            out.setdefault(sha, {})[key] = value
    return out


def _export(admin: Api, project_id: int) -> tuple[list[dict[str, Any]], str, Path]:
    response = admin.post(f"/projects/{project_id}/exports", json={"format": "labelstudio"})
    assert response.status_code == 202, response.text
    export = admin.get(f"/projects/{project_id}/exports/{response.json()['id']}").json()
    assert export["status"] == "done", export
    tasks = admin.get(f"/projects/{project_id}/exports/{export['id']}/files/tasks.json")
    config = admin.get(f"/projects/{project_id}/exports/{export['id']}/files/labeling_config.xml")
    assert tasks.status_code == config.status_code == 200
    return tasks.json(), config.text, Path(export["destination"])


def test_an_imported_project_exported_back_loads_in_label_studios_format_and_reimports(
    admin: Api, project: dict[str, Any], env: dict[str, Any], ls_export: list[dict[str, Any]]
) -> None:
    body = {"tasks": ls_export, "category_map": CATEGORY_MAP}
    imported = admin.post(f"/projects/{project['id']}/import/labelstudio", json=body)
    assert imported.status_code == 200, imported.text
    decided = _verified(project["id"])
    assert len(decided) == 3

    tasks, config, folder = _export(admin, project["id"])
    assert problems(tasks, config) == []
    assert len(tasks) == 3
    assert any(p["model_version"] for t in tasks for p in t["predictions"])
    if importlib.util.find_spec("label_studio_sdk") is not None:  # the real SDK, where installed
        _check_with_label_studio_sdk(tasks, config)
    if os.environ.get("AA_LS_ROUNDTRIP_DIR"):  # keep the files, e.g. for the SDK in another venv
        keep = Path(os.environ["AA_LS_ROUNDTRIP_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "tasks.json").write_text(json.dumps(tasks, indent=1))
        (keep / "labeling_config.xml").write_text(config)

    # The export's images, placed under a source root, make it importable as it stands.
    shutil.copytree(folder / "images", Path(env["sources"]) / "images")
    other = admin.post("/projects", json={"name": "Moved back"}).json()
    again = admin.post(f"/projects/{other['id']}/import/labelstudio", json=tasks)
    assert again.status_code == 200, again.text
    report = again.json()
    assert (report["imported"], report["failed"]) == (3, 0), report["problems"]
    assert _verified(other["id"]) == decided


def test_the_format_check_catches_what_label_studio_refuses() -> None:
    config = (
        '<View><Image name="image" value="$image"/>'
        '<Choices name="top.color" toName="image" choice="single"><Choice value="red"/><Choice value="blue"/>'
        "</Choices></View>"
    )
    good = [{"data": {"image": "a.jpg"}, "annotations": [{"result": [_choice("top.color", ["red"])]}]}]
    assert problems(good, config) == []
    cases = [
        [{"annotations": []}],  # no data
        [{"data": {"img": "a.jpg"}}],  # the data key the Image reads is missing
        [{"data": {"image": "a"}, "predictions": [{"result": [_choice("top.color", ["red"])], "score": 7}]}],
        [{"data": {"image": "a"}, "annotations": [{"result": [_choice("top.colour", ["red"])]}]}],
        [{"data": {"image": "a"}, "annotations": [{"result": [_choice("top.color", ["green"])]}]}],
        [{"data": {"image": "a"}, "annotations": [{"result": [_choice("top.color", ["red", "blue"])]}]}],
    ]
    for case in cases:
        assert problems(case, config) != [], case


def _choice(name: str, choices: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "image", "type": "choices", "value": {"choices": choices}}


def _check_with_label_studio_sdk(tasks: list[dict[str, Any]], config: str) -> None:
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(config)
    interface.validate()
    for task in tasks:
        for item in [*task["annotations"], *task["predictions"]]:
            assert interface.validate_prediction(item, return_errors=True) == [], item
