"""What a person sees of an assignment, read in a handful of queries (the queue's hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, literal, select
from sqlalchemy.orm import Session, selectinload

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
    Prediction,
    Project,
    Subject,
    TaxonomyVersion,
    User,
)
from server.orm.enums import AssignmentKind, LabelState
from server.projects.schemas import ProjectSettings
from server.taxonomy.format import TaxonomySpec

# The states of a value people decided (the queue's, routing's and second opinions' one list).
DECIDED_BY_PEOPLE = (LabelState.verified.value, LabelState.gold.value)


class CategoryView:
    """A taxonomy category as plain data: versions are immutable, so it is cached per process."""

    def __init__(self, row: Category) -> None:
        self.id, self.key, self.kind, self.question = row.id, row.key, row.kind, row.question
        self.when, self.sensitive = row.when, row.sensitive
        self.region, self.region_name = row.region.key, row.region.name
        self.parsing_ids = [int(i) for i in row.region.parsing_ids]
        self.values = [ValueOut(key=v.key, label=v.label) for v in row.values]


_cache: dict[tuple[int, str, object], tuple[list[CategoryView], TaxonomySpec]] = {}
# The cache key of the version a project row points at, by that row's identity (id and creation
# time, which tells two databases' project 1 apart): a stored version id never changes content,
# so a request that has the project skips even the key read.
_project_versions: dict[tuple[int, object, int], tuple[int, str, object]] = {}


def _version(
    session: Session, taxonomy_version_id: int, project: Project | None = None
) -> tuple[list[CategoryView], TaxonomySpec]:
    # Stored versions never change; the creation time tells two databases' version 1 apart.
    # Only the key is read (once per project and version): the spec and its YAML are read and
    # parsed once per process.
    project_key = (
        (project.id, project.created_at, taxonomy_version_id)
        if project is not None and project.id is not None and project.created_at is not None
        else None
    )
    key = _project_versions.get(project_key) if project_key is not None else None
    if key is None:
        key_row = session.execute(
            select(TaxonomyVersion.id, TaxonomyVersion.content_hash, TaxonomyVersion.created_at).where(
                TaxonomyVersion.id == taxonomy_version_id
            )
        ).first()
        if key_row is None:
            raise NotFound("the project has no taxonomy")
        key = (key_row[0], key_row[1], key_row[2])
        if project_key is not None:
            _project_versions[project_key] = key
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


def categories(
    session: Session, taxonomy_version_id: int, project: Project | None = None
) -> list[CategoryView]:
    return _version(session, taxonomy_version_id, project)[0]


# Plain rows, not mapped objects: this is read on every `next` and never written here. One read,
# built once: the subject and its image, each of its labels with the prediction of the model
# version that wrote it (a subject without labels is one row of NULL label columns).
_SUBJECT_WITH_LABELS = (
    select(
        Subject.id,
        Subject.bbox,
        Subject.shot_type,
        Subject.parsing_mask_key,
        Image.id.label("image_id"),
        Image.width,
        Image.height,
        Label.category_id,
        Label.value,
        Label.version,
        Label.state,
        Label.confidence,
        Prediction.value.label("prediction_value"),
        Prediction.confidence.label("prediction_confidence"),
        Prediction.distribution.label("prediction_distribution"),
    )
    .join(Image, Image.id == Subject.image_id)
    .outerjoin(Label, Label.subject_id == Subject.id)
    .outerjoin(
        Prediction,
        and_(
            Prediction.subject_id == Label.subject_id,
            Prediction.category_id == Label.category_id,
            Prediction.model_version_id == Label.model_version_id,
        ),
    )
    .where(Subject.id == bindparam("subject_id"))
)


def render(session: Session, project: Project, assignment: Assignment) -> AssignmentOut:
    rows = session.execute(_SUBJECT_WITH_LABELS, {"subject_id": assignment.subject_id}).all()
    if not rows:
        raise NotFound("the assignment's subject is gone")
    subject = rows[0]
    label_rows = [row for row in rows if row.category_id is not None]
    labels = {label.category_id: label for label in label_rows}
    version_id = project.taxonomy_version_id or 0
    all_categories, spec = _version(session, version_id, project)
    routed = {int(c) for c in assignment.category_ids}
    shown = {cid: _shown(assignment.kind, label) for cid, label in labels.items()}
    out: list[CategoryOut] = []
    for category in all_categories:
        if category.id not in routed:
            continue
        label = labels.get(category.id)
        out.append(
            CategoryOut(
                id=category.id,
                key=category.key,
                region=category.region,
                region_name=category.region_name,
                question=category.question,
                kind=category.kind,
                values=category.values,
                label=shown.get(category.id),
                # A stored prediction always has a confidence (the column is not nullable).
                prediction=PredictionOut(
                    value=label.prediction_value,
                    confidence=label.prediction_confidence,
                    distribution=label.prediction_distribution,
                )
                if label is not None and label.prediction_confidence is not None
                else None,
                parsing_ids=category.parsing_ids,
                when=category.when,
            )
        )
    keys = {c.id: c.key for c in all_categories}
    values = {keys[cid]: label.value for cid, label in shown.items() if cid in keys and label is not None}
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
            image_id=subject.image_id,
            bbox=[int(v) for v in subject.bbox] if subject.bbox else None,
            shot_type=subject.shot_type,
            parsing_mask_url=f"/api/v1/subjects/{subject.id}/mask" if subject.parsing_mask_key else None,
        ),
        image=ImageRefOut(
            id=subject.image_id,
            width=subject.width,
            height=subject.height,
            url=f"/api/v1/images/{subject.image_id}/file",
            thumbnail_url=f"/api/v1/images/{subject.image_id}/thumbnail",
        ),
        categories=out,
        caption_preview=compose(spec, values, include_sensitive=include_sensitive)
        if assignment.kind != "gold"
        else "",
    )


def _shown(kind: str, label: Row[Any]) -> LabelOut | None:
    """The label as the person is shown it (and as the caption preview reads it)."""
    if kind == AssignmentKind.gold.value and label.state == LabelState.gold.value:
        # A gold item looks like any other: its known answers are not shown.
        return None
    if kind == AssignmentKind.eval.value and label.state in DECIDED_BY_PEOPLE:
        # A second evaluation pass is blind: it starts where the first pass started (the
        # model's value), not from the first person's answer. The version is the label's own,
        # so the write is still refused if the label moved on.
        return LabelOut(
            value=label.prediction_value,
            version=label.version,
            state=LabelState.predicted.value,
            confidence=label.prediction_confidence,
        )
    return LabelOut(value=label.value, version=label.version, state=label.state, confidence=label.confidence)


def warm_up(session: Session, projects: Sequence[Project]) -> None:
    """The subject read compiled, and each project's taxonomy cached (see service.warm_up)."""
    session.execute(_SUBJECT_WITH_LABELS, {"subject_id": 0}).all()
    for project in projects:
        if project.taxonomy_version_id is not None:
            _version(session, project.taxonomy_version_id, project)


def mean_confidence(session: Session, subject_ids: Sequence[int]) -> dict[int, float]:
    rows = session.execute(
        select(Label.subject_id, func.avg(Label.confidence))
        .where(Label.subject_id.in_(list(subject_ids)))
        .group_by(Label.subject_id)
    )
    return {int(s): float(c or 0.0) for s, c in rows}


def unseen_gold_subject(session: Session, project_id: int, user_id: int) -> int | None:
    # Asked on a share of every `next`: the labels are reached through (category, state) for the
    # project's categories (an index), never by scanning every label for its state; the answered
    # check is per gold subject (the assignments' (subject, kind) index). 'gold' is written into
    # the SQL, not bound: once the driver prepares the statement, Postgres plans it generically,
    # and a bound state (every label is 'predicted' as far as it knows) made that plan walk all
    # labels in subject order (~270 ms at 1.5M labels) on every gold attempt.
    gold = literal(LabelState.gold.value, literal_execute=True)
    answered = (
        select(Assignment.id)
        .where(
            Assignment.subject_id == Label.subject_id,
            Assignment.kind == literal(AssignmentKind.gold.value, literal_execute=True),
            Assignment.project_id == project_id,
            Assignment.assignee_id == user_id,
        )
        .exists()
    )
    project_categories = (
        select(Category.id)
        .join(TaxonomyVersion, TaxonomyVersion.id == Category.taxonomy_version_id)
        .where(TaxonomyVersion.project_id == project_id)
    )
    query = (
        select(Label.subject_id)
        .join(Subject, Subject.id == Label.subject_id)
        .where(
            Subject.project_id == project_id,
            Label.category_id.in_(project_categories),
            Label.state == gold,
            ~answered,
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
