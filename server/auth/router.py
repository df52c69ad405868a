from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from server.auth import repository, service
from server.auth.deps import (
    SESSION_COOKIE,
    AdminUser,
    CurrentAuthSession,
    CurrentUser,
    client_ip,
    set_session_cookie,
)
from server.auth.errors import InvalidCredentials
from server.auth.schemas import (
    LoginOut,
    LoginRequest,
    MembershipOut,
    MeOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from server.core import runtime
from server.core.config import get_settings
from server.core.http import DbSession

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=LoginOut)
def login(body: LoginRequest, request: Request, response: Response, session: DbSession) -> LoginOut:
    settings = get_settings()
    ip = client_ip(request)
    try:
        result = service.login(
            session,
            body.email,
            body.password,
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
            settings=settings.auth,
        )
    except InvalidCredentials:
        # End the request's transaction first: on SQLite it holds the only write lock, and the
        # attempt's own unit of work would wait for it until the busy timeout.
        session.rollback()
        with runtime.database().session_scope() as attempt:
            service.record_failed_login(attempt, body.email, ip)
        raise
    set_session_cookie(response, result.session_token)
    return LoginOut(user=UserOut.model_validate(result.user), csrf_token=result.csrf_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: DbSession, record: CurrentAuthSession, response: Response) -> None:
    service.logout(session, record)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/me", response_model=MeOut)
def me(session: DbSession, user: CurrentUser) -> MeOut:
    memberships = repository.memberships_of(session, user.id)
    return MeOut(
        user=UserOut.model_validate(user),
        memberships=[MembershipOut(project_id=m.project_id, role=m.role) for m in memberships],
    )


@router.get("/auth/csrf")
def csrf(record: CurrentAuthSession) -> dict[str, str]:
    """The page's CSRF token after a reload (the cookie survives, the token in memory does not)."""
    return {"csrf_token": record.csrf_token}


@router.get("/auth/tokens", response_model=list[TokenOut])
def list_tokens(session: DbSession, user: CurrentUser) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in repository.tokens_of(session, user.id)]


@router.post("/auth/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: DbSession, user: CurrentUser) -> TokenCreated:
    record, token = service.create_api_token(session, user, body.name, body.expires_in_days)
    return TokenCreated(**TokenOut.model_validate(record).model_dump(), token=token)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: int, session: DbSession, user: CurrentUser) -> None:
    service.revoke_api_token(session, user, token_id)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: DbSession, _: AdminUser) -> UserOut:
    user = service.create_user(
        session, body.email, body.password, display_name=body.display_name, is_admin=body.is_admin
    )
    return UserOut.model_validate(user)


@router.get("/users", response_model=list[UserOut])
def list_users(session: DbSession, _: AdminUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in repository.all_users(session)]


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
def deactivate_user(user_id: int, session: DbSession, admin: AdminUser) -> UserOut:
    """The account can no longer log in; its open sessions and API tokens end now."""
    return UserOut.model_validate(service.set_active(session, admin, user_id, active=False))


@router.post("/users/{user_id}/activate", response_model=UserOut)
def activate_user(user_id: int, session: DbSession, admin: AdminUser) -> UserOut:
    return UserOut.model_validate(service.set_active(session, admin, user_id, active=True))
