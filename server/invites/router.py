from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from server.auth import repository as auth_repository
from server.auth import service as auth_service
from server.auth.deps import CSRF_HEADER, SESSION_COOKIE, client_ip, set_session_cookie
from server.auth.errors import NotAuthenticated
from server.auth.schemas import LoginOut, UserOut
from server.core.config import get_settings
from server.core.errors import Forbidden
from server.core.http import DbSession
from server.core.security import constant_time_equals
from server.invites import service
from server.invites.schemas import InviteAccept, InviteCreate, InviteCreated, InviteOut, InvitePreview
from server.orm import User
from server.orm.enums import Role
from server.projects.deps import ProjectLead

router = APIRouter(tags=["invites"])


@router.post(
    "/projects/{project_id}/invites", response_model=InviteCreated, status_code=status.HTTP_201_CREATED
)
def create_invite(body: InviteCreate, session: DbSession, grant: ProjectLead) -> InviteCreated:
    """A single-use, expiring sign-up link for one email, one project and one role."""
    invite, token = service.create(session, grant, body)
    return InviteCreated(**InviteOut.model_validate(invite).model_dump(), token=token, url=f"/invite/{token}")


@router.get("/projects/{project_id}/invites", response_model=list[InviteOut])
def list_invites(session: DbSession, grant: ProjectLead) -> list[InviteOut]:
    return [InviteOut.model_validate(i) for i in service.of_project(session, grant.project.id)]


@router.delete("/projects/{project_id}/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_invite(invite_id: int, session: DbSession, grant: ProjectLead) -> None:
    service.revoke(session, grant, invite_id)


@router.get("/auth/invites/{token}", response_model=InvitePreview)
def preview_invite(token: str, session: DbSession) -> InvitePreview:
    """What the link offers (public: the token is the credential)."""
    invite, project = service.open_invite(session, token)
    return InvitePreview(
        project_name=project.name,
        email=invite.email,
        role=Role(invite.role),
        expires_at=invite.expires_at,
        account_exists=auth_repository.user_by_email(session, invite.email) is not None,
    )


@router.post("/auth/invites/{token}/accept", response_model=LoginOut)
def accept_invite(
    token: str, body: InviteAccept, request: Request, response: Response, session: DbSession
) -> LoginOut:
    """Join the project (creating the account for a new email) and start a fresh session."""
    user, _, _ = service.accept(session, token, body, _signed_in(request, session))
    result = auth_service.start_session(
        session,
        user,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        settings=get_settings().auth,
    )
    set_session_cookie(response, result.session_token)
    return LoginOut(user=UserOut.model_validate(result.user), csrf_token=result.csrf_token)


def _signed_in(request: Request, session: DbSession) -> User | None:
    """The caller's account when it brings a live session and its CSRF header (an existing
    account joins only from its own session, and a cross-site form cannot make it join)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        user, record = auth_service.resolve_session(session, cookie, get_settings().auth)
    except NotAuthenticated:
        return None
    if not constant_time_equals(request.headers.get(CSRF_HEADER, ""), record.csrf_token):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    return user
