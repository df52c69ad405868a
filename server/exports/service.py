"""Export jobs: a snapshot freezes what is exported; parts write shard ranges in parallel;
`finish` merges, writes `manifest.json` last and marks the export done.

    start (request) -> plan (task: freeze subjects, cut parts) -> part x N (tasks) -> finish

A part reads the database in a short transaction and writes its files outside it. A part whose
files are all there with their recorded checksums is kept when the export is resumed.
"""

from __future__ import annotations

import bisect
import functools
import gc
import hashlib
import json
import multiprocessing
import multiprocessing.pool
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from pydantic import ValidationError
from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from server.captions import tokens
from server.core import jobs, tasknames
from server.core.db import Database
from server.core.errors import Conflict, NotFound
from server.core.time import utcnow
from server.exports import repository
from server.exports.destinations import Destination
from server.exports.records import (
    ATTRIBUTES_FORMAT,
    DOCUMENT_VERSION,
    ExportRecord,
    build_records,
    caption_groups,
    document_encoder,
    label_states,
    record_of,
)
from server.exports.repository import LabelDocument
from server.exports.schemas import ExportFilters, ExportOptions
from server.exports.writers import PART_WRITERS, Files, PartContext, shard_name
from server.exports.writers import finish as finish_files
from server.exports.writers import preload as preload_writers
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
        # Read after the marks: a transaction that wrote at or below them had its id by then.
        settles_after_xid=_transaction_id(session),
        filters=filters.model_dump(mode="json"),
        include_sensitive=projects.settings_of(project).include_sensitive,
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


def _transaction_id(session: Session) -> int | None:
    """This transaction's id on Postgres (given out now if it had none): every transaction that
    had already written has a lower one."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(session.scalar(text("SELECT pg_current_xact_id()::text::bigint")))


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
    category_ids = _exported_category_ids(session, snapshot.taxonomy_version_id, snapshot.include_sensitive)
    changed_after = None
    if filters.since_export_id is not None:
        earlier = session.get(Export, filters.since_export_id)
        assert earlier is not None
        changed_after = _snapshot(session, earlier).label_event_high_water
    repository.prune_documents(session, project.id, document_variant(snapshot.taxonomy_version_id))
    previous = None
    if _may_refreeze(session, filters):
        previous = repository.previous_freeze(
            session,
            snapshot.id,
            project.id,
            snapshot.taxonomy_version_id,
            snapshot.include_sensitive,
            snapshot.label_event_high_water,
            same_filters=functools.partial(_same_members, filters),
        )
    snapshot.subject_count = repository.freeze_subjects(
        session,
        snapshot.id,
        project.id,
        high_water=snapshot.label_event_high_water,
        category_ids=category_ids,
        states=filters.label_states(),
        subject_ids=filters.subject_ids,
        source_ids=filters.source_ids,
        min_quality=filters.min_quality,
        changed_after=changed_after,
        previous=previous,
    )
    sizes = (
        repository.image_bytes_by_position(session, snapshot.id)
        if options.shard_bytes is not None
        else [0] * snapshot.subject_count  # cut by count alone
    )
    ranges = cut_parts(sizes, options.shard_size, options.shard_bytes)
    for index, (first, stop) in enumerate(ranges):
        session.add(ExportPart(export_id=export.id, index=index, first=first, stop=stop, status="pending"))
    export.status = "running"
    export.counts = {"subjects": snapshot.subject_count, "parts": len(ranges)}
    if not send_jobs:
        return
    for index in range(len(ranges)):
        jobs.enqueue(session, tasknames.EXPORT_PART, export_id=export.id, index=index)
    if not ranges:
        jobs.enqueue(session, tasknames.EXPORT_FINISH, export_id=export.id)


def _may_refreeze(session: Session, filters: ExportFilters) -> bool:
    """Whether a freeze may start from an earlier snapshot's subjects (`repository.previous_freeze`):
    only where every label event at or below a snapshot's mark had committed when its subjects
    were frozen (SQLite commits one transaction at a time; on Postgres a transaction that took a
    lower event id may commit later), and only with filters that no change but a label event
    can move a subject across (not its image's source or quality, nor "changed since")."""
    return session.get_bind().dialect.name == "sqlite" and _label_filters_only(filters)


def _label_filters_only(filters: ExportFilters) -> bool:
    return filters.source_ids is None and not filters.min_quality and filters.since_export_id is None


def _same_members(filters: ExportFilters, stored: dict[str, Any]) -> bool:
    """Whether a snapshot with the `stored` filters chose its subjects as `filters` would. Filters
    stored by an older version that today's schema refuses (a quality floor's metric name and
    value are checked since 4451f2e) are not the same: the plan freezes in full rather than fail."""
    try:
        earlier = ExportFilters.model_validate(stored)
    except ValidationError:
        return False
    ids = None if filters.subject_ids is None else set(filters.subject_ids)
    earlier_ids = None if earlier.subject_ids is None else set(earlier.subject_ids)
    return (
        _label_filters_only(earlier)
        and earlier.label_states() == filters.label_states()
        and earlier_ids == ids
    )


def _exported_category_ids(session: Session, taxonomy_version_id: int, include_sensitive: bool) -> list[int]:
    spec = _spec_of(session, taxonomy_version_id)
    allowed = {c.full_key for c in spec.categories() if include_sensitive or not c.sensitive}
    return [c.id for c in repository.categories(session, taxonomy_version_id) if c.key in allowed]


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


_SPECS: dict[tuple[int, str], TaxonomySpec] = {}


def _spec(session: Session, snapshot: Snapshot) -> TaxonomySpec:
    """The snapshot's taxonomy, parsed once per process (every part of an export reads it)."""
    return _spec_of(session, snapshot.taxonomy_version_id)


def _spec_of(session: Session, taxonomy_version_id: int) -> TaxonomySpec:
    content_hash = session.scalar(
        select(TaxonomyVersion.content_hash).where(TaxonomyVersion.id == taxonomy_version_id)
    )
    key = (taxonomy_version_id, str(content_hash))
    spec = _SPECS.get(key)
    if spec is None:
        version = session.get(TaxonomyVersion, taxonomy_version_id)
        assert version is not None
        if len(_SPECS) > 16:
            _SPECS.clear()
        spec = _SPECS[key] = taxonomy.spec_of(version)
    return spec


def _snapshot_document(session: Session, snapshot: Snapshot) -> dict[str, Any]:
    name, version = session.execute(
        select(TaxonomyVersion.name, TaxonomyVersion.version).where(
            TaxonomyVersion.id == snapshot.taxonomy_version_id
        )
    ).one()
    return {
        "id": snapshot.id,
        "label_event_high_water": snapshot.label_event_high_water,
        "taxonomy": f"{name}@{version}",
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


# Formats whose records can come from kept documents; Label Studio's carry predictions.
DOCUMENT_FORMATS = frozenset({"webdataset", "jsonl", "cosmicman"})
# A part reads the labels of its subjects without a current document by their ids, up to this
# many; beyond, or when none has one, it reads its whole range (no long IN list).
_READ_BY_ID_AT_MOST = 500


def document_variant(
    taxonomy_version_id: int, states: Collection[str] | None = None, include_sensitive: bool = False
) -> str:
    """What a kept document depends on besides the labels: one name per combination (without
    `states`: the prefix every variant of this code and taxonomy version starts with)."""
    prefix = f"d{DOCUMENT_VERSION}:t{taxonomy_version_id}:"
    if states is None:
        return prefix
    return f"{prefix}{'+'.join(sorted(states))}:{'sensitive' if include_sensitive else 'plain'}"


def marks_of(snapshot: Snapshot) -> repository.Marks:
    return repository.Marks(snapshot.label_event_high_water, snapshot.prediction_high_water)


def _checked_ranges(
    read_at: Collection[repository.Marks], marks: repository.Marks
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The label-event and prediction id ranges between documents read at `read_at` and `marks`."""
    labels = [m.label_event_high_water for m in read_at]
    predictions = [m.prediction_high_water for m in read_at]
    return (
        (min(marks.label_event_high_water, *labels), max(marks.label_event_high_water, *labels)),
        (min(marks.prediction_high_water, *predictions), max(marks.prediction_high_water, *predictions)),
    )


def stale_documents(
    session: Session,
    subjects: Select[Any] | Collection[int],
    kept: Mapping[int, repository.Marks],
    marks: repository.Marks,
) -> set[int]:
    """The kept documents (subject id -> the marks each was read at) that do not stand for
    `marks`: a label event or prediction of their subject lies between those marks and these."""
    if not kept:
        return set()
    labels, predictions = _checked_ranges(kept.values(), marks)
    stale: set[int] = set()
    touched = repository.touched_between(session, subjects, labels, predictions, among=kept.keys())
    for subject_id, kind, row_id in touched:
        document = kept.get(subject_id)
        if document is None:
            continue
        if kind == "label":
            ends = (document.label_event_high_water, marks.label_event_high_water)
        else:
            ends = (document.prediction_high_water, marks.prediction_high_water)
        if min(ends) < row_id <= max(ends):
            stale.add(subject_id)
    return stale


# A part's stale check reads the ids between its oldest document's marks and its snapshot's, a
# range that grows with every label event after those documents were kept. When it holds more
# than this many ids per document checked, the part moves the marks of its documents that it
# found current up to its snapshot's (`repository.advance_documents`), so the next check is short.
ADVANCE_MARKS_OVER_IDS_PER_DOCUMENT = repository.RANGE_SCAN_PER_SUBJECT // 2


def _behind(
    kept: Mapping[int, tuple[repository.Marks, LabelDocument]], marks: repository.Marks
) -> dict[repository.Marks, list[int]]:
    """The current kept documents whose marks lie below `marks`, by the marks they were read at,
    when the stale check's ranges have grown past `ADVANCE_MARKS_OVER_IDS_PER_DOCUMENT`."""
    if not kept:
        return {}
    read_at = [document_marks for document_marks, _ in kept.values()]
    labels, predictions = _checked_ranges(read_at, marks)
    checked = labels[1] - labels[0] + predictions[1] - predictions[0]
    if checked <= ADVANCE_MARKS_OVER_IDS_PER_DOCUMENT * len(kept):
        return {}
    behind: dict[repository.Marks, list[int]] = {}
    for subject_id, (document_marks, _) in kept.items():
        if document_marks != marks and (
            document_marks.label_event_high_water <= marks.label_event_high_water
            and document_marks.prediction_high_water <= marks.prediction_high_water
        ):
            behind.setdefault(document_marks, []).append(subject_id)
    return behind


class PartRecords(NamedTuple):
    records: list[ExportRecord]
    # Documents encoded for this part that may be kept (`keep_documents`), by subject id.
    variant: str
    fresh: dict[int, LabelDocument]
    # Kept documents found current whose marks may move up to the snapshot's (`_behind`).
    behind: dict[repository.Marks, list[int]]


def read_part_records(session: Session, export: Export, part: ExportPart, spec: TaxonomySpec) -> PartRecords:
    """The part's records, read without writing. For the formats that allow it, a subject whose
    kept document stands for the snapshot is not read again; the others are read and encoded.
    `spec`: the snapshot's taxonomy (the part's context holds it)."""
    snapshot = _snapshot(session, export)
    filters = ExportFilters.model_validate(snapshot.filters)
    include_sensitive = snapshot.include_sensitive
    marks = marks_of(snapshot)
    in_range = repository.in_range(snapshot.id, part.first, part.stop)
    documents = export.format in DOCUMENT_FORMATS
    # Decided before any label is read: what is read after every older transaction ended is
    # final, what is read while one is open may miss its events (checked later, it may have
    # ended in between).
    keepable = documents and _settled(session, snapshot.settles_after_xid)
    kept: dict[int, tuple[repository.Marks, LabelDocument]] = {}
    variant = document_variant(snapshot.taxonomy_version_id, filters.label_states(), include_sensitive)
    if not documents:
        rows = repository.subjects_in_range(session, snapshot.id, part.first, part.stop)
    else:
        rows, kept = repository.subjects_with_documents(
            session, snapshot.id, part.first, part.stop, variant, with_aa_text=export.format == "cosmicman"
        )
        read_at = {subject_id: document_marks for subject_id, (document_marks, _) in kept.items()}
        for subject_id in stale_documents(session, in_range, read_at, marks):
            del kept[subject_id]
    # Only once what was read is final (`keepable`): a later commit of an older transaction could
    # still add an event between a document's marks and the snapshot's.
    behind = _behind(kept, marks) if keepable else {}
    unread = [row for row in rows if row.subject_id not in kept]
    records: dict[int, ExportRecord] = {}
    fresh: dict[int, LabelDocument] = {}
    if unread:
        subjects: Select[Any] | list[int] = (
            [row.subject_id for row in unread]
            if len(unread) <= _READ_BY_ID_AT_MOST and len(unread) < len(rows)
            else in_range
        )
        categories = repository.category_keys(session, snapshot.taxonomy_version_id)
        built = build_records(
            spec,
            unread,
            repository.labels_as_of(session, marks, subjects),
            categories,
            repository.model_version_names(session, export.project_id),
            states=filters.label_states(),
            include_sensitive=include_sensitive,
            predictions=(
                repository.predictions_as_of(session, snapshot, part.first, part.stop)
                if export.format == "labelstudio"
                else []
            ),
        )
        if documents:
            encoder = document_encoder(spec)
            for record in built:
                record.document = encoder.document(record)
                if keepable:
                    fresh[record.subject_id] = record.document
        records = {r.subject_id: r for r in built}
    return PartRecords(
        variant=variant,
        fresh=fresh,
        behind=behind,
        records=[
            records[row.subject_id]
            if row.subject_id not in kept
            else record_of(row, document=kept[row.subject_id][1])
            for row in rows
        ],
    )


def keep_documents(session: Session, export: Export, read: PartRecords) -> None:
    """Keep the documents a part encoded from labels read once nothing at or below the
    snapshot's marks could still change (`_settled`, checked before the read), and move up the
    marks of those it found current (`PartRecords.behind`)."""
    if not read.fresh and not read.behind:
        return
    marks = marks_of(_snapshot(session, export))
    if read.fresh:
        repository.keep_documents(session, read.variant, marks, read.fresh)
    for read_at, subject_ids in read.behind.items():
        repository.advance_documents(session, read.variant, read_at, marks, subject_ids)


class Refreshed(NamedTuple):
    variants: int  # the label-state sets refreshed (those of the project's recent exports)
    documents: int  # documents encoded and kept
    settled: bool  # False: a transaction older than the marks was still open; nothing was kept


# A refresh keeps documents for the label-state sets of this many of the project's latest exports.
REFRESH_RECENT_EXPORTS = 20


def refresh_documents(
    db: Database, project_id: int, *, limit: int = 20_000, batch: int = 1_000, full: bool = False
) -> Refreshed:
    """Encode now, as of the current marks, the documents the next export would otherwise encode
    itself: for each label-state set of the project's recent document exports, the subjects with
    a label in those states whose kept document is missing or stale (a label event or prediction
    since). After a flywheel round re-labels most subjects, or a day of review, the next export
    then reads kept documents as it did before. At most `limit` documents, `batch` subjects per
    read; the beat calls this every few minutes, so a larger backlog is worked off in turns.

    A walk that reaches its end with what it read settled keeps its marks for its variant
    (`repository.set_refresh_mark`); the next one then looks only at the subjects with a label
    event or prediction since, as nothing else makes a document missing or stale. `full` walks
    every subject all the same (a document lost some other way is found again)."""
    with db.session_scope() as session:
        project = session.get(Project, project_id)
        if project is None or project.taxonomy_version_id is None:
            return Refreshed(0, 0, True)
        version_id = project.taxonomy_version_id
        include_sensitive = projects.settings_of(project).include_sensitive
        marks = repository.Marks(
            repository.label_event_high_water(session), repository.prediction_high_water(session)
        )
        settles_after_xid = _transaction_id(session)  # as for a snapshot: read after the marks
        state_sets: list[list[str]] = []
        for filters in repository.recent_export_filters(
            session, project_id, DOCUMENT_FORMATS, REFRESH_RECENT_EXPORTS
        ):
            try:
                states = ExportFilters.model_validate(filters).label_states()
            except ValueError:
                continue  # filters stored by an older code: that export's variant is not refreshed
            if states not in state_sets:
                state_sets.append(states)
        # What every batch needs, read once: the taxonomy, its categories, the model names.
        spec = _spec_of(session, version_id)
        category_ids = _exported_category_ids(session, version_id, include_sensitive)
        categories = repository.category_keys(session, version_id)
        model_names = repository.model_version_names(session, project_id)
        # Variant -> its label states and the marks of its last complete refresh (None: walk all).
        variants: dict[str, tuple[list[str], repository.Marks | None]] = {}
        for states in state_sets:
            variant = document_variant(version_id, states, include_sensitive)
            since = None if full else repository.refresh_mark(session, project_id, variant)
            variants.setdefault(variant, (states, since))
    done = 0
    for variant, (states, since) in variants.items():
        after = 0  # subject id: the candidates are walked in id order, `batch` at a time
        touched: list[int] | None = None  # after a complete refresh: the candidates, read once
        walked = False
        while done < limit:
            with db.read_scope() as session:
                if not _settled(session, settles_after_xid):
                    return Refreshed(len(state_sets), done, False)
                if since is not None and touched is None:
                    touched = repository.touched_since(session, project_id, since, marks)
                among = None
                if touched is not None:
                    start = bisect.bisect_right(touched, after)
                    among = touched[start : start + batch]
                    if not among:
                        walked = True
                        break
                most = min(batch, limit - done)
                wanted = repository.documents_to_refresh(
                    session,
                    project_id,
                    variant,
                    marks,
                    category_ids,
                    states,
                    after=after,
                    limit=most,
                    among=among,
                )
                if among is None and not wanted:
                    walked = True
                    break
                # Past the last candidate looked at: the last one wanted, if `most` cut the list.
                after = wanted[-1] if among is None or len(wanted) == most else among[-1]
                if not wanted:
                    continue
                with _collector_paused():
                    built = build_records(
                        spec,
                        repository.subjects_by_id(session, wanted),
                        repository.labels_as_of(session, marks, wanted),
                        categories,
                        model_names,
                        states=states,
                        include_sensitive=include_sensitive,
                    )
                    encoder = document_encoder(spec)
                    fresh = {record.subject_id: encoder.document(record) for record in built}
            with db.session_scope() as session:
                repository.keep_documents(session, variant, marks, fresh)
            done += len(fresh)
        if walked:
            with db.session_scope() as session:
                repository.set_refresh_mark(session, project_id, variant, marks)
    log.info("export.documents_refreshed", project_id=project_id, variants=len(state_sets), documents=done)
    return Refreshed(len(state_sets), done, True)


def projects_to_refresh(session: Session) -> list[int]:
    """The projects whose documents the beat refreshes: those that have made a document export."""
    return repository.projects_with_exports(session, DOCUMENT_FORMATS)


def queue_refresh(session: Session, project_id: int, *, full: bool = False) -> None:
    # `full` only when asked: a message without it is one every worker's task accepts.
    if full:
        jobs.enqueue(session, tasknames.EXPORT_REFRESH_DOCUMENTS, project_id=project_id, full=True)
    else:
        jobs.enqueue(session, tasknames.EXPORT_REFRESH_DOCUMENTS, project_id=project_id)


def _settled(session: Session, settles_after_xid: int | None) -> bool:
    """Whether every transaction that could still add a label event or prediction at or below
    marks read by transaction `settles_after_xid` has ended, so what is read at them now is final
    and may be kept. On SQLite writes are serial and always are; on Postgres a transaction that
    took a lower id may commit after a higher one, so every transaction up to the one that read
    the marks must be over."""
    if settles_after_xid is None:
        return session.get_bind().dialect.name != "postgresql"
    # The oldest transaction still running (or the next to start, when none is).
    oldest = session.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
    return oldest is not None and int(oldest) > settles_after_xid


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
    # The collector stays off until the part's records are freed: a young-generation pass when
    # it is back on then finds them gone, where one between reading and writing walked them all.
    with _collector_paused():
        return _write_part(db, read_blob, export_id, index, send_jobs=send_jobs)


def _write_part(db: Database, read_blob: ReadBlob, export_id: int, index: int, *, send_jobs: bool) -> bool:
    # The part is read in a read-only transaction (on SQLite, parts in other processes read at
    # the same time) and written outside any; its documents and status are kept after.
    read = PartRecords([], "", {}, {})
    with db.read_scope() as session:
        export = session.get(Export, export_id)
        part = repository.part(session, export_id, index)
        if export is None or part is None or export.status != "running":
            return False
        context = _context(session, export, read_blob)
        recorded = dict(part.files) if part.status == "done" else None
        fmt = export.format
        if recorded is None:
            read = read_part_records(session, export, part, context.spec)
    # Checksums are read outside the transaction: on SQLite it would hold the write lock.
    kept = recorded is not None and context.destination.verified(recorded)
    if recorded is not None and not kept:
        with db.read_scope() as session:
            export = session.get(Export, export_id)
            part = repository.part(session, export_id, index)
            assert export is not None and part is not None
            read = read_part_records(session, export, part, context.spec)
    records = read.records
    wrote = not kept
    files: Files = {}
    if wrote:
        files = PART_WRITERS[fmt](context, index, records)
    with db.session_scope() as session:
        export = session.get(Export, export_id, with_for_update=True)
        part = repository.part(session, export_id, index)
        assert export is not None and part is not None
        keep_documents(session, export, read)
        if wrote:
            part.status = "done"
            part.files = files
            part.samples = len(records)
            part.bytes = sum(int(f["bytes"]) for f in files.values())
            part.counts = _label_counts(records)
            part.finished_at = utcnow()
        if export.status != "running":
            return wrote
        done, total = repository.part_counts(session, export_id)
        export.progress = done / total if total else 1.0
        if done == total and send_jobs:
            jobs.enqueue(session, tasknames.EXPORT_FINISH, export_id=export_id)
    log.info("export.part", export_id=export_id, index=index, wrote=wrote, samples=len(records))
    return wrote


def _label_counts(records: list[ExportRecord]) -> dict[str, int]:
    """The labels the records say, by state. Records from kept documents share their counts'
    dicts (`repository.kept_documents` decodes each distinct one once): each is added once, times
    the records that share it."""
    shared: dict[int, tuple[dict[str, int], int]] = {}
    for record in records:
        counts = label_states(record)
        seen = shared.get(id(counts))
        shared[id(counts)] = (counts, 1 if seen is None else seen[1] + 1)
    states: Counter[str] = Counter()
    for counts, times in shared.values():
        for state, n in counts.items():
            states[state] += n * times
    return dict(states)


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
        include_sensitive = snapshot.include_sensitive
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
        if fmt in ("webdataset", "jsonl"):
            manifest_head["attributes_format"] = ATTRIBUTES_FORMAT
            manifest_head["groups"] = caption_groups(context.spec)
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
    db: Database,
    read_blob: ReadBlob,
    export_id: int,
    on_part: Callable[[int, int], None] | None = None,
    *,
    processes: int = 1,
    pool: PartPool | None = None,
) -> None:
    """Run a planned or resumed export from here (the CLI's and the benchmark's one worker):
    plan, then the parts, in this process, in `processes` processes forked for it, or in `pool`
    (`part_pool`: kept across exports, as a worker keeps its pool); `on_part(done, total)` after
    each part."""
    with db.session_scope() as session:
        plan(session, export_id, send_jobs=False)
        export = session.get(Export, export_id)
        assert export is not None
        if export.status == "failed":
            return
        indexes = [p.index for p in repository.parts_of(session, export_id)]
    if pool is not None or (processes > 1 and len(indexes) > 1):
        with ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(part_pool(db, read_blob, min(processes, len(indexes))))
            work = pool.imap_unordered(functools.partial(_write_part_here, export_id), indexes)
            for n, _ in enumerate(work, 1):
                if on_part is not None:
                    on_part(n, len(indexes))
    else:
        for n, index in enumerate(indexes, 1):
            write_part(db, read_blob, export_id, index, send_jobs=False)
            if on_part is not None:
                on_part(n, len(indexes))
    finish(db, read_blob, export_id)


PartPool = multiprocessing.pool.Pool


@contextmanager
def part_pool(db: Database, read_blob: ReadBlob, processes: int) -> Iterator[PartPool]:
    """`processes` forked processes that write parts (`run_here(pool=...)`) until it closes.
    They are forked after `preload`, and without the parent's database connections. What they
    inherit is frozen for their collector (`gc.freeze`): a full pass in a part process would
    otherwise walk every object of the parent (its modules, pandas, the tokenizer's ranks, and
    whatever else the parent holds), about 0.1 s each time a part's new objects trigger one."""
    preload()
    db.engine.dispose()  # the children must not share the parent's connections
    context = multiprocessing.get_context("fork")
    frozen_already = gc.get_freeze_count() > 0  # a process that keeps its start-up objects frozen
    gc.freeze()
    try:
        pool = context.Pool(processes, initializer=_part_process_started, initargs=(db, read_blob))
    finally:
        if not frozen_already:
            gc.unfreeze()  # the children keep theirs frozen; the parent collects as before
    with pool:
        yield pool


def preload() -> None:
    """Load what a part loads lazily on first use: pyarrow's pandas (`writers.preload`) and the
    caption tokenizer's merge ranks, together about 0.6 CPU-seconds. A process that forks part
    processes (`run_here`, a worker before its pool starts) calls this once, so that each child
    does not pay it on its first part."""
    preload_writers()
    tokens.preload()


# A forked part process's database and blob reader: inherited from the parent, never pickled.
_HERE: list[tuple[Database, ReadBlob]] = []


def _part_process_started(db: Database, read_blob: ReadBlob) -> None:
    db.engine.dispose(close=False)  # inherited connections belong to the parent
    _HERE[:] = [(db, read_blob)]


def _write_part_here(export_id: int, index: int) -> bool:
    db, read_blob = _HERE[0]
    return write_part(db, read_blob, export_id, index, send_jobs=False)


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


def empty_note(export: Export, snapshot: Snapshot) -> str | None:
    """Why a finished export holds no sample, for whoever started it (None when it holds some): a
    project fresh from its labelers has predictions only, which no export takes."""
    if export.status != "done" or snapshot.subject_count != 0:
        return None
    filters = ExportFilters.model_validate(snapshot.filters)
    narrowed = [
        name
        for name, applied in (
            ("subject ids", filters.subject_ids is not None),
            ("sources", filters.source_ids is not None),
            ("quality floors", bool(filters.min_quality)),
            (f"changed since export {filters.since_export_id}", filters.since_export_id is not None),
        )
        if applied
    ]
    note = f"No subject had a label in the chosen states ({', '.join(filters.states)}) as of the snapshot"
    if narrowed:
        note += f" among those its filters kept ({', '.join(narrowed)})"
    note += (
        ". Labels are verified when people review them, and auto_accepted when the labeler decided "
        "them alone in a category it is trusted with"
    )
    if "auto_accepted" not in filters.states:
        note += "; choose auto_accepted as well to export the latter"
    return note + ". Predictions awaiting review are never exported."


def local_file(export: Export, name: str) -> Path:
    """A finished local export's file, by a name its manifest lists."""
    if export.status != "done" or export.manifest is None:
        raise Conflict("the export is not done", code="export_not_done")
    if export.destination.startswith("s3://"):
        raise NotFound("the export is in object storage; read it there")
    if name != MANIFEST and name not in export.manifest.get("files", {}):
        raise NotFound("no such file in the export")
    return Path(export.destination) / name
