from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.orm import Assignment, EvalSetMember, Label, Membership, Prediction, Project
from server.orm.enums import AssignmentStatus


def assignment_with_project(
    session: Session, assignment_id: int, user_id: int
) -> tuple[Assignment, Project, str | None] | None:
    """An assignment, its project and the user's role there (None: not a member): one round trip."""
    row = session.execute(
        select(Assignment, Project, Membership.role)
        .join(Project, Project.id == Assignment.project_id)
        .outerjoin(Membership, (Membership.project_id == Project.id) & (Membership.user_id == user_id))
        .where(Assignment.id == assignment_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def release_expired(session: Session, project_id: int, now: datetime) -> None:
    """Leases past their expiry go back to the queue (cheap: an index on status and expiry)."""
    session.execute(
        update(Assignment)
        .where(
            Assignment.status == AssignmentStatus.leased.value,
            Assignment.lease_expires_at < now,
            Assignment.project_id == project_id,
        )
        .values(
            status=AssignmentStatus.queued.value, lease_holder_id=None, leased_at=None, lease_expires_at=None
        )
    )


def live_leases(session: Session, project_id: int, user_id: int, now: datetime) -> list[Assignment]:
    query = (
        select(Assignment)
        .where(
            Assignment.project_id == project_id,
            Assignment.status == AssignmentStatus.leased.value,
            Assignment.lease_holder_id == user_id,
            Assignment.lease_expires_at >= now,
        )
        .order_by(Assignment.leased_at, Assignment.id)
    )
    return list(session.scalars(query))


def claim(
    session: Session, project_id: int, user_id: int, min_rank: int, now: datetime, until: datetime
) -> Assignment | None:
    """Lease the next queued assignment atomically: Postgres skips rows another transaction is
    claiming (FOR UPDATE SKIP LOCKED); SQLite serialises writers (BEGIN IMMEDIATE), and the
    status check in the UPDATE makes a lost race claim nothing. The claimed row comes back from
    the UPDATE itself (RETURNING), so leasing is one round trip."""
    candidate = (
        select(Assignment.id)
        .where(
            Assignment.project_id == project_id,
            Assignment.status == AssignmentStatus.queued.value,
            Assignment.queue_rank >= min_rank,
            (Assignment.assignee_id.is_(None)) | (Assignment.assignee_id == user_id),
        )
        .order_by(Assignment.queue_rank.desc(), Assignment.priority.desc(), Assignment.id.desc())
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    statement = (
        update(Assignment)
        .where(
            Assignment.id == candidate.scalar_subquery(), Assignment.status == AssignmentStatus.queued.value
        )
        .values(
            status=AssignmentStatus.leased.value,
            lease_holder_id=user_id,
            leased_at=now,
            lease_expires_at=until,
        )
        .returning(Assignment)
    )
    return session.execute(
        statement, execution_options={"synchronize_session": False, "populate_existing": True}
    ).scalar_one_or_none()


def labels_of(
    session: Session, subject_id: int, category_ids: Collection[int], *, fresh: bool = False
) -> dict[int, Label]:
    query = select(Label).where(Label.subject_id == subject_id, Label.category_id.in_(list(category_ids)))
    if fresh:
        query = query.execution_options(populate_existing=True)
    return {label.category_id: label for label in session.scalars(query)}


def subjects_with_review(session: Session, subject_ids: Collection[int]) -> set[int]:
    query = select(Assignment.subject_id).where(
        Assignment.subject_id.in_(list(subject_ids)), Assignment.kind == "review"
    )
    return {int(s) for s in session.scalars(query)}


def counts(session: Session, project_id: int) -> list[tuple[str, str, int]]:
    query = (
        select(Assignment.kind, Assignment.status, func.count())
        .where(Assignment.project_id == project_id)
        .group_by(Assignment.kind, Assignment.status)
    )
    return [(str(k), str(s), int(n)) for k, s, n in session.execute(query)]


def submitted_by(session: Session, project_id: int, user_id: int) -> int:
    query = select(func.count()).where(
        Assignment.project_id == project_id,
        Assignment.submitted_by_id == user_id,
        Assignment.status == AssignmentStatus.submitted.value,
    )
    return int(session.scalar(query) or 0)


def eval_subjects(session: Session, subject_ids: Collection[int]) -> set[int]:
    query = select(EvalSetMember.subject_id).where(EvalSetMember.subject_id.in_(list(subject_ids)))
    return {int(s) for s in session.scalars(query)}


def labels_by_subject(session: Session, subject_ids: Collection[int]) -> dict[int, dict[int, Label]]:
    out: dict[int, dict[int, Label]] = {}
    for label in session.scalars(select(Label).where(Label.subject_id.in_(list(subject_ids)))):
        out.setdefault(label.subject_id, {})[label.category_id] = label
    return out


def predictions_by_subject(
    session: Session, subject_ids: Collection[int], model_version_id: int
) -> dict[int, dict[int, tuple[Any, float]]]:
    query = select(
        Prediction.subject_id, Prediction.category_id, Prediction.value, Prediction.confidence
    ).where(Prediction.subject_id.in_(list(subject_ids)), Prediction.model_version_id == model_version_id)
    out: dict[int, dict[int, tuple[Any, float]]] = {}
    for subject_id, category_id, value, confidence in session.execute(query):
        out.setdefault(int(subject_id), {})[int(category_id)] = (value, float(confidence))
    return out


def routed_assignments(session: Session, subject_ids: Collection[int]) -> dict[int, list[Assignment]]:
    """The review, audit and eval assignments of these subjects, cancelled ones aside."""
    query = select(Assignment).where(
        Assignment.subject_id.in_(list(subject_ids)),
        Assignment.kind.in_(["review", "audit", "eval"]),
        Assignment.status != AssignmentStatus.cancelled.value,
    )
    out: dict[int, list[Assignment]] = {}
    for assignment in session.scalars(query.order_by(Assignment.id)):
        out.setdefault(assignment.subject_id, []).append(assignment)
    return out
