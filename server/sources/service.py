"""Sources and ingestion runs.

A run is planned once (`scanning.scan`: list the files, record each as an item in a numbered
batch) and worked batch by batch (`process_batch`). Items are marked done in the same transaction that
stores their image, so a redelivered or re-sent batch repeats nothing; the reconciler re-sends
batches of runs that stopped moving.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from server.core import jobs, tasknames
from server.core.config import IngestSettings
from server.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.images import service as images
from server.images.decoding import ImageRejected
from server.orm import IngestItem, IngestRejection, IngestRun, Project, Source
from server.orm.enums import RunStatus, SourceKind
from server.prelabel import service as pipeline
from server.sources import repository, s3, url_lists
from server.sources.paths import (
    PathRefused,
    resolve_source_folder,
)

log = structlog.get_logger(__name__)

ACTIVE = (RunStatus.queued.value, RunStatus.running.value)


@dataclass(frozen=True)
class UploadedFile:
    name: str
    data: bytes


def create_folder_source(
    session: Session,
    project: Project,
    name: str,
    path: str,
    roots: Sequence[Path],
    *,
    licence: str = "",
    consent: str = "",
    user_id: int | None = None,
    watch_every_seconds: int | None = None,
) -> Source:
    try:
        folder = resolve_source_folder(path, roots)
    except PathRefused as exc:
        raise BadRequest(exc.detail, code=f"path_{exc.reason}") from None
    config: dict[str, Any] = {"path": str(folder)}
    return _add_source(
        session,
        project,
        SourceKind.folder.value,
        name,
        config,
        licence,
        consent,
        user_id,
        watch_every_seconds,
    )


def create_s3_source(
    session: Session,
    project: Project,
    name: str,
    url: str,
    allowed: Sequence[str],
    *,
    licence: str = "",
    consent: str = "",
    user_id: int | None = None,
    watch_every_seconds: int | None = None,
) -> Source:
    """The images under an S3 prefix the deployment allows; listed by each run, not now."""
    prefix = s3.confine(url, allowed)
    config: dict[str, Any] = {"bucket": prefix.bucket, "prefix": prefix.prefix, "url": prefix.url}
    return _add_source(
        session, project, SourceKind.s3.value, name, config, licence, consent, user_id, watch_every_seconds
    )


def create_linked_url_list_source(
    session: Session,
    project: Project,
    name: str,
    list_url: str,
    *,
    column: str = "url",
    licence: str = "",
    consent: str = "",
    user_id: int | None = None,
    watch_every_seconds: int | None = None,
) -> Source:
    """A URL list that lives at a URL: each run fetches it again (through the egress client,
    outside any transaction, so not now: a bad list fails the first run, with the reason)."""
    scheme = list_url.split(":", 1)[0].lower()
    if scheme not in ("http", "https") or len(list_url) > url_lists.MAX_URL_LENGTH:
        raise BadRequest("the list's URL is an http(s) URL of at most 2000 characters", code="bad_url")
    config: dict[str, Any] = {
        "list_url": list_url,
        "column": column,
        "filename": list_url.rsplit("/", 1)[-1][-300:],
    }
    return _add_source(
        session,
        project,
        SourceKind.url_list.value,
        name,
        config,
        licence,
        consent,
        user_id,
        watch_every_seconds,
    )


def watchable(source: Source) -> bool:
    """Folders, S3 prefixes, and URL lists that live at a URL (an uploaded list never changes)."""
    if source.kind == SourceKind.url_list.value:
        return bool(source.config.get("list_url"))
    return source.kind in (SourceKind.folder.value, SourceKind.s3.value)


def set_watch(source: Source, seconds: int | None) -> Source:
    """Watch a source (the beat starts an incremental run `seconds` after the last one
    finished) or stop watching it (None)."""
    if seconds is not None and not watchable(source):
        raise BadRequest(
            "only folders, S3 prefixes and linked URL lists are watched", code="source_not_watchable"
        )
    source.watch_every_seconds = seconds
    return source


def create_url_list_source(
    session: Session,
    storage: ObjectStorage,
    project: Project,
    name: str,
    listing: UploadedFile,
    *,
    column: str = "url",
    licence: str = "",
    consent: str = "",
    user_id: int | None = None,
) -> Source:
    """A source of image URLs; the list is checked now and kept (content-addressed) in storage."""
    parsed = url_lists.parse(listing.name, listing.data, column)
    digest = hashlib.sha256(listing.data).hexdigest()
    key = f"sources/lists/{digest}.{parsed.format}"
    storage.put(key, listing.data)
    config: dict[str, Any] = {
        "list_key": key,
        "format": parsed.format,
        "column": column,
        "filename": listing.name[-300:],
        "urls": len(parsed.urls),
    }
    return _add_source(session, project, SourceKind.url_list.value, name, config, licence, consent, user_id)


def _add_source(
    session: Session,
    project: Project,
    kind: str,
    name: str,
    config: dict[str, Any],
    licence: str,
    consent: str,
    user_id: int | None,
    watch_every_seconds: int | None = None,
) -> Source:
    source = Source(
        project_id=project.id,
        kind=kind,
        name=name,
        config=config,
        licence=licence,
        consent=consent,
        created_by_id=user_id,
        watch_every_seconds=watch_every_seconds,
    )
    session.add(source)
    session.flush()
    return source


def source_of(session: Session, project_id: int, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None or source.project_id != project_id:
        raise NotFound("no such source")
    return source


def run_of(session: Session, project_id: int, run_id: int) -> IngestRun:
    run = session.get(IngestRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound("no such ingest run")
    return run


RUNNABLE = (SourceKind.folder.value, SourceKind.url_list.value, SourceKind.s3.value)


def start_run(session: Session, source: Source, trigger: str = "manual") -> IngestRun:
    """Plan a run: `manual` looks at every file again, `watch` (the beat's) only at files the
    source has not finished before, or that changed since."""
    if source.kind not in RUNNABLE:
        raise BadRequest("only folder, S3 and URL-list sources are run; upload files to the project instead")
    now = utcnow()
    run = IngestRun(
        source_id=source.id,
        project_id=source.project_id,
        status=RunStatus.queued.value,
        trigger=trigger,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    jobs.enqueue(session, tasknames.INGEST_SCAN, run_id=run.id)
    return run


def upload_source(session: Session, project: Project) -> Source:
    source = repository.upload_source(session, project.id)
    if source is None:
        source = Source(project_id=project.id, kind=SourceKind.upload.value, name="uploads", config={})
        session.add(source)
        session.flush()
    return source


def stage_upload(
    session: Session,
    storage: ObjectStorage,
    project: Project,
    files: Sequence[UploadedFile],
    settings: IngestSettings,
) -> IngestRun:
    """Keep the uploaded bytes under staging keys and plan a run over them."""
    if not files:
        raise BadRequest("no files in the upload")
    for f in files:
        if len(f.data) > settings.max_upload_bytes:
            raise PayloadTooLarge(f"{f.name!r} is over the {settings.max_upload_bytes}-byte limit")
    source = upload_source(session, project)
    now = utcnow()
    run = IngestRun(
        source_id=source.id,
        project_id=project.id,
        status=RunStatus.running.value,
        items_total=len(files),
        updated_at=now,
    )
    session.add(run)
    session.flush()
    for n, f in enumerate(files):
        key = f"staging/run-{run.id}/{n:06d}"
        storage.put(key, f.data)
        session.add(
            IngestItem(run_id=run.id, name=f.name[-1000:], location=key, batch=n // settings.batch_size)
        )
    session.flush()
    for batch in range((len(files) + settings.batch_size - 1) // settings.batch_size):
        jobs.enqueue(session, tasknames.INGEST_BATCH, run_id=run.id, batch=batch)
    return run


REMOTE = (SourceKind.url_list.value, SourceKind.s3.value)


def pending_remote(session: Session, run_id: int, batch: int) -> tuple[str, list[tuple[int, str]]]:
    """The source's kind and (item id, URL or bucket/key) of a remote batch's pending items,
    to be fetched outside any transaction; no items for a local source."""
    run = session.get(IngestRun, run_id)
    source = session.get(Source, run.source_id) if run is not None else None
    if run is None or source is None or run.status not in ACTIVE or source.kind not in REMOTE:
        return "", []
    items = repository.pending_items(session, run_id, batch)
    return source.kind, [(item.id, item.location) for item in items]


def fetch_all(
    targets: Sequence[tuple[int, str]], fetch: Callable[[str], bytes]
) -> dict[int, bytes | Exception]:
    """Fetch outside any transaction (a slow server must not hold the database); a failure is
    kept per item, to be recorded as its rejection, and the batch goes on."""
    fetched: dict[int, bytes | Exception] = {}
    for item_id, url in targets:
        try:
            fetched[item_id] = fetch(url)
        except Exception as exc:
            fetched[item_id] = exc
    return fetched


def resend_pending(session: Session, run: IngestRun) -> int:
    batches = repository.pending_batches(session, run.id)
    for batch in batches:
        jobs.enqueue(session, tasknames.INGEST_BATCH, run_id=run.id, batch=batch)
    return len(batches)


def _read(
    item: IngestItem,
    source: Source,
    storage: ObjectStorage,
    roots: Sequence[Path],
    settings: IngestSettings,
    fetched: Mapping[int, bytes | Exception],
) -> bytes:
    if source.kind in REMOTE:
        got = fetched.get(item.id)
        prefix = "url" if source.kind == SourceKind.url_list.value else "s3"
        if got is None:
            raise ImageRejected("not_fetched", "the item was not fetched for this batch")
        if isinstance(got, ImageRejected):
            raise got
        if isinstance(got, Exception):
            missing = isinstance(got, FileNotFoundError)
            reason = getattr(got, "reason", "not_found" if missing else "fetch_failed")
            raise ImageRejected(f"{prefix}_{reason}", str(getattr(got, "detail", got))[:1000])
        return got
    if source.kind == SourceKind.folder.value:
        path = Path(item.location)
        # Checked again at read time: the tree may have changed since the scan.
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in roots):
            raise PathRefused("outside_roots", f"{item.name} now lies outside the source roots")
        if resolved.stat().st_size > settings.max_upload_bytes:
            raise ImageRejected("too_large", f"the file is over the {settings.max_upload_bytes}-byte limit")
        return resolved.read_bytes()
    return storage.get(item.location)


def process_batch(
    session: Session,
    storage: ObjectStorage,
    run_id: int,
    batch: int,
    roots: Sequence[Path],
    settings: IngestSettings,
    fetched: Mapping[int, bytes | Exception] | None = None,
) -> list[str]:
    """Ingest one batch; returns the staging keys to delete once the transaction committed.

    `fetched`: a URL-list batch's bytes (or failures) by item id, from `fetch_urls`."""
    run = session.get(IngestRun, run_id)
    if run is None or run.status not in ACTIVE:
        return []
    source = session.get(Source, run.source_id)
    if source is None:
        raise NotFound(f"source of run {run_id} is gone")
    items = repository.pending_items(session, run_id, batch)
    if not items:
        return []
    project = session.get(Project, run.project_id)
    min_side = (project.settings.get("min_side") if project else None) or settings.min_side
    added: list[int] = []
    duplicates = rejected = 0
    staged: list[str] = []
    for item in items:
        try:
            decoded = images.decode(_read(item, source, storage, roots, settings, fetched or {}), settings)
        except (ImageRejected, PathRefused) as exc:
            rejected += 1
            item.outcome = "rejected"
            session.add(
                IngestRejection(
                    project_id=run.project_id,
                    source_id=run.source_id,
                    run_id=run.id,
                    name=item.name,
                    reason=exc.reason,
                    detail=exc.detail[:1000],
                )
            )
        except FileNotFoundError:
            rejected += 1
            item.outcome = "rejected"
            session.add(
                IngestRejection(
                    project_id=run.project_id,
                    source_id=run.source_id,
                    run_id=run.id,
                    name=item.name,
                    reason="not_found",
                    detail="the file disappeared before it was read",
                )
            )
        else:
            result = images.add_image(
                session, storage, run.project_id, source, item.name, decoded, settings, min_side
            )
            if result.duplicate:
                duplicates += 1
                item.outcome = "duplicate"
            else:
                added.append(int(result.image_id or 0))
                item.outcome = "added"
                item.image_id = result.image_id
        item.done = True
        if source.kind == SourceKind.upload.value:
            staged.append(item.location)
    # Lock the run row before counting what is left, so that exactly one batch sees zero.
    repository.add_counts(
        session, run_id, items_done=len(items), added=len(added), duplicates=duplicates, rejected=rejected
    )
    session.flush()
    now = utcnow()
    session.refresh(run)
    run.updated_at = now
    if repository.count_pending(session, run_id) == 0:
        run.status, run.finished_at = RunStatus.succeeded.value, now
    pipeline.request_analysis(session, run.project_id, added)
    log.info(
        "ingest.batch", run_id=run_id, batch=batch, added=len(added), duplicates=duplicates, rejected=rejected
    )
    return staged


def cancel_run(session: Session, run: IngestRun) -> None:
    if run.status not in ACTIVE:
        raise Conflict(f"the run is {run.status}")
    now = utcnow()
    run.status, run.finished_at, run.updated_at = RunStatus.cancelled.value, now, now
