"""Where images come from, each run of a source, and what a run refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin


class Source(IdMixin, CreatedMixin, Base):
    __tablename__ = "sources"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    # Kind-specific: the folder (relative to a configured root), the URL list, ...
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Licence and consent recorded with every image that came through this source.
    licence: Mapped[str] = mapped_column(String(200), default="")
    consent: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Watched: the beat starts an incremental run this long after the last one finished.
    watch_every_seconds: Mapped[int | None]


class IngestRun(IdMixin, CreatedMixin, Base):
    """One pass over a source. Its counters are summed from per-batch results."""

    __tablename__ = "ingest_runs"
    __table_args__ = (Index("ix_ingest_runs_status_updated", "status", "updated_at"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    # manual: every file is looked at again; watch: only files the source has not seen.
    trigger: Mapped[str] = mapped_column(String(20), default="manual", server_default="manual")
    items_total: Mapped[int] = mapped_column(default=0)
    items_done: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class IngestItem(IdMixin, Base):
    """A file a run must look at; the unit that batches claim, so a redelivery repeats nothing."""

    __tablename__ = "ingest_items"
    __table_args__ = (Index("ix_ingest_items_run_done", "run_id", "done"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1000))  # path relative to the folder, or file name
    # Where the bytes wait: the folder path, or the upload's staging key.
    location: Mapped[str] = mapped_column(String(2000))
    # What the item looked like when listed (size and mtime, an ETag): a watched run skips a
    # name whose fingerprint a finished item already has.
    fingerprint: Mapped[str] = mapped_column(String(200), default="", server_default="")
    batch: Mapped[int]
    done: Mapped[bool] = mapped_column(default=False)
    outcome: Mapped[str | None] = mapped_column(String(20))  # added | duplicate | rejected
    image_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("images.id", ondelete="SET NULL"))


class IngestRejection(IdMixin, CreatedMixin, Base):
    __tablename__ = "ingest_rejections"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(1000))
    reason: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(1000), default="")
