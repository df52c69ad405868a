"""Who may touch a project. An object of a project the caller is not a member of is a 404."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
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


def access(session: Session, user: User, project_id: int, minimum: Role = Role.annotator) -> ProjectAccess:
    project = session.get(Project, project_id)
    if project is None or project.deleted_at is not None:
        raise NotFound("no such project")
    if user.is_admin:
        role = Role.admin
    else:
        membership = session.scalar(
            select(Membership).where(Membership.project_id == project_id, Membership.user_id == user.id)
        )
        if membership is None:
            raise NotFound("no such project")
        role = Role(membership.role)
    granted = ProjectAccess(project=project, user=user, role=role)
    granted.require(minimum)
    return granted
