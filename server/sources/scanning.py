"""Planning a run (`scan`): list what the source holds now and record each file as an item in a
numbered batch. A watched run (trigger `watch`) skips what a finished item of the source already
had, by name and fingerprint (size and mtime, size and ETag; a URL by itself), so a re-scan reads
only new or changed files. What lives elsewhere (an S3 listing, a list at a URL) is read by the
task before this transaction and handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from server.core import jobs, tasknames
from server.core.config import IngestSettings
from server.core.errors import BadRequest, DomainError, NotFound
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.orm import IngestItem, IngestRejection, IngestRun, Source
from server.orm.enums import RunStatus, SourceKind
from server.sources import repository, s3, url_lists
from server.sources.paths import FolderRefusal, PathRefused, iter_folder_files, resolve_source_folder
from server.sources.service import ACTIVE, resend_pending

log = structlog.get_logger(__name__)


# What a queued run's scan needs read from elsewhere first: an S3 source's objects, a linked URL
# list's bytes (or why they could not be fetched).
Listing = Sequence[s3.S3Object] | bytes | DomainError


def listing_of(session: Session, run_id: int) -> s3.S3Prefix | str | None:
    """What a queued run must read before its scan, outside any transaction: the S3 prefix to
    list, or the URL of its URL list; None when the scan needs nothing from elsewhere."""
    run = session.get(IngestRun, run_id)
    source = session.get(Source, run.source_id) if run is not None else None
    if run is None or source is None or run.status != RunStatus.queued.value:
        return None
    if source.kind == SourceKind.s3.value:
        return s3.S3Prefix(str(source.config["bucket"]), str(source.config["prefix"]))
    if source.kind == SourceKind.url_list.value and source.config.get("list_url"):
        return str(source.config["list_url"])
    return None


def _fail(run: IngestRun, detail: str, now: datetime) -> None:
    run.status, run.error, run.finished_at, run.updated_at = RunStatus.failed.value, detail[:1000], now, now


def scan(
    session: Session,
    storage: ObjectStorage,
    run_id: int,
    roots: Sequence[Path],
    settings: IngestSettings,
    listing: Listing | None = None,
) -> None:
    """Plan a run. A run already planned only has its unfinished batches re-sent.

    `listing`: what `listing_of` named, read by the caller outside the transaction."""
    run = repository.run_for_update(session, run_id)
    if run is None or run.status not in ACTIVE:
        return
    if run.status == RunStatus.running.value:
        resend_pending(session, run)
        return
    source = session.get(Source, run.source_id)
    if source is None:
        raise NotFound(f"source of run {run_id} is gone")
    now = utcnow()
    if isinstance(listing, DomainError):
        what = (
            "the S3 prefix could not be listed"
            if source.kind == SourceKind.s3.value
            else "the list could not be fetched"
        )
        _fail(run, f"{what}: {listing.detail}", now)
        return
    seen = repository.seen_items(session, source.id) if run.trigger == "watch" else set()
    if source.kind == SourceKind.url_list.value:
        if source.config.get("list_url") and not isinstance(listing, bytes):
            raise RuntimeError(f"run {run_id}: a linked URL list is scanned with its bytes")
        try:
            count, refusals = _plan_urls(session, run, source, storage, settings, seen, listing)
        except BadRequest as exc:
            _fail(run, exc.detail, now)
            return
    elif source.kind == SourceKind.s3.value:
        if listing is None or isinstance(listing, bytes):
            # Listed by the task before this transaction; a run planned without it would look empty.
            raise RuntimeError(f"run {run_id}: an S3 source is scanned with its listing")
        count, refusals = _plan_objects(session, run, listing, settings, seen), []
    else:
        try:
            folder = resolve_source_folder(str(source.config["path"]), roots)
        except PathRefused as exc:
            _fail(run, exc.detail, now)
            return
        count, refusals = _plan_folder(session, run, folder, roots, settings, seen)
    for refusal in refusals:
        session.add(
            IngestRejection(
                project_id=run.project_id,
                source_id=run.source_id,
                run_id=run.id,
                name=refusal.relative_path,
                reason=refusal.reason,
                detail=refusal.detail,
            )
        )
    run.items_total = count
    run.rejected = len(refusals)
    run.updated_at = now
    if count == 0:
        run.status, run.finished_at = RunStatus.succeeded.value, now
        return
    run.status = RunStatus.running.value
    session.flush()
    for batch in range((count + settings.batch_size - 1) // settings.batch_size):
        jobs.enqueue(session, tasknames.INGEST_BATCH, run_id=run.id, batch=batch)
    log.info("ingest.planned", run_id=run.id, items=count, refused=len(refusals))


@dataclass(frozen=True)
class _Refusal:
    relative_path: str
    reason: str
    detail: str


Seen = set[tuple[str, str]]


def _plan_folder(
    session: Session,
    run: IngestRun,
    folder: Path,
    roots: Sequence[Path],
    settings: IngestSettings,
    seen: Seen,
) -> tuple[int, list[_Refusal]]:
    count = 0
    refusals: list[_Refusal] = []
    for entry in iter_folder_files(folder, roots):
        if isinstance(entry, FolderRefusal):
            refusals.append(_Refusal(entry.relative_path, entry.reason, "refused while listing the folder"))
            continue
        fingerprint = f"{entry.size}:{entry.mtime_ns}"
        if (entry.relative_path, fingerprint) in seen:
            continue
        session.add(
            IngestItem(
                run_id=run.id,
                name=entry.relative_path,
                location=str(entry.path),
                fingerprint=fingerprint,
                batch=count // settings.batch_size,
            )
        )
        count += 1
    return count, refusals


def _plan_objects(
    session: Session, run: IngestRun, listed: Sequence[s3.S3Object], settings: IngestSettings, seen: Seen
) -> int:
    count = 0
    for obj in listed:
        fingerprint = f"{obj.size}:{obj.etag}"[:200]
        if (obj.relative_path[:1000], fingerprint) in seen:
            continue
        session.add(
            IngestItem(
                run_id=run.id,
                name=obj.relative_path[:1000],
                location=obj.path,
                fingerprint=fingerprint,
                batch=count // settings.batch_size,
            )
        )
        count += 1
    return count


def _plan_urls(
    session: Session,
    run: IngestRun,
    source: Source,
    storage: ObjectStorage,
    settings: IngestSettings,
    seen: Seen,
    fetched: Listing | None,
) -> tuple[int, list[_Refusal]]:
    config = source.config
    data = fetched if isinstance(fetched, bytes) else storage.get(str(config["list_key"]))
    listing = url_lists.parse(str(config.get("filename", "")), data, str(config["column"]))
    count = 0
    refusals: list[_Refusal] = []
    for url in listing.urls:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https") or len(url) > url_lists.MAX_URL_LENGTH:
            refusals.append(_Refusal(url[:1000], "bad_url", "only http(s) URLs of at most 2000 characters"))
            continue
        if (url[:1000], "") in seen:
            continue
        session.add(
            IngestItem(run_id=run.id, name=url[:1000], location=url, batch=count // settings.batch_size)
        )
        count += 1
    return count, refusals
