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

from server.assignments import repository as assignments_repository
from server.core import jobs, tasknames
from server.core.config import ReconcilerSettings
from server.core.time import utcnow
from server.orm.enums import ImageStage, RunStatus
from server.prelabel import repository as pipeline_repository
from server.sources import repository as source_repository
from server.sources import service as sources
from server.webhooks import service as webhooks

log = structlog.get_logger(__name__)


# Each pipeline stage and the dispatch that moves an image out of it.
_NEXT_STEP = {
    ImageStage.pooled: tasknames.DISPATCH_ANALYZE,
    ImageStage.ready: tasknames.DISPATCH_EMBED,
    ImageStage.embedded: tasknames.DISPATCH_PRELABEL,
}


@dataclass(frozen=True)
class Resent:
    scans: int
    batches: int
    images: int
    deliveries: int = 0
    leases: int = 0


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
    steps = 0
    for stage, task in _NEXT_STEP.items():
        image_ids = pipeline_repository.stuck_image_ids(session, stage, before, settings.batch_limit)
        for start in range(0, len(image_ids), 32):
            jobs.enqueue(session, task, image_ids=image_ids[start : start + 32])
        steps += len(image_ids)
    # Webhook deliveries whose retry is due, or whose first message was lost.
    deliveries = webhooks.due(session, settings.batch_limit)
    for delivery_id in deliveries:
        jobs.enqueue(session, tasknames.WEBHOOK_DELIVER, delivery_id=delivery_id)
    # Leases that ran out: back to the queue (`next` does this too, at most once a second per API
    # process), so that the queue's counts say queued, not leased, when nobody asks for work.
    leases = assignments_repository.release_expired(session, utcnow())
    resent = Resent(scans=scans, batches=batches, images=steps, deliveries=len(deliveries), leases=leases)
    if scans or batches or steps or deliveries or leases:
        log.info(
            "reconciler.resent",
            scans=scans,
            batches=batches,
            images=steps,
            deliveries=len(deliveries),
            leases=leases,
        )
    return resent
