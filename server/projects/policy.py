"""Who may touch a project. An object of a project the caller is not a member of is a 404."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.core.errors import Forbidden, NotFound
from server.orm import Membership, Project, User
from server.orm.enums import Role


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    user: User
    role: Role

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise Forbidden(f"this needs the {role.value} role in the project")


# Every project-scoped request runs this: built once, not per request.
_PROJECT_AND_ROLE = (
    select(Project, Membership.role)
    .outerjoin(
        Membership,
        (Membership.project_id == Project.id) & (Membership.user_id == bindparam("user_id")),
    )
    .where(Project.id == bindparam("project_id"))
)


def access(session: Session, user: User, project_id: int, minimum: Role = Role.annotator) -> ProjectAccess:
    """The caller's grant on a project, in one round trip (the project and the membership)."""
    row = session.execute(_PROJECT_AND_ROLE, {"project_id": project_id, "user_id": user.id}).first()
    return grant_for(user, None if row is None else row[0], None if row is None else row[1], minimum)


def warm_up(session: Session) -> None:
    """Compile the access read (server.warmup)."""
    session.execute(_PROJECT_AND_ROLE, {"project_id": 0, "user_id": 0}).first()


def grant_for(user: User, project: Project | None, member_role: str | None, minimum: Role) -> ProjectAccess:
    """Decide from rows already read (`member_role`: the membership's role, None if not a member).

    For callers that fetch the project along with the object they act on, in the same query.
    """
    if project is None or project.deleted_at is not None:
        raise NotFound("no such project")
    if user.is_admin:
        role = Role.admin
    elif member_role is None:
        raise NotFound("no such project")
    else:
        role = Role(member_role)
    granted = ProjectAccess(project=project, user=user, role=role)
    granted.require(minimum)
    return granted
