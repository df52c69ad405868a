from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.orm import Image
from server.orm.enums import ImageStage


def image_id_by_sha(session: Session, project_id: int, sha256: str) -> int | None:
    return session.scalar(select(Image.id).where(Image.project_id == project_id, Image.sha256 == sha256))


def pooled_images(session: Session, image_ids: Sequence[int]) -> list[Image]:
    query = select(Image).where(Image.id.in_(list(image_ids)), Image.stage == ImageStage.pooled.value)
    return list(session.scalars(query.order_by(Image.id)))


def stage_counts(session: Session, project_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Image.stage, func.count()).where(Image.project_id == project_id).group_by(Image.stage)
    )
    return {str(stage): int(n) for stage, n in rows}


def filter_reason_counts(session: Session, project_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Image.filter_reason, func.count())
        .where(Image.project_id == project_id, Image.stage == ImageStage.filtered.value)
        .group_by(Image.filter_reason)
    )
    return {str(reason): int(n) for reason, n in rows}


def list_images(
    session: Session, project_id: int, *, stage: str | None, source_id: int | None, after_id: int, limit: int
) -> list[Image]:
    query = select(Image).where(Image.project_id == project_id, Image.id > after_id)
    if stage is not None:
        query = query.where(Image.stage == stage)
    if source_id is not None:
        query = query.where(Image.source_id == source_id)
    return list(session.scalars(query.order_by(Image.id).limit(limit)))
