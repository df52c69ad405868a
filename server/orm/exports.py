"""Snapshots (immutable views of labels) and the exports written from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin


class Snapshot(IdMixin, CreatedMixin, Base):
    __tablename__ = "snapshots"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    taxonomy_version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id"))
    # Labels as of this label-event id: later events are invisible to the snapshot.
    label_event_high_water: Mapped[int] = mapped_column(BigId)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Export(IdMixin, CreatedMixin, Base):
    __tablename__ = "exports"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(30))
    destination: Mapped[str] = mapped_column(String(1000))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    progress: Mapped[float] = mapped_column(default=0.0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None]
