"""/health tells a load balancer and an operator what is down: database, broker, workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.core import runtime
from server.core.time import utcnow
from server.operations import service
from server.orm import WorkerHeartbeat

HEALTH = "/api/v1/health"


def _health(client: TestClient) -> tuple[int, dict[str, Any]]:
    client.cookies.clear()
    response = client.get(HEALTH)
    return response.status_code, dict(response.json())


def _beat(hostname: str = "cpu@box") -> None:
    with runtime.database().session_scope() as session:
        service.beat(session, hostname, "cpu,gpu", utcnow())


@pytest.fixture
def broker_folder(env: dict[str, Any]) -> Any:
    folder = env["data_dir"] / "broker"
    folder.mkdir(parents=True)
    return folder


def test_a_missing_broker_folder_is_reported_with_the_reason(env: dict[str, Any], client: TestClient) -> None:
    _beat()
    status, report = _health(client)
    assert status == 503
    assert report["ok"] is False
    assert report["broker"]["ok"] is False
    assert report["broker"]["transport"] == "filesystem"
    assert str(env["data_dir"] / "broker") in report["broker"]["detail"]
    assert report["database"]["ok"] is True and report["workers"]["ok"] is True


def test_without_a_worker_heartbeat_health_is_503_with_database_and_broker_ok(
    env: dict[str, Any], broker_folder: Any, client: TestClient
) -> None:
    status, report = _health(client)
    assert status == 503
    dialect = "sqlite" if env["database_url"].startswith("sqlite") else "postgresql"
    assert report["database"] == {"ok": True, "dialect": dialect}
    assert report["broker"]["ok"] is True
    assert report["workers"] == {"ok": False, "alive": [], "stale": 0}
    assert report["ok"] is False


def test_a_worker_heartbeat_makes_health_200(broker_folder: Any, client: TestClient) -> None:
    _beat("cpu@box")
    status, report = _health(client)
    assert status == 200, report
    assert report["ok"] is True
    assert [(w["hostname"], w["queues"]) for w in report["workers"]["alive"]] == [("cpu@box", ["cpu", "gpu"])]


def test_a_heartbeat_is_an_upsert_per_worker(broker_folder: Any, client: TestClient) -> None:
    for _ in range(3):
        _beat("cpu@box")
    _beat("cpu@other")
    with runtime.database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 2
    assert len(_health(client)[1]["workers"]["alive"]) == 2


def test_a_stale_heartbeat_does_not_count_as_a_live_worker(broker_folder: Any, client: TestClient) -> None:
    _beat("cpu@box")
    with runtime.database().session_scope() as session:
        worker = session.get(WorkerHeartbeat, "cpu@box")
        assert worker is not None
        worker.last_seen_at = utcnow() - timedelta(minutes=5)
    status, report = _health(client)
    assert status == 503
    assert report["workers"] == {"ok": False, "alive": [], "stale": 1}
    _beat("cpu@box")
    assert _health(client)[0] == 200


def test_a_worker_that_stopped_cleanly_is_forgotten(broker_folder: Any, client: TestClient) -> None:
    _beat("cpu@box")
    with runtime.database().session_scope() as session:
        service.forget(session, "cpu@box")
    status, report = _health(client)
    assert status == 503
    assert report["workers"]["alive"] == []


def test_an_unreachable_database_is_503_not_500(
    env: dict[str, Any], broker_folder: Any, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AA_DATABASE_URL", f"sqlite:///{env['data_dir'] / 'missing-folder' / 'db.sqlite'}")
    runtime.reset()
    status, report = _health(client)
    assert status == 503
    assert report["database"]["ok"] is False
    assert report["workers"]["ok"] is False
    assert report["broker"]["ok"] is True
    assert "missing-folder" not in str(report)  # no connection details in a public answer
