"""The flywheel's reads: the evaluation set, training examples, predictions, rounds, activity."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from server.orm import (
    Assignment,
    Category,
    Embedding,
    EvalSetMember,
    Image,
    Label,
    LabelEvent,
    Prediction,
    Round,
    Subject,
)
from server.orm.enums import AssignmentKind, AssignmentStatus, ImageStage, LabelState

DECIDED_BY_PEOPLE = (LabelState.verified.value, LabelState.gold.value)


def eval_subject_ids(session: Session, project_id: int) -> set[int]:
    query = select(EvalSetMember.subject_id).where(EvalSetMember.project_id == project_id)
    return {int(s) for s in session.scalars(query)}


def eval_candidates(
    session: Session, project_id: int, stratify_category_id: int | None
) -> list[tuple[int, str]]:
    """Pre-labelled subjects that may join the evaluation set: not in it, nothing verified yet
    (so nothing a past round trained on), with their stratum (the stratifying label's value)."""
    decided = exists().where(Label.subject_id == Subject.id, Label.state.in_(DECIDED_BY_PEOPLE))
    member = exists().where(EvalSetMember.subject_id == Subject.id)
    query = (
        select(Subject.id)
        .join(Image, Image.id == Subject.image_id)
        .where(
            Subject.project_id == project_id,
            Subject.index == 0,
            Image.stage == ImageStage.prelabeled.value,
            ~decided,
            ~member,
        )
        .order_by(Subject.id)
    )
    ids = [int(s) for s in session.scalars(query)]
    strata: dict[int, str] = {}
    if stratify_category_id is not None and ids:
        rows = session.execute(
            select(Label.subject_id, Label.value).where(
                Label.subject_id.in_(ids), Label.category_id == stratify_category_id
            )
        )
        strata = {int(s): str(v) for s, v in rows}
    return [(s, strata.get(s, "")) for s in ids]


def verified_labels(
    session: Session, project_id: int, taxonomy_version_id: int
) -> list[tuple[int, int, Any]]:
    """(subject, category, value) decided by people, never of an evaluation-set subject."""
    member = exists().where(EvalSetMember.subject_id == Label.subject_id)
    query = (
        select(Label.subject_id, Label.category_id, Label.value)
        .join(Subject, Subject.id == Label.subject_id)
        .where(
            Subject.project_id == project_id,
            Label.taxonomy_version_id == taxonomy_version_id,
            Label.state.in_(DECIDED_BY_PEOPLE),
            ~member,
        )
        .order_by(Label.subject_id, Label.category_id)
    )
    return [(int(s), int(c), v) for s, c, v in session.execute(query)]


def eval_truth(session: Session, project_id: int) -> dict[int, dict[int, Any]]:
    """What people answered on the evaluation set: subject -> category -> value."""
    query = (
        select(Label.subject_id, Label.category_id, Label.value)
        .join(EvalSetMember, EvalSetMember.subject_id == Label.subject_id)
        .where(EvalSetMember.project_id == project_id, Label.state.in_(DECIDED_BY_PEOPLE))
    )
    out: dict[int, dict[int, Any]] = {}
    for subject_id, category_id, value in session.execute(query):
        out.setdefault(int(subject_id), {})[int(category_id)] = value
    return out


def predictions(
    session: Session, subject_ids: Collection[int], model_version_id: int
) -> dict[int, dict[int, tuple[Any, float]]]:
    query = select(
        Prediction.subject_id, Prediction.category_id, Prediction.value, Prediction.confidence
    ).where(Prediction.subject_id.in_(list(subject_ids)), Prediction.model_version_id == model_version_id)
    out: dict[int, dict[int, tuple[Any, float]]] = {}
    for subject_id, category_id, value, confidence in session.execute(query):
        out.setdefault(int(subject_id), {})[int(category_id)] = (value, float(confidence))
    return out


def images_of_subjects(session: Session, subject_ids: Collection[int]) -> dict[int, Image]:
    query = (
        select(Subject.id, Image)
        .join(Image, Image.id == Subject.image_id)
        .where(Subject.id.in_(list(subject_ids)))
    )
    return {int(s): image for s, image in session.execute(query)}


def first_subjects(session: Session, image_ids: Collection[int]) -> dict[int, int]:
    query = select(Subject.image_id, Subject.id).where(
        Subject.image_id.in_(list(image_ids)), Subject.index == 0
    )
    return {int(i): int(s) for i, s in session.execute(query)}


def vectors(session: Session, image_ids: Collection[int], backbone: str) -> dict[int, bytes]:
    query = select(Embedding.image_id, Embedding.vector).where(
        Embedding.image_id.in_(list(image_ids)), Embedding.backbone == backbone
    )
    return {int(i): bytes(v) for i, v in session.execute(query)}


def undecided_image_ids(session: Session, project_id: int) -> list[int]:
    """Pre-labelled images whose subject still has a field no person decided."""
    undecided = exists().where(Label.subject_id == Subject.id, Label.state.not_in(DECIDED_BY_PEOPLE))
    query = (
        select(Image.id)
        .join(Subject, Subject.image_id == Image.id)
        .where(Image.project_id == project_id, Image.stage == ImageStage.prelabeled.value, undecided)
        .distinct()
        .order_by(Image.id)
    )
    return [int(i) for i in session.scalars(query)]


def categories(session: Session, taxonomy_version_id: int) -> list[Category]:
    query = select(Category).where(Category.taxonomy_version_id == taxonomy_version_id)
    return list(session.scalars(query.order_by(Category.position)))


# -- rounds ----------------------------------------------------------------------------------


def rounds(session: Session, project_id: int) -> list[Round]:
    return list(session.scalars(select(Round).where(Round.project_id == project_id).order_by(Round.number)))


def next_round_number(session: Session, project_id: int) -> int:
    return int(session.scalar(select(func.max(Round.number)).where(Round.project_id == project_id)) or 0) + 1


def running_round(session: Session, project_id: int) -> Round | None:
    query = select(Round).where(Round.project_id == project_id, Round.status.in_(("queued", "training")))
    return session.scalar(query.limit(1))


def last_round_start(session: Session, project_id: int) -> datetime | None:
    return session.scalar(select(func.max(Round.started_at)).where(Round.project_id == project_id))


# -- activity --------------------------------------------------------------------------------


def decided_subjects_since(session: Session, project_id: int, since: datetime | None) -> int:
    """Subjects with a field a person verified since `since` (evaluation subjects aside)."""
    member = exists().where(EvalSetMember.subject_id == LabelEvent.subject_id)
    query = (
        select(func.count(func.distinct(LabelEvent.subject_id)))
        .join(Subject, Subject.id == LabelEvent.subject_id)
        .where(
            Subject.project_id == project_id,
            LabelEvent.actor_user_id.is_not(None),
            LabelEvent.to_state.in_(DECIDED_BY_PEOPLE),
            ~member,
        )
    )
    if since is not None:
        query = query.where(LabelEvent.created_at >= since)
    return int(session.scalar(query) or 0)


def field_decisions(
    session: Session, project_id: int, since: datetime | None, until: datetime | None
) -> dict[str, int]:
    """Fields decided in the window: by people (per assignment kind) and auto-accepted."""
    query = (
        select(LabelEvent.reason, func.count())
        .join(Subject, Subject.id == LabelEvent.subject_id)
        .where(
            Subject.project_id == project_id,
            (LabelEvent.actor_user_id.is_not(None) & LabelEvent.to_state.in_(DECIDED_BY_PEOPLE))
            | (LabelEvent.to_state == LabelState.auto_accepted.value),
        )
        .group_by(LabelEvent.reason)
    )
    if since is not None:
        query = query.where(LabelEvent.created_at >= since)
    if until is not None:
        query = query.where(LabelEvent.created_at < until)
    return {str(reason): int(n) for reason, n in session.execute(query)}


def lead_time_ms(session: Session, project_id: int, since: datetime | None, until: datetime | None) -> int:
    query = select(func.coalesce(func.sum(Assignment.lead_time_ms), 0)).where(
        Assignment.project_id == project_id, Assignment.status == AssignmentStatus.submitted.value
    )
    if since is not None:
        query = query.where(Assignment.submitted_at >= since)
    if until is not None:
        query = query.where(Assignment.submitted_at < until)
    return int(session.scalar(query) or 0)


def audit_outcomes(session: Session, project_id: int, until: datetime | None) -> list[tuple[Any, Any]]:
    """(auto-accepted value, the value people settled on) of every audited field: the auditor's
    answer, or where it disagreed and a reviewer adjudicated since, the adjudicated value."""
    audits = (
        select(
            LabelEvent.id,
            LabelEvent.subject_id,
            LabelEvent.category_id,
            LabelEvent.from_value,
            LabelEvent.to_value,
        )
        .join(Subject, Subject.id == LabelEvent.subject_id)
        .where(
            Subject.project_id == project_id,
            LabelEvent.reason == AssignmentKind.audit.value,
            LabelEvent.from_state == LabelState.auto_accepted.value,
        )
        .order_by(LabelEvent.id)
    )
    if until is not None:
        audits = audits.where(LabelEvent.created_at < until)
    rows = list(session.execute(audits))
    if not rows:
        return []
    adjudicated = (
        select(LabelEvent.id, LabelEvent.subject_id, LabelEvent.category_id, LabelEvent.to_value)
        .where(
            LabelEvent.subject_id.in_({int(r[1]) for r in rows}),
            LabelEvent.reason == AssignmentKind.adjudicate.value,
        )
        .order_by(LabelEvent.id)
    )
    if until is not None:
        adjudicated = adjudicated.where(LabelEvent.created_at < until)
    rulings: dict[tuple[int, int], list[tuple[int, Any]]] = {}
    for event_id, subject_id, category_id, value in session.execute(adjudicated):
        rulings.setdefault((int(subject_id), int(category_id)), []).append((int(event_id), value))
    outcomes = []
    for event_id, subject_id, category_id, accepted, reviewed in rows:
        later = [v for i, v in rulings.get((int(subject_id), int(category_id)), []) if i > event_id]
        outcomes.append((accepted, later[-1] if later else reviewed))
    return outcomes
