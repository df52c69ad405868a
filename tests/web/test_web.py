"""server.web: the built UI at `/`, client routes answered with index.html, the API left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.web import mount_web

INDEX = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1a2b.js"></script>'


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "app-1a2b.js").write_text("console.log('ui')")
    (tmp_path / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return tmp_path


@pytest.fixture
def client(dist: Path) -> TestClient:
    app = FastAPI()

    @app.get("/api/v1/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    assert mount_web(app, dist)
    return TestClient(app)


def test_client_routes_get_the_index_without_caching(client: TestClient) -> None:
    for path in ("/", "/login", "/projects/3/review"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'id="root"' in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_good(client: TestClient) -> None:
    response = client.get("/assets/app-1a2b.js")
    assert response.status_code == 200
    assert response.text == "console.log('ui')"
    assert "immutable" in response.headers["cache-control"]
    assert client.get("/favicon.svg").headers["cache-control"] == "no-cache"


def test_a_missing_asset_is_a_404_not_the_index(client: TestClient) -> None:
    response = client.get("/assets/app-old.js")
    assert response.status_code == 404
    assert 'id="root"' not in response.text


def test_api_paths_never_fall_back_to_the_ui(client: TestClient) -> None:
    assert client.get("/api/v1/ping").json() == {"ok": True}
    for method, path, status in [
        ("GET", "/api/v1/no-such-route", 404),
        ("POST", "/api/v1/no-such-route", 404),
        ("GET", "/api", 404),
        ("POST", "/api/v1/ping", 405),
    ]:
        response = client.request(method, path)
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"].startswith("application/json")


def test_paths_cannot_leave_the_build(client: TestClient, dist: Path) -> None:
    (dist.parent / "secret.txt").write_text("secret")
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        assert "secret" not in client.get(path).text


def test_writes_outside_the_api_are_refused(client: TestClient) -> None:
    assert client.post("/projects/3/review").status_code == 405


def test_nothing_is_mounted_without_a_build(tmp_path: Path) -> None:
    app = FastAPI()
    assert mount_web(app, tmp_path / "missing") is False
    assert TestClient(app).get("/").status_code == 404
