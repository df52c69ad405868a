"""The evaluation set (the paper's I_e) and the rounds of the flywheel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin


class EvalSetMember(IdMixin, CreatedMixin, Base):
    """A subject reserved for measuring labelers; no training set may ever contain it."""

    __tablename__ = "eval_set_members"
    __table_args__ = (UniqueConstraint("project_id", "subject_id"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    stratum: Mapped[str] = mapped_column(String(200), default="")


class Round(IdMixin, CreatedMixin, Base):
    """One turn of the flywheel: train, evaluate, promote or reject, re-prelabel, re-route."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(50), default="manual")
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    decision: Mapped[str | None] = mapped_column(String(20))  # promoted | rejected
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The counts of the work that fed the round (its window is closed once it starts), stored
    # when it finishes so that listing rounds does not count them again.
    activity: Mapped[dict[str, Any] | None]
