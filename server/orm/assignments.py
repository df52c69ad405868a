"""Units of human work, leased to one person at a time, and the submissions that answer them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin, Json


class Assignment(IdMixin, CreatedMixin, Base):
    __tablename__ = "assignments"
    __table_args__ = (
        # The queue: next queued item of a project by kind rank, then priority (scanned backwards).
        Index("ix_assignments_queue", "project_id", "status", "queue_rank", "priority", "id"),
        Index("ix_assignments_lease", "status", "lease_expires_at"),
        Index("ix_assignments_subject", "subject_id", "kind"),
        # The dashboard's aggregates over a project's assignments, from the index alone (Postgres).
        Index(
            "ix_assignments_project_status_kind",
            "project_id",
            "status",
            "kind",
            postgresql_include=[
                "submitted_by_id",
                "submitted_at",
                "created_at",
                "lead_time_ms",
                "changed_fields",
                "subject_id",
            ],
        ),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # Served highest first: eval 4, gold 3, review 2, adjudicate 1, audit 0 (server.assignments).
    queue_rank: Mapped[int] = mapped_column(default=2)
    # Set for work meant for one person only (a gold item shown to one annotator).
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The category ids routed to people for this subject.
    category_ids: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[float] = mapped_column(default=0.0)
    lease_holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    leased_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lead_time_ms: Mapped[int | None]
    changed_fields: Mapped[int | None]
    skip_reason: Mapped[str | None] = mapped_column(String(500))


class Submission(IdMixin, CreatedMixin, Base):
    """A submit, keyed by the client's id, so that a retried request is answered, not re-applied."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    assignment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(100))
    response: Mapped[dict[str, Any]]
    undone_at: Mapped[datetime | None]


class GoldAnswer(IdMixin, CreatedMixin, Base):
    """An annotator's answer on a gold item, scored against the known answer."""

    __tablename__ = "gold_answers"
    __table_args__ = (
        UniqueConstraint("assignment_id", "category_id"),
        Index("ix_gold_answers_project_user", "project_id", "user_id"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_categories.id", ondelete="CASCADE"))
    value: Mapped[Any] = mapped_column(Json, nullable=True)
    gold_value: Mapped[Any] = mapped_column(Json, nullable=True)
    correct: Mapped[bool]
