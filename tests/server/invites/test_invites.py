"""Sign-up is by invite only: single use, expiring, revocable, never above the inviter's role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.auth.deps import SESSION_COOKIE
from server.core import runtime
from server.core.time import utcnow
from server.orm import AuthSession, Invite, Membership, User
from tests.server.conftest import PASSWORD, Api, make_user

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NEW_PASSWORD = "a long new password"


def _invite(api: Api, project_id: int, email: str = "new@example.com", role: str = "annotator") -> Any:
    response = api.post(f"/projects/{project_id}/invites", json={"email": email, "role": role})
    assert response.status_code == 201, response.text
    return response.json()


def _accept(client: TestClient, token: str, password: str | None = NEW_PASSWORD) -> httpx.Response:
    client.cookies.clear()
    return client.post(
        f"/api/v1/auth/invites/{token}/accept", json={"display_name": "New", "password": password}
    )


def _count(model: Any, *where: Any) -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_there_is_no_way_to_sign_up_without_an_invite(client: TestClient) -> None:
    paths = set(client.get("/api/v1/openapi.json").json()["paths"])
    assert not any("signup" in p or "register" in p for p in paths)
    # The only routes that create accounts: the admin's, and an invite's accept.
    assert {p for p in paths if p.endswith("/accept")} == {"/api/v1/auth/invites/{token}/accept"}
    client.cookies.clear()
    assert (
        client.post("/api/v1/users", json={"email": "x@example.com", "password": "p" * 12}).status_code == 401
    )


def test_an_invitee_signs_up_joins_the_project_with_the_role_and_is_logged_in(
    client: TestClient, admin: Api, project: dict[str, Any]
) -> None:
    invite = _invite(admin, project["id"], "New@Example.com ", "reviewer")
    assert invite["url"] == f"/invite/{invite['token']}"
    client.cookies.clear()
    preview = client.get(f"/api/v1/auth/invites/{invite['token']}").json()
    assert preview == {
        "project_name": "People",
        "email": "new@example.com",
        "role": "reviewer",
        "expires_at": preview["expires_at"],
        "account_exists": False,
    }
    accepted = _accept(client, invite["token"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["email"] == "new@example.com"
    me = Api.__new__(Api)
    me.client, me.csrf, me.cookies = client, accepted.json()["csrf_token"], dict(accepted.cookies)
    assert me.get("/auth/me").json()["memberships"] == [{"project_id": project["id"], "role": "reviewer"}]
    # The stored token is a hash; the link is used up.
    with runtime.database().session_scope() as session:
        stored = session.scalar(select(Invite))
        assert stored is not None and stored.token_hash != invite["token"] and stored.used_at is not None


def test_a_used_link_is_refused_the_second_time_and_changes_nothing(
    client: TestClient, admin: Api, project: dict[str, Any]
) -> None:
    invite = _invite(admin, project["id"])
    assert _accept(client, invite["token"]).status_code == 200
    users = _count(User)
    again = _accept(client, invite["token"], "another long password")
    assert again.status_code == 404
    assert _count(User) == users


def test_expired_revoked_and_made_up_links_all_get_the_same_404(
    client: TestClient, admin: Api, project: dict[str, Any]
) -> None:
    expired = _invite(admin, project["id"], "late@example.com")
    with runtime.database().session_scope() as session:
        row = session.get(Invite, expired["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    revoked = _invite(admin, project["id"], "gone@example.com")
    assert admin.delete(f"/projects/{project['id']}/invites/{revoked['id']}").status_code == 204
    answers = [_accept(client, t) for t in (expired["token"], revoked["token"], "made-up-token")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.text for r in answers}) == 1
    assert _count(User, User.email.in_(["late@example.com", "gone@example.com"])) == 0
    listed = {i["email"]: i for i in admin.get(f"/projects/{project['id']}/invites").json()}
    assert listed["gone@example.com"]["revoked_at"] is not None and "token" not in listed["gone@example.com"]


def test_nobody_invites_above_their_own_role_and_annotators_cannot_invite(
    member_factory: Any, project: dict[str, Any]
) -> None:
    lead = member_factory(project["id"], "lead")
    assert (
        lead.post(
            f"/projects/{project['id']}/invites", json={"email": "a@example.com", "role": "admin"}
        ).status_code
        == 403
    )
    assert _invite(lead, project["id"], "b@example.com", "lead")["role"] == "lead"
    annotator = member_factory(project["id"], "annotator")
    refused = annotator.post(f"/projects/{project['id']}/invites", json={"email": "c@example.com"})
    assert refused.status_code == 403


def test_an_invite_cannot_take_over_an_existing_account(
    client: TestClient, admin: Api, project: dict[str, Any]
) -> None:
    make_user("known@example.com")
    invite = _invite(admin, project["id"], "known@example.com")
    takeover = _accept(client, invite["token"], "attacker chosen password")
    assert takeover.status_code == 409 and takeover.json()["error"] == "account_exists"
    assert _count(Membership, Membership.role == "annotator") == 0
    # From the account's own session (with its CSRF header) it joins, and the password is unchanged.
    known = Api(client, "known@example.com")
    client.cookies.clear()
    for name, value in known.cookies.items():
        client.cookies.set(name, value)
    without_csrf = client.post(f"/api/v1/auth/invites/{invite['token']}/accept", json={})
    assert without_csrf.status_code == 403
    joined = client.post(
        f"/api/v1/auth/invites/{invite['token']}/accept", json={}, headers={"X-CSRF-Token": known.csrf}
    )
    assert joined.status_code == 200, joined.text
    assert Api(client, "known@example.com", PASSWORD).user["email"] == "known@example.com"


def test_deactivation_ends_sessions_and_tokens_and_blocks_login(
    client: TestClient, admin: Api, member_factory: Any, project: dict[str, Any]
) -> None:
    annotator = member_factory(project["id"], "annotator", "ann@example.com")
    token = annotator.post("/auth/tokens", json={"name": "script"}).json()["token"]
    user_id = annotator.user["id"]
    assert annotator.post(f"/users/{user_id}/deactivate").status_code == 403  # admins only
    assert admin.post(f"/users/{user_id}/deactivate").json()["is_active"] is False
    assert _count(AuthSession, AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)) == 0
    assert annotator.get("/auth/me").status_code == 401
    client.cookies.clear()
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert (
        client.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).status_code
        == 401
    )
    assert admin.post(f"/users/{admin.user['id']}/deactivate").status_code == 409
    assert admin.post(f"/users/{user_id}/activate").json()["is_active"] is True
    assert Api(client, "ann@example.com").get("/auth/me").status_code == 200


def test_login_renews_the_session_id_even_when_a_cookie_is_brought(client: TestClient, admin: Api) -> None:
    planted = "attacker-chosen-session-id"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, planted)
    response = client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.cookies[SESSION_COOKIE] != planted
    assert response.cookies[SESSION_COOKIE] != admin.cookies[SESSION_COOKIE]
