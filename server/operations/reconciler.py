"""Re-sends work for anything stuck in a stage past a timeout.

Messages are nudges; the database holds each item's stage. A message lost with a broker, or
with a worker killed before it acknowledged, only delays work: this pass finds what stopped
moving and sends it again. Every task it re-sends is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.orm import Session

from server.core import jobs, tasknames
from server.core.config import ReconcilerSettings
from server.core.time import utcnow
from server.images import repository as image_repository
from server.images import service as images
from server.orm.enums import ImageStage, RunStatus
from server.sources import repository as source_repository
from server.sources import service as sources

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Resent:
    scans: int
    batches: int
    analyses: int


def reconcile(session: Session, settings: ReconcilerSettings) -> Resent:
    before = utcnow() - timedelta(seconds=settings.stuck_after_seconds)
    scans = batches = 0
    stuck = source_repository.stuck_runs(
        session, [RunStatus.queued.value, RunStatus.running.value], before, settings.batch_limit
    )
    for run in stuck:
        if run.status == RunStatus.queued.value:
            jobs.enqueue(session, tasknames.INGEST_SCAN, run_id=run.id)
            scans += 1
        else:
            batches += sources.resend_pending(session, run)
        # Wait a full timeout before the next nudge of the same run.
        run.updated_at = utcnow()
    pooled = image_repository.stuck_image_ids(
        session, ImageStage.pooled.value, before, settings.batch_limit
    )
    for start in range(0, len(pooled), 32):
        images.request_analysis(session, pooled[start : start + 32])
    resent = Resent(scans=scans, batches=batches, analyses=len(pooled))
    if scans or batches or pooled:
        log.info("reconciler.resent", scans=scans, batches=batches, analyses=len(pooled))
    return resent
