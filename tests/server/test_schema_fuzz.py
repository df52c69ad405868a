"""Schemathesis over the whole OpenAPI schema: whatever a client sends, no server error.

Every operation is called with generated path, query and body values, as a platform admin
(a bearer token: no CSRF header needed) on a project with an image, so ids of real objects are
reached as well as made-up ones. A 5xx is a bug. On Postgres, as in production.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from PIL import Image

from server.main import create_app
from tests.server.conftest import Api

# Kept small: the suite has a time budget; CI runs it on every change.
MAX_EXAMPLES = 6


@pytest.fixture
def fuzzed_app(env: dict[str, Any], database_url: str) -> Iterator[Any]:
    if not database_url.startswith("postgresql"):
        pytest.skip("fuzzed once, on Postgres (the production database)")
    app = create_app()
    with TestClient(app) as client:
        from tests.server.conftest import make_user

        make_user("fuzz-admin@example.com", is_admin=True)
        admin = Api(client, "fuzz-admin@example.com")
        project = admin.post("/projects", json={"name": "Fuzzed"}).json()
        buffer = io.BytesIO()
        Image.new("RGB", (320, 400), "teal").save(buffer, format="JPEG")
        admin.post(
            f"/projects/{project['id']}/uploads",
            files=[("files", ("a.jpg", buffer.getvalue(), "image/jpeg"))],
        )
        app.state.fuzz_token = admin.post("/auth/tokens", json={"name": "fuzz"}).json()["token"]
        yield app


def test_no_operation_answers_a_server_error(fuzzed_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed_app)
    headers = {"Authorization": f"Bearer {fuzzed_app.state.fuzz_token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case: Any) -> None:
            response = case.call(headers=headers)
            # Health answers 503 by design when no worker runs (as here); anything else is a bug.
            if response.status_code >= 500 and not (
                case.path == "/api/v1/health" and response.status_code == 503
            ):
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
                )

        call()
    assert operations > 40
    assert not failures, "\n".join(sorted(set(failures))[:30])
