"""Accounts, logins, sessions and tokens. Services never commit: the caller's boundary does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.orm import Session

from server.auth import repository
from server.auth.errors import InvalidCredentials, LoginThrottled, NotAuthenticated
from server.core.config import AuthSettings
from server.core.errors import Conflict, NotFound
from server.core.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    random_password,
    token_hash,
    verify_password,
)
from server.core.time import utcnow
from server.orm import ApiToken, AuthSession, LoginAttempt, User

log = structlog.get_logger(__name__)

THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
TOKEN_PREFIX = "aa_"


@dataclass(frozen=True)
class LoginResult:
    user: User
    session_token: str
    csrf_token: str


def create_user(
    session: Session, email: str, password: str, *, display_name: str = "", is_admin: bool = False
) -> User:
    email = email.strip().lower()
    if repository.user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} exists", code="user_exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=display_name or email.split("@")[0],
        is_admin=is_admin,
    )
    session.add(user)
    session.flush()
    return user


def ensure_admin(session: Session, email: str, password: str | None) -> tuple[User, str | None]:
    """The first admin: from AA_ADMIN_EMAIL/AA_ADMIN_PASSWORD, or with a random password
    that is returned (to be printed once). An existing account is left as it is."""
    existing = repository.user_by_email(session, email)
    if existing is not None:
        return existing, None
    generated = None if password else random_password()
    user = create_user(session, email, password or generated or "", is_admin=True, display_name="admin")
    log.info("auth.admin_created", email=user.email)
    return user, generated


def login(
    session: Session, email: str, password: str, *, ip: str, user_agent: str, settings: AuthSettings
) -> LoginResult:
    email = email.strip().lower()
    since = utcnow() - THROTTLE_WINDOW
    if (
        repository.failed_logins_since(session, email=email, ip=None, since=since) >= MAX_FAILURES_PER_ACCOUNT
        or repository.failed_logins_since(session, email=None, ip=ip, since=since) >= MAX_FAILURES_PER_ADDRESS
    ):
        raise LoginThrottled()
    user = repository.user_by_email(session, email)
    # Verify even for an unknown email so that both failures take the same time.
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise InvalidCredentials()
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return start_session(session, user, ip=ip, user_agent=user_agent, settings=settings)


def start_session(
    session: Session, user: User, *, ip: str, user_agent: str, settings: AuthSettings
) -> LoginResult:
    """A new browser session (a fresh random id: never one the client brought)."""
    now = utcnow()
    user.last_login_at = now
    token, csrf = new_token(), new_token(24)
    session.add(
        AuthSession(
            user_id=user.id,
            token_hash=token_hash(token),
            csrf_token=csrf,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
    )
    return LoginResult(user=user, session_token=token, csrf_token=csrf)


def set_active(session: Session, admin: User, user_id: int, *, active: bool) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if not active and user.id == admin.id:
        raise Conflict("you cannot deactivate your own account", code="self_deactivation")
    user.is_active = active
    if not active:
        repository.end_sessions_and_tokens(session, user.id, utcnow())
        log.info("auth.user_deactivated", user_id=user.id, by=admin.id)
    return user


def record_failed_login(session: Session, email: str, ip: str) -> None:
    """Called in a unit of work of its own: the login's own transaction is rolled back."""
    session.add(LoginAttempt(email=email.strip().lower()[:320], ip=ip[:64]))


def resolve_session(session: Session, token: str, settings: AuthSettings) -> tuple[User, AuthSession]:
    found = repository.session_by_token_hash(session, token_hash(token))
    record, user = found if found is not None else (None, None)
    now = utcnow()
    if (
        record is None
        or record.revoked_at is not None
        or record.expires_at <= now
        or record.last_seen_at + timedelta(minutes=settings.session_idle_minutes) <= now
    ):
        raise NotAuthenticated("the session has ended; log in again")
    if user is None or not user.is_active:
        raise NotAuthenticated("the account is deactivated")
    # Touch at most once a minute: most requests stay read-only.
    if now - record.last_seen_at > timedelta(minutes=1):
        record.last_seen_at = now
    return user, record


def resolve_api_token(session: Session, token: str) -> User:
    found = repository.api_token_by_hash(session, token_hash(token))
    record, user = found if found is not None else (None, None)
    now = utcnow()
    if (
        record is None
        or record.revoked_at is not None
        or (record.expires_at is not None and record.expires_at <= now)
    ):
        raise NotAuthenticated("the token is not valid")
    if user is None or not user.is_active:
        raise NotAuthenticated("the account is deactivated")
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
    return user


def logout(session: Session, record: AuthSession) -> None:
    record.revoked_at = utcnow()


def create_api_token(
    session: Session, user: User, name: str, expires_in_days: int | None
) -> tuple[ApiToken, str]:
    token = TOKEN_PREFIX + new_token()
    record = ApiToken(
        user_id=user.id,
        name=name,
        prefix=token[:10],
        token_hash=token_hash(token),
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(record)
    session.flush()
    return record, token


def revoke_api_token(session: Session, user: User, token_id: int) -> None:
    record = session.get(ApiToken, token_id)
    if record is None or record.user_id != user.id or record.revoked_at is not None:
        raise NotFound("no such token")
    record.revoked_at = utcnow()
