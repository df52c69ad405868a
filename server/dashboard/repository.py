"""Aggregate queries for the dashboard: every one a GROUP BY over one project's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from server.orm import (
    Assignment,
    Category,
    GoldAnswer,
    Image,
    Label,
    Membership,
    Project,
    Source,
    Subject,
    TaxonomyVersion,
    User,
)
from server.orm.dashboard import DashboardFigure
from server.orm.enums import AssignmentKind, AssignmentStatus, LabelState
from server.orm.exports import Export, SnapshotSubject
from server.orm.sources import IngestRejection

VERIFIED_STATES = (LabelState.verified.value, LabelState.gold.value)
CLOSED_STATUSES = (AssignmentStatus.submitted.value, AssignmentStatus.skipped.value)


def stored_figure(session: Session, project_id: int, name: str) -> DashboardFigure | None:
    return session.get(DashboardFigure, (project_id, name))


def store_figure(session: Session, project_id: int, name: str, body: dict[str, Any], at: datetime) -> None:
    figure = session.get(DashboardFigure, (project_id, name), with_for_update=True)
    if figure is None:
        session.add(DashboardFigure(project_id=project_id, name=name, computed_at=at, body=body))
    else:
        figure.computed_at, figure.body = at, body


def large_projects(session: Session, min_subjects: int) -> list[int]:
    """Live projects with at least `min_subjects` subjects."""
    rows = session.execute(
        select(Subject.project_id)
        .join(Project, Project.id == Subject.project_id)
        .where(Project.deleted_at.is_(None))
        .group_by(Subject.project_id)
        .having(func.count() >= min_subjects)
    )
    return [int(r[0]) for r in rows]


def sources(session: Session, project_id: int) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(Source.id, Source.name, Source.kind).where(Source.project_id == project_id).order_by(Source.id)
    )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def image_stages(session: Session, project_id: int) -> list[tuple[int | None, str, str | None, int]]:
    """(source, stage, filter reason, images)."""
    rows = session.execute(
        select(Image.source_id, Image.stage, Image.filter_reason, func.count())
        .where(Image.project_id == project_id)
        .group_by(Image.source_id, Image.stage, Image.filter_reason)
    )
    return [(r[0], str(r[1]), r[2], int(r[3])) for r in rows]


def ingest_rejections(session: Session, project_id: int) -> list[tuple[int | None, str, int]]:
    rows = session.execute(
        select(IngestRejection.source_id, IngestRejection.reason, func.count())
        .where(IngestRejection.project_id == project_id)
        .group_by(IngestRejection.source_id, IngestRejection.reason)
    )
    return [(r[0], str(r[1]), int(r[2])) for r in rows]


def subject_stages(session: Session, project_id: int) -> dict[int | None, tuple[int, int, int, int]]:
    """Per source of the image: (subjects, routed, verified, exported), in one pass.

    Routed: a review assignment was made for the subject, whatever became of it. Verified: at
    least one label a person decided (verified or gold; a partial index holds exactly these).
    Exported: written by at least one finished export.
    """
    routed = (
        select(Assignment.subject_id)
        .where(Assignment.project_id == project_id, Assignment.kind == AssignmentKind.review.value)
        .distinct()
        .subquery("routed")
    )
    categories = (
        select(Category.id)
        .join(TaxonomyVersion, TaxonomyVersion.id == Category.taxonomy_version_id)
        .where(TaxonomyVersion.project_id == project_id)
    )
    verified = (
        select(Label.subject_id)
        .where(Label.state.in_(VERIFIED_STATES), Label.category_id.in_(categories))
        .distinct()
        .subquery("verified")
    )
    exported = (
        select(SnapshotSubject.subject_id)
        .join(Export, Export.snapshot_id == SnapshotSubject.snapshot_id)
        .where(Export.project_id == project_id, Export.status == "done")
        .distinct()
        .subquery("exported")
    )
    rows = session.execute(
        select(
            Image.source_id,
            func.count(),
            func.count(routed.c.subject_id),
            func.count(verified.c.subject_id),
            func.count(exported.c.subject_id),
        )
        .select_from(Subject)
        .join(Image, Image.id == Subject.image_id)
        .outerjoin(routed, routed.c.subject_id == Subject.id)
        .outerjoin(verified, verified.c.subject_id == Subject.id)
        .outerjoin(exported, exported.c.subject_id == Subject.id)
        .where(Subject.project_id == project_id)
        .group_by(Image.source_id)
    )
    return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


# -- work --------------------------------------------------------------------------------------


def _hour(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)


def as_utc_hour(value: Any) -> datetime:
    """A bucket as either database returns it (a timestamptz, or SQLite's naive UTC text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def assignment_hours(
    session: Session, project_id: int, since: datetime
) -> list[tuple[str, str, datetime | None, datetime | None, int]]:
    """(kind, status, hour created, hour closed, assignments) in one pass over the project's
    assignments that were still open at `since` or later. An hour is None when the event came
    before `since` (created) or has not happened (closed); cancelled ones are left out."""
    created = case((Assignment.created_at >= since, _hour(session, Assignment.created_at)), else_=None)
    closed = case(
        (
            Assignment.status.in_(CLOSED_STATUSES) & (Assignment.submitted_at >= since),
            _hour(session, Assignment.submitted_at),
        ),
        else_=None,
    )
    rows = session.execute(
        select(Assignment.kind, Assignment.status, created, closed, func.count())
        .where(
            Assignment.project_id == project_id,
            Assignment.status != AssignmentStatus.cancelled.value,
            Assignment.submitted_at.is_(None) | (Assignment.submitted_at >= since),
        )
        .group_by(Assignment.kind, Assignment.status, created, closed)
    )
    return [
        (
            str(r[0]),
            str(r[1]),
            None if r[2] is None else as_utc_hour(r[2]),
            None if r[3] is None else as_utc_hour(r[3]),
            int(r[4]),
        )
        for r in rows
    ]


def submitted_total(session: Session, project_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Assignment.project_id == project_id, Assignment.status == AssignmentStatus.submitted.value
            )
        )
        or 0
    )


# -- people ------------------------------------------------------------------------------------


def members(session: Session, project_id: int) -> list[tuple[int, str, str, str]]:
    rows = session.execute(
        select(User.id, User.email, User.display_name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id)
        .order_by(User.email)
    )
    return [(int(r[0]), str(r[1]), str(r[2] or ""), str(r[3])) for r in rows]


def submits_per_person(session: Session, project_id: int) -> dict[int, dict[str, Any]]:
    """Per person: submits by kind, lead time summed, the last submit."""
    rows = session.execute(
        select(
            Assignment.submitted_by_id,
            Assignment.kind,
            func.count(),
            func.sum(Assignment.lead_time_ms),
            func.max(Assignment.submitted_at),
        )
        .where(
            Assignment.project_id == project_id,
            Assignment.status == AssignmentStatus.submitted.value,
            Assignment.submitted_by_id.is_not(None),
        )
        .group_by(Assignment.submitted_by_id, Assignment.kind)
    )
    out: dict[int, dict[str, Any]] = {}
    for user_id, kind, count, lead_ms, last in rows:
        person = out.setdefault(int(user_id or 0), {"by_kind": {}, "lead_ms": 0, "last": None})
        person["by_kind"][str(kind)] = int(count)
        person["lead_ms"] += int(lead_ms or 0)
        if last is not None and (person["last"] is None or last > person["last"]):
            person["last"] = last
    return out


def median_lead_times(session: Session, project_id: int) -> dict[int, float]:
    """The median lead time of each person's submits (Postgres computes it; SQLite is small)."""
    where = (
        Assignment.project_id == project_id,
        Assignment.status == AssignmentStatus.submitted.value,
        Assignment.submitted_by_id.is_not(None),
        Assignment.lead_time_ms.is_not(None),
    )
    if session.get_bind().dialect.name == "postgresql":
        median = func.percentile_cont(0.5).within_group(Assignment.lead_time_ms)
        rows = session.execute(
            select(Assignment.submitted_by_id, median).where(*where).group_by(Assignment.submitted_by_id)
        )
        return {int(r[0]): float(r[1]) for r in rows}
    times: dict[int, list[int]] = {}
    query = select(Assignment.submitted_by_id, Assignment.lead_time_ms).where(*where)
    for user_id, lead in session.execute(query):
        times.setdefault(int(user_id or 0), []).append(int(lead or 0))
    out = {}
    for user_id, values in times.items():
        values.sort()
        mid = len(values) // 2
        out[user_id] = float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return out


def gold_per_person(session: Session, project_id: int) -> dict[int, tuple[int, int]]:
    """(answers, correct) on gold items per person."""
    correct = func.sum(case((GoldAnswer.correct, 1), else_=0))
    rows = session.execute(
        select(GoldAnswer.user_id, func.count(), correct)
        .where(GoldAnswer.project_id == project_id)
        .group_by(GoldAnswer.user_id)
    )
    return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}


def audits_of_reviews(session: Session, project_id: int) -> dict[int, tuple[int, int]]:
    """Per reviewer of a subject: audits submitted on it, and those that changed a field."""
    review = Assignment.__table__.alias("review")
    audit = Assignment.__table__.alias("audit")
    changed = func.sum(case((audit.c.changed_fields > 0, 1), else_=0))
    rows = session.execute(
        select(review.c.submitted_by_id, func.count(), changed)
        .select_from(audit)
        .join(review, review.c.subject_id == audit.c.subject_id)
        .where(
            audit.c.project_id == project_id,
            audit.c.kind == AssignmentKind.audit.value,
            audit.c.status == AssignmentStatus.submitted.value,
            review.c.kind == AssignmentKind.review.value,
            review.c.status == AssignmentStatus.submitted.value,
            review.c.submitted_by_id.is_not(None),
        )
        .group_by(review.c.submitted_by_id)
    )
    return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}
