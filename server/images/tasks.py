from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.core.config import get_settings
from server.images import service


@shared_task(name=tasknames.ANALYZE_IMAGES)
def analyze(image_ids: list[int]) -> None:
    with runtime.database().session_scope() as session:
        service.analyze(session, runtime.storage(), image_ids, get_settings().ingest)
