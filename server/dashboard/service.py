"""The dashboard's figures, assembled from the repository's aggregates, and the slow figures of
large projects that the beat stores for the pages (its own, the flywheel's, the pipeline's)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.core.time import utcnow
from server.dashboard import repository
from server.dashboard.schemas import AnnotatorRow, Funnel, FunnelOut, FunnelStage, SourceFunnel, WorkOut
from server.orm import Project
from server.orm.dashboard import DashboardFigure
from server.orm.enums import AssignmentKind, AssignmentStatus, ImageStage

STAGES = ("ingested", "prelabeled", "routed", "verified", "exported")
MAX_HOURS = 24 * 14
# Some figures of a project this large take seconds to count (at 1,000,000 subjects: the funnel
# 10 to 13 s, the work series 0.9 s, the flywheel's activity 3 s, the active labeler's
# predictions 0.6 to 1.7 s; docs/PERFORMANCE.md), so the beat counts them (tasks.py) and the
# pages read what was stored while it is fresh, saying when it was counted.
STORED_FROM_SUBJECTS = 20_000
STORED_FRESH_FOR = timedelta(minutes=5)
# The beat recounts a stored figure only once it is this old, so that the counts are not a
# steady background load. Fresh-for must stay above this plus the beat's minute and the
# count, else the page counts inline.
RECOUNT_AFTER = timedelta(minutes=3)
FUNNEL = "funnel"
WORK = "work"


def large_projects(session: Session) -> list[int]:
    """Live projects large enough for the beat to store their slow figures."""
    return repository.large_projects(session, STORED_FROM_SUBJECTS)


def stored_while_fresh(session: Session, project_id: int, name: str) -> DashboardFigure | None:
    """The figure the beat stored for the project while it is fresh, else None (count it now)."""
    stored = repository.stored_figure(session, project_id, name)
    if stored is not None and stored.computed_at >= utcnow() - STORED_FRESH_FOR:
        return stored
    return None


def store_where_due(
    session: Session,
    name: str,
    count: Callable[[Project], dict[str, Any]],
    project_ids: Sequence[int] | None = None,
    current: Callable[[Project, dict[str, Any]], bool] | None = None,
) -> list[int]:
    """Count and store the figure `name` of each large project (or of `project_ids`) whose
    stored one is older than RECOUNT_AFTER or no longer `current`; returns the ids counted. A
    figure is stored as of the moment its count began."""
    counted = []
    for project_id in large_projects(session) if project_ids is None else project_ids:
        project = session.get(Project, project_id)
        assert project is not None
        figure = repository.stored_figure(session, project_id, name)
        now = utcnow()
        if (
            figure is not None
            and figure.computed_at > now - RECOUNT_AFTER
            and (current is None or current(project, figure.body))
        ):
            continue
        repository.store_figure(session, project_id, name, count(project), now)
        counted.append(project_id)
    return counted


def _funnel(
    counts: dict[str, int], filtered_by_reason: dict[str, int], rejected_by_reason: dict[str, int]
) -> Funnel:
    stages = []
    previous: int | None = None
    for key in STAGES:
        count = counts.get(key, 0)
        rate = None if previous is None or previous == 0 else count / previous
        stages.append(FunnelStage(key=key, count=count, rate=rate))
        previous = count
    return Funnel(
        stages=stages,
        filtered=sum(filtered_by_reason.values()),
        filtered_by_reason=dict(sorted(filtered_by_reason.items())),
        rejected_at_ingest=sum(rejected_by_reason.values()),
        rejected_by_reason=dict(sorted(rejected_by_reason.items())),
    )


def funnel(session: Session, project: Project) -> FunnelOut:
    """The stored funnel while it is fresh (large projects, see tasks.py), else counted now."""
    stored = stored_while_fresh(session, project.id, FUNNEL)
    if stored is not None:
        return FunnelOut.model_validate({**stored.body, "computed_at": stored.computed_at})
    return count_funnel(session, project)


def store_funnels(session: Session, project_ids: Sequence[int] | None = None) -> list[int]:
    """The beat's count of the funnels of large projects; returns the ids of those counted."""

    def count(project: Project) -> dict[str, Any]:
        return count_funnel(session, project).model_dump(mode="json")

    return store_where_due(session, FUNNEL, count, project_ids)


def count_funnel(session: Session, project: Project) -> FunnelOut:
    """Ingested -> filtered (by reason) -> pre-labelled -> routed -> verified -> exported.

    The first two stages count images, the rest subjects (one per image unless a detector finds
    several). Counts per source add up to the project's; images whose source was deleted are
    under source None.
    """
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    filtered: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rejected: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for source_id, stage, reason, n in repository.image_stages(session, project.id):
        counts[source_id]["ingested"] += n
        if stage == ImageStage.filtered.value:
            filtered[source_id][reason or "unknown"] += n
        elif stage == ImageStage.prelabeled.value:
            counts[source_id]["prelabeled"] += n
    for source_id, reason, n in repository.ingest_rejections(session, project.id):
        rejected[source_id][reason] += n
    for source_id, (_, routed, verified, exported) in repository.subject_stages(session, project.id).items():
        counts[source_id]["routed"] += routed
        counts[source_id]["verified"] += verified
        counts[source_id]["exported"] += exported

    def total(table: dict[int | None, dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for per_key in table.values():
            for key, n in per_key.items():
                out[key] += n
        return out

    known = repository.sources(session, project.id)
    listed: list[tuple[int | None, str, str | None]] = list(known)
    seen = {source_id for source_id, _, _ in known}
    if any(source_id not in seen for source_id in (*counts, *rejected)):
        listed.append((None, "(no source)", None))
    return FunnelOut(
        computed_at=utcnow(),
        project=_funnel(total(counts), total(filtered), total(rejected)),
        sources=[
            SourceFunnel(
                source_id=source_id,
                name=name,
                kind=kind,
                funnel=_funnel(
                    counts.get(source_id, {}), filtered.get(source_id, {}), rejected.get(source_id, {})
                ),
            )
            for source_id, name, kind in listed
        ],
    )


def work(session: Session, project: Project, hours: int) -> WorkOut:
    """The last `hours` of the stored series while it is fresh and ends at this hour (large
    projects, see tasks.py), else replayed now."""
    hours = max(1, min(hours, MAX_HOURS))
    stored = stored_while_fresh(session, project.id, WORK)
    if stored is not None and _ends_this_hour(stored.body):
        return _last_hours(WorkOut.model_validate(stored.body), hours)
    return count_work(session, project, hours)


def store_work(session: Session, project_ids: Sequence[int] | None = None) -> list[int]:
    """The beat's replay of the longest work series of large projects, also once the stored one
    ends before this hour; returns the ids of those replayed."""

    def count(project: Project) -> dict[str, Any]:
        return count_work(session, project, MAX_HOURS).model_dump(mode="json")

    return store_where_due(session, WORK, count, project_ids, lambda _, body: _ends_this_hour(body))


def _ends_this_hour(body: dict[str, Any]) -> bool:
    hours = WorkOut.model_validate(body).hours
    return bool(hours) and hours[-1] == _this_hour()


def _this_hour() -> datetime:
    return utcnow().replace(minute=0, second=0, microsecond=0)


def _last_hours(series: WorkOut, hours: int) -> WorkOut:
    """A shorter window of a series: exact, since the depth at an hour's end and the submits in
    an hour do not depend on where the window starts."""
    return WorkOut(
        since=series.hours[-hours],
        hours=series.hours[-hours:],
        queue_depth={kind: values[-hours:] for kind, values in series.queue_depth.items()},
        throughput={kind: values[-hours:] for kind, values in series.throughput.items()},
        open_now=series.open_now,
        submitted_total=series.submitted_total,
    )


def count_work(session: Session, project: Project, hours: int) -> WorkOut:
    """Queue depth per kind at the end of each of the last `hours` hours, and submits per hour.

    Depth is replayed from the assignments' own times: open at the window's start, plus those
    created, minus those submitted or skipped, hour by hour. Cancelled ones are left out.
    """
    current = _this_hour()
    since = current - timedelta(hours=hours - 1)
    buckets = [since + timedelta(hours=i) for i in range(hours)]
    index = {moment: i for i, moment in enumerate(buckets)}
    kinds = [k.value for k in AssignmentKind]

    base: dict[str, int] = defaultdict(int)
    delta: dict[str, list[int]] = {k: [0] * hours for k in kinds}
    throughput: dict[str, list[int]] = {k: [0] * hours for k in kinds}
    for kind, status, created, closed, n in repository.assignment_hours(session, project.id, since):
        delta.setdefault(kind, [0] * hours)
        throughput.setdefault(kind, [0] * hours)
        if created is None:
            base[kind] += n  # open when the window starts
        elif created in index:
            delta[kind][index[created]] += n
        if closed is not None and closed in index:
            delta[kind][index[closed]] -= n
            if status == AssignmentStatus.submitted.value:
                throughput[kind][index[closed]] += n
    depth: dict[str, list[int]] = {}
    for kind, changes in delta.items():
        level = base.get(kind, 0)
        series = []
        for change in changes:
            level += change
            series.append(level)
        depth[kind] = series
    return WorkOut(
        since=since,
        hours=buckets,
        queue_depth=depth,
        throughput=throughput,
        open_now={kind: series[-1] for kind, series in depth.items()},
        submitted_total=repository.submitted_total(session, project.id),
    )


def annotators(session: Session, project: Project) -> list[AnnotatorRow]:
    """Every member: pace, lead time, accuracy against gold, audits of their reviews, and the
    audits and adjudications they did."""
    submits = repository.submits_per_person(session, project.id)
    medians = repository.median_lead_times(session, project.id)
    gold = repository.gold_per_person(session, project.id)
    audited = repository.audits_of_reviews(session, project.id)
    rows = []
    for user_id, email, display_name, role in repository.members(session, project.id):
        person = submits.get(user_id, {"by_kind": {}, "lead_ms": 0, "last": None})
        by_kind: dict[str, int] = person["by_kind"]
        count = sum(by_kind.values())
        lead_hours = person["lead_ms"] / 3_600_000
        answers, correct = gold.get(user_id, (0, 0))
        checked, changed = audited.get(user_id, (0, 0))
        rows.append(
            AnnotatorRow(
                user_id=user_id,
                email=email,
                display_name=display_name,
                role=role,
                submitted=count,
                items_per_hour=count / lead_hours if lead_hours > 0 else None,
                median_lead_time_ms=medians.get(user_id),
                gold_answers=answers,
                gold_correct=correct,
                gold_accuracy=correct / answers if answers else None,
                audited=checked,
                audit_changed=changed,
                audits_done=by_kind.get(AssignmentKind.audit.value, 0),
                adjudications_done=by_kind.get(AssignmentKind.adjudicate.value, 0),
                last_submitted_at=person["last"],
            )
        )
    return rows
