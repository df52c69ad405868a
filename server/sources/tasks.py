from __future__ import annotations

from collections.abc import Callable

from celery import shared_task

from server.core import runtime, tasknames
from server.core.config import get_settings
from server.core.errors import BadRequest, DomainError
from server.orm.enums import SourceKind
from server.sources import s3, scanning, service, watch


@shared_task(name=tasknames.INGEST_SCAN)
def scan(run_id: int) -> None:
    settings = get_settings()
    with runtime.database().session_scope() as session:
        target = scanning.listing_of(session, run_id)
    # Read outside any transaction: a slow store or server must not hold the database.
    listing: scanning.Listing | None = None
    if isinstance(target, s3.S3Prefix):
        try:
            listing = list(s3.list_images(s3.filesystem(settings.storage.endpoint_url), target))
        except OSError as exc:  # no such bucket, access denied: the run fails with the reason
            listing = BadRequest(f"{type(exc).__name__}: {exc}"[:500])
    elif target is not None:
        try:
            listing = runtime.egress().get(target).content
        except DomainError as exc:  # refused or failed: the run fails with the reason
            listing = exc
    with runtime.database().session_scope() as session:
        scanning.scan(session, runtime.storage(), run_id, settings.source_roots, settings.ingest, listing)


@shared_task(name=tasknames.INGEST_BATCH)
def batch(run_id: int, batch: int) -> None:
    settings = get_settings()
    storage = runtime.storage()
    with runtime.database().session_scope() as session:
        kind, targets = service.pending_remote(session, run_id, batch)
    fetch: Callable[[str], bytes]
    if kind == SourceKind.s3.value:
        fs = s3.filesystem(settings.storage.endpoint_url)
        fetch = lambda path: s3.read(fs, path, settings.ingest.max_upload_bytes)  # noqa: E731
    else:
        fetch = lambda url: runtime.egress().get(url).content  # noqa: E731
    fetched = service.fetch_all(targets, fetch) if targets else {}
    with runtime.database().session_scope() as session:
        staged = service.process_batch(
            session, storage, run_id, batch, settings.source_roots, settings.ingest, fetched
        )
    for key in staged:
        storage.delete(key)


@shared_task(name=tasknames.SOURCES_WATCH)
def watch_sources() -> list[int]:
    with runtime.database().session_scope() as session:
        return watch.start_due_runs(session)
