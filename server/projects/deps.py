"""Route dependencies that resolve `{project_id}` and check the caller's role in it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from server.auth.deps import CurrentUser
from server.core.http import DbSession
from server.orm.enums import Role
from server.projects.policy import ProjectAccess, access


def _member(project_id: int, session: DbSession, user: CurrentUser) -> ProjectAccess:
    return access(session, user, project_id, Role.annotator)


def _reviewer(project_id: int, session: DbSession, user: CurrentUser) -> ProjectAccess:
    return access(session, user, project_id, Role.reviewer)


def _lead(project_id: int, session: DbSession, user: CurrentUser) -> ProjectAccess:
    return access(session, user, project_id, Role.lead)


ProjectMember = Annotated[ProjectAccess, Depends(_member)]
ProjectReviewer = Annotated[ProjectAccess, Depends(_reviewer)]
ProjectLead = Annotated[ProjectAccess, Depends(_lead)]
