"""Sources and ingestion runs.

A run is planned once (`scan`: list the files, record each as an item in a numbered batch) and
worked batch by batch (`process_batch`). Items are marked done in the same transaction that
stores their image, so a redelivered or re-sent batch repeats nothing; the reconciler re-sends
batches of runs that stopped moving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
from server.sources import repository
from server.sources.paths import (
    FolderRefusal,
    PathRefused,
    iter_folder_files,
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
) -> Source:
    try:
        folder = resolve_source_folder(path, roots)
    except PathRefused as exc:
        raise BadRequest(exc.detail, code=f"path_{exc.reason}") from None
    source = Source(
        project_id=project.id,
        kind=SourceKind.folder.value,
        name=name,
        config={"path": str(folder)},
        licence=licence,
        consent=consent,
        created_by_id=user_id,
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


def start_run(session: Session, source: Source) -> IngestRun:
    if source.kind != SourceKind.folder.value:
        raise BadRequest("only folder sources are run; upload files to the project instead")
    now = utcnow()
    run = IngestRun(
        source_id=source.id, project_id=source.project_id, status=RunStatus.queued.value, updated_at=now
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


def scan(session: Session, run_id: int, roots: Sequence[Path], settings: IngestSettings) -> None:
    """Plan a folder run. A run already planned only has its unfinished batches re-sent."""
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
    try:
        folder = resolve_source_folder(str(source.config["path"]), roots)
    except PathRefused as exc:
        run.status, run.error, run.finished_at, run.updated_at = RunStatus.failed.value, exc.detail, now, now
        return
    count = 0
    refusals: list[FolderRefusal] = []
    for entry in iter_folder_files(folder, roots):
        if isinstance(entry, FolderRefusal):
            refusals.append(entry)
            continue
        session.add(
            IngestItem(
                run_id=run.id,
                name=entry.relative_path,
                location=str(entry.path),
                batch=count // settings.batch_size,
            )
        )
        count += 1
    for refusal in refusals:
        session.add(
            IngestRejection(
                project_id=run.project_id,
                source_id=run.source_id,
                run_id=run.id,
                name=refusal.relative_path,
                reason=refusal.reason,
                detail="refused while listing the folder",
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


def resend_pending(session: Session, run: IngestRun) -> int:
    batches = repository.pending_batches(session, run.id)
    for batch in batches:
        jobs.enqueue(session, tasknames.INGEST_BATCH, run_id=run.id, batch=batch)
    return len(batches)


def _read(
    item: IngestItem, source: Source, storage: ObjectStorage, roots: Sequence[Path], settings: IngestSettings
) -> bytes:
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
) -> list[str]:
    """Ingest one batch; returns the staging keys to delete once the transaction committed."""
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
            decoded = images.decode(_read(item, source, storage, roots, settings), settings)
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
        if source.kind != SourceKind.folder.value:
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
