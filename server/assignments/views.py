"""What a person sees of an assignment, read in a handful of queries (the queue's hot path)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.assignments import repository
from server.assignments.schemas import (
    AnnotatorScore,
    AssignmentOut,
    CategoryOut,
    ImageRefOut,
    LabelOut,
    PredictionOut,
    SubjectOut,
    ValueOut,
)
from server.captions.compose import compose
from server.core.errors import NotFound
from server.orm import (
    Assignment,
    Category,
    GoldAnswer,
    Image,
    Label,
    Project,
    Subject,
    TaxonomyVersion,
    User,
)
from server.orm.enums import LabelState
from server.projects.schemas import ProjectSettings
from server.taxonomy.format import TaxonomySpec


class CategoryView:
    """A taxonomy category as plain data: versions are immutable, so it is cached per process."""

    def __init__(self, row: Category) -> None:
        self.id, self.key, self.kind, self.question = row.id, row.key, row.kind, row.question
        self.when, self.sensitive = row.when, row.sensitive
        self.region, self.region_name = row.region.key, row.region.name
        self.parsing_ids = [int(i) for i in row.region.parsing_ids]
        self.values = [ValueOut(key=v.key, label=v.label) for v in row.values]


_cache: dict[tuple[int, str, object], tuple[list[CategoryView], TaxonomySpec]] = {}


def _version(session: Session, taxonomy_version_id: int) -> tuple[list[CategoryView], TaxonomySpec]:
    # Stored versions never change; the creation time tells two databases' version 1 apart.
    # Only the key is read per request: the spec and its YAML are read (and parsed) once.
    key_row = session.execute(
        select(TaxonomyVersion.id, TaxonomyVersion.content_hash, TaxonomyVersion.created_at).where(
            TaxonomyVersion.id == taxonomy_version_id
        )
    ).first()
    if key_row is None:
        raise NotFound("the project has no taxonomy")
    key = (key_row[0], key_row[1], key_row[2])
    cached = _cache.get(key)
    if cached is None:
        version = session.get(TaxonomyVersion, taxonomy_version_id)
        assert version is not None
        rows = session.scalars(
            select(Category)
            .where(Category.taxonomy_version_id == taxonomy_version_id)
            .options(selectinload(Category.values), selectinload(Category.region))
            .order_by(Category.position)
        )
        cached = ([CategoryView(r) for r in rows], TaxonomySpec.model_validate(version.spec))
        _cache[key] = cached
    return cached


def categories(session: Session, taxonomy_version_id: int) -> list[CategoryView]:
    return _version(session, taxonomy_version_id)[0]


def render(session: Session, project: Project, assignment: Assignment) -> AssignmentOut:
    subject = session.get(Subject, assignment.subject_id)
    assert subject is not None
    image = session.get(Image, subject.image_id)
    assert image is not None
    label_rows = session.scalars(select(Label).where(Label.subject_id == subject.id))
    labels = {label.category_id: label for label in label_rows}
    version_id = project.taxonomy_version_id or 0
    all_categories, spec = _version(session, version_id)
    routed = {int(c) for c in assignment.category_ids}
    model_versions = {label.model_version_id for label in labels.values() if label.model_version_id}
    predictions = repository.predictions_of(session, subject.id, model_versions)
    out: list[CategoryOut] = []
    for category in all_categories:
        if category.id not in routed:
            continue
        label = labels.get(category.id)
        prediction = predictions.get(category.id)
        out.append(
            CategoryOut(
                id=category.id,
                key=category.key,
                region=category.region,
                region_name=category.region_name,
                question=category.question,
                kind=category.kind,
                values=category.values,
                # A gold item looks like any other: its known answers are not shown.
                label=None
                if label is None or (assignment.kind == "gold" and label.state == LabelState.gold.value)
                else LabelOut(
                    value=label.value, version=label.version, state=label.state, confidence=label.confidence
                ),
                prediction=PredictionOut(
                    value=prediction.value,
                    confidence=prediction.confidence,
                    distribution=prediction.distribution,
                )
                if prediction is not None
                else None,
                parsing_ids=category.parsing_ids,
                when=category.when,
            )
        )
    keys = {c.id: c.key for c in all_categories}
    values = {keys[cid]: label.value for cid, label in labels.items() if cid in keys}
    include_sensitive = ProjectSettings.model_validate(project.settings).include_sensitive
    return AssignmentOut(
        id=assignment.id,
        project_id=assignment.project_id,
        kind="review" if assignment.kind == "gold" else assignment.kind,
        status=assignment.status,
        lease_expires_at=assignment.lease_expires_at,
        priority=assignment.priority,
        subject=SubjectOut(
            id=subject.id,
            image_id=image.id,
            bbox=[int(v) for v in subject.bbox] if subject.bbox else None,
            shot_type=subject.shot_type,
            parsing_mask_url=f"/api/v1/subjects/{subject.id}/mask" if subject.parsing_mask_key else None,
        ),
        image=ImageRefOut(
            id=image.id,
            width=image.width,
            height=image.height,
            url=f"/api/v1/images/{image.id}/file",
            thumbnail_url=f"/api/v1/images/{image.id}/thumbnail",
        ),
        categories=out,
        caption_preview=compose(spec, values, include_sensitive=include_sensitive)
        if assignment.kind != "gold"
        else "",
    )


def mean_confidence(session: Session, subject_ids: Sequence[int]) -> dict[int, float]:
    rows = session.execute(
        select(Label.subject_id, func.avg(Label.confidence))
        .where(Label.subject_id.in_(list(subject_ids)))
        .group_by(Label.subject_id)
    )
    return {int(s): float(c or 0.0) for s, c in rows}


def unseen_gold_subject(session: Session, project_id: int, user_id: int) -> int | None:
    answered = select(Assignment.subject_id).where(
        Assignment.project_id == project_id, Assignment.kind == "gold", Assignment.assignee_id == user_id
    )
    query = (
        select(Label.subject_id)
        .join(Subject, Subject.id == Label.subject_id)
        .where(
            Subject.project_id == project_id,
            Label.state == LabelState.gold.value,
            Label.subject_id.not_in(answered),
        )
        .order_by(Label.subject_id)
        .limit(1)
    )
    found = session.scalar(query)
    return int(found) if found is not None else None


def gold_category_ids(session: Session, subject_id: int) -> list[int]:
    query = select(Label.category_id).where(
        Label.subject_id == subject_id, Label.state == LabelState.gold.value
    )
    return sorted(int(c) for c in session.scalars(query))


def annotator_scores(session: Session, project_id: int) -> list[AnnotatorScore]:
    rows = session.execute(
        select(GoldAnswer.user_id, User.email, Category.key, GoldAnswer.correct, func.count())
        .join(User, User.id == GoldAnswer.user_id)
        .join(Category, Category.id == GoldAnswer.category_id)
        .where(GoldAnswer.project_id == project_id)
        .group_by(GoldAnswer.user_id, User.email, Category.key, GoldAnswer.correct)
    )
    scores: dict[int, AnnotatorScore] = {}
    for user_id, email, key, correct, n in rows:
        score = scores.setdefault(
            user_id,
            AnnotatorScore(
                user_id=user_id, email=email, gold_answers=0, gold_correct=0, accuracy=None, by_category={}
            ),
        )
        score.gold_answers += n
        score.gold_correct += n if correct else 0
        per = score.by_category.setdefault(key, {"answers": 0, "correct": 0})
        per["answers"] += n
        per["correct"] += n if correct else 0
    for score in scores.values():
        score.accuracy = score.gold_correct / score.gold_answers if score.gold_answers else None
    return sorted(scores.values(), key=lambda s: s.email)
