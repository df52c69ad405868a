from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.dashboard import service


@shared_task(name=tasknames.DASHBOARD_STORE_FUNNELS)
def store_funnels() -> list[int]:
    """The beat's minute: count the funnels and work series of large projects so that their
    pages read one row; returns the projects whose funnel was counted."""
    with runtime.database().session_scope() as session:
        service.store_work(session)
        return service.store_funnels(session)
