"""The pre-label pipeline's CPU half: build GPU batches from database state, persist the results.

    pooled --analyze--> ready | filtered --embed--> embedded --prelabel--> prelabeled

The GPU worker is stateless (workers.contracts): each `dispatch_*` reads what a step needs,
sends one batch, and each `persist_*` writes its result with upserts on natural keys and moves
only images still in the step's input stage, so a redelivered message changes nothing.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

import structlog
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from server.assignments import service as assignments
from server.core import jobs, tasknames
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.core.upsert import insert_ignore, insert_ignore_many_returning, upsert
from server.dashboard import service as dashboard
from server.images import service as image_service
from server.labelers import service as labelers
from server.orm import Category, Embedding, Image, Label, LabelEvent, Prediction, Project, Subject
from server.orm.enums import ImageStage, LabelState
from server.prelabel import repository
from server.prelabel.categories import contract_categories, from_contract_value, normalise_distribution
from server.projects.schemas import ProjectSettings
from workers import contracts

log = structlog.get_logger(__name__)

PREDICTIONS = "predictions"  # the beat's stored count of the active labeler's (server.dashboard)


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _batch_size(session: Session, project_id: int) -> int:
    project = session.get(Project, project_id)
    return labelers.pipeline_of(project).batch_size if project else 32


def request_analysis(session: Session, project_id: int, image_ids: Sequence[int]) -> None:
    for chunk in _chunks(image_ids, _batch_size(session, project_id)):
        jobs.enqueue(session, tasknames.DISPATCH_ANALYZE, image_ids=chunk)


def _request(session: Session, name: str, project_id: int, image_ids: Sequence[int]) -> None:
    for chunk in _chunks(image_ids, _batch_size(session, project_id)):
        jobs.enqueue(session, name, image_ids=chunk)


def stored_sha256(image: Image) -> str:
    # Storage keys are content addressed: images/<2>/<sha256 of the stored bytes>.<ext>
    return PurePosixPath(image.storage_key).stem


def _refs(storage: ObjectStorage, images: Sequence[Image]) -> list[contracts.ImageRef]:
    return [
        contracts.ImageRef(image_id=i.id, uri=storage.uri(i.storage_key), sha256=stored_sha256(i))
        for i in images
    ]


def _send(session: Session, task: str, payload: contracts.Contract) -> None:
    jobs.enqueue(session, task, queue=contracts.GPU_QUEUE, payload=payload.model_dump(mode="json"))


def _by_project(images: Sequence[Image]) -> dict[int, list[Image]]:
    grouped: dict[int, list[Image]] = defaultdict(list)
    for image in images:
        grouped[image.project_id].append(image)
    return grouped


# -- analyze ---------------------------------------------------------------------------------


def dispatch_analysis(session: Session, storage: ObjectStorage, image_ids: Sequence[int]) -> int:
    images = repository.images_in_stage(session, image_ids, ImageStage.pooled)
    for project_id, group in _by_project(images).items():
        project = session.get(Project, project_id)
        assert project is not None
        pipeline = labelers.pipeline_of(project)
        batch = contracts.AnalyzeBatch(
            batch_id=group[0].id,
            project_id=project_id,
            images=_refs(storage, group),
            detector=pipeline.detector,
            parser=pipeline.parser,
        )
        _send(session, contracts.ANALYZE, batch)
    return len(images)


def persist_analysis(session: Session, storage: ObjectStorage, result: contracts.AnalyzeResult) -> int:
    images = {
        i.id: i
        for i in repository.images_in_stage(session, [it.image_id for it in result.items], ImageStage.pooled)
    }
    filters = {
        project.id: ProjectSettings.model_validate(project.settings).filters
        for project in session.scalars(
            select(Project).where(Project.id.in_({i.project_id for i in images.values()}))
        )
    }
    now = utcnow()
    ready: list[int] = []
    subjects: list[dict[str, Any]] = []
    for item in result.items:
        image = images.get(item.image_id)
        if image is None:
            continue  # already analysed: a redelivered result
        image.stage_changed_at = now
        if item.error is not None:
            image.stage, image.filter_reason = ImageStage.filtered.value, f"unreadable_{item.error.code}"
            continue
        image.quality = dict(item.quality)
        if item.person is None:
            image.stage, image.filter_reason = ImageStage.filtered.value, "no_person"
            continue
        mask_key = None
        if item.parsing_mask_png_b64 is not None:
            mask_key = f"masks/{stored_sha256(image)[:2]}/{stored_sha256(image)}.png"
            storage.put(mask_key, base64.b64decode(item.parsing_mask_png_b64))
        box = item.person
        # Stored for filtered images too: a lead sees what the analysers saw.
        subjects.append(
            {
                "image_id": image.id,
                "project_id": image.project_id,
                "index": 0,
                "bbox": [round(box.x), round(box.y), round(box.w), round(box.h)],
                "shot_type": item.shot_type,
                "detector_score": item.detector_score,
                "parsing_mask_key": mask_key,
                "analyzer_version": result.detector_version or box.source,
                "created_at": now,
            }
        )
        reason = filters[image.project_id].reason_to_filter(
            image.quality, item.shot_type, item.detector_score
        )
        if reason is not None:
            image.stage, image.filter_reason = ImageStage.filtered.value, reason
            continue
        image.stage = ImageStage.ready.value
        ready.append(image.id)
    upsert(
        session,
        Subject.__table__,  # type: ignore[arg-type]
        subjects,
        ["image_id", "index"],
        ["bbox", "shot_type", "detector_score", "parsing_mask_key", "analyzer_version"],
    )
    _request(session, tasknames.DISPATCH_EMBED, result.project_id, ready)
    return len(ready)


# -- embed -----------------------------------------------------------------------------------


def dispatch_embedding(session: Session, storage: ObjectStorage, image_ids: Sequence[int]) -> int:
    images = repository.images_in_stage(session, image_ids, ImageStage.ready)
    for project_id, group in _by_project(images).items():
        project = session.get(Project, project_id)
        assert project is not None
        backbone = labelers.pipeline_of(project).backbone
        cached = repository.embedded_image_ids(session, [i.id for i in group], backbone.ref)
        # Embeddings are cached per (image, backbone version): never computed twice.
        for image in group:
            if image.id in cached:
                image.stage, image.stage_changed_at = ImageStage.embedded.value, utcnow()
        if cached:
            _request(session, tasknames.DISPATCH_PRELABEL, project_id, sorted(cached))
        missing = [i for i in group if i.id not in cached]
        if missing:
            batch = contracts.EmbedBatch(
                batch_id=missing[0].id, project_id=project_id, model=backbone, images=_refs(storage, missing)
            )
            _send(session, contracts.EMBED, batch)
    return len(images)


def persist_embeddings(session: Session, result: contracts.EmbedResult) -> int:
    ids = [item.image_id for item in result.items]
    images = {i.id: i for i in repository.images_in_stage(session, ids, ImageStage.ready)}
    now = utcnow()
    rows = []
    embedded: list[int] = []
    for item in result.items:
        image = images.get(item.image_id)
        if item.vector_b64 is not None:
            rows.append(
                {
                    "image_id": item.image_id,
                    "backbone": result.backbone_version,
                    "dim": result.dim,
                    "vector": item.vector_bytes(),
                    "created_at": now,
                }
            )
        if image is None:
            continue
        image.stage_changed_at = now
        if item.error is not None:
            image.stage, image.filter_reason = ImageStage.filtered.value, f"unreadable_{item.error.code}"
        else:
            image.stage = ImageStage.embedded.value
            embedded.append(image.id)
    insert_ignore(session, Embedding.__table__, rows, ["image_id", "backbone"])  # type: ignore[arg-type]
    _request(session, tasknames.DISPATCH_PRELABEL, result.project_id, embedded)
    return len(embedded)


# -- prelabel --------------------------------------------------------------------------------


def dispatch_prelabel(
    session: Session,
    storage: ObjectStorage,
    image_ids: Sequence[int],
    *,
    stages: Sequence[ImageStage] = (ImageStage.embedded,),
) -> int:
    images = repository.images_in_stages(session, image_ids, stages)
    for project_id, group in _by_project(images).items():
        project = session.get(Project, project_id)
        assert project is not None and project.taxonomy_version_id is not None
        settings = ProjectSettings.model_validate(project.settings)
        version = labelers.active_labeler(session, project)
        spec = labelers.spec_of(version)
        categories = contract_categories(
            repository.categories_of(session, project.taxonomy_version_id), settings.include_sensitive
        )
        vectors: dict[int, bytes] = {}
        backbone = None
        if spec.family == "heads":
            backbone = settings.pipeline.backbone
            vectors = repository.vectors(session, [i.id for i in group], backbone.ref)
        batch = contracts.PrelabelBatch(
            batch_id=group[0].id,
            project_id=project_id,
            model_version_id=version.id,
            model=spec,
            backbone=backbone,
            categories=categories,
            images=[
                contracts.PrelabelImage(
                    **ref.model_dump(),
                    embedding_b64=contracts.encode_vector(vectors[ref.image_id])
                    if ref.image_id in vectors
                    else None,
                )
                for ref in _refs(storage, group)
            ],
        )
        _send(session, contracts.PRELABEL, batch)
    return len(images)


def persist_predictions(session: Session, result: contracts.PrelabelResult) -> int:
    """Predictions upserted per (subject, category, model version); labels not yet decided by a
    person or accepted take the new value, each change with its label event."""
    ids = [item.image_id for item in result.items]
    subjects = repository.first_subjects(session, ids)
    images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(ids)))}
    project = session.get(Project, result.project_id)
    if project is None or project.taxonomy_version_id is None:
        return 0
    categories = {c.key: c for c in repository.categories_of(session, project.taxonomy_version_id)}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    done: list[int] = []
    for item in result.items:
        subject_id = subjects.get(item.image_id)
        image = images.get(item.image_id)
        if subject_id is None or image is None:
            continue
        if item.error is not None:
            log.warning("prelabel.image_failed", image_id=item.image_id, error=item.error.code)
            continue
        for key, prediction in item.predictions.items():
            category = categories.get(key)
            if category is None:
                continue
            rows.append(
                {
                    "subject_id": subject_id,
                    "category_id": category.id,
                    "model_version_id": result.model_version_id,
                    "value": from_contract_value(category, prediction.value),
                    "confidence": prediction.confidence,
                    "distribution": normalise_distribution(category, prediction.distribution),
                    "created_at": now,
                }
            )
        if item.caption and not image.caption:
            image.caption = item.caption[:2000]
        done.append(image.id)
    insert_ignore(
        session,
        Prediction.__table__,  # type: ignore[arg-type]
        rows,
        ["subject_id", "category_id", "model_version_id"],
    )
    _apply_to_labels(session, rows, project.taxonomy_version_id, now)
    for image_id in done:
        image = images[image_id]
        if image.stage != ImageStage.prelabeled.value:
            image.stage, image.stage_changed_at = ImageStage.prelabeled.value, now
    assignments.route_cold_start(session, project, [subjects[i] for i in done])
    return len(done)


def _apply_to_labels(
    session: Session, rows: list[dict[str, Any]], taxonomy_version_id: int, now: Any
) -> None:
    """Bulk statements throughout: a batch touches thousands of labels."""
    if not rows:
        return
    keys = {(r["subject_id"], r["category_id"]) for r in rows}
    existing = repository.label_rows(session, keys)
    fresh = [r for r in rows if (r["subject_id"], r["category_id"]) not in existing]
    created = insert_ignore_many_returning(
        session,
        Label.__table__,  # type: ignore[arg-type]
        [
            {
                "subject_id": r["subject_id"],
                "category_id": r["category_id"],
                "taxonomy_version_id": taxonomy_version_id,
                "value": r["value"],
                "state": LabelState.predicted.value,
                "confidence": r["confidence"],
                "version": 1,
                "model_version_id": r["model_version_id"],
                "updated_at": now,
            }
            for r in fresh
        ],
        ["subject_id", "category_id"],
        ["id", "subject_id", "category_id"],
    )
    events: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []

    def event(label: Any, row: dict[str, Any], from_value: Any, from_state: str | None) -> None:
        events.append(
            {
                "label_id": label.id,
                "subject_id": label.subject_id,
                "category_id": label.category_id,
                "actor_model_version_id": row["model_version_id"],
                "from_value": from_value,
                "to_value": row["value"],
                "from_state": from_state,
                "to_state": LabelState.predicted.value,
                "reason": "prelabel",
                "created_at": now,
            }
        )

    # Only the labels this call inserted: a concurrent duplicate delivery may have won the race.
    fresh_by_key = {(r["subject_id"], r["category_id"]): r for r in fresh}
    for label in created:
        event(label, fresh_by_key[(label.subject_id, label.category_id)], None, None)
    for row in rows:
        label = existing.get((row["subject_id"], row["category_id"]))
        # A person's decision, an accepted label, or this very model's answer stands.
        if label is None or label.state != LabelState.predicted.value:
            continue
        if label.model_version_id == row["model_version_id"]:
            continue
        changed = label.value != row["value"]
        updates.append(
            {
                "label_id": label.id,
                "new_value": row["value"],
                "new_confidence": row["confidence"],
                "new_model_version_id": row["model_version_id"],
                "new_version": label.version + 1 if changed else label.version,
            }
        )
        if changed:
            event(label, row, label.value, label.state)
    if updates:
        table: Table = Label.__table__  # type: ignore[assignment]
        statement = (
            update(table)
            .where(table.c.id == bindparam("label_id"))
            .values(
                value=bindparam("new_value", type_=table.c.value.type),
                confidence=bindparam("new_confidence"),
                model_version_id=bindparam("new_model_version_id"),
                version=bindparam("new_version"),
                updated_at=now,
            )
        )
        session.execute(statement, updates)
    if events:
        session.execute(insert(LabelEvent), events)


def progress(session: Session, project: Project) -> dict[str, Any]:
    """The active labeler's predictions of a large project are the beat's count while it is
    fresh and of that labeler (20,000,000 at 1,000,000 subjects take 0.6 to 1.7 s to count);
    `predictions_counted_at` says when they were counted."""
    version = labelers.active_labeler(session, project)
    stored = dashboard.stored_while_fresh(session, project.id, PREDICTIONS)
    if stored is not None and stored.body.get("model_version_id") == version.id:
        predictions, counted_at = int(stored.body["predictions"]), stored.computed_at
    else:
        counted_at = utcnow()
        predictions = repository.count_predictions(session, version.id)
    return {
        "stages": image_service.stage_counts(session, project.id),
        "active_model_version": {"id": version.id, "version": version.version},
        "subjects": repository.count_subjects(session, project.id),
        "predictions": predictions,
        "predictions_counted_at": counted_at,
        "embeddings": repository.count_embeddings(session, project.id),
    }


def store_prediction_counts(session: Session, project_ids: Sequence[int] | None = None) -> list[int]:
    """The beat's count of the active labeler's predictions of large projects, recounted at
    once when another labeler became active; returns the ids counted."""

    def count(project: Project) -> dict[str, Any]:
        version = labelers.active_labeler(session, project)
        return {
            "model_version_id": version.id,
            "predictions": repository.count_predictions(session, version.id),
        }

    def current(project: Project, body: dict[str, Any]) -> bool:
        return bool(body.get("model_version_id") == labelers.active_labeler(session, project).id)

    return dashboard.store_where_due(session, PREDICTIONS, count, project_ids, current)


def categories_for_project(session: Session, project: Project) -> list[Category]:
    assert project.taxonomy_version_id is not None
    return repository.categories_of(session, project.taxonomy_version_id)
