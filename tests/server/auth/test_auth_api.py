"""Logins, sessions, CSRF, API tokens and the secrets the server refuses to run without."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from server.auth import service as auth_service
from server.auth.deps import SESSION_COOKIE
from server.core import runtime
from server.core.config import Settings
from server.orm import AuthSession, LoginAttempt, Project, User
from tests.server.conftest import ADMIN_EMAIL, PASSWORD, Api, make_user

LOGIN = "/api/v1/auth/login"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def _login(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    client.cookies.clear()
    return client.post(LOGIN, json={"email": email, "password": password})


def _call(
    client: TestClient,
    method: str,
    path: str,
    *,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A request carrying exactly the given cookie and headers, nothing left from earlier calls."""
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set(SESSION_COOKIE, cookie)
    return client.request(method, f"/api/v1{path}", headers=headers or {}, **kwargs)


def _count(model: Any) -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _user(email: str) -> User:
    with runtime.database().session_scope() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


# --- login and logout -------------------------------------------------------------------------


def test_login_sets_an_http_only_session_cookie_and_returns_a_csrf_token(client: TestClient) -> None:
    make_user("ann@example.com")
    response = _login(client, "ann@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["email"] == "ann@example.com"
    assert len(body["csrf_token"]) >= 24
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=lax" in set_cookie.lower()
    # The cookie is a random token; the table keeps only its hash.
    token = response.cookies[SESSION_COOKIE]
    with runtime.database().session_scope() as session:
        stored = session.scalars(select(AuthSession.token_hash)).all()
    assert stored and token not in stored
    assert _call(client, "GET", "/auth/me", cookie=token).json()["user"]["email"] == "ann@example.com"


def test_email_is_matched_without_regard_to_case_or_spaces(client: TestClient) -> None:
    make_user("case@example.com")
    assert _login(client, "  Case@Example.COM ").status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient) -> None:
    make_user("ann@example.com")
    wrong = _login(client, "ann@example.com", "not the password")
    unknown = _login(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert SESSION_COOKIE not in wrong.cookies
    assert _count(AuthSession) == 0
    assert _count(LoginAttempt) == 2


def test_five_failed_logins_throttle_the_account_even_with_the_right_password(client: TestClient) -> None:
    make_user("ann@example.com")
    make_user("bob@example.com")
    for _ in range(5):
        assert _login(client, "ann@example.com", "guess").status_code == 401
    throttled = _login(client, "ann@example.com")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "login_throttled"
    assert SESSION_COOKIE not in throttled.cookies
    # Another account from the same address is not locked out by these five.
    assert _login(client, "bob@example.com").status_code == 200


def test_many_failed_logins_from_one_address_throttle_every_account(client: TestClient) -> None:
    make_user("ann@example.com")
    with runtime.database().session_scope() as session:
        session.add_all(LoginAttempt(email=f"user{n}@example.com", ip="testclient") for n in range(30))
    assert _login(client, "ann@example.com").status_code == 429


def test_logout_revokes_the_session_so_the_old_cookie_is_refused(client: TestClient) -> None:
    make_user("ann@example.com")
    login = _login(client, "ann@example.com")
    cookie, csrf = login.cookies[SESSION_COOKIE], login.json()["csrf_token"]
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 200
    out = _call(client, "POST", "/auth/logout", cookie=cookie, headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 401
    assert _call(client, "GET", "/auth/csrf", cookie=cookie).status_code == 401


def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    make_user("ann@example.com")
    cookie = _login(client, "ann@example.com").cookies[SESSION_COOKIE]
    assert _call(client, "POST", "/auth/logout", cookie=cookie).status_code == 403
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 200


def test_csrf_endpoint_returns_the_sessions_token_after_a_reload(client: TestClient) -> None:
    make_user("ann@example.com")
    login = _login(client, "ann@example.com")
    again = _call(client, "GET", "/auth/csrf", cookie=login.cookies[SESSION_COOKIE])
    assert again.json() == {"csrf_token": login.json()["csrf_token"]}


def test_deactivated_user_cannot_log_in_and_loses_open_sessions(client: TestClient) -> None:
    make_user("ann@example.com")
    cookie = _login(client, "ann@example.com").cookies[SESSION_COOKIE]
    with runtime.database().session_scope() as session:
        user = session.scalar(select(User).where(User.email == "ann@example.com"))
        assert user is not None
        user.is_active = False
    refused = _login(client, "ann@example.com")
    assert refused.status_code == 401
    assert refused.json() == _login(client, "nobody@example.com").json()
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 401


def test_passwords_are_stored_as_argon2id_hashes(client: TestClient) -> None:
    make_user("ann@example.com")
    stored = _user("ann@example.com").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_the_password_hasher_is_argon2id_with_at_least_the_owasp_cost() -> None:
    from argon2 import Type, extract_parameters

    from server.core import security

    # The hash made at import, before any test made hashing cheap.
    params = extract_parameters(security._DUMMY_HASH)
    assert params.type is Type.ID
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "wrong-token"])
def test_unsafe_request_with_cookie_but_without_the_right_csrf_header_is_refused(
    admin: Api, header: str | None
) -> None:
    headers = {} if header is None else {"X-CSRF-Token": header}
    response = _call(
        admin.client,
        "POST",
        "/projects",
        cookie=admin.cookies[SESSION_COOKIE],
        headers=headers,
        json={"name": "Forged"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert _count(Project) == 0

    allowed = _call(
        admin.client,
        "POST",
        "/projects",
        cookie=admin.cookies[SESSION_COOKIE],
        headers={"X-CSRF-Token": admin.csrf},
        json={"name": "Real"},
    )
    assert allowed.status_code == 201, allowed.text
    assert _count(Project) == 1


def test_csrf_token_of_another_session_is_refused(client: TestClient, admin: Api) -> None:
    make_user("ann@example.com")
    other = _login(client, "ann@example.com").json()["csrf_token"]
    response = _call(
        client,
        "POST",
        "/projects",
        cookie=admin.cookies[SESSION_COOKIE],
        headers={"X-CSRF-Token": other},
        json={"name": "Forged"},
    )
    assert response.status_code == 403
    assert _count(Project) == 0


def test_cross_site_text_plain_post_with_json_and_the_cookie_changes_nothing(admin: Api) -> None:
    # What an HTML form or a no-preflight fetch from another site can send.
    for path, body in (("/projects", '{"name": "Forged"}'), ("/auth/tokens", '{"name": "stolen"}')):
        response = _call(
            admin.client,
            "POST",
            path,
            cookie=admin.cookies[SESSION_COOKIE],
            headers={"Content-Type": "text/plain"},
            content=body,
        )
        assert 400 <= response.status_code < 500, response.text
    assert _count(Project) == 0
    assert admin.get("/auth/tokens").json() == []


def test_safe_methods_need_no_csrf_header(admin: Api) -> None:
    response = _call(admin.client, "GET", "/auth/me", cookie=admin.cookies[SESSION_COOKIE])
    assert response.status_code == 200


# --- API tokens -------------------------------------------------------------------------------


def test_api_token_is_shown_once_and_works_as_a_bearer_without_csrf(admin: Api) -> None:
    created = admin.post("/auth/tokens", json={"name": "script"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("aa_")
    assert created.json()["prefix"] == token[:10]
    listed = admin.get("/auth/tokens").json()
    assert [t["name"] for t in listed] == ["script"]
    assert all("token" not in t for t in listed)
    assert token not in admin.get("/auth/tokens").text

    bearer = {"Authorization": f"Bearer {token}"}
    me = _call(admin.client, "GET", "/auth/me", headers=bearer)
    assert me.status_code == 200
    assert me.json()["user"]["email"] == ADMIN_EMAIL
    # Scripts send no cookie, so there is nothing to forge and no CSRF header to send.
    made = _call(admin.client, "POST", "/projects", headers=bearer, json={"name": "By script"})
    assert made.status_code == 201, made.text
    assert admin.get("/auth/tokens").json()[0]["last_used_at"] is not None


def test_revoked_api_token_is_refused(admin: Api) -> None:
    created = admin.post("/auth/tokens", json={"name": "script"}).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert _call(admin.client, "GET", "/auth/me", headers=bearer).status_code == 200
    assert admin.delete(f"/auth/tokens/{created['id']}").status_code == 204
    refused = _call(admin.client, "GET", "/auth/me", headers=bearer)
    assert refused.status_code == 401
    assert _call(admin.client, "POST", "/projects", headers=bearer, json={"name": "x"}).status_code == 401
    assert _count(Project) == 0
    assert admin.get("/auth/tokens").json() == []
    assert admin.delete(f"/auth/tokens/{created['id']}").status_code == 404


def test_made_up_and_expired_tokens_are_refused(admin: Api) -> None:
    created = admin.post("/auth/tokens", json={"name": "short", "expires_in_days": 1}).json()
    with runtime.database().session_scope() as session:
        from datetime import timedelta

        from server.core.time import utcnow
        from server.orm import ApiToken

        record = session.get(ApiToken, created["id"])
        assert record is not None
        record.expires_at = utcnow() - timedelta(seconds=1)
    for token in (created["token"], "aa_" + secrets.token_urlsafe(32), ""):
        response = _call(admin.client, "GET", "/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_a_user_cannot_revoke_someone_elses_token(client: TestClient, admin: Api) -> None:
    created = admin.post("/auth/tokens", json={"name": "admin's"}).json()
    make_user("ann@example.com")
    ann = Api(client, "ann@example.com")
    assert ann.delete(f"/auth/tokens/{created['id']}").status_code == 404
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert _call(client, "GET", "/auth/me", headers=bearer).status_code == 200


# --- the first admin and the secret ------------------------------------------------------------


def test_admin_bootstrap_creates_an_admin_with_a_random_password_once(client: TestClient) -> None:
    with runtime.database().session_scope() as session:
        user, password = auth_service.ensure_admin(session, "root@example.com", None)
        assert user.is_admin
    assert password and len(password) >= 16
    assert _login(client, "root@example.com", password).status_code == 200
    stored = _user("root@example.com").password_hash

    with runtime.database().session_scope() as session:
        again, second = auth_service.ensure_admin(session, "root@example.com", None)
    assert second is None
    assert again.id == user.id
    with runtime.database().session_scope() as session:
        kept, third = auth_service.ensure_admin(session, "root@example.com", "a new password here")
    assert third is None
    assert _user("root@example.com").password_hash == stored
    assert _count(User) == 1


def test_admin_bootstrap_leaves_an_existing_account_alone(client: TestClient) -> None:
    make_user("root@example.com")
    with runtime.database().session_scope() as session:
        user, password = auth_service.ensure_admin(session, "root@example.com", None)
    assert password is None
    assert not _user("root@example.com").is_admin
    assert _login(client, "root@example.com").status_code == 200


def test_create_admin_command_prints_the_password_once(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import cli

    monkeypatch.setenv("AA_ADMIN_EMAIL", "boot@example.com")
    runtime.reset()
    runner = CliRunner()
    first = runner.invoke(cli.main, ["create-admin"])
    assert first.exit_code == 0, first.output
    assert "boot@example.com" in first.output and "password: " in first.output
    password = first.output.split("password: ")[1].split()[0]
    second = runner.invoke(cli.main, ["create-admin"])
    assert second.exit_code == 0, second.output
    assert "password" not in second.output and "(exists)" in second.output
    with runtime.database().session_scope() as session:
        assert auth_service.login(
            session, "boot@example.com", password, ip="cli", user_agent="", settings=Settings().auth
        ).user.is_admin


@pytest.mark.parametrize("secret", ["", "short", "change-me", "change-me-" + "x" * 40, "x" * 31], ids=repr)
def test_production_mode_refuses_a_missing_short_or_example_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="AA_SECRET_KEY"):
        Settings(mode="production", secret_key=secret)


def test_production_mode_accepts_a_long_random_secret() -> None:
    secret = secrets.token_urlsafe(36)
    assert len(secret) == 48
    assert Settings(mode="production", secret_key=secret).secret_key == secret


def test_development_mode_generates_and_keeps_a_secret(tmp_path: Any) -> None:
    from server.core.config import ensure_secret

    settings = Settings(mode="development", secret_key="", data_dir=tmp_path)
    first = ensure_secret(settings)
    assert len(first) >= 32
    assert ensure_secret(settings) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


# --- session lifetime -------------------------------------------------------------------------


def _age_session(cookie: str, *, idle: timedelta = timedelta(0), age: timedelta = timedelta(0)) -> None:
    from server.core.security import token_hash

    with runtime.database().session_scope() as session:
        record = session.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(cookie)))
        assert record is not None
        record.last_seen_at -= idle
        record.expires_at -= age


def test_a_session_idle_past_the_idle_timeout_is_refused(client: TestClient) -> None:
    make_user("ann@example.com")
    cookie = _login(client, "ann@example.com").cookies[SESSION_COOKIE]
    idle = timedelta(minutes=Settings().auth.session_idle_minutes)
    _age_session(cookie, idle=idle - timedelta(minutes=2))
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 200  # and it is touched
    _age_session(cookie, idle=idle + timedelta(minutes=1))
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 401


def test_a_busy_session_still_ends_at_the_absolute_timeout(client: TestClient) -> None:
    make_user("ann@example.com")
    cookie = _login(client, "ann@example.com").cookies[SESSION_COOKIE]
    lifetime = timedelta(hours=Settings().auth.session_absolute_hours)
    _age_session(cookie, age=lifetime - timedelta(minutes=1))
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 200
    _age_session(cookie, age=timedelta(minutes=2))
    assert _call(client, "GET", "/auth/me", cookie=cookie).status_code == 401


def test_an_old_hash_is_upgraded_at_login(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    from server.core import security

    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    make_user("ann@example.com")
    with runtime.database().session_scope() as session:
        user = session.scalar(select(User).where(User.email == "ann@example.com"))
        assert user is not None
        user.password_hash = weak.hash(PASSWORD)
    old = _user("ann@example.com").password_hash
    assert _login(client, "ann@example.com").status_code == 200
    new = _user("ann@example.com").password_hash
    assert new != old and not security.password_needs_rehash(new)
