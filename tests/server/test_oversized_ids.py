"""Ids in a path beyond what a 64-bit row id can hold are answered like any id that does not
exist, on both databases: never a driver overflow turned into a server error."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.server.conftest import Api

HUGE = 2**70


def test_a_path_id_beyond_64_bits_is_not_found_never_a_server_error(
    client: TestClient, admin: Api, project: dict[str, Any]
) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    checked = 0
    for path, operations in schema["paths"].items():
        params = re.findall(r"\{(\w+)\}", path)
        int_params = [p for p in params if p.endswith("_id")]
        if not int_params:
            continue
        for method in operations:
            if method not in {"get", "delete"}:
                continue  # writes need bodies; their ids go through the same dependencies
            for huge in int_params:
                values = {p: project["id"] if p == "project_id" else 1 for p in params}
                values[huge] = HUGE
                url = path.removeprefix("/api/v1").format(**{k: str(v) for k, v in values.items()})
                response = admin.request(method.upper(), url)
                assert response.status_code in {404, 422}, f"{method} {url}: {response.status_code}"
                checked += 1
    assert checked > 20
