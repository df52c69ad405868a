"""Export jobs: a snapshot freezes what is exported; parts write shard ranges in parallel;
`finish` merges, writes `manifest.json` last and marks the export done.

    start (request) -> plan (task: freeze subjects, cut parts) -> part x N (tasks) -> finish

A part reads the database in a short transaction and writes its files outside it. A part whose
files are all there with their recorded checksums is kept when the export is resumed.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from server.core import jobs, tasknames
from server.core.db import Database
from server.core.errors import Conflict, NotFound
from server.core.time import utcnow
from server.exports import repository
from server.exports.destinations import Destination
from server.exports.records import ExportRecord, build_records
from server.exports.schemas import ExportFilters, ExportOptions
from server.exports.writers import PART_WRITERS, Files, PartContext, shard_name
from server.exports.writers import finish as finish_files
from server.orm import Project, TaxonomyVersion
from server.orm.exports import Export, ExportPart, Snapshot
from server.projects import service as projects
from server.taxonomy import service as taxonomy
from server.taxonomy.format import TaxonomySpec
from server.webhooks import service as webhooks

log = structlog.get_logger(__name__)

ACTIVE = ("planning", "running")
MANIFEST = "manifest.json"
# Tar headers and the caption and attributes members, per sample, when cutting shards by bytes.
SAMPLE_OVERHEAD_BYTES = 4096

ReadBlob = Callable[[str], bytes]
_state = attrgetter("state")


def start_export(
    session: Session,
    project: Project,
    *,
    fmt: str,
    destination: str | None,
    default_root: Path,
    filters: ExportFilters,
    options: ExportOptions,
    user_id: int | None,
    endpoint_url: str | None = None,
    send_jobs: bool = True,
) -> Export:
    """Freeze the moment (label-event and prediction high-water marks) and queue the plan
    (`send_jobs=False`: the caller runs it, see `run_here`)."""
    if project.taxonomy_version_id is None:
        raise Conflict("the project has no taxonomy yet", code="no_taxonomy")
    if filters.since_export_id is not None:
        earlier = session.get(Export, filters.since_export_id)
        if earlier is None or earlier.project_id != project.id:
            raise NotFound("no such export to start from")
    snapshot = Snapshot(
        project_id=project.id,
        taxonomy_version_id=project.taxonomy_version_id,
        label_event_high_water=repository.label_event_high_water(session),
        prediction_high_water=repository.prediction_high_water(session),
        filters=filters.model_dump(mode="json"),
    )
    session.add(snapshot)
    session.flush()
    stored_options = options.model_dump(mode="json", exclude_none=True)
    if endpoint_url:
        stored_options["endpoint_url"] = endpoint_url
    export = Export(
        project_id=project.id,
        snapshot_id=snapshot.id,
        format=fmt,
        destination=destination or "",
        options=stored_options,
        status="planning",
        created_by_id=user_id,
    )
    session.add(export)
    session.flush()
    if not destination:
        export.destination = str(default_root / f"export-{export.id:06d}")
    if send_jobs:
        jobs.enqueue(session, tasknames.EXPORT_PLAN, export_id=export.id)
    return export


def plan(session: Session, export_id: int, *, send_jobs: bool = True) -> None:
    """Freeze the snapshot's subjects and cut them into parts; queue one task per part."""
    export = session.get(Export, export_id, with_for_update=True)
    if export is None or export.status != "planning":
        return
    snapshot = _snapshot(session, export)
    project = session.get(Project, export.project_id)
    assert project is not None
    filters = ExportFilters.model_validate(snapshot.filters)
    options = ExportOptions.model_validate({k: v for k, v in export.options.items() if k != "endpoint_url"})
    include_sensitive = projects.settings_of(project).include_sensitive
    spec = _spec(session, snapshot)
    categories = repository.categories(session, snapshot.taxonomy_version_id)
    allowed = {c.full_key for c in spec.categories() if include_sensitive or not c.sensitive}
    category_ids = [c.id for c in categories if c.key in allowed]
    candidates = repository.candidate_subjects(
        session, project.id, subject_ids=filters.subject_ids, source_ids=filters.source_ids
    )
    labelled = repository.subjects_with_state(
        session, project.id, snapshot.label_event_high_water, category_ids, filters.label_states()
    )
    changed: set[int] | None = None
    if filters.since_export_id is not None:
        earlier = session.get(Export, filters.since_export_id)
        assert earlier is not None
        since = _snapshot(session, earlier).label_event_high_water
        changed = repository.subjects_changed_between(
            session, project.id, since, snapshot.label_event_high_water
        )
    chosen = [
        subject_id
        for subject_id, quality in candidates
        if subject_id in labelled
        and (changed is None or subject_id in changed)
        and all(
            float(quality.get(metric, float("-inf"))) >= floor
            for metric, floor in filters.min_quality.items()
        )
    ]
    repository.freeze_subjects(session, snapshot.id, chosen)
    snapshot.subject_count = len(chosen)
    sizes = repository.image_bytes_by_position(session, snapshot.id)
    ranges = cut_parts(sizes, options.shard_size, options.shard_bytes)
    for index, (first, stop) in enumerate(ranges):
        session.add(ExportPart(export_id=export.id, index=index, first=first, stop=stop, status="pending"))
    export.status = "running"
    export.counts = {"subjects": len(chosen), "parts": len(ranges)}
    if not send_jobs:
        return
    for index in range(len(ranges)):
        jobs.enqueue(session, tasknames.EXPORT_PART, export_id=export.id, index=index)
    if not ranges:
        jobs.enqueue(session, tasknames.EXPORT_FINISH, export_id=export.id)


def cut_parts(sizes: list[int], shard_size: int, shard_bytes: int | None) -> list[tuple[int, int]]:
    """Consecutive position ranges of at most `shard_size` samples and about `shard_bytes`."""
    ranges: list[tuple[int, int]] = []
    first, running = 0, 0
    for position, size in enumerate(sizes):
        size += SAMPLE_OVERHEAD_BYTES
        full = position - first >= shard_size or (
            shard_bytes is not None and running + size > shard_bytes and position > first
        )
        if full:
            ranges.append((first, position))
            first, running = position, 0
        running += size
    if first < len(sizes):
        ranges.append((first, len(sizes)))
    return ranges


def _snapshot(session: Session, export: Export) -> Snapshot:
    snapshot = session.get(Snapshot, export.snapshot_id)
    assert snapshot is not None
    return snapshot


def _spec(session: Session, snapshot: Snapshot) -> TaxonomySpec:
    version = session.get(TaxonomyVersion, snapshot.taxonomy_version_id)
    assert version is not None
    return taxonomy.spec_of(version)


def _snapshot_document(session: Session, snapshot: Snapshot) -> dict[str, Any]:
    version = session.get(TaxonomyVersion, snapshot.taxonomy_version_id)
    assert version is not None
    return {
        "id": snapshot.id,
        "label_event_high_water": snapshot.label_event_high_water,
        "taxonomy": f"{version.name}@{version.version}",
    }


def destination_of(export: Export) -> Destination:
    return Destination(export.destination, endpoint_url=export.options.get("endpoint_url"))


def _context(session: Session, export: Export, read_blob: ReadBlob) -> PartContext:
    snapshot = _snapshot(session, export)
    return PartContext(
        spec=_spec(session, snapshot),
        destination=destination_of(export),
        snapshot=_snapshot_document(session, snapshot),
        mtime=int(snapshot.created_at.timestamp()),
        read_blob=read_blob,
        options=dict(export.options),
    )


def read_part_records(session: Session, export: Export, part: ExportPart) -> list[ExportRecord]:
    snapshot = _snapshot(session, export)
    project = session.get(Project, export.project_id)
    assert project is not None
    filters = ExportFilters.model_validate(snapshot.filters)
    spec = _spec(session, snapshot)
    categories = {c.id: c.key for c in repository.categories(session, snapshot.taxonomy_version_id)}
    rows = repository.subjects_in_range(session, snapshot.id, part.first, part.stop)
    labels = repository.labels_as_of(session, snapshot, part.first, part.stop)
    predictions = (
        repository.predictions_as_of(session, snapshot, part.first, part.stop)
        if export.format == "labelstudio"
        else []
    )
    return build_records(
        spec,
        rows,
        labels,
        categories,
        repository.model_version_names(session, project.id),
        states=filters.label_states(),
        include_sensitive=projects.settings_of(project).include_sensitive,
        predictions=predictions,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A part builds a few hundred thousand small tuples and dicts, none of them in a cycle;
    the cyclic collector's passes over them cost more than building them. Reference counting
    still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_part(
    db: Database, read_blob: ReadBlob, export_id: int, index: int, *, send_jobs: bool = True
) -> bool:
    """Write one part unless it is already complete; returns whether it wrote files."""
    with db.session_scope() as session:
        export = session.get(Export, export_id)
        part = repository.part(session, export_id, index)
        if export is None or part is None or export.status != "running":
            return False
        context = _context(session, export, read_blob)
        recorded = dict(part.files) if part.status == "done" else None
        fmt = export.format
    # Checksums are read outside the transaction: on SQLite it would hold the write lock.
    kept = recorded is not None and context.destination.verified(recorded)
    records: list[ExportRecord] = []
    if not kept:
        with db.session_scope() as session:
            export = session.get(Export, export_id)
            part = repository.part(session, export_id, index)
            assert export is not None and part is not None
            with _collector_paused():
                records = read_part_records(session, export, part)
    wrote = not kept
    files: Files = {}
    if wrote:
        with _collector_paused():
            files = PART_WRITERS[fmt](context, index, records)
    with db.session_scope() as session:
        export = session.get(Export, export_id, with_for_update=True)
        part = repository.part(session, export_id, index)
        assert export is not None and part is not None
        if wrote:
            part.status = "done"
            part.files = files
            part.samples = len(records)
            part.bytes = sum(int(f["bytes"]) for f in files.values())
            states: Counter[str] = Counter()
            for record in records:
                states.update(map(_state, record.labels.values()))
            part.counts = dict(states)
            part.finished_at = utcnow()
        if export.status != "running":
            return wrote
        done, total = repository.part_counts(session, export_id)
        export.progress = done / total if total else 1.0
        if done == total and send_jobs:
            jobs.enqueue(session, tasknames.EXPORT_FINISH, export_id=export_id)
    log.info("export.part", export_id=export_id, index=index, wrote=wrote, samples=len(records))
    return wrote


def finish(db: Database, read_blob: ReadBlob, export_id: int) -> None:
    """Merge what needs every part, then write the manifest last and mark the export done."""
    with db.session_scope() as session:
        export = session.get(Export, export_id)
        if export is None or export.status != "running":
            return
        parts = repository.parts_of(session, export_id)
        if any(p.status != "done" for p in parts):
            return
        context = _context(session, export, read_blob)
        snapshot = _snapshot(session, export)
        project = session.get(Project, export.project_id)
        assert project is not None
        include_sensitive = projects.settings_of(project).include_sensitive
        version = session.get(TaxonomyVersion, snapshot.taxonomy_version_id)
        assert version is not None
        fmt = export.format
        files: Files = {}
        labels: Counter[str] = Counter()
        for part in parts:
            files.update(part.files)
            labels.update(part.counts)
        counts = {
            "subjects": snapshot.subject_count,
            "samples": sum(p.samples for p in parts),
            "parts": len(parts),
            "labels": sum(labels.values()),
            "labels_by_state": dict(sorted(labels.items())),
        }
        manifest_head: dict[str, Any] = {
            "export_id": export.id,
            "project_id": export.project_id,
            "format": fmt,
            "snapshot": {
                **context.snapshot,
                "prediction_high_water": snapshot.prediction_high_water,
                "created_at": snapshot.created_at.isoformat(),
            },
            "taxonomy": {
                "name": version.name,
                "version": version.version,
                "content_hash": version.content_hash,
            },
            "filters": snapshot.filters,
            "options": {k: v for k, v in export.options.items() if k != "endpoint_url"},
            "include_sensitive": include_sensitive,
            "counts": counts,
        }
        if fmt == "webdataset":
            manifest_head["members"] = ["<image: jpg|png|webp>", "txt", "json"]
            manifest_head["shards"] = [f"{shard_name(p.index)}.tar" for p in parts]
    files.update(finish_files(fmt, context, len(parts), include_sensitive))
    manifest = {**manifest_head, "files": dict(sorted(files.items()))}
    manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
    context.destination.write(MANIFEST, manifest_bytes)
    with db.session_scope() as session:
        export = session.get(Export, export_id, with_for_update=True)
        if export is None or export.status != "running":
            return
        export.status = "done"
        export.progress = 1.0
        export.counts = counts
        export.manifest = manifest
        export.finished_at = utcnow()
        webhooks.emit(
            session,
            export.project_id,
            "export.done",
            {
                "export_id": export.id,
                "format": fmt,
                "destination": export.destination,
                "counts": counts,
                "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            },
        )
    log.info("export.done", export_id=export_id, samples=counts["samples"])


def run_here(
    db: Database, read_blob: ReadBlob, export_id: int, on_part: Callable[[int, int], None] | None = None
) -> None:
    """Run a planned or resumed export in this process, part after part (the CLI's and the
    benchmark's one worker); `on_part(done, total)` after each part."""
    with db.session_scope() as session:
        plan(session, export_id, send_jobs=False)
        export = session.get(Export, export_id)
        assert export is not None
        if export.status == "failed":
            return
        indexes = [p.index for p in repository.parts_of(session, export_id)]
    for n, index in enumerate(indexes, 1):
        write_part(db, read_blob, export_id, index, send_jobs=False)
        if on_part is not None:
            on_part(n, len(indexes))
    finish(db, read_blob, export_id)


def fail(db: Database, export_id: int, error: str) -> None:
    with db.session_scope() as session:
        export = session.get(Export, export_id, with_for_update=True)
        if export is not None and export.status in ACTIVE:
            export.status = "failed"
            export.error = error[:2000]
            export.finished_at = utcnow()


def cancel(export: Export) -> Export:
    if export.status not in ACTIVE:
        raise Conflict(f"the export is {export.status}", code="export_not_active")
    export.status = "cancelled"
    export.finished_at = utcnow()
    return export


def resume(session: Session, export: Export, *, send_jobs: bool = True) -> Export:
    """Run a failed, cancelled or stalled export again: complete parts are verified and kept."""
    if export.status == "done":
        raise Conflict("the export is done", code="export_done")
    parts = repository.parts_of(session, export.id)
    export.error = None
    export.finished_at = None
    if not parts and export.status != "running":
        export.status = "planning"
        if send_jobs:
            jobs.enqueue(session, tasknames.EXPORT_PLAN, export_id=export.id)
        return export
    export.status = "running"
    if not send_jobs:
        return export
    for part in parts:
        jobs.enqueue(session, tasknames.EXPORT_PART, export_id=export.id, index=part.index)
    if not parts:
        jobs.enqueue(session, tasknames.EXPORT_FINISH, export_id=export.id)
    return export


def get(session: Session, project_id: int, export_id: int) -> Export:
    export = session.get(Export, export_id)
    if export is None or export.project_id != project_id:
        raise NotFound("no such export")
    return export


def get_by_id(session: Session, export_id: int) -> Export:
    export = session.get(Export, export_id)
    if export is None:
        raise NotFound("no such export")
    return export


def list_exports(session: Session, project_id: int) -> list[Export]:
    return repository.exports_of(session, project_id)


def snapshot_of(session: Session, export: Export) -> Snapshot:
    return _snapshot(session, export)


def local_file(export: Export, name: str) -> Path:
    """A finished local export's file, by a name its manifest lists."""
    if export.status != "done" or export.manifest is None:
        raise Conflict("the export is not done", code="export_not_done")
    if export.destination.startswith("s3://"):
        raise NotFound("the export is in object storage; read it there")
    if name != MANIFEST and name not in export.manifest.get("files", {}):
        raise NotFound("no such file in the export")
    return Path(export.destination) / name
