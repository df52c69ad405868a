"""Model versions, their predictions, the current labels and the append-only label history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin, Json


class ModelVersion(IdMixin, CreatedMixin, Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "family", "version"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(50))  # open_clip, vqa, heads, stats, ...
    version: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]  # what a GPU worker needs to load it
    status: Mapped[str] = mapped_column(String(20))
    # Per-category accuracy, bound and support on the evaluation set.
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_key: Mapped[str | None] = mapped_column(String(500))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    promoted_at: Mapped[datetime | None]


class Prediction(IdMixin, CreatedMixin, Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("subject_id", "category_id", "model_version_id"),)

    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(
        ForeignKey("taxonomy_categories.id", ondelete="CASCADE"), index=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[Any] = mapped_column(Json)
    confidence: Mapped[float]
    distribution: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Label(IdMixin, Base):
    """The current value of (subject, category). `version` guards against stale writes."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("subject_id", "category_id"),
        Index("ix_labels_category_state", "category_id", "state"),
        # The dashboard's "verified" stage: subjects with a label a person decided, index-only.
        Index(
            "ix_labels_decided",
            "category_id",
            "subject_id",
            postgresql_where=text("state IN ('verified', 'gold')"),
            sqlite_where=text("state IN ('verified', 'gold')"),
        ),
    )

    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_categories.id", ondelete="CASCADE"))
    taxonomy_version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id", ondelete="CASCADE"))
    value: Mapped[Any] = mapped_column(Json)
    state: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float | None]
    version: Mapped[int] = mapped_column(default=1)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime]


class LabelEvent(IdMixin, CreatedMixin, Base):
    """Append-only history. Its id is the high-water mark that snapshots freeze."""

    __tablename__ = "label_events"
    __table_args__ = (
        Index("ix_label_events_subject", "subject_id", "category_id"),
        # The audits of auto-accepted fields (the flywheel's audit accuracy): a small share of events.
        Index(
            "ix_label_events_from_auto_accepted",
            "reason",
            "subject_id",
            postgresql_where=text("from_state = 'auto_accepted'"),
            sqlite_where=text("from_state = 'auto_accepted'"),
        ),
    )

    label_id: Mapped[int] = mapped_column(BigId, ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_categories.id", ondelete="CASCADE"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    assignment_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("assignments.id", ondelete="SET NULL")
    )
    from_value: Mapped[Any] = mapped_column(Json, nullable=True)
    to_value: Mapped[Any] = mapped_column(Json, nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(100))
