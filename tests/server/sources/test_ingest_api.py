from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.server.conftest import Api


def _jpeg(path: Path, size: tuple[int, int] = (400, 500), color: str = "red") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG")


def _run_folder(admin: Api, project_id: int, folder: str) -> dict[str, Any]:
    source = admin.post(f"/projects/{project_id}/sources", json={"name": "f", "path": folder})
    assert source.status_code == 201, source.text
    run = admin.post(f"/projects/{project_id}/sources/{source.json()['id']}/runs")
    assert run.status_code == 202, run.text
    final = admin.get(f"/projects/{project_id}/ingest-runs/{run.json()['id']}")
    return dict(final.json())


def test_folder_ingest_adds_images_and_a_second_run_adds_nothing(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    folder = env["sources"] / "people"
    for n, color in enumerate(["red", "green", "blue"]):
        _jpeg(folder / f"p{n}.jpg", color=color)
    first = _run_folder(admin, project["id"], "people")
    assert (first["status"], first["added"], first["duplicates"]) == ("succeeded", 3, 0)
    second = _run_folder(admin, project["id"], "people")
    assert (second["status"], second["added"], second["duplicates"]) == ("succeeded", 0, 3)
    stats = admin.get(f"/projects/{project['id']}/images/stats").json()
    assert stats["stages"] == {"prelabeled": 3}


def test_bad_files_are_rejected_with_reasons_while_good_ones_are_ingested(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    folder = env["sources"] / "mixed"
    _jpeg(folder / "good.jpg")
    (folder / "notes.jpg").write_text("this is text, not a picture")
    good = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(good, format="JPEG")
    (folder / "cut.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    run = _run_folder(admin, project["id"], "mixed")
    assert (run["added"], run["rejected"]) == (1, 2)
    reasons = {r["name"]: r["reason"] for r in admin.get(f"/projects/{project['id']}/rejections").json()}
    assert reasons == {"notes.jpg": "not_an_image", "cut.jpg": "truncated"}


def test_folder_outside_the_roots_is_refused(admin: Api, project: dict[str, Any]) -> None:
    response = admin.post(f"/projects/{project['id']}/sources", json={"name": "x", "path": "../etc"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("path_")


def test_small_images_are_filtered_with_the_min_resolution_reason(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    _jpeg(env["sources"] / "small" / "tiny.jpg", size=(100, 120))
    run = _run_folder(admin, project["id"], "small")
    assert run["added"] == 1
    stats = admin.get(f"/projects/{project['id']}/images/stats").json()
    assert stats["filtered_by_reason"] == {"min_resolution": 1}
