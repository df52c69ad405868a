from __future__ import annotations

import re

from sqlalchemy.orm import Session

from server.auth import repository as auth_repository
from server.core.errors import BadRequest, Conflict, NotFound
from server.core.time import utcnow
from server.orm import Membership, Project, User
from server.orm.enums import Role
from server.projects import repository
from server.projects.schemas import ProjectSettings
from server.taxonomy import service as taxonomy_service
from server.taxonomy.format import UnknownTaxonomyError


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]
    return slug or "project"


def create_project(
    session: Session,
    creator: User,
    name: str,
    *,
    slug: str | None = None,
    description: str = "",
    taxonomy: str = "human-v1",
    settings: ProjectSettings | None = None,
) -> Project:
    if slug is None:
        base = _slugify(name)
        slug, n = base, 1
        while repository.slug_taken(session, slug):
            n += 1
            slug = f"{base}-{n}"
    elif repository.slug_taken(session, slug):
        raise Conflict(f"the slug {slug!r} is taken", code="slug_taken")
    project = Project(
        name=name,
        slug=slug,
        description=description,
        settings=(settings or ProjectSettings()).model_dump(mode="json"),
        created_by_id=creator.id,
    )
    session.add(project)
    session.flush()
    session.add(Membership(project_id=project.id, user_id=creator.id, role=Role.lead.value))
    try:
        taxonomy_service.add_default_version(session, project, taxonomy, creator.id)
    except UnknownTaxonomyError as exc:
        raise BadRequest(str(exc), code="unknown_taxonomy") from None
    return project


def settings_of(project: Project) -> ProjectSettings:
    return ProjectSettings.model_validate(project.settings)


def update_settings(project: Project, settings: ProjectSettings) -> None:
    project.settings = settings.model_dump(mode="json")


def add_member(session: Session, project: Project, email: str, role: Role) -> tuple[Membership, User]:
    user = auth_repository.user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email}")
    existing = repository.membership(session, project.id, user.id)
    if existing is not None:
        existing.role = role.value
        return existing, user
    membership = Membership(project_id=project.id, user_id=user.id, role=role.value)
    session.add(membership)
    session.flush()
    return membership, user


def remove_member(session: Session, project: Project, user_id: int) -> None:
    membership = repository.membership(session, project.id, user_id)
    if membership is None:
        raise NotFound("no such member")
    session.delete(membership)


def soft_delete(project: Project) -> None:
    project.deleted_at = utcnow()
