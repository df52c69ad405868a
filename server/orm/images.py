"""Images (content-addressed), the people in them, and cached embeddings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.orm.base import Base, BigId, CreatedMixin, IdMixin


class Image(IdMixin, CreatedMixin, Base):
    __tablename__ = "images"
    __table_args__ = (
        # Content addressing: the same bytes enter a project once, however often they are offered.
        UniqueConstraint("project_id", "sha256"),
        Index("ix_images_project_stage", "project_id", "stage"),
        Index("ix_images_stage_changed", "stage", "stage_changed_at"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes as offered
    storage_key: Mapped[str] = mapped_column(String(500))  # the stored, upright bytes
    thumbnail_key: Mapped[str | None] = mapped_column(String(500))
    original_name: Mapped[str] = mapped_column(String(1000), default="")
    mime: Mapped[str] = mapped_column(String(50))
    width: Mapped[int]
    height: Mapped[int]
    bytes: Mapped[int]
    stage: Mapped[str] = mapped_column(String(20))
    stage_changed_at: Mapped[datetime]
    filter_reason: Mapped[str | None] = mapped_column(String(100))
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A scene caption from an image-to-text model, when one ran.
    caption: Mapped[str | None] = mapped_column(String(2000))
    licence: Mapped[str] = mapped_column(String(200), default="")
    consent: Mapped[str] = mapped_column(String(200), default="")


class Subject(IdMixin, CreatedMixin, Base):
    """A person in an image. One per image by default; the schema allows several."""

    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("image_id", "index"),)

    image_id: Mapped[int] = mapped_column(BigId, ForeignKey("images.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(default=0)
    # x, y, w, h in pixels of the upright image.
    bbox: Mapped[list[Any] | None] = mapped_column(nullable=True)
    shot_type: Mapped[str | None] = mapped_column(String(30))
    detector_score: Mapped[float | None]
    parsing_mask_key: Mapped[str | None] = mapped_column(String(500))
    analyzer_version: Mapped[str | None] = mapped_column(String(200))


class Embedding(IdMixin, CreatedMixin, Base):
    """Cached per (image, backbone version): retraining heads never recomputes them."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("image_id", "backbone"),)

    image_id: Mapped[int] = mapped_column(BigId, ForeignKey("images.id", ondelete="CASCADE"))
    backbone: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int]
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # little-endian float32
