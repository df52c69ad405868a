from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from server.orm import Assignment, EvalSetMember, Label, Membership, Prediction, Project
from server.orm.enums import AssignmentKind, AssignmentStatus

# The hot path's reads are built once, not per request (building costs more than running them).
_ASSIGNMENT_WITH_PROJECT = (
    select(Assignment, Project, Membership.role)
    .join(Project, Project.id == Assignment.project_id)
    .outerjoin(
        Membership,
        (Membership.project_id == Project.id) & (Membership.user_id == bindparam("user_id")),
    )
    .where(Assignment.id == bindparam("assignment_id"))
)
# For a request that acts on the lease (submit, heartbeat, release, skip, undo): the row stays
# locked until it commits, so a `next` (which skips locked rows) or a release of expired leases
# cannot take the lease over between this read and the request's write.
_ASSIGNMENT_WITH_PROJECT_LOCKED = _ASSIGNMENT_WITH_PROJECT.with_for_update(of=Assignment)
_OF_SUBJECT_IN_CATEGORIES = and_(
    Label.subject_id == bindparam("subject_id"),
    Label.category_id.in_(bindparam("category_ids", expanding=True)),
)
_LABELS_OF = select(Label).where(_OF_SUBJECT_IN_CATEGORIES)
_LABEL_VERSIONS = select(Label.id, Label.category_id, Label.value, Label.version, Label.state).where(
    _OF_SUBJECT_IN_CATEGORIES
)


def assignment_with_project(
    session: Session, assignment_id: int, user_id: int, *, lock: bool = False
) -> tuple[Assignment, Project, str | None] | None:
    """An assignment, its project and the user's role there (None: not a member): one round
    trip. `lock`: the assignment's row is locked until the transaction ends (Postgres)."""
    statement = _ASSIGNMENT_WITH_PROJECT_LOCKED if lock else _ASSIGNMENT_WITH_PROJECT
    row = session.execute(statement, {"assignment_id": assignment_id, "user_id": user_id}).first()
    return None if row is None else (row[0], row[1], row[2])


def release_expired(session: Session, now: datetime, project_id: int | None = None) -> int:
    """Leases past their expiry go back to the queue (an index on status and expiry): from
    `next` (at most once a second per process and project) and from the reconciler. A lease whose
    row a request is acting on right now (its holder's late submit, locked) is skipped, not
    waited for: that request decides it."""
    where = [Assignment.status == AssignmentStatus.leased.value, Assignment.lease_expires_at < now]
    if project_id is not None:
        where.append(Assignment.project_id == project_id)
    expired = select(Assignment.id).where(*where)
    if session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    result = session.execute(
        update(Assignment)
        .where(Assignment.id.in_(expired.scalar_subquery()), *where)
        .values(
            status=AssignmentStatus.queued.value, lease_holder_id=None, leased_at=None, lease_expires_at=None
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_leases(session: Session, project_id: int, user_id: int, now: datetime) -> list[Assignment]:
    query = (
        select(Assignment)
        .where(_live(project_id, user_id, now))
        .order_by(Assignment.leased_at, Assignment.id)
    )
    return list(session.scalars(query))


def _live(project_id: Any, user_id: Any, now: Any) -> ColumnElement[bool]:
    return and_(
        Assignment.project_id == project_id,
        Assignment.status == AssignmentStatus.leased.value,
        Assignment.lease_holder_id == user_id,
        Assignment.lease_expires_at >= now,
    )


def claim(
    session: Session,
    project_id: int,
    user_id: int,
    min_rank: int,
    now: datetime,
    until: datetime,
    max_live: int,
) -> Assignment | None:
    """Lease the next queued assignment atomically, unless the person already holds `max_live`
    live leases (None then, as for an empty queue). See `_claim_statement`."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return session.execute(
        _claim_statement(postgres),
        {
            "b_project_id": project_id,
            "b_user_id": user_id,
            "b_min_rank": min_rank,
            "b_now": now,
            "b_until": until,
            "b_max_live": max_live,
        },
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).scalar_one_or_none()


@functools.cache
def _claim_statement(postgres: bool) -> Any:
    """The claim, built once per dialect (building it costs more than running it).

    The head of the queued rows is found by a walk of the queue index. Postgres skips rows
    another transaction is claiming (FOR UPDATE SKIP LOCKED: only the row taken is locked);
    SQLite serialises writers (BEGIN IMMEDIATE), and the status check in the UPDATE makes a lost
    race claim nothing. The claimed row comes back from the UPDATE itself (RETURNING), so leasing
    is one round trip, the cap on live leases included."""
    # (b_ names: an UPDATE reserves its columns' names for its own parameters)
    project_id: BindParameter[int] = bindparam("b_project_id")
    user_id: BindParameter[int] = bindparam("b_user_id")
    now: BindParameter[datetime] = bindparam("b_now")
    queued = Assignment.status == AssignmentStatus.queued.value

    # An evaluation subject's passes go to different people: whoever answered one pass of a
    # subject is not served another (second_opinions queues the second pass).
    prior = aliased(Assignment)
    answered_this_subject = (
        select(prior.id)
        .where(
            prior.subject_id == Assignment.subject_id,
            prior.kind == AssignmentKind.eval.value,
            prior.submitted_by_id == user_id,
        )
        .exists()
    )
    head = (
        select(Assignment.id)
        .where(
            Assignment.project_id == project_id,
            queued,
            Assignment.queue_rank >= bindparam("b_min_rank"),
            (Assignment.assignee_id.is_(None)) | (Assignment.assignee_id == user_id),
            or_(Assignment.kind != AssignmentKind.eval.value, ~answered_this_subject),
        )
        .order_by(Assignment.queue_rank.desc(), Assignment.priority.desc(), Assignment.id.desc())
        .limit(1)
    )
    if postgres:
        head = head.with_for_update(skip_locked=True)
    held = select(func.count()).select_from(Assignment).where(_live(project_id, user_id, now))
    return (
        update(Assignment)
        .where(
            Assignment.id == head.scalar_subquery(),
            queued,
            held.scalar_subquery() < bindparam("b_max_live"),
        )
        .values(
            status=AssignmentStatus.leased.value,
            lease_holder_id=user_id,
            leased_at=now,
            lease_expires_at=bindparam("b_until"),
        )
        .returning(Assignment)
    )


def labels_of(session: Session, subject_id: int, category_ids: Collection[int]) -> dict[int, Label]:
    rows = session.scalars(_LABELS_OF, {"subject_id": subject_id, "category_ids": list(category_ids)})
    return {label.category_id: label for label in rows}


def label_versions(session: Session, subject_id: int, category_ids: Collection[int]) -> dict[int, Row[Any]]:
    """The labels' ids, values, states and versions as plain rows, read from the database each
    time (a submit writes them by Core statements guarded by these versions)."""
    rows = session.execute(_LABEL_VERSIONS, {"subject_id": subject_id, "category_ids": list(category_ids)})
    return {int(row.category_id): row for row in rows}


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
