"""Listings: filters and sorting accept only listed fields, values are bound parameters, page
sizes are capped (RELIABILITY.md, bad input).

The routes come from the OpenAPI schema, so a new listing is covered the day it is added: a GET
that returns an array must either take a capped `limit` or be named in BOUNDED below with the
reason its length is bounded, and a query parameter nobody taught these tests fails them until
one does.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from server.core import runtime
from server.orm import Subject
from tests.server.conftest import Api

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

PREFIX = "/api/v1"
# The largest page any listing may serve.
MAX_PAGE = 500
# Listings without a page size, each bounded by something other than the data's growth.
BOUNDED = {
    "/auth/tokens": "a person's own API tokens",
    "/users": "the accounts of one deployment (admins only)",
    "/projects": "the projects a person is a member of",
    "/projects/{project_id}/members": "one project's members",
    "/projects/{project_id}/taxonomy/versions": "versions a lead uploaded by hand",
    "/projects/{project_id}/sources": "sources a lead added by hand",
    "/projects/{project_id}/model-versions": "one per round at most",
    "/projects/{project_id}/assignments/mine": "live leases: at most three per person",
    "/projects/{project_id}/annotators": "one project's members",
    "/projects/{project_id}/exports": "exports a lead started by hand",
    "/projects/{project_id}/rounds": "rounds a lead or the schedule started",
    "/projects/{project_id}/invites": "invites a lead sent by hand",
    "/projects/{project_id}/webhooks": "webhooks a lead added by hand",
    "/projects/{project_id}/dashboard/annotators": "one project's members",
}
# Hostile values for parameters the routes do not take: ignored, never reaching a query.
UNLISTED = {
    "sort": "__class__",
    "order_by": "password_hash",
    "order": "desc; DROP TABLE users",
    "filter": "1=1",
    "state": "' OR '1'='1",
    "page_size": "100000",
}
TOO_BIG_ID = str(2**70)
# Every query parameter a listing takes, with values it must refuse (4xx) and values it must
# serve (200). A parameter missing here fails test_every_query_parameter_is_covered.
REFUSED: dict[str, list[str]] = {
    "limit": ["0", "-1", "abc", "1.5", TOO_BIG_ID],  # plus the cap + 1, read from the schema
    "after_id": ["-1", "abc", TOO_BIG_ID],
    "source_id": ["abc", TOO_BIG_ID],
    "run_id": ["abc", TOO_BIG_ID],
    "stage": ["deleted", "' OR 1=1 --", "READY"],
    "states": ["predicted", "verified,rejected", "x" * 101, ","],
    "hours": ["0", "-5", "abc"],  # plus the cap + 1
}
SERVED: dict[str, list[str]] = {
    "limit": ["1"],  # plus the cap itself
    "after_id": ["0", str(2**63 - 1)],
    "source_id": ["1", str(2**63 - 1)],
    "run_id": ["1", str(2**63 - 1)],
    "stage": ["pooled", "prelabeled"],
    "states": ["verified", "verified,auto_accepted"],
    "hours": ["1"],
}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 320), "orange").save(out, format="JPEG")
    return out.getvalue()


def _gets(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    gets = [(path.removeprefix(PREFIX), ops["get"]) for path, ops in schema["paths"].items() if "get" in ops]
    assert len(gets) > 20, "the schema lost its routes"
    return gets


def _returns_array(operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    return bool(content.get("application/json", {}).get("schema", {}).get("type") == "array")


def _query(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "query"}


def _maximum(schema: dict[str, Any]) -> int | None:
    options = schema.get("anyOf", [schema])
    found = [o["maximum"] for o in options if "maximum" in o]
    return int(found[0]) if found else None


def _listings(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    """GET routes that return arrays or take query parameters (filters, pages, windows)."""
    return [(path, op) for path, op in _gets(client) if _returns_array(op) or _query(op)]


@pytest.fixture
def ids(admin: Api) -> dict[str, int]:
    project = admin.post("/projects", json={"name": "Listings"}).json()["id"]
    upload = admin.post(f"/projects/{project}/uploads", files=[("files", ("a.jpg", _jpeg(), "image/jpeg"))])
    assert upload.status_code == 202, upload.text
    hook = admin.post(
        f"/projects/{project}/webhooks",
        json={"url": "https://hooks.example.com/x", "events": ["export.done"]},
    )
    assert hook.status_code == 201, hook.text
    with runtime.database().session_scope() as session:
        subject = session.scalar(select(Subject.id).where(Subject.project_id == project))
    assert subject is not None, "the upload made no subject"
    return {"project_id": project, "webhook_id": hook.json()["id"], "subject_id": subject}


def _url(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)


def test_every_listing_caps_its_page_size_or_says_why_it_needs_none(client: TestClient) -> None:
    problems = []
    for path, operation in _listings(client):
        query = _query(operation)
        if "limit" in query:
            cap = _maximum(query["limit"])
            if cap is None or cap > MAX_PAGE:
                problems.append(f"{path}: limit capped at {cap}, not at most {MAX_PAGE}")
        elif _returns_array(operation) and path not in BOUNDED:
            problems.append(f"{path}: an array with no limit; add a capped limit or a reason to BOUNDED")
    assert problems == []
    stale = set(BOUNDED) - {path for path, _ in _gets(client)}
    assert stale == set(), "BOUNDED names routes that no longer exist"


def test_every_query_parameter_is_covered(client: TestClient) -> None:
    params = {name for _, operation in _listings(client) for name in _query(operation)}
    assert params - set(REFUSED) == set(), "teach REFUSED and SERVED the new query parameters"


def test_over_cap_pages_and_unlisted_values_are_refused_never_a_server_error(
    admin: Api, ids: dict[str, int]
) -> None:
    wrong = []
    for path, operation in _listings(admin.client):
        url = _url(path, ids)
        for name, schema in _query(operation).items():
            refused = list(REFUSED[name])
            served = list(SERVED[name])
            cap = _maximum(schema)
            if cap is not None:
                refused.append(str(cap + 1))
                served.append(str(cap))
            for value in refused:
                response = admin.get(url, params={name: value})
                if response.status_code not in {400, 422}:
                    wrong.append(
                        f"GET {url}?{name}={value[:30]}: {response.status_code}, expected 400 or 422"
                    )
                elif "error" not in response.json():
                    wrong.append(f"GET {url}?{name}={value[:30]}: no error code in {response.text[:100]}")
            for value in served:
                response = admin.get(url, params={name: value})
                if response.status_code != 200:
                    wrong.append(f"GET {url}?{name}={value}: {response.status_code} {response.text[:100]}")
    assert wrong == []


def test_page_size_is_honoured_up_to_the_cap(admin: Api, ids: dict[str, int]) -> None:
    project = ids["project_id"]
    more = admin.post(
        f"/projects/{project}/uploads",
        files=[("files", (f"{i}.jpg", _jpeg_of(i), "image/jpeg")) for i in range(3)],
    )
    assert more.status_code == 202, more.text
    everything = admin.get(f"/projects/{project}/images", params={"limit": MAX_PAGE}).json()
    assert len(everything) == 4
    page = admin.get(f"/projects/{project}/images", params={"limit": 2}).json()
    assert [i["id"] for i in page] == [i["id"] for i in everything[:2]]
    after = admin.get(f"/projects/{project}/images", params={"limit": 2, "after_id": page[-1]["id"]}).json()
    assert [i["id"] for i in after] == [i["id"] for i in everything[2:]]


def _jpeg_of(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300 + seed, 320), (seed * 40 % 256, 90, 200)).save(out, format="JPEG")
    return out.getvalue()


def test_unlisted_sort_and_filter_parameters_change_nothing(admin: Api, ids: dict[str, int]) -> None:
    wrong = []
    for path, operation in _listings(admin.client):
        if not _returns_array(operation):
            continue
        url = _url(path, ids)
        plain = admin.get(url)
        assert plain.status_code == 200, f"GET {url}: {plain.status_code} {plain.text[:200]}"
        hostile = admin.get(url, params={k: v for k, v in UNLISTED.items() if k not in _query(operation)})
        if hostile.status_code != 200 or hostile.json() != plain.json():
            wrong.append(f"GET {url} with unlisted parameters: {hostile.status_code} {hostile.text[:100]}")
    assert wrong == []
