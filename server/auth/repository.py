from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from server.orm import ApiToken, AuthSession, LoginAttempt, Membership, User


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


# Every authenticated request runs one of these two: built once, not per request.
_SESSION_BY_HASH = (
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)
_API_TOKEN_BY_HASH = (
    select(ApiToken, User)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def session_by_token_hash(session: Session, token_hash: str) -> tuple[AuthSession, User] | None:
    """The session and its user in one round trip: every authenticated request needs both."""
    row = session.execute(_SESSION_BY_HASH, {"token_hash": token_hash}).first()
    return None if row is None else (row[0], row[1])


def api_token_by_hash(session: Session, token_hash: str) -> tuple[ApiToken, User] | None:
    row = session.execute(_API_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
    return None if row is None else (row[0], row[1])


def failed_logins_since(session: Session, *, email: str | None, ip: str | None, since: datetime) -> int:
    query = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.created_at >= since)
    if email is not None:
        query = query.where(LoginAttempt.email == email)
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    return int(session.scalar(query) or 0)


def memberships_of(session: Session, user_id: int) -> list[Membership]:
    return list(session.scalars(select(Membership).where(Membership.user_id == user_id)))


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    return list(session.scalars(query.order_by(ApiToken.id)))


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def end_sessions_and_tokens(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
