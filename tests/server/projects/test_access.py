"""Who may call what. The route lists come from the OpenAPI schema, so a new route is covered
the day it is added: an id parameter nobody taught these tests fails them until one does."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, text

from server.core import runtime
from server.orm import Assignment, Base, Project, Subject
from tests.server.conftest import Api, make_user

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

PREFIX = "/api/v1"
# The invite routes are reached without an account: the link's token is the credential.
PUBLIC = {("GET", "/health"), ("GET", "/auth/invites/{token}"), ("POST", "/auth/invites/{token}/accept")}
# Not scoped to a project or an image: each has tests of its own (auth, admin-only routes).
UNSCOPED = re.compile(r"^/(health|auth(/.*)?|users(/.*)?|projects)$|^/auth/")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Rows that change with every authenticated request: sessions touched, tokens used, heartbeats.
VOLATILE_TABLES = {"auth_sessions", "api_tokens", "login_attempts", "worker_heartbeats"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # without the /api/v1 prefix, with {params}
    operation: dict[str, Any]

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _routes(client: TestClient) -> list[Route]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    routes = [
        Route(method.upper(), path.removeprefix(PREFIX), operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]
    assert len(routes) > 20, "the schema lost its routes"
    return routes


def _jpeg(color: str = "red", size: tuple[int, int] = (300, 320)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


# --- bodies generated from the schema -----------------------------------------------------------


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    schema = _resolve(schema, components)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _example(options[0], components)
    if "allOf" in schema:
        return _example(schema["allOf"][0], components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _example(prop, components)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    if kind == "array":
        return [_example(schema.get("items", {}), components)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    return "x" * max(1, int(schema.get("minLength", 1)))


def _body(route: Route, schema: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Request keyword arguments with a valid-looking body, so that only access decides."""
    if str(route) in overrides:
        return dict(overrides[str(route)])
    content = route.operation.get("requestBody", {}).get("content", {})
    components = schema.get("components", {}).get("schemas", {})
    if "application/json" in content:
        return {"json": _example(content["application/json"]["schema"], components)}
    if "multipart/form-data" in content:
        form = _resolve(content["multipart/form-data"]["schema"], components)
        files = [(name, ("person.jpg", _jpeg("green"), "image/jpeg")) for name in form.get("required", [])]
        return {"files": files}
    return {}


# --- the database, as a fingerprint --------------------------------------------------------------


def _fingerprint() -> list[str]:
    """Every durable row of every table, so that 'nothing changed' means exactly that."""
    rows: list[str] = []
    with runtime.database().session_scope() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            for row in session.execute(select(table)):
                rows.append(f"{table.name}:{tuple(row)!r}")
    return sorted(rows)


def _stored_files(env: dict[str, Any]) -> set[str]:
    blobs = env["data_dir"] / "blobs"
    return {str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file()} if blobs.exists() else set()


# --- two projects with one of everything ---------------------------------------------------------


@dataclass
class World:
    a: int
    b: int
    ids_in_b: dict[str, int | str]  # path parameter -> an object of project B
    b_member_email: str
    b_lead: Api


@pytest.fixture
def world(env: dict[str, Any], client: TestClient, admin: Api) -> Iterator[World]:
    a = admin.post("/projects", json={"name": "Alpha"}).json()["id"]
    b = admin.post("/projects", json={"name": "Bravo"}).json()["id"]
    (env["sources"] / "bravo").mkdir()
    (env["sources"] / "bravo" / "one.jpg").write_bytes(_jpeg("blue"))
    source = admin.post(f"/projects/{b}/sources", json={"name": "bravo", "path": "bravo"})
    assert source.status_code == 201, source.text
    run = admin.post(f"/projects/{b}/sources/{source.json()['id']}/runs")
    assert run.status_code == 202, run.text
    upload = admin.post(f"/projects/{b}/uploads", files=[("files", ("b.jpg", _jpeg("yellow"), "image/jpeg"))])
    assert upload.status_code == 202, upload.text
    images = admin.get(f"/projects/{b}/images").json()
    assert len(images) == 2
    member_email = "bravo-annotator@example.com"
    make_user(member_email)
    member = admin.post(f"/projects/{b}/members", json={"email": member_email, "role": "annotator"})
    assert member.status_code == 201, member.text
    make_user("bravo-lead@example.com")
    admin.post(f"/projects/{b}/members", json={"email": "bravo-lead@example.com", "role": "lead"})
    version = admin.get(f"/projects/{b}/taxonomy").json()["id"]
    invite = admin.post(f"/projects/{b}/invites", json={"email": "bravo-invitee@example.com"})
    assert invite.status_code == 201, invite.text
    hook = {"url": "https://hooks.example.com/bravo", "events": ["export.done"]}
    webhook = admin.post(f"/projects/{b}/webhooks", json=hook)
    assert webhook.status_code == 201, webhook.text
    export = admin.post(f"/projects/{b}/exports", json={"format": "jsonl"})
    assert export.status_code == 202, export.text
    round_ = admin.post(f"/projects/{b}/rounds")
    assert round_.status_code == 202, round_.text
    with runtime.database().session_scope() as session:
        assignment_id = session.scalar(select(Assignment.id).where(Assignment.project_id == b))
        subject = session.scalars(select(Subject).where(Subject.project_id == b)).first()
        assert assignment_id is not None and subject is not None
        # The embedded pipeline has no parser: give the subject a mask so its route answers.
        runtime.storage().put("masks/test/mask.png", _jpeg("black"))
        subject.parsing_mask_key = "masks/test/mask.png"
        subject_id = subject.id
    yield World(
        a=a,
        b=b,
        ids_in_b={
            "project_id": b,
            "image_id": images[0]["id"],
            "source_id": source.json()["id"],
            "run_id": run.json()["id"],
            "version_id": version,
            "user_id": member.json()["user_id"],
            "assignment_id": assignment_id,
            "subject_id": subject_id,
            "invite_id": invite.json()["id"],
            "webhook_id": webhook.json()["id"],
            "export_id": export.json()["id"],
            "round_id": round_.json()["id"],
            "name": "manifest.json",
        },
        b_member_email=member_email,
        b_lead=Api(client, "bravo-lead@example.com"),
    )


def _fill(route: Route, values: dict[str, int | str]) -> str:
    missing = [p for p in route.params if p not in values]
    assert not missing, (
        f"{route} takes {missing}: add an object of project B for it to the `world` fixture "
        "so the cross-project test covers this route"
    )
    return route.path.format(**{p: values[p] for p in route.params})


def _scoped(routes: list[Route]) -> list[Route]:
    scoped = [r for r in routes if not UNSCOPED.match(r.path)]
    for route in scoped:
        assert route.params, f"{route} is neither scoped by an id nor listed as unscoped"
    return scoped


# --- no credentials ------------------------------------------------------------------------------


def test_every_route_without_credentials_is_401(client: TestClient, admin: Api) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    checked = 0
    for route in _routes(client):
        if (route.method, route.path) in PUBLIC or route.path == "/auth/login":
            continue
        client.cookies.clear()
        path = route.path.format(**{p: 1 for p in route.params})
        response = client.request(route.method, PREFIX + path, **_body(route, schema, {}))
        assert response.status_code == 401, f"{route}: {response.status_code} {response.text[:200]}"
        assert response.json()["error"] == "not_authenticated"
        checked += 1
    assert checked > 20


def test_a_garbage_cookie_or_bearer_token_is_401(client: TestClient) -> None:
    client.cookies.clear()
    client.cookies.set("aa_session", "not-a-session")
    assert client.get(f"{PREFIX}/projects").status_code == 401
    client.cookies.clear()
    response = client.get(f"{PREFIX}/projects", headers={"Authorization": "Bearer aa_nope"})
    assert response.status_code == 401


def test_health_needs_no_credentials(client: TestClient) -> None:
    client.cookies.clear()
    assert client.get(f"{PREFIX}/health").status_code in {200, 503}


# --- another project's objects -------------------------------------------------------------------


def test_every_route_of_another_project_is_404_and_changes_nothing(
    env: dict[str, Any], client: TestClient, admin: Api, member_factory: Any, world: World
) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    routes = _scoped(_routes(client))
    callers = {
        role: member_factory(world.a, role, f"alpha-{role}@example.com") for role in ("annotator", "lead")
    }
    overrides = {
        "POST /projects/{project_id}/members": {
            "json": {"email": "alpha-annotator@example.com", "role": "lead"}
        },
    }
    before, files_before = _fingerprint(), _stored_files(env)
    checked = 0
    for role, caller in callers.items():
        for route in routes:
            path = _fill(route, world.ids_in_b)
            response = caller.request(route.method, path, **_body(route, schema, overrides))
            assert response.status_code == 404, (
                f"{role} of A: {route.method} {path} -> {response.status_code} {response.text[:200]}"
            )
            assert response.json()["error"] == "not_found"
            checked += 1
            if len(route.params) < 2 or "project_id" not in route.params:
                continue
            # B's object smuggled into A's own route: answered as if the id did not exist.
            smuggled = _fill(route, {**world.ids_in_b, "project_id": world.a})
            made_up = _fill(route, {**{p: 10**9 for p in route.params}, "project_id": world.a})
            got = caller.request(route.method, smuggled, **_body(route, schema, overrides))
            baseline = caller.request(route.method, made_up, **_body(route, schema, overrides))
            assert (got.status_code, got.json()) == (baseline.status_code, baseline.json()), (
                f"{role} of A: {route.method} {smuggled} tells B's id from a made-up one"
            )
            assert got.status_code in ({404} if role == "lead" else {403, 404}), (
                f"{role} of A: {route.method} {smuggled} -> {got.status_code}"
            )
            checked += 1
    assert checked >= 2 * len(routes)
    assert _fingerprint() == before
    assert _stored_files(env) == files_before


def test_the_ids_used_for_project_b_are_real(world: World, client: TestClient) -> None:
    """The 404s above are about tenancy: B's own lead reaches every one of those GETs."""
    for route in _scoped(_routes(client)):
        if route.method != "GET":
            continue
        response = world.b_lead.get(_fill(route, world.ids_in_b))
        assert response.status_code == 200, f"{route}: {response.status_code} {response.text[:200]}"


def test_ids_of_another_project_in_query_filters_return_nothing_of_it(
    client: TestClient, member_factory: Any, world: World
) -> None:
    lead_a = member_factory(world.a, "lead", "alpha-lead@example.com")
    for route in _scoped(_routes(client)):
        if route.method != "GET" or route.params != ["project_id"]:
            continue
        for param in route.operation.get("parameters", []):
            name = param["name"]
            if param["in"] != "query" or not name.endswith("_id") or name == "after_id":
                continue
            assert name in world.ids_in_b, f"{route} filters by {name}: add it to the `world` fixture"
            path = route.path.format(project_id=world.a)
            response = lead_a.get(path, params={name: world.ids_in_b[name]})
            assert response.status_code == 200, response.text
            assert response.json() == [], f"{route}?{name}= shows project B's rows"


def test_the_project_list_shows_only_the_callers_projects(
    admin: Api, member_factory: Any, project: dict[str, Any]
) -> None:
    other = admin.post("/projects", json={"name": "Other"}).json()["id"]
    annotator = member_factory(project["id"], "annotator", "ann@example.com")
    assert [p["id"] for p in annotator.get("/projects").json()] == [project["id"]]
    assert {p["id"] for p in admin.get("/projects").json()} == {project["id"], other}


# --- roles ---------------------------------------------------------------------------------------


def test_an_annotator_cannot_manage_the_project_but_a_lead_can(
    env: dict[str, Any], admin: Api, member_factory: Any, project: dict[str, Any]
) -> None:
    pid = project["id"]
    annotator = member_factory(pid, "annotator", "ann@example.com")
    lead = member_factory(pid, "lead", "lead@example.com")
    make_user("new@example.com")
    (env["sources"] / "shoot").mkdir()
    taxonomy = admin.get(f"/projects/{pid}/taxonomy/versions").json()
    yaml_text = _default_yaml().replace("name: human-v1", "name: human-v1-edited", 1)
    actions = [
        ("POST", f"/projects/{pid}/members", {"json": {"email": "new@example.com", "role": "annotator"}}),
        ("POST", f"/projects/{pid}/sources", {"json": {"name": "shoot", "path": "shoot"}}),
        ("POST", f"/projects/{pid}/uploads", {"files": [("files", ("a.jpg", _jpeg(), "image/jpeg"))]}),
        ("POST", f"/projects/{pid}/taxonomy", {"json": {"yaml": yaml_text}}),
        ("PUT", f"/projects/{pid}/settings", {"json": {"audit_share": 0.5}}),
    ]
    before = _fingerprint()
    for method, path, kwargs in actions:
        response = annotator.request(method, path, **kwargs)
        assert response.status_code == 403, f"annotator {method} {path}: {response.status_code}"
        assert response.json()["error"] == "forbidden"
    assert _fingerprint() == before
    for method, path, kwargs in actions:
        response = lead.request(method, path, **kwargs)
        assert response.status_code in {200, 201, 202}, f"lead {method} {path}: {response.text}"
    assert len(admin.get(f"/projects/{pid}/taxonomy/versions").json()) == len(taxonomy) + 1
    assert admin.get(f"/projects/{pid}").json()["settings"]["audit_share"] == 0.5


def test_a_reviewer_cannot_manage_the_project_either(member_factory: Any, project: dict[str, Any]) -> None:
    reviewer = member_factory(project["id"], "reviewer", "rev@example.com")
    response = reviewer.post(f"/projects/{project['id']}/sources", json={"name": "x", "path": "x"})
    assert response.status_code == 403
    assert reviewer.get(f"/projects/{project['id']}/members").status_code == 200


def test_nobody_grants_a_role_above_their_own(member_factory: Any, project: dict[str, Any]) -> None:
    lead = member_factory(project["id"], "lead", "lead@example.com")
    make_user("friend@example.com")
    members = f"/projects/{project['id']}/members"
    refused = lead.post(members, json={"email": "friend@example.com", "role": "admin"})
    assert refused.status_code == 403
    assert "friend@example.com" not in {m["email"] for m in lead.get(members).json()}
    granted = lead.post(members, json={"email": "friend@example.com", "role": "lead"})
    assert granted.status_code == 201


def test_a_lead_cannot_raise_their_own_role_to_admin(member_factory: Any, project: dict[str, Any]) -> None:
    lead = member_factory(project["id"], "lead", "lead@example.com")
    members = f"/projects/{project['id']}/members"
    response = lead.post(members, json={"email": "lead@example.com", "role": "admin"})
    assert response.status_code == 403
    roles = {m["email"]: m["role"] for m in lead.get(members).json()}
    assert roles["lead@example.com"] == "lead"


def test_only_platform_admins_create_projects(
    admin: Api, member_factory: Any, project: dict[str, Any]
) -> None:
    lead = member_factory(project["id"], "lead", "lead@example.com")
    response = lead.post("/projects", json={"name": "Mine"})
    assert response.status_code == 403
    assert [p["name"] for p in admin.get("/projects").json()] == ["People"]
    assert admin.post("/projects", json={"name": "Second"}).status_code == 201


def test_only_platform_admins_create_users(member_factory: Any, project: dict[str, Any]) -> None:
    lead = member_factory(project["id"], "lead", "lead@example.com")
    response = lead.post("/users", json={"email": "x@example.com", "password": "long enough password"})
    assert response.status_code == 403


def test_a_lead_cannot_delete_a_project(member_factory: Any, project: dict[str, Any]) -> None:
    lead = member_factory(project["id"], "lead", "lead@example.com")
    assert lead.delete(f"/projects/{project['id']}").status_code == 403
    assert lead.get(f"/projects/{project['id']}").status_code == 200


def test_a_soft_deleted_project_is_404_for_everyone_and_keeps_its_rows(
    admin: Api, member_factory: Any, project: dict[str, Any]
) -> None:
    pid = project["id"]
    lead = member_factory(pid, "lead", "lead@example.com")
    assert admin.delete(f"/projects/{pid}").status_code == 204
    for caller in (admin, lead):
        assert caller.get(f"/projects/{pid}").status_code == 404
        assert caller.get(f"/projects/{pid}/taxonomy").status_code == 404
        assert caller.post(f"/projects/{pid}/sources", json={"name": "x", "path": "x"}).status_code == 404
        assert caller.get("/projects").json() == []
    assert admin.delete(f"/projects/{pid}").status_code == 404
    # Soft: the row is still there, with its deletion time, for an admin to restore.
    with runtime.database().session_scope() as session:
        stored = session.get(Project, pid)
        assert stored is not None and stored.deleted_at is not None
        assert session.execute(text("SELECT count(*) FROM taxonomy_versions")).scalar_one() == 1


def _default_yaml() -> str:
    from server.taxonomy.service import default_yaml

    return default_yaml("human-v1")


# --- the role table ------------------------------------------------------------------------------

# Every project-scoped route and the least role that may call it. Derived from the routes'
# dependencies below and compared with this table, so that changing who may call a route is a
# reviewed change here; then enforced by calling each route with every lesser role.
ROLE_TABLE: dict[tuple[str, str], str] = {
    ("DELETE", "/projects/{project_id}"): "admin",
    ("GET", "/projects/{project_id}"): "annotator",
    ("GET", "/projects/{project_id}/annotators"): "reviewer",
    ("GET", "/projects/{project_id}/assignments/mine"): "annotator",
    ("POST", "/projects/{project_id}/assignments/next"): "annotator",
    ("GET", "/projects/{project_id}/assignments/stats"): "annotator",
    ("GET", "/projects/{project_id}/dashboard/annotators"): "reviewer",
    ("GET", "/projects/{project_id}/dashboard/funnel"): "annotator",
    ("GET", "/projects/{project_id}/dashboard/work"): "annotator",
    ("GET", "/projects/{project_id}/eval-set"): "annotator",
    ("POST", "/projects/{project_id}/eval-set"): "lead",
    ("GET", "/projects/{project_id}/exports"): "annotator",
    ("POST", "/projects/{project_id}/exports"): "lead",
    ("POST", "/projects/{project_id}/exports/documents/refresh"): "lead",
    ("GET", "/projects/{project_id}/exports/{export_id}"): "annotator",
    ("POST", "/projects/{project_id}/exports/{export_id}/cancel"): "lead",
    ("GET", "/projects/{project_id}/exports/{export_id}/files/{name}"): "annotator",
    ("POST", "/projects/{project_id}/exports/{export_id}/resume"): "lead",
    ("GET", "/projects/{project_id}/flywheel"): "annotator",
    ("POST", "/projects/{project_id}/gold"): "reviewer",
    ("GET", "/projects/{project_id}/images"): "annotator",
    ("GET", "/projects/{project_id}/images/stats"): "annotator",
    ("POST", "/projects/{project_id}/import/labelstudio"): "lead",
    ("GET", "/projects/{project_id}/ingest-runs"): "annotator",
    ("GET", "/projects/{project_id}/ingest-runs/{run_id}"): "annotator",
    ("POST", "/projects/{project_id}/ingest-runs/{run_id}/cancel"): "lead",
    ("GET", "/projects/{project_id}/invites"): "lead",
    ("POST", "/projects/{project_id}/invites"): "lead",
    ("DELETE", "/projects/{project_id}/invites/{invite_id}"): "lead",
    ("GET", "/projects/{project_id}/members"): "annotator",
    ("POST", "/projects/{project_id}/members"): "lead",
    ("DELETE", "/projects/{project_id}/members/{user_id}"): "lead",
    ("GET", "/projects/{project_id}/model-versions"): "annotator",
    ("GET", "/projects/{project_id}/pipeline"): "annotator",
    ("GET", "/projects/{project_id}/rejections"): "annotator",
    ("POST", "/projects/{project_id}/promote"): "lead",
    ("POST", "/projects/{project_id}/rollback"): "lead",
    ("GET", "/projects/{project_id}/rounds"): "annotator",
    ("POST", "/projects/{project_id}/rounds"): "lead",
    ("GET", "/projects/{project_id}/rounds/{round_id}"): "annotator",
    ("PUT", "/projects/{project_id}/settings"): "lead",
    ("GET", "/projects/{project_id}/sources"): "annotator",
    ("POST", "/projects/{project_id}/sources"): "lead",
    ("POST", "/projects/{project_id}/sources/s3"): "lead",
    ("POST", "/projects/{project_id}/sources/url-list"): "lead",
    ("POST", "/projects/{project_id}/sources/url-list-link"): "lead",
    ("POST", "/projects/{project_id}/sources/{source_id}/runs"): "lead",
    ("PUT", "/projects/{project_id}/sources/{source_id}/watch"): "lead",
    ("GET", "/projects/{project_id}/subjects/{subject_id}/caption"): "annotator",
    ("POST", "/projects/{project_id}/subjects/{subject_id}/caption/preview"): "annotator",
    ("GET", "/projects/{project_id}/taxonomy"): "annotator",
    ("POST", "/projects/{project_id}/taxonomy"): "lead",
    ("GET", "/projects/{project_id}/taxonomy/versions"): "annotator",
    ("GET", "/projects/{project_id}/taxonomy/versions/{version_id}"): "annotator",
    ("POST", "/projects/{project_id}/uploads"): "lead",
    ("GET", "/projects/{project_id}/webhooks"): "lead",
    ("POST", "/projects/{project_id}/webhooks"): "lead",
    ("DELETE", "/projects/{project_id}/webhooks/{webhook_id}"): "lead",
    ("GET", "/projects/{project_id}/webhooks/{webhook_id}/deliveries"): "lead",
}
ROLES = ("annotator", "reviewer", "lead")


def _declared_roles(app: Any) -> dict[tuple[str, str], str]:
    from server.auth import deps as auth_deps
    from server.projects import deps as project_deps

    names = {
        project_deps._member: "annotator",
        project_deps._reviewer: "reviewer",
        project_deps._lead: "lead",
        auth_deps._admin: "admin",
    }
    rank = {"annotator": 0, "reviewer": 1, "lead": 2, "admin": 3}

    def needs(dependant: Any) -> set[str]:
        found: set[str] = set()
        for sub in dependant.dependencies:
            if sub.call in names:
                found.add(names[sub.call])
            found |= needs(sub)
        return found

    table: dict[tuple[str, str], str] = {}
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for context in contexts() if contexts is not None else ():
            path = context.path_format.removeprefix(PREFIX)
            if "{project_id}" not in path:
                continue
            roles = needs(context.dependant)
            assert roles, f"{path} resolves no project role"
            for method in context.methods:
                table[(method, path)] = max(roles, key=rank.__getitem__)
    return table


def test_every_project_route_declares_the_role_in_the_table(client: TestClient) -> None:
    declared = _declared_roles(client.app)
    assert declared == ROLE_TABLE, {
        "changed": {k: (ROLE_TABLE.get(k), v) for k, v in declared.items() if ROLE_TABLE.get(k) != v},
        "gone": sorted(set(ROLE_TABLE) - set(declared)),
    }


def test_every_role_below_a_routes_minimum_is_refused_and_changes_nothing(
    env: dict[str, Any], client: TestClient, member_factory: Any, world: World
) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    b = world.ids_in_b["project_id"]
    callers = {role: member_factory(b, role, f"bravo-{role}-2@example.com") for role in ROLES}
    before, files_before = _fingerprint(), _stored_files(env)
    checked = 0
    for (method, path), minimum in ROLE_TABLE.items():
        route = Route(method, path, schema["paths"][PREFIX + path][method.lower()])
        for role in ROLES[: ROLES.index(minimum)] if minimum in ROLES else ROLES:
            response = callers[role].request(method, _fill(route, world.ids_in_b), **_body(route, schema, {}))
            assert response.status_code == 403, f"{role}: {method} {path} -> {response.status_code}"
            assert response.json()["error"] == "forbidden"
            checked += 1
    assert checked > 40
    assert _fingerprint() == before
    assert _stored_files(env) == files_before
