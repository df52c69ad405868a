"""Invites: sign-up is by invite only. A lead invites an email to one project with one role; the
link is single use and expires. Accepting creates the account (or, for an existing account, needs
that account's session) and the membership, in one transaction."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import repository as auth_repository
from server.auth import service as auth_service
from server.core.errors import BadRequest, Conflict, NotFound
from server.core.security import new_token, token_hash
from server.core.time import utcnow
from server.invites.schemas import InviteAccept, InviteCreate
from server.orm import Invite, Project, User
from server.orm.enums import Role
from server.projects import service as projects_service
from server.projects.policy import ProjectAccess

log = structlog.get_logger(__name__)


def create(session: Session, grant: ProjectAccess, body: InviteCreate) -> tuple[Invite, str]:
    grant.require(body.role)  # nobody invites above their own role
    if body.role == Role.admin:
        raise BadRequest("platform admins are not made by invite", code="role_not_invitable")
    token = new_token()
    invite = Invite(
        project_id=grant.project.id,
        email=str(body.email).strip().lower(),
        role=body.role.value,
        token_hash=token_hash(token),
        created_by_id=grant.user.id,
        expires_at=utcnow() + timedelta(hours=body.expires_in_hours),
    )
    session.add(invite)
    session.flush()
    log.info("invites.created", project_id=grant.project.id, invite_id=invite.id, role=invite.role)
    return invite, token


def of_project(session: Session, project_id: int) -> list[Invite]:
    return list(
        session.scalars(select(Invite).where(Invite.project_id == project_id).order_by(Invite.id.desc()))
    )


def revoke(session: Session, grant: ProjectAccess, invite_id: int) -> None:
    invite = session.get(Invite, invite_id)
    if invite is None or invite.project_id != grant.project.id:
        raise NotFound("no such invite")
    if invite.used_at is None and invite.revoked_at is None:
        invite.revoked_at = utcnow()


def open_invite(session: Session, token: str, *, for_update: bool = False) -> tuple[Invite, Project]:
    """The invite behind a link, if it can still be used. Used, revoked, expired and unknown
    links all answer the same 404: the answer tells a guesser nothing."""
    query = select(Invite, Project).join(Project, Project.id == Invite.project_id)
    query = query.where(Invite.token_hash == token_hash(token))
    if for_update:
        query = query.with_for_update(of=Invite)
    row = session.execute(query).first()
    if row is None:
        raise NotFound("this invite link is not valid (used, expired or revoked)")
    invite, project = row[0], row[1]
    if (
        invite.used_at is not None
        or invite.revoked_at is not None
        or invite.expires_at <= utcnow()
        or project.deleted_at is not None
    ):
        raise NotFound("this invite link is not valid (used, expired or revoked)")
    return invite, project


def accept(
    session: Session, token: str, body: InviteAccept, signed_in: User | None
) -> tuple[User, Invite, bool]:
    """Returns the account, the invite and whether the account was created now.

    A new email gets an account with the given password. An email that already has an account
    joins only from that account's own session, so an invite can never take over an account.
    """
    invite, project = open_invite(session, token, for_update=True)
    existing = auth_repository.user_by_email(session, invite.email)
    created = False
    if existing is not None:
        if signed_in is None or signed_in.id != existing.id:
            raise Conflict(
                "an account with this email exists: log in as it, then open the link again",
                code="account_exists",
            )
        user = existing
    else:
        if body.password is None:
            raise BadRequest("choose a password of at least 10 characters", code="password_required")
        user = auth_service.create_user(session, invite.email, body.password, display_name=body.display_name)
        created = True
    projects_service.add_member(session, project, user.email, Role(invite.role))
    invite.used_at = utcnow()
    invite.used_by_id = user.id
    log.info("invites.accepted", invite_id=invite.id, user_id=user.id, created=created)
    return user, invite, created
