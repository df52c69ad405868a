"""A fresh API process warms up before its first request, and a database that is down at
start-up does not stop it from starting."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.assignments import views
from server.core import runtime
from server.core.db import Database
from server.main import create_app
from server.warmup import warm_up
from tests.server.conftest import Api


def test_start_up_reads_each_projects_taxonomy_before_the_first_request(
    admin: Api, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    views._project_versions.clear()
    monkeypatch.setenv("AA_WARM_UP", "true")
    runtime.reset()
    with TestClient(create_app()):
        # Read by the start-up alone: nothing has asked for this project yet.
        assert any(key[0] == project["id"] for key in views._project_versions)
    # A warmed process serves the queue as any other (the warm-up's claim matched nothing).
    assert admin.get(f"/projects/{project['id']}/assignments/stats").json()["leased"] == 0


def test_a_database_down_at_start_up_is_logged_not_fatal(env: dict[str, Any]) -> None:
    # Nothing listens on port 9: every connection is refused.
    down = Database("postgresql+psycopg://postgres@127.0.0.1:9/none")
    try:
        warm_up(down)
    finally:
        down.dispose()
