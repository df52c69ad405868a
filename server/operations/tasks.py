from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.core.config import get_settings
from server.operations.reconciler import reconcile


@shared_task(name=tasknames.RECONCILE)
def reconcile_task() -> dict[str, int]:
    with runtime.database().session_scope() as session:
        resent = reconcile(session, get_settings().reconciler)
    return {
        "scans": resent.scans,
        "batches": resent.batches,
        "images": resent.images,
        "deliveries": resent.deliveries,
        "leases": resent.leases,
    }
