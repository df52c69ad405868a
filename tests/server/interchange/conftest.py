"""A realistic Label Studio JSON export (fixtures/labelstudio_export.json, the fields LS 1.x writes)
with its images placed where its references point: under a source root, and one embedded."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from server.demo.synthetic import render_person

FIXTURE = Path(__file__).with_name("fixtures") / "labelstudio_export.json"
CATEGORY_MAP = {"shot_type": "shot.type"}


def person_bytes(seed: int, fmt: str) -> bytes:
    image, _ = render_person(seed)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def ls_export(env: dict[str, Any]) -> list[dict[str, Any]]:
    media = Path(env["sources"]) / "ls-media"
    media.mkdir()
    (media / "person-1.jpg").write_bytes(person_bytes(31, "JPEG"))
    (media / "person-2.png").write_bytes(person_bytes(32, "PNG"))
    data_uri = "data:image/jpeg;base64," + base64.b64encode(person_bytes(35, "JPEG")).decode()
    tasks: list[dict[str, Any]] = json.loads(FIXTURE.read_text())
    for task in tasks:
        if task["data"].get("image") == "__DATA_URI__":
            task["data"]["image"] = data_uri
    return tasks
