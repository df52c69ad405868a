from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.core.config import get_settings
from server.sources import service


@shared_task(name=tasknames.INGEST_SCAN)
def scan(run_id: int) -> None:
    settings = get_settings()
    with runtime.database().session_scope() as session:
        service.scan(session, runtime.storage(), run_id, settings.source_roots, settings.ingest)


@shared_task(name=tasknames.INGEST_BATCH)
def batch(run_id: int, batch: int) -> None:
    settings = get_settings()
    storage = runtime.storage()
    with runtime.database().session_scope() as session:
        targets = service.pending_urls(session, run_id, batch)
    fetched = service.fetch_all(targets, lambda url: runtime.egress().get(url).content) if targets else {}
    with runtime.database().session_scope() as session:
        staged = service.process_batch(
            session, storage, run_id, batch, settings.source_roots, settings.ingest, fetched
        )
    for key in staged:
        storage.delete(key)
