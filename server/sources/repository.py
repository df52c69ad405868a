from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.orm import IngestItem, IngestRejection, IngestRun, Project, Source
from server.orm.enums import SourceKind


def sources_of(session: Session, project_id: int) -> list[Source]:
    return list(session.scalars(select(Source).where(Source.project_id == project_id).order_by(Source.id)))


def upload_source(session: Session, project_id: int) -> Source | None:
    return session.scalar(
        select(Source).where(Source.project_id == project_id, Source.kind == SourceKind.upload.value)
    )


def runs_of(session: Session, project_id: int, limit: int) -> list[IngestRun]:
    query = select(IngestRun).where(IngestRun.project_id == project_id)
    return list(session.scalars(query.order_by(IngestRun.id.desc()).limit(limit)))


def run_for_update(session: Session, run_id: int) -> IngestRun | None:
    return session.scalar(select(IngestRun).where(IngestRun.id == run_id).with_for_update())


def pending_items(session: Session, run_id: int, batch: int) -> list[IngestItem]:
    query = select(IngestItem).where(
        IngestItem.run_id == run_id, IngestItem.batch == batch, IngestItem.done.is_(False)
    )
    return list(session.scalars(query.order_by(IngestItem.id)))


def pending_batches(session: Session, run_id: int) -> list[int]:
    query = (
        select(IngestItem.batch)
        .where(IngestItem.run_id == run_id, IngestItem.done.is_(False))
        .distinct()
        .order_by(IngestItem.batch)
    )
    return [int(b) for b in session.scalars(query)]


def count_pending(session: Session, run_id: int) -> int:
    query = select(func.count()).where(IngestItem.run_id == run_id, IngestItem.done.is_(False))
    return int(session.scalar(query) or 0)


def add_counts(session: Session, run_id: int, **deltas: int) -> None:
    # Increment in SQL: concurrent batches of one run never lose each other's counts.
    values = {name: getattr(IngestRun, name) + delta for name, delta in deltas.items()}
    session.execute(update(IngestRun).where(IngestRun.id == run_id).values(**values))


def rejections(
    session: Session, project_id: int, run_id: int | None, limit: int, after_id: int
) -> list[IngestRejection]:
    query = select(IngestRejection).where(
        IngestRejection.project_id == project_id, IngestRejection.id > after_id
    )
    if run_id is not None:
        query = query.where(IngestRejection.run_id == run_id)
    return list(session.scalars(query.order_by(IngestRejection.id).limit(limit)))


def stuck_runs(session: Session, statuses: list[str], before: object, limit: int) -> list[IngestRun]:
    query = select(IngestRun).where(IngestRun.status.in_(statuses), IngestRun.updated_at < before)
    return list(session.scalars(query.order_by(IngestRun.id).limit(limit)))


def seen_items(session: Session, source_id: int) -> set[tuple[str, str]]:
    """(name, fingerprint) of every item a run of the source finished: what a watched run skips."""
    query = (
        select(IngestItem.name, IngestItem.fingerprint)
        .join(IngestRun, IngestRun.id == IngestItem.run_id)
        .where(IngestRun.source_id == source_id, IngestItem.done.is_(True))
    )
    return {(str(name), str(fingerprint)) for name, fingerprint in session.execute(query)}


def watched_source_ids(session: Session) -> list[int]:
    query = (
        select(Source.id)
        .join(Project, Project.id == Source.project_id)
        .where(Source.watch_every_seconds.is_not(None), Project.deleted_at.is_(None))
    )
    return [int(i) for i in session.scalars(query.order_by(Source.id))]


def source_for_update(session: Session, source_id: int) -> Source | None:
    return session.scalar(select(Source).where(Source.id == source_id).with_for_update())


def has_live_run(session: Session, source_id: int, statuses: list[str]) -> bool:
    query = select(IngestRun.id).where(IngestRun.source_id == source_id, IngestRun.status.in_(statuses))
    return session.scalar(query.limit(1)) is not None


def last_finished(session: Session, source_id: int) -> datetime | None:
    value: datetime | None = session.scalar(
        select(func.max(IngestRun.finished_at)).where(IngestRun.source_id == source_id)
    )
    return value
