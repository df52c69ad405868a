"""Projects (labeling campaigns) and who works on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, CreatedMixin, IdMixin


class Project(IdMixin, CreatedMixin, Base):
    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    # The taxonomy version new work answers; older labels keep the version they answered.
    taxonomy_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("taxonomy_versions.id", use_alter=True, ondelete="SET NULL")
    )
    # Labeler choice, thresholds, audit share, key bindings: validated by the projects schemas.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Deletion is soft and reversible by an admin.
    deleted_at: Mapped[datetime | None]


class Membership(IdMixin, CreatedMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
