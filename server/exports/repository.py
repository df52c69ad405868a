"""Queries for snapshots and exports. Labels are read AS OF a snapshot's label-event high-water
mark: the last event at or below it per (subject, category) is the label the snapshot sees."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Exists,
    Row,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased

from server.core.time import utcnow
from server.core.upsert import upsert
from server.orm import Category, Image, LabelEvent, ModelVersion, Prediction, Subject
from server.orm.exports import (
    Export,
    ExportDocument,
    ExportPart,
    ExportRefreshMark,
    Snapshot,
    SnapshotSubject,
)


def label_event_high_water(session: Session) -> int:
    return int(session.scalar(select(func.max(LabelEvent.id))) or 0)


def prediction_high_water(session: Session) -> int:
    return int(session.scalar(select(func.max(Prediction.id))) or 0)


def category_keys(session: Session, taxonomy_version_id: int) -> dict[int, str]:
    """Category id -> full key, of one taxonomy version (Core: no ORM objects to build)."""
    query = select(Category.id, Category.key).where(Category.taxonomy_version_id == taxonomy_version_id)
    return {int(category_id): key for category_id, key in session.connection().execute(query)}


def categories(session: Session, taxonomy_version_id: int) -> list[Category]:
    query = select(Category).where(Category.taxonomy_version_id == taxonomy_version_id)
    return list(session.scalars(query.order_by(Category.position, Category.id)))


def model_version_names(session: Session, project_id: int) -> dict[int, str]:
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.family, ModelVersion.version).where(
            ModelVersion.project_id == project_id
        )
    )
    return {int(i): f"{family}:{version}" for i, family, version in rows}


def _labelled(high_water: int, category_ids: Collection[int], states: Collection[str]) -> Exists:
    """Whether `Subject` has a label in `states` among `category_ids` as of the mark. A freeze
    may copy an earlier snapshot's answers (`previous_freeze`): a change to what this checks
    must keep freezes from starting from snapshots frozen before it."""
    # Per subject, the first of its events in `states` that no later event (up to the mark)
    # replaced: an EXISTS stops there, where grouping every label first reads them all.
    later = aliased(LabelEvent)
    return (
        select(LabelEvent.id)
        .where(
            LabelEvent.subject_id == Subject.id,
            LabelEvent.id <= high_water,
            LabelEvent.category_id.in_(list(category_ids)),
            LabelEvent.to_state.in_(list(states)),
            ~select(later.id)
            .where(
                later.subject_id == LabelEvent.subject_id,
                later.category_id == LabelEvent.category_id,
                later.id > LabelEvent.id,
                later.id <= high_water,
            )
            .exists(),
        )
        .exists()
    )


def freeze_subjects(
    session: Session,
    snapshot_id: int,
    project_id: int,
    *,
    high_water: int,
    category_ids: Collection[int],
    states: Collection[str],
    subject_ids: Collection[int] | None = None,
    source_ids: Collection[int] | None = None,
    min_quality: Mapping[str, float] | None = None,
    changed_after: int | None = None,
    previous: Frozen | None = None,
) -> int:
    """Freeze the snapshot's subjects, positions 0.. in subject id order, in one statement (the
    database filters and numbers them; nothing crosses to Python); returns how many.

    A subject is in when it has a label in `states` as of the high-water mark among
    `category_ids`, and it passes the filters: its id, its image's source, each quality metric
    at least its floor (a missing metric fails), and a label event after `changed_after`.

    `previous` (`previous_freeze`): an earlier snapshot frozen with the same categories, states
    and filters, at a mark at or below this one; only the subjects with a label event between
    the two marks are checked again, the others are in as they were there.
    """
    session.execute(delete(SnapshotSubject).where(SnapshotSubject.snapshot_id == snapshot_id))
    conditions = [Subject.project_id == project_id, _labelled(high_water, category_ids, states)]
    if subject_ids is not None:
        conditions.append(Subject.id.in_(list(subject_ids)))
    if previous is not None:  # not with the filters below: they can change without a label event
        assert source_ids is None and not min_quality and changed_after is None
        return _refreeze_subjects(session, snapshot_id, previous, high_water, conditions)
    if source_ids is not None or min_quality:
        image = select(Image.id).where(Image.id == Subject.image_id)
        if source_ids is not None:
            image = image.where(Image.source_id.in_(list(source_ids)))
        for metric, floor in (min_quality or {}).items():
            image = image.where(Image.quality[metric].as_float() >= floor)
        conditions.append(image.exists())
    if changed_after is not None:
        changed = select(LabelEvent.id).where(
            LabelEvent.subject_id == Subject.id,
            LabelEvent.id > changed_after,
            LabelEvent.id <= high_water,
        )
        conditions.append(changed.exists())
    chosen = select(
        literal(snapshot_id),
        func.row_number().over(order_by=Subject.id) - 1,
        Subject.id,
    ).where(*conditions)
    session.execute(insert(SnapshotSubject).from_select(["snapshot_id", "position", "subject_id"], chosen))
    return _frozen_count(session, snapshot_id)


def _frozen_count(session: Session, snapshot_id: int) -> int:
    count = session.scalar(
        select(func.count()).select_from(SnapshotSubject).where(SnapshotSubject.snapshot_id == snapshot_id)
    )
    return int(count or 0)


class Frozen(NamedTuple):
    """A snapshot whose subjects are frozen, as a later freeze may start from it."""

    snapshot_id: int
    label_event_high_water: int


def previous_freeze(
    session: Session,
    snapshot_id: int,
    project_id: int,
    taxonomy_version_id: int,
    include_sensitive: bool,
    high_water: int,
    same_filters: Callable[[dict[str, Any]], bool],
) -> Frozen | None:
    """The project's latest snapshot but `snapshot_id` (the one to freeze, perhaps again) that
    was frozen at a mark at or below `high_water`, from the same taxonomy version and
    sensitive-category choice, with filters `same_filters` accepts, when a freeze at
    `high_water` may start from it: at most `REFREEZE_EVENTS_PER_SUBJECT` label events per
    subject it holds lie between the two marks."""
    query = (
        select(Snapshot.id, Snapshot.label_event_high_water, Snapshot.subject_count, Snapshot.filters)
        .where(
            Snapshot.project_id == project_id,
            Snapshot.id != snapshot_id,
            Snapshot.taxonomy_version_id == taxonomy_version_id,
            Snapshot.include_sensitive == include_sensitive,
            Snapshot.label_event_high_water <= high_water,
            Snapshot.subject_count > 0,  # set by the plan that froze its subjects, with them
        )
        .order_by(Snapshot.label_event_high_water.desc(), Snapshot.id.desc())
        .limit(PREVIOUS_FREEZES_LOOKED_AT)
    )
    for snapshot_id, mark, count, filters in session.execute(query):
        if same_filters(filters):
            return (
                Frozen(snapshot_id, mark)
                if high_water - mark <= REFREEZE_EVENTS_PER_SUBJECT * count
                else None
            )
    return None


# How many of a project's latest frozen snapshots `previous_freeze` looks through for one with
# the same filters.
PREVIOUS_FREEZES_LOOKED_AT = 10
# A freeze starts from an earlier one while at most this many label events per subject frozen
# there lie between the two marks: every subject an event names is checked again (as a full
# freeze checks each subject), the others are copied at about a third of that cost. A subject
# has an event per label it was given, so a flywheel round's re-labelling goes past this.
REFREEZE_EVENTS_PER_SUBJECT = 1


def _refreeze_subjects(
    session: Session,
    snapshot_id: int,
    previous: Frozen,
    high_water: int,
    conditions: list[ColumnElement[bool]],
) -> int:
    """`freeze_subjects` from `previous`: its subjects without a label event since its mark, and
    those with one that pass `conditions` now. Label events are only ever added, each with a
    higher id than those before it had when it committed (SQLite writes one transaction at a
    time), so as of `high_water` only a subject with an event between the marks can be in or out
    differently."""
    changed = select(LabelEvent.subject_id).where(
        LabelEvent.id > previous.label_event_high_water, LabelEvent.id <= high_water
    )
    unchanged = (
        select(SnapshotSubject.subject_id.label("id"))
        .join(Subject, Subject.id == SnapshotSubject.subject_id)
        .where(
            SnapshotSubject.snapshot_id == previous.snapshot_id, SnapshotSubject.subject_id.not_in(changed)
        )
    )
    again = select(Subject.id).where(Subject.id.in_(changed), *conditions)
    members = union_all(unchanged, again).subquery()
    chosen = select(literal(snapshot_id), func.row_number().over(order_by=members.c.id) - 1, members.c.id)
    session.execute(insert(SnapshotSubject).from_select(["snapshot_id", "position", "subject_id"], chosen))
    return _frozen_count(session, snapshot_id)


def image_bytes_by_position(session: Session, snapshot_id: int) -> list[int]:
    query = (
        select(Image.bytes)
        .select_from(SnapshotSubject)
        .join(Subject, Subject.id == SnapshotSubject.subject_id)
        .join(Image, Image.id == Subject.image_id)
        .where(SnapshotSubject.snapshot_id == snapshot_id)
        .order_by(SnapshotSubject.position)
    )
    return [int(b) for b in session.connection().scalars(query)]


class SubjectRow(NamedTuple):
    """A snapshot subject with its image: the columns an export writes, nothing else. The JSON
    columns come as the database holds their text: a sample writes it as it is, undecoded."""

    position: int
    subject_id: int
    subject_index: int
    bbox: str | None  # JSON text
    shot_type: str | None
    detector_score: float | None
    analyzer_version: str | None
    parsing_mask_key: str | None
    image_id: int
    sha256: str
    width: int
    height: int
    mime: str
    source_id: int | None
    licence: str
    consent: str
    quality: str | None  # JSON text
    storage_key: str


_SUBJECT_COLUMNS = (
    Subject.id,
    Subject.index,
    cast(Subject.bbox, Text),
    Subject.shot_type,
    Subject.detector_score,
    Subject.analyzer_version,
    Subject.parsing_mask_key,
    Image.id,
    Image.sha256,
    Image.width,
    Image.height,
    Image.mime,
    Image.source_id,
    Image.licence,
    Image.consent,
    cast(Image.quality, Text),
    Image.storage_key,
)


def _subjects_in_range(snapshot_id: int, first: int, stop: int) -> Select[*tuple[Any, ...]]:
    """The `SubjectRow` columns of a snapshot's positions [first, stop), in position order."""
    return (
        select(SnapshotSubject.position, *_SUBJECT_COLUMNS)
        .select_from(SnapshotSubject)
        .join(Subject, Subject.id == SnapshotSubject.subject_id)
        .join(Image, Image.id == Subject.image_id)
        .where(
            SnapshotSubject.snapshot_id == snapshot_id,
            SnapshotSubject.position >= first,
            SnapshotSubject.position < stop,
        )
        .order_by(SnapshotSubject.position)
    )


def subjects_in_range(session: Session, snapshot_id: int, first: int, stop: int) -> list[SubjectRow]:
    query = _subjects_in_range(snapshot_id, first, stop)
    return [SubjectRow._make(row) for row in session.connection().execute(query).all()]


def subjects_by_id(session: Session, subject_ids: Collection[int]) -> list[SubjectRow]:
    """The rows of these subjects, by id (positions 0.. in that order)."""
    query = (
        select(*_SUBJECT_COLUMNS)
        .join(Image, Image.id == Subject.image_id)
        .where(Subject.id.in_(list(subject_ids)))
        .order_by(Subject.id)
    )
    rows = session.connection().execute(query).all()
    return [SubjectRow._make((position, *row)) for position, row in enumerate(rows)]


class Marks(NamedTuple):
    """The moment labels are read at: a snapshot's, or a kept document's."""

    label_event_high_water: int
    prediction_high_water: int


# A label as a snapshot sees it: (subject id, category id, value as JSON text, state, the
# deciding user's id, the last model that spoke on it, that model's confidence). The value stays
# text: values are few and repeat, so whoever keeps the label decodes each distinct one once.
LabelAsOf = tuple[int, int, str | None, str, int | None, int | None, float | None]


def in_range(snapshot_id: int, first: int, stop: int) -> Select[Any]:
    """The subject ids at positions [first, stop) of a snapshot."""
    return select(SnapshotSubject.subject_id).where(
        SnapshotSubject.snapshot_id == snapshot_id,
        SnapshotSubject.position >= first,
        SnapshotSubject.position < stop,
    )


def labels_as_of(
    session: Session, marks: Marks, subjects: Select[Any] | Collection[int]
) -> Sequence[Row[LabelAsOf]]:
    """Every label of `subjects` (ids, or a query of them) as of the marks."""
    params: dict[str, Any] = {
        "label_event_high_water": marks.label_event_high_water,
        "prediction_high_water": marks.prediction_high_water,
    }
    if isinstance(subjects, Select):
        query = _labels_as_of(subjects)
    else:
        # A few subjects (those whose kept documents went stale): the statement is built once.
        query = _labels_as_of_ids()
        params["subject_ids"] = list(subjects)
    # A Core execution fetched at once: the ORM's result machinery, or a cursor fetch per row,
    # costs more per row than the row itself.
    return session.connection().execute(query, params).all()


@functools.cache
def _labels_as_of_ids() -> Select[Any]:
    return _labels_as_of(bindparam("subject_ids", expanding=True))


def _labels_as_of(subjects: Any) -> Select[Any]:
    """The labels of `subjects` as of the bound marks."""
    # `IN (subject ids)` rather than a join: SQLite then walks the (subject, category) index in
    # order and groups without a temporary B-tree.
    keys = (
        select(
            LabelEvent.subject_id,
            LabelEvent.category_id,
            func.max(LabelEvent.id).label("last_id"),
            func.max(case((LabelEvent.actor_model_version_id.is_not(None), LabelEvent.id))).label("model_id"),
        )
        .where(
            LabelEvent.subject_id.in_(subjects),
            LabelEvent.id <= bindparam("label_event_high_water"),
        )
        .group_by(LabelEvent.subject_id, LabelEvent.category_id)
        .subquery()
    )
    last = aliased(LabelEvent)
    by_model = aliased(LabelEvent)
    return (
        select(
            keys.c.subject_id,
            keys.c.category_id,
            cast(last.to_value, Text),
            last.to_state,
            last.actor_user_id,
            by_model.actor_model_version_id,
            Prediction.confidence,
        )
        .join(last, last.id == keys.c.last_id)
        .outerjoin(by_model, by_model.id == keys.c.model_id)
        .outerjoin(
            Prediction,
            and_(
                Prediction.subject_id == keys.c.subject_id,
                Prediction.category_id == keys.c.category_id,
                Prediction.model_version_id == by_model.actor_model_version_id,
                Prediction.id <= bindparam("prediction_high_water"),
            ),
        )
    )


class PredictionRow(NamedTuple):
    subject_id: int
    category_id: int
    model_version_id: int
    value: Any
    confidence: float


def predictions_as_of(session: Session, snapshot: Snapshot, first: int, stop: int) -> list[PredictionRow]:
    query = (
        select(
            Prediction.subject_id,
            Prediction.category_id,
            Prediction.model_version_id,
            Prediction.value,
            Prediction.confidence,
        )
        .join(SnapshotSubject, SnapshotSubject.subject_id == Prediction.subject_id)
        .where(
            SnapshotSubject.snapshot_id == snapshot.id,
            SnapshotSubject.position >= first,
            SnapshotSubject.position < stop,
            Prediction.id <= snapshot.prediction_high_water,
        )
        .order_by(Prediction.subject_id, Prediction.model_version_id, Prediction.category_id)
    )
    return [
        PredictionRow(int(s), int(c), int(m), v, float(conf)) for s, c, m, v, conf in session.execute(query)
    ]


def exports_of(session: Session, project_id: int) -> list[Export]:
    query = select(Export).where(Export.project_id == project_id).order_by(Export.id.desc())
    return list(session.scalars(query))


def parts_of(session: Session, export_id: int) -> list[ExportPart]:
    query = select(ExportPart).where(ExportPart.export_id == export_id).order_by(ExportPart.index)
    return list(session.scalars(query))


def part(session: Session, export_id: int, index: int) -> ExportPart | None:
    return session.scalar(
        select(ExportPart).where(ExportPart.export_id == export_id, ExportPart.index == index)
    )


def part_counts(session: Session, export_id: int) -> tuple[int, int]:
    """(done parts, all parts)."""
    done = func.sum(case((ExportPart.status == "done", 1), else_=0))
    row = session.execute(select(done, func.count()).where(ExportPart.export_id == export_id)).one()
    return int(row[0] or 0), int(row[1] or 0)


class LabelDocument(NamedTuple):
    """What a record says from its labels alone, encoded: kept per subject and export variant
    (`export_documents`) so that an export re-encodes only the subjects whose labels changed."""

    states: dict[str, int]  # labels said, by state
    person_type: str | None  # the shot-type label's value, when it has one
    caption: str
    aa_text: str  # CosmicMan's aa_text, as JSON
    body: bytes  # the attributes document's `"regions":{...},"groups":[...]`, UTF-8


def subjects_with_documents(
    session: Session, snapshot_id: int, first: int, stop: int, variant: str, *, with_aa_text: bool = False
) -> tuple[list[SubjectRow], dict[int, tuple[Marks, LabelDocument]]]:
    """The rows of `subjects_in_range`, and the kept documents of `variant` among them: subject id
    -> the marks its document was read at, and the document (`aa_text` empty unless asked for:
    only CosmicMan parts write it). One statement, each document beside its subject's row: read
    apart, a second statement walked the same range again, and the two took about twice as long
    for a part of 1,000."""
    document = ExportDocument
    query = (
        _subjects_in_range(snapshot_id, first, stop)
        .add_columns(
            document.label_event_high_water,
            document.prediction_high_water,
            document.states,
            document.person_type,
            document.caption,
            document.aa_text if with_aa_text else literal(""),
            document.body,
        )
        .outerjoin(document, and_(document.subject_id == Subject.id, document.variant == variant))
    )
    width = len(SubjectRow._fields)
    make = tuple.__new__  # SubjectRow's own `_make` is a Python function: a frame per row
    rows: list[SubjectRow] = []
    kept: dict[int, tuple[Marks, LabelDocument]] = {}
    states: dict[str, dict[str, int]] = {}  # few distinct ones: each decoded once
    result: Sequence[Any] = session.connection().execute(query).all()
    for row in result:
        subject = make(SubjectRow, row[:width])
        rows.append(subject)
        labels, predictions, said, person_type, caption, aa_text, body = row[width:]
        if said is None:  # no document kept
            continue
        counts = states.get(said)
        if counts is None:
            counts = states[said] = json.loads(said)
        marks = make(Marks, (int(labels), int(predictions)))
        kept[subject.subject_id] = (marks, make(LabelDocument, (counts, person_type, caption, aa_text, body)))
    return rows, kept


# Which events lie between a kept document's marks and a snapshot's: when the id range holds at
# most this many ids per document checked, the range itself is read (by primary key) and kept to
# the part's subjects here; beyond, each subject's events are walked through the subject index.
# A labelled subject has at least one event per label, so its walk is at least that long.
RANGE_SCAN_PER_SUBJECT = 8


def touched_between(
    session: Session,
    subjects: Select[Any] | Collection[int],
    labels: tuple[int, int],
    predictions: tuple[int, int],
    *,
    among: Collection[int],
) -> list[tuple[int, str, int]]:
    """(subject id, "label" or "prediction", id) of the label events and predictions with ids in
    the half-open ranges (low, high] of the subjects in `among`, which `subjects` (ids, or a
    query of them) holds."""
    out: list[tuple[int, str, int]] = []
    if not among:
        return out
    # A part's subjects are consecutive in id order: a range read returns only the rows between
    # its first and last, not every other part's (about twenty times as many rows to build here).
    # `+ 0` keeps the database on the primary key's range: through the subject index it would
    # walk every event of the part's subjects instead.
    lowest, highest = min(among), max(among)
    for kind, table, (low, high) in (("label", LabelEvent, labels), ("prediction", Prediction, predictions)):
        if low >= high:
            continue
        if high - low <= RANGE_SCAN_PER_SUBJECT * len(among):
            query = select(table.subject_id, table.id).where(
                table.id > low, table.id <= high, (table.subject_id + 0).between(lowest, highest)
            )
        else:
            ids = subjects if isinstance(subjects, Select) else list(subjects)
            query = select(table.subject_id, table.id).where(
                table.id > low, table.id <= high, table.subject_id.in_(ids)
            )
        rows = session.connection().execute(query).all()
        out.extend((int(s), kind, int(i)) for s, i in rows if s in among)
    return out


def keep_documents(
    session: Session, variant: str, marks: Marks, documents: Mapping[int, LabelDocument]
) -> None:
    rows = [
        {
            "subject_id": subject_id,
            "variant": variant,
            "label_event_high_water": marks.label_event_high_water,
            "prediction_high_water": marks.prediction_high_water,
            **document._asdict(),
            "states": json.dumps(document.states, sort_keys=True),
        }
        for subject_id, document in documents.items()
    ]
    columns = ("label_event_high_water", "prediction_high_water", *LabelDocument._fields)
    table: Table = ExportDocument.__table__  # type: ignore[assignment]

    def not_older(new: Any) -> ColumnElement[bool]:
        # An export of an earlier snapshot leaves a document read at later marks as it is: that
        # one stands for later snapshots, and the refresh's marks count on it.
        return and_(
            table.c.label_event_high_water <= new.label_event_high_water,
            table.c.prediction_high_water <= new.prediction_high_water,
        )

    for start in range(0, len(rows), 1000):
        upsert(
            session,
            table,
            rows[start : start + 1000],
            ("subject_id", "variant"),
            columns,
            update_if=not_older,
        )


def advance_documents(
    session: Session, variant: str, read_at: Marks, marks: Marks, subject_ids: Collection[int]
) -> int:
    """Move to `marks` the marks of the kept documents of `subject_ids`, read at `read_at` and
    found current as of `marks`: no label event or prediction of their subjects lies between, so
    each stands for every mark in between. A document kept again since it was read (its marks are
    no longer `read_at`) is left as it is. Returns how many moved."""
    ids = list(subject_ids)
    moved = 0
    for start in range(0, len(ids), 1000):
        statement = (
            update(ExportDocument)
            .where(
                ExportDocument.variant == variant,
                ExportDocument.subject_id.in_(ids[start : start + 1000]),
                ExportDocument.label_event_high_water == read_at.label_event_high_water,
                ExportDocument.prediction_high_water == read_at.prediction_high_water,
            )
            .values(
                label_event_high_water=marks.label_event_high_water,
                prediction_high_water=marks.prediction_high_water,
            )
            .execution_options(synchronize_session=False)
        )
        moved += session.execute(statement).rowcount  # type: ignore[attr-defined]
    return moved


def documents_to_refresh(
    session: Session,
    project_id: int,
    variant: str,
    marks: Marks,
    category_ids: Collection[int],
    states: Collection[str],
    *,
    after: int,
    limit: int,
    among: Collection[int] | None = None,
) -> list[int]:
    """The first `limit` subject ids above `after` that have a label in `states` as of the marks
    and no document of `variant` that stands for them: none kept, or one read at earlier marks
    with a label event or prediction of the subject since (a document read at later marks is
    left alone: it is newer). With `among` (ids above `after`), only among those."""
    document = aliased(ExportDocument)
    kept = select(document.subject_id).where(document.subject_id == Subject.id, document.variant == variant)
    touched = [
        select(table.id).where(
            table.subject_id == document.subject_id,
            table.id > mark,
            table.id <= high_water,
        )
        for table, mark, high_water in (
            (LabelEvent, document.label_event_high_water, marks.label_event_high_water),
            (Prediction, document.prediction_high_water, marks.prediction_high_water),
        )
    ]
    stale = kept.where(
        document.label_event_high_water <= marks.label_event_high_water,
        document.prediction_high_water <= marks.prediction_high_water,
        or_(touched[0].exists(), touched[1].exists()),
    )
    query = (
        select(Subject.id)
        .where(
            Subject.project_id == project_id,
            # An id list alone: with `Subject.id > after` beside it, SQLite walks the project.
            Subject.id > after if among is None else Subject.id.in_(list(among)),
            or_(~kept.exists(), stale.exists()),
            _labelled(marks.label_event_high_water, category_ids, states),
        )
        .order_by(Subject.id)
        .limit(limit)
    )
    return [int(i) for i in session.scalars(query)]


def touched_since(session: Session, project_id: int, since: Marks, marks: Marks) -> list[int]:
    """The project's subject ids, in order, with a label event or prediction above `since` and up
    to `marks`: both id ranges read by primary key, then the subjects looked up by id (joined in
    one statement, SQLite walks the project's subjects instead)."""
    touched = union(
        *(
            select(table.subject_id).where(table.id > low, table.id <= high)
            for table, low, high in (
                (LabelEvent, since.label_event_high_water, marks.label_event_high_water),
                (Prediction, since.prediction_high_water, marks.prediction_high_water),
            )
        )
    )
    ids = sorted(int(i) for i in session.scalars(touched))
    found: list[int] = []
    for start in range(0, len(ids), 1000):
        query = select(Subject.id).where(
            Subject.id.in_(ids[start : start + 1000]), Subject.project_id == project_id
        )
        found.extend(int(i) for i in session.scalars(query))
    return sorted(found)


def refresh_mark(session: Session, project_id: int, variant: str) -> Marks | None:
    """The marks of the project's last complete refresh of `variant`, if any."""
    row = session.execute(
        select(ExportRefreshMark.label_event_high_water, ExportRefreshMark.prediction_high_water).where(
            ExportRefreshMark.project_id == project_id, ExportRefreshMark.variant == variant
        )
    ).one_or_none()
    return None if row is None else Marks(int(row[0]), int(row[1]))


def set_refresh_mark(session: Session, project_id: int, variant: str, marks: Marks) -> None:
    table: Table = ExportRefreshMark.__table__  # type: ignore[assignment]
    row = {
        "project_id": project_id,
        "variant": variant,
        "label_event_high_water": marks.label_event_high_water,
        "prediction_high_water": marks.prediction_high_water,
        "refreshed_at": utcnow(),
    }
    upsert(session, table, [row], ("project_id", "variant"), list(row)[2:])


def recent_export_filters(
    session: Session, project_id: int, formats: Collection[str], limit: int
) -> list[dict[str, Any]]:
    """The snapshot filters of the project's latest `limit` exports in `formats`, newest first."""
    query = (
        select(Snapshot.filters)
        .join(Export, Export.snapshot_id == Snapshot.id)
        .where(Export.project_id == project_id, Export.format.in_(list(formats)))
        .order_by(Export.id.desc())
        .limit(limit)
    )
    return [dict(filters or {}) for filters in session.scalars(query)]


def projects_with_exports(session: Session, formats: Collection[str]) -> list[int]:
    query = select(Export.project_id).where(Export.format.in_(list(formats))).distinct()
    return sorted(int(p) for p in session.scalars(query))


def prune_documents(session: Session, project_id: int, keep_prefix: str) -> int:
    """Drop the project's kept documents whose variant does not start with `keep_prefix` (an
    older document version or taxonomy version: no export reads them again). Returns how many."""
    result = session.connection().execute(
        delete(ExportDocument).where(
            ExportDocument.subject_id.in_(select(Subject.id).where(Subject.project_id == project_id)),
            ~ExportDocument.variant.startswith(keep_prefix, autoescape=True),
        )
    )
    # Their refresh marks go with them: a project taken back to that taxonomy has none to read.
    session.connection().execute(
        delete(ExportRefreshMark).where(
            ExportRefreshMark.project_id == project_id,
            ~ExportRefreshMark.variant.startswith(keep_prefix, autoescape=True),
        )
    )
    return int(result.rowcount or 0)
