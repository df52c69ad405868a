"""API fixtures: an app on the test database, and logged-in clients for each role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server.auth import service as auth_service
from server.core import runtime
from server.main import create_app

ADMIN_EMAIL = "admin@example.com"
PASSWORD = "correct horse battery"


class Api:
    """A browser-like client: session cookie plus the CSRF header on unsafe methods."""

    def __init__(self, client: TestClient, email: str, password: str = PASSWORD) -> None:
        self.client = client
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]
        self.user = response.json()["user"]
        self.cookies = dict(response.cookies)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if method.upper() not in {"GET", "HEAD", "OPTIONS"}:
            headers.setdefault("X-CSRF-Token", self.csrf)
        self.client.cookies.clear()
        for name, value in self.cookies.items():
            self.client.cookies.set(name, value)
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def make_user(email: str, *, is_admin: bool = False, password: str = PASSWORD) -> int:
    with runtime.database().session_scope() as session:
        return auth_service.create_user(session, email, password, is_admin=is_admin).id


@pytest.fixture
def client(env: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient) -> Api:
    make_user(ADMIN_EMAIL, is_admin=True)
    return Api(client, ADMIN_EMAIL)


@pytest.fixture
def project(admin: Api) -> dict[str, Any]:
    response = admin.post("/projects", json={"name": "People"})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def member_factory(client: TestClient, admin: Api) -> Any:
    """Create a user with a role in a project and return a logged-in client for them."""

    def make(project_id: int, role: str, email: str | None = None) -> Api:
        email = email or f"{role}-{project_id}-{len(client.cookies)}@example.com"
        make_user(email)
        response = admin.post(f"/projects/{project_id}/members", json={"email": email, "role": role})
        assert response.status_code == 201, response.text
        return Api(client, email)

    return make


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its cheapest, for tests that log many people in (hashes stay argon2id)."""
    from argon2 import PasswordHasher

    from server.core import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
