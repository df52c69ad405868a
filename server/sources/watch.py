"""Watched sources: the beat starts an incremental run of each watched source whose last run
finished at least its interval ago, so new files flow in without anyone pressing a button.

Each source's row is locked while it is judged (Postgres: `FOR UPDATE`; SQLite: every writing
transaction begins IMMEDIATE and is alone), and a run is started only when no run of the source
is queued or running: two beats at the same instant start one run, never two.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from server.core.time import utcnow
from server.sources import repository, service

log = structlog.get_logger(__name__)


def start_due_runs(session: Session, now: datetime | None = None) -> list[int]:
    """Start the runs that are due; returns their ids."""
    now = now or utcnow()
    started: list[int] = []
    for source_id in repository.watched_source_ids(session):
        source = repository.source_for_update(session, source_id)
        if source is None or source.watch_every_seconds is None:
            continue
        if repository.has_live_run(session, source.id, list(service.ACTIVE)):
            continue
        last = repository.last_finished(session, source.id)
        if last is not None and now - last < timedelta(seconds=source.watch_every_seconds):
            continue
        started.append(service.start_run(session, source, trigger="watch").id)
    if started:
        log.info("sources.watch_runs_started", runs=started)
    return started
