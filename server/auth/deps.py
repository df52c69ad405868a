"""Who is calling: a bearer token (scripts) or a session cookie with a CSRF header (the UI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from server.auth import service
from server.auth.errors import NotAuthenticated
from server.core.config import get_settings
from server.core.errors import Forbidden
from server.core.http import DbSession
from server.core.security import constant_time_equals
from server.orm import AuthSession, User

SESSION_COOKIE = "aa_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _current_user(request: Request, session: DbSession) -> User:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return service.resolve_api_token(session, authorization[7:].strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated()
    user, record = service.resolve_session(session, cookie, get_settings().auth)
    if request.method not in SAFE_METHODS:
        # A cross-site form or fetch carries the cookie but cannot read or set this header.
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not constant_time_equals(sent, record.csrf_token):
            raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    request.state.auth_session = record
    return user


CurrentUser = Annotated[User, Depends(_current_user)]


def _current_session(request: Request, _: CurrentUser) -> AuthSession:
    record: AuthSession | None = getattr(request.state, "auth_session", None)
    if record is None:
        raise NotAuthenticated("this action needs a browser session")
    return record


CurrentAuthSession = Annotated[AuthSession, Depends(_current_session)]


def _admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("administrators only")
    return user


AdminUser = Annotated[User, Depends(_admin)]


def set_session_cookie(response: Response, session_token: str) -> None:
    settings = get_settings().auth
    response.set_cookie(
        SESSION_COOKIE,
        session_token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
