from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.webhooks import service


@shared_task(name=tasknames.WEBHOOK_DELIVER)
def deliver(delivery_id: int) -> str:
    """Claim (one transaction), POST (no transaction), record the outcome (another)."""
    with runtime.database().session_scope() as session:
        prepared = service.claim(session, delivery_id)
    if prepared is None:
        return "skipped"
    status_code, error = service.send(prepared, runtime.egress())
    with runtime.database().session_scope() as session:
        return service.record(session, prepared, status_code, error)
