from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, selectinload

from server.orm import Category, Embedding, Image, Label, Prediction, Subject
from server.orm.enums import ImageStage


def images_in_stage(session: Session, image_ids: Sequence[int], stage: ImageStage) -> list[Image]:
    return images_in_stages(session, image_ids, (stage,))


def images_in_stages(session: Session, image_ids: Sequence[int], stages: Sequence[ImageStage]) -> list[Image]:
    if not image_ids:
        return []
    query = select(Image).where(Image.id.in_(list(image_ids)), Image.stage.in_([s.value for s in stages]))
    return list(session.scalars(query.order_by(Image.id)))


def embedded_image_ids(session: Session, image_ids: Sequence[int], backbone: str) -> set[int]:
    query = select(Embedding.image_id).where(
        Embedding.image_id.in_(list(image_ids)), Embedding.backbone == backbone
    )
    return {int(i) for i in session.scalars(query)}


def vectors(session: Session, image_ids: Sequence[int], backbone: str) -> dict[int, bytes]:
    query = select(Embedding.image_id, Embedding.vector).where(
        Embedding.image_id.in_(list(image_ids)), Embedding.backbone == backbone
    )
    return {int(i): bytes(v) for i, v in session.execute(query)}


def categories_of(session: Session, taxonomy_version_id: int) -> list[Category]:
    query = (
        select(Category)
        .where(Category.taxonomy_version_id == taxonomy_version_id)
        .options(selectinload(Category.values))
        .order_by(Category.position)
    )
    return list(session.scalars(query))


def first_subjects(session: Session, image_ids: Sequence[int]) -> dict[int, int]:
    query = select(Subject.image_id, Subject.id).where(
        Subject.image_id.in_(list(image_ids)), Subject.index == 0
    )
    return {int(image_id): int(subject_id) for image_id, subject_id in session.execute(query)}


def label_rows(session: Session, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], Row[Any]]:
    """Current labels of (subject, category) keys as plain rows (no ORM identity overhead)."""
    if not keys:
        return {}
    subject_ids = sorted({s for s, _ in keys})
    query = select(
        Label.id,
        Label.subject_id,
        Label.category_id,
        Label.value,
        Label.state,
        Label.model_version_id,
        Label.version,
    ).where(Label.subject_id.in_(subject_ids))
    return {
        (r.subject_id, r.category_id): r
        for r in session.execute(query)
        if (r.subject_id, r.category_id) in keys
    }


def count_subjects(session: Session, project_id: int) -> int:
    return int(session.scalar(select(func.count()).where(Subject.project_id == project_id)) or 0)


def count_predictions(session: Session, model_version_id: int) -> int:
    """A model version belongs to one project, so its index alone answers (no join to subjects)."""
    query = select(func.count()).select_from(Prediction)
    return int(session.scalar(query.where(Prediction.model_version_id == model_version_id)) or 0)


def count_embeddings(session: Session, project_id: int) -> int:
    query = (
        select(func.count())
        .select_from(Embedding)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.project_id == project_id)
    )
    return int(session.scalar(query) or 0)


def stuck_image_ids(session: Session, stage: ImageStage, before: datetime, limit: int) -> list[int]:
    query = (
        select(Image.id)
        .where(Image.stage == stage.value, Image.stage_changed_at < before)
        .order_by(Image.id)
        .limit(limit)
    )
    return [int(i) for i in session.scalars(query)]
