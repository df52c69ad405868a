"""Snapshots (immutable views of labels) and the exports written from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin


class Snapshot(IdMixin, CreatedMixin, Base):
    __tablename__ = "snapshots"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    taxonomy_version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id"))
    # Labels as of this label-event id: later events are invisible to the snapshot.
    label_event_high_water: Mapped[int] = mapped_column(BigId)
    # Predictions as of this id (Label Studio exports carry them).
    prediction_high_water: Mapped[int] = mapped_column(BigId, default=0, server_default="0")
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Postgres: the id of the transaction that read the marks (it took one after reading them);
    # once every transaction up to it has ended, nothing at or below the marks can still appear.
    settles_after_xid: Mapped[int | None] = mapped_column(BigInteger)
    subject_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # The project's `include_sensitive` as of the start: every part and the manifest say
    # sensitive categories alike, whatever the setting is by the time they run.
    include_sensitive: Mapped[bool] = mapped_column(default=False, server_default=false())


class SnapshotSubject(Base):
    """The subjects a snapshot holds, in export order; frozen when the snapshot is planned."""

    __tablename__ = "snapshot_subjects"

    snapshot_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject_id: Mapped[int] = mapped_column(BigId)


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


class ExportPart(IdMixin, Base):
    """One shard range of an export: one task writes it; its files' checksums let a rerun keep it."""

    __tablename__ = "export_parts"
    __table_args__ = (UniqueConstraint("export_id", "index"),)

    export_id: Mapped[int] = mapped_column(BigId, ForeignKey("exports.id", ondelete="CASCADE"))
    index: Mapped[int]
    first: Mapped[int]  # snapshot positions [first, stop)
    stop: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))  # pending, done
    samples: Mapped[int] = mapped_column(default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # file name (relative to the destination) -> {"sha256", "bytes"}
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # labels written, by state
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    finished_at: Mapped[datetime | None]


class ExportDocument(Base):
    """A subject's labels as exports write them (`exports.repository.LabelDocument`): for one
    variant (document version, taxonomy version, label states, sensitive categories in or out),
    as of a label-event and a prediction high-water mark. It stands for any snapshot with no label
    event or prediction of the subject between its marks and the snapshot's; an export encodes
    the others again and keeps them here."""

    __tablename__ = "export_documents"

    subject_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(200), primary_key=True)
    label_event_high_water: Mapped[int] = mapped_column(BigId)
    prediction_high_water: Mapped[int] = mapped_column(BigId)
    # Small columns first: SQLite reads a row's columns in order, through its overflow pages.
    states: Mapped[str] = mapped_column(Text)  # JSON: labels said, by state
    person_type: Mapped[str | None] = mapped_column(String(200))
    caption: Mapped[str] = mapped_column(Text)
    aa_text: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # UTF-8 JSON, written into samples as it is


class ExportRefreshMark(Base):
    """The marks of a project's last complete refresh of one document variant: as of them, every
    subject with a label in the variant's states had a document that stood for them. Only label
    events and predictions since can make one missing or stale, so the next refresh reads those
    instead of every subject (`exports.service.refresh_documents`)."""

    __tablename__ = "export_refresh_marks"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    variant: Mapped[str] = mapped_column(String(200), primary_key=True)
    label_event_high_water: Mapped[int] = mapped_column(BigId)
    prediction_high_water: Mapped[int] = mapped_column(BigId)
    refreshed_at: Mapped[datetime]
