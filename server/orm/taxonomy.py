"""Versioned taxonomies: regions -> categories -> values. A version is immutable once stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.orm.base import Base, CreatedMixin, IdMixin


class TaxonomyVersion(IdMixin, CreatedMixin, Base):
    __tablename__ = "taxonomy_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "version"),
        UniqueConstraint("project_id", "content_hash"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    source_yaml: Mapped[str] = mapped_column(Text)
    # The validated spec as JSON (caption groups and everything the rows below do not carry).
    spec: Mapped[dict[str, Any]]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    regions: Mapped[list[Region]] = relationship(
        back_populates="taxonomy_version", order_by="Region.position", cascade="all, delete-orphan"
    )


class Region(IdMixin, Base):
    __tablename__ = "taxonomy_regions"
    __table_args__ = (UniqueConstraint("taxonomy_version_id", "key"),)

    taxonomy_version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    parsing_ids: Mapped[list[Any]]
    position: Mapped[int]

    taxonomy_version: Mapped[TaxonomyVersion] = relationship(back_populates="regions")
    categories: Mapped[list[Category]] = relationship(
        back_populates="region", order_by="Category.position", cascade="all, delete-orphan"
    )


class Category(IdMixin, Base):
    __tablename__ = "taxonomy_categories"
    __table_args__ = (UniqueConstraint("taxonomy_version_id", "key"),)

    taxonomy_version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id", ondelete="CASCADE"))
    region_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_regions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))  # full key, e.g. "top.sleeve_length"
    question: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(20))
    when: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    caption: Mapped[dict[str, Any]]
    trust_threshold: Mapped[float]
    sensitive: Mapped[bool]
    position: Mapped[int]

    region: Mapped[Region] = relationship(back_populates="categories")
    values: Mapped[list[CategoryValue]] = relationship(
        back_populates="category", order_by="CategoryValue.position", cascade="all, delete-orphan"
    )


class CategoryValue(IdMixin, Base):
    __tablename__ = "taxonomy_values"
    __table_args__ = (UniqueConstraint("category_id", "key"),)

    category_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_categories.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    prompts: Mapped[list[Any]]
    caption: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int]

    category: Mapped[Category] = relationship(back_populates="values")
