"""The rows an import reads and writes, each on its natural key so a second import adds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.time import utcnow
from server.core.upsert import insert_ignore, insert_ignore_many_returning
from server.orm import Category, Image, Label, ModelVersion, Prediction, Source, Subject
from server.orm.enums import ModelStatus, SourceKind

IMPORT_FAMILY = "label_studio"


def import_source(session: Session, project_id: int, user_id: int) -> Source:
    source = session.scalar(
        select(Source)
        .where(Source.project_id == project_id, Source.kind == SourceKind.label_studio.value)
        .order_by(Source.id)
        .limit(1)
    )
    if source is None:
        source = Source(
            project_id=project_id,
            kind=SourceKind.label_studio.value,
            name="Label Studio import",
            config={},
            created_by_id=user_id,
        )
        session.add(source)
        session.flush()
    return source


def categories_of(session: Session, taxonomy_version_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Category.key, Category.id).where(Category.taxonomy_version_id == taxonomy_version_id)
    )
    return {key: int(cid) for key, cid in rows}


def image_id_by_sha(session: Session, project_id: int, sha256: str) -> int | None:
    found = session.scalar(select(Image.id).where(Image.project_id == project_id, Image.sha256 == sha256))
    return None if found is None else int(found)


def first_subject(session: Session, image_id: int, project_id: int) -> int:
    """The image's subject 0, created when analysis has not made it yet (analysis upserts it)."""
    insert_ignore(
        session,
        Subject.__table__,  # type: ignore[arg-type]
        [{"image_id": image_id, "project_id": project_id, "index": 0, "created_at": utcnow()}],
        ["image_id", "index"],
    )
    subject_id = session.scalar(select(Subject.id).where(Subject.image_id == image_id, Subject.index == 0))
    assert subject_id is not None
    return int(subject_id)


def model_version(session: Session, project_id: int, version: str) -> int:
    """The model version standing for a Label Studio `model_version` (never a labeler we run)."""
    existing = session.scalar(
        select(ModelVersion.id).where(
            ModelVersion.project_id == project_id,
            ModelVersion.family == IMPORT_FAMILY,
            ModelVersion.version == version,
        )
    )
    if existing is not None:
        return int(existing)
    row = ModelVersion(
        project_id=project_id,
        family=IMPORT_FAMILY,
        version=version,
        spec={"family": IMPORT_FAMILY, "model_version": version, "imported": True},
        status=ModelStatus.retired.value,
        metrics={},
    )
    session.add(row)
    session.flush()
    return int(row.id)


def add_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert predictions unless (subject, category, model version) exists; how many were new."""
    created = insert_ignore_many_returning(
        session,
        Prediction.__table__,  # type: ignore[arg-type]
        rows,
        ["subject_id", "category_id", "model_version_id"],
        ["id"],
    )
    return len(created)


def labels_of(session: Session, subject_id: int, category_ids: Sequence[int]) -> dict[int, Label]:
    rows = session.scalars(
        select(Label).where(Label.subject_id == subject_id, Label.category_id.in_(list(category_ids)))
    )
    return {label.category_id: label for label in rows}
