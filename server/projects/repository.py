from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.orm import Membership, Project, User


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(Project.id).where(Project.slug == slug)) is not None


def visible_projects(session: Session, user: User) -> list[tuple[Project, str | None]]:
    if user.is_admin:
        rows = session.execute(
            select(Project, Membership.role)
            .outerjoin(Membership, (Membership.project_id == Project.id) & (Membership.user_id == user.id))
            .where(Project.deleted_at.is_(None))
            .order_by(Project.id)
        )
    else:
        rows = session.execute(
            select(Project, Membership.role)
            .join(Membership, Membership.project_id == Project.id)
            .where(Membership.user_id == user.id, Project.deleted_at.is_(None))
            .order_by(Project.id)
        )
    return [(project, role) for project, role in rows]


def membership(session: Session, project_id: int, user_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.project_id == project_id, Membership.user_id == user_id)
    )


def members(session: Session, project_id: int) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project_id)
        .order_by(User.email)
    )
    return [(m, u) for m, u in rows]


def project_by_slug(session: Session, slug: str) -> Project | None:
    return session.scalar(select(Project).where(Project.slug == slug, Project.deleted_at.is_(None)))
