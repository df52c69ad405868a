"""Kept documents: an export encodes a subject's labels once and reuses them until a label event
or a prediction of that subject says otherwise; what it writes never depends on which it did."""

from __future__ import annotations

import gc
import hashlib
import json
import tarfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from server.captions import tokens
from server.core import runtime
from server.core.db import Database
from server.exports import repository, service
from server.exports.records import (
    DOCUMENT_VERSION,
    AttributesEncoder,
    aa_text,
    attribute_groups,
    build_records,
    record_of,
)
from server.exports.repository import LabelDocument, SubjectRow
from server.exports.schemas import ExportFilters, ExportOptions
from server.orm import LabelEvent, ModelVersion, Prediction
from server.orm.exports import Export, ExportDocument, ExportRefreshMark
from server.taxonomy.format import load_default
from tests.server.exports.conftest import REVIEWED, run_export, sqlite_only, start_here
from tests.server.exports.test_snapshots import _other_value, _relabel, relabel_in


def _value_of(document: dict[str, Any], full_key: str) -> Any:
    region, _, key = full_key.partition(".")
    return document["regions"][region][key]


def _without_snapshot(document: bytes) -> dict[str, Any]:
    parsed = json.loads(document)
    parsed.pop("snapshot")
    return dict(parsed)


def _contents(out: Path, fmt: str) -> Any:
    """What an export wrote, but the snapshot it names (its id and marks differ per export)."""
    if fmt == "jsonl":
        return [_without_snapshot(line) for line in (out / "labels.jsonl").read_bytes().splitlines()]
    if fmt == "cosmicman":
        return pq.read_table(out / "cosmicman.parquet").to_pylist()
    members: dict[str, Any] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member)
                assert handle is not None
                data = handle.read()
                members[member.name] = _without_snapshot(data) if member.name.endswith(".json") else data
    indexes = [pq.read_table(index).to_pylist() for index in sorted(out.glob("*.parquet"))]
    return members, indexes


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[int] | str]:
    """Each time an export reads labels: the subject ids it asked for, or "range"."""
    seen: list[list[int] | str] = []
    real = repository.labels_as_of

    def recording(session: Any, marks: Any, subjects: Any) -> Any:
        seen.append(sorted(subjects) if isinstance(subjects, Collection) else "range")
        return real(session, marks, subjects)

    monkeypatch.setattr(repository, "labels_as_of", recording)
    return seen


@pytest.fixture(params=["id-range", "subject-index"])
def stale_walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way a part finds the events between its documents' marks and its snapshot's: the id
    range read whole, or each subject's events through the subject index."""
    per_subject = 10**9 if request.param == "id-range" else 0
    monkeypatch.setattr(repository, "RANGE_SCAN_PER_SUBJECT", per_subject)
    return str(request.param)


@pytest.fixture(params=["marks-kept", "marks-moved"])
def moving_marks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether parts move the marks of the documents they find current up to their snapshot's:
    never, or every time (by default, once the stale check's id range has grown)."""
    moved = request.param == "marks-moved"
    monkeypatch.setattr(service, "ADVANCE_MARKS_OVER_IDS_PER_DOCUMENT", -1 if moved else 10**9)
    return moved


def _documents() -> dict[int, tuple[str, int]]:
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(ExportDocument.subject_id, ExportDocument.variant, ExportDocument.label_event_high_water)
        ).all()
    return {int(s): (v, int(mark)) for s, v, mark in rows}


def _refresh_marks(project_id: int) -> dict[str, int]:
    """Variant -> the label-event mark of the project's last complete refresh of it."""
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(ExportRefreshMark.variant, ExportRefreshMark.label_event_high_water).where(
                ExportRefreshMark.project_id == project_id
            )
        ).all()
    return {str(variant): int(mark) for variant, mark in rows}


def _latest_event() -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.max(LabelEvent.id))) or 0)


def _snapshot_mark(export: Export) -> int:
    with runtime.database().session_scope() as session:
        return service.snapshot_of(session, session.get(Export, export.id)).label_event_high_water  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["webdataset", "jsonl", "cosmicman"])
def test_a_second_export_reads_no_label_and_writes_what_the_first_wrote(
    reviewed: dict[str, Any], tmp_path: Path, reads: list[list[int] | str], fmt: str
) -> None:
    project_id = reviewed["project"]["id"]
    first = run_export(project_id, fmt, tmp_path / "first")
    assert first.status == "done", first.error
    assert reads == ["range"]
    assert set(_documents()) == set(reviewed["reviewed"])

    second = run_export(project_id, fmt, tmp_path / "second")
    assert second.status == "done", second.error
    assert reads == ["range"], "the second export read labels again"
    assert _contents(tmp_path / "second", fmt) == _contents(tmp_path / "first", fmt)
    assert second.counts == first.counts


def test_a_parts_label_counts_add_each_records_states_once_shared_or_not() -> None:
    shared = {"verified": 3, "gold": 1}
    own = {"verified": 2}
    records = [
        record_of(
            SubjectRow(
                n,
                n,
                0,
                None,
                None,
                None,
                None,
                None,
                n,
                "ab" * 32,
                4,
                4,
                "image/png",
                None,
                "",
                "",
                None,
                "k",
            ),
            document=LabelDocument(states, None, "", "", b""),
        )
        for n, states in enumerate([shared, shared, own, shared, dict(shared)], 1)
    ]
    assert service._label_counts(records) == {"verified": 3 * 4 + 2, "gold": 4}
    assert service._label_counts([]) == {}


def test_a_corrected_label_is_read_again_for_its_subject_alone(
    reviewed: dict[str, Any], tmp_path: Path, reads: list[list[int] | str], stale_walk: str
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][1]
    run_export(project_id, "jsonl", tmp_path / "first")
    before = _value_of(_contents(tmp_path / "first", "jsonl")[1], "top.color")
    after = _other_value("top.color", before)
    _relabel(subject, "top.color", after)
    reads.clear()

    second = run_export(project_id, "jsonl", tmp_path / "second")
    assert reads == [[subject]]
    by_subject = {d["subject_id"]: d for d in _contents(tmp_path / "second", "jsonl")}
    assert _value_of(by_subject[subject], "top.color") == after
    # The corrected subject's document now stands as of the second export's snapshot.
    assert _documents()[subject][1] == _snapshot_mark(second)

    reads.clear()
    run_export(project_id, "jsonl", tmp_path / "third")
    assert reads == []
    assert _contents(tmp_path / "third", "jsonl") == _contents(tmp_path / "second", "jsonl")


def test_an_export_of_an_earlier_snapshot_does_not_take_a_later_document(
    reviewed: dict[str, Any], tmp_path: Path, stale_walk: str, moving_marks: bool
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    run_export(project_id, "jsonl", tmp_path / "first")
    before = _value_of(_contents(tmp_path / "first", "jsonl")[0], "top.color")
    earlier_id = start_here(project_id, "jsonl", tmp_path / "earlier")
    after = _other_value("top.color", before)
    _relabel(subject, "top.color", after)
    later = run_export(project_id, "jsonl", tmp_path / "later")  # keeps the new value's document
    assert _documents()[subject][1] == _snapshot_mark(later)

    service.run_here(runtime.database(), runtime.storage().get, earlier_id)
    by_subject = {d["subject_id"]: d for d in _contents(tmp_path / "earlier", "jsonl")}
    assert _value_of(by_subject[subject], "top.color") == before
    # What it encoded for that subject did not replace the later document.
    assert _documents()[subject][1] == _snapshot_mark(later)


def test_a_part_moves_up_the_marks_of_the_documents_it_found_current(
    reviewed: dict[str, Any], tmp_path: Path, reads: list[list[int] | str], moving_marks: bool
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][1]
    first = run_export(project_id, "jsonl", tmp_path / "first")
    before = _value_of(_contents(tmp_path / "first", "jsonl")[1], "top.color")
    _relabel(subject, "top.color", _other_value("top.color", before))
    reads.clear()
    second = run_export(project_id, "jsonl", tmp_path / "second")
    assert reads == [[subject]]
    others = {s: mark for s, (_, mark) in _documents().items() if s != subject}
    assert len(others) == REVIEWED - 1
    # The corrected subject's document is new; the others stand as of the second snapshot too.
    assert _documents()[subject][1] == _snapshot_mark(second)
    assert set(others.values()) == {_snapshot_mark(second) if moving_marks else _snapshot_mark(first)}
    reads.clear()
    run_export(project_id, "jsonl", tmp_path / "third")
    assert reads == []
    assert _contents(tmp_path / "third", "jsonl") == _contents(tmp_path / "second", "jsonl")


def test_a_document_kept_again_since_it_was_read_keeps_its_new_marks(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    run_export(project_id, "jsonl", tmp_path / "first")
    with runtime.database().session_scope() as session:
        variant, read_at, now = session.execute(
            select(
                ExportDocument.variant,
                ExportDocument.label_event_high_water,
                ExportDocument.prediction_high_water,
            ).where(ExportDocument.subject_id == subject)
        ).one()
        marks = repository.Marks(read_at + 5, now + 5)
        # Kept again by another export meanwhile: the marks the part read are gone.
        older = repository.Marks(read_at - 1, now)
        assert repository.advance_documents(session, variant, older, marks, [subject]) == 0
        assert (
            repository.advance_documents(session, variant, repository.Marks(read_at, now), marks, [subject])
            == 1
        )
    assert _documents()[subject][1] == read_at + 5


@pytest.mark.parametrize("refreshed", ["export", "refresh-walk", "refresh-since"])
def test_a_prediction_after_a_document_makes_it_stale(
    reviewed: dict[str, Any],
    tmp_path: Path,
    reads: list[list[int] | str],
    refreshed: str,
    stale_walk: str,
    moving_marks: bool,
) -> None:
    """A label's confidence comes from its model's prediction, which arrives without a label event.
    The refresh finds it walking every subject, or (after a complete refresh) those changed since."""
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][2]
    run_export(project_id, "jsonl", tmp_path / "first")
    if refreshed == "refresh-since":
        assert service.refresh_documents(runtime.database(), project_id).documents == 0
        assert _refresh_marks(project_id)
    with runtime.database().session_scope() as session:
        model = session.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)).first()
        assert model is not None
        existing = session.scalars(select(Prediction).where(Prediction.subject_id == subject)).first()
        assert existing is not None
        newer = ModelVersion(
            project_id=project_id, family=model.family, version="later@1", spec=model.spec, status="candidate"
        )
        session.add(newer)
        session.flush()
        session.add(
            Prediction(
                subject_id=subject,
                category_id=existing.category_id,
                model_version_id=newer.id,
                value=existing.value,
                confidence=0.5,
                distribution={},
            )
        )
    reads.clear()
    if refreshed != "export":  # the beat's refresh finds it stale too, and the export reads nothing
        assert service.refresh_documents(runtime.database(), project_id).documents == 1
        assert reads == [[subject]]
        reads.clear()
    run_export(project_id, "jsonl", tmp_path / "second")
    assert reads == ([[subject]] if refreshed == "export" else [])


def test_other_label_states_are_another_variant(
    reviewed: dict[str, Any], tmp_path: Path, reads: list[list[int] | str]
) -> None:
    project_id = reviewed["project"]["id"]
    run_export(project_id, "jsonl", tmp_path / "verified")
    both = ExportFilters(states=["verified", "auto_accepted"])
    run_export(project_id, "jsonl", tmp_path / "both", filters=both)
    assert reads == ["range", "range"]
    with runtime.database().session_scope() as session:
        variants = set(session.scalars(select(ExportDocument.variant).distinct()))
    assert len(variants) == 2 and all(v.startswith(f"d{DOCUMENT_VERSION}:") for v in variants)


def test_documents_of_an_older_document_version_are_dropped_by_the_next_export(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    """Their refresh marks go too: a variant's mark speaks for documents that are gone."""
    project_id = reviewed["project"]["id"]
    run_export(project_id, "jsonl", tmp_path / "first")
    service.refresh_documents(runtime.database(), project_id)
    with runtime.database().session_scope() as session:
        session.execute(update(ExportDocument).values(variant="old-" + ExportDocument.variant))
        session.execute(update(ExportRefreshMark).values(variant="old-" + ExportRefreshMark.variant))
    old = {v for v, _ in _documents().values()}
    assert old and all(v.startswith("old-d") for v in old) and set(_refresh_marks(project_id)) == old
    run_export(project_id, "jsonl", tmp_path / "second")
    assert {v for v, _ in _documents().values()} == {v.removeprefix("old-") for v in old}
    assert _refresh_marks(project_id) == {}


# SQLite writes one transaction at a time: its ids commit in order.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_documents_are_kept_only_once_transactions_older_than_the_snapshot_end(
    reviewed: dict[str, Any], tmp_path: Path, database_url: str
) -> None:
    """On Postgres a transaction that took a lower label-event id may commit after the snapshot:
    a document read while it is open would miss its event for good."""
    project_id = reviewed["project"]["id"]
    engine = create_engine(database_url)
    try:
        with engine.connect() as open_transaction:
            open_transaction.execute(text("SELECT pg_current_xact_id()"))  # takes an id, stays open
            export = run_export(project_id, "jsonl", tmp_path / "while-open")
            assert export.status == "done"
            assert _documents() == {}
            open_transaction.rollback()
    finally:
        engine.dispose()
    run_export(project_id, "jsonl", tmp_path / "after")
    assert set(_documents()) == set(reviewed["reviewed"])
    assert _contents(tmp_path / "after", "jsonl") == _contents(tmp_path / "while-open", "jsonl")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_document_read_while_an_older_transaction_was_open_is_not_kept(
    reviewed: dict[str, Any], tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction ends after the part read its labels and before it keeps what it read: the
    read missed its event, so what was read must not be kept as standing for the snapshot."""
    project_id = reviewed["project"]["id"]
    subject, other = reviewed["reviewed"][0], reviewed["reviewed"][1]
    engine = create_engine(database_url)
    try:
        with engine.connect() as late, Session(bind=late) as late_session:
            # Its event id is taken, and it is not committed.
            corrected = relabel_in(late_session, subject, "top.color", lambda v: _other_value("top.color", v))
            _relabel(other, "top.color", _other_value("top.color", None))  # a higher id, committed
            export_id = start_here(project_id, "jsonl", tmp_path / "racing")
            real_keep = service.keep_documents

            def commit_then_keep(session: Session, export: Export, read: service.PartRecords) -> None:
                late_session.commit()
                real_keep(session, export, read)

            monkeypatch.setattr(service, "keep_documents", commit_then_keep)
            service.run_here(runtime.database(), runtime.storage().get, export_id)
    finally:
        engine.dispose()
    mark = _documents().get(subject, ("", 0))[1]
    with runtime.database().session_scope() as session:
        event_id = session.scalar(select(func.max(LabelEvent.id)).where(LabelEvent.subject_id == subject))
    assert mark < int(event_id or 0), "a document that misses an event below its marks was kept"
    monkeypatch.undo()
    run_export(project_id, "jsonl", tmp_path / "next")
    by_subject = {d["subject_id"]: d for d in _contents(tmp_path / "next", "jsonl")}
    assert _value_of(by_subject[subject], "top.color") == corrected


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_marks_are_not_moved_past_an_event_an_open_older_transaction_may_still_commit(
    reviewed: dict[str, Any], tmp_path: Path, database_url: str, moving_marks: bool
) -> None:
    """Kept documents found current while an older transaction is open keep their marks: its
    event, below the snapshot's mark, may commit after the part looked."""
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    run_export(project_id, "jsonl", tmp_path / "first")
    kept = _documents()
    engine = create_engine(database_url)
    try:
        with engine.connect() as late, Session(bind=late) as late_session:
            corrected = relabel_in(late_session, subject, "top.color", lambda v: _other_value("top.color", v))
            _relabel(reviewed["reviewed"][1], "top.color", _other_value("top.color", None))  # committed
            export = run_export(project_id, "jsonl", tmp_path / "racing")
            assert export.status == "done"
            late_session.commit()
    finally:
        engine.dispose()
    assert _documents()[subject] == kept[subject]
    run_export(project_id, "jsonl", tmp_path / "next")
    by_subject = {d["subject_id"]: d for d in _contents(tmp_path / "next", "jsonl")}
    assert _value_of(by_subject[subject], "top.color") == corrected


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_row_whose_id_was_drawn_before_the_snapshot_holds_its_documents_back(
    reviewed: dict[str, Any], tmp_path: Path, database_url: str
) -> None:
    """An INSERT draws its row's id (the column default) before it writes the row. A trigger that
    waits there stands for a slow insert: it drew its id first, a higher id committed, then the
    snapshot was taken. What the export reads misses that row, so nothing it encodes is kept."""
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    with runtime.database().session_scope() as session:
        model = session.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)).first()
        assert model is not None
        categories = [
            p.category_id for p in session.scalars(select(Prediction).where(Prediction.subject_id == subject))
        ]
        later = ModelVersion(
            project_id=project_id, family=model.family, version="later@1", spec={}, status="candidate"
        )
        session.add(later)
        session.flush()
        model_id = later.id
    insert = text(
        "INSERT INTO predictions (subject_id, category_id, model_version_id, value, confidence, distribution,"
        " created_at) VALUES (:subject, :category, :model, '\"x\"', :confidence, '{}', now())"
    )
    engine = create_engine(database_url)
    slow_started = threading.Event()
    slow_error: list[BaseException] = []

    def slow_insert() -> None:
        try:
            with engine.begin() as conn:
                slow_started.set()
                conn.execute(
                    insert,
                    {"subject": subject, "category": categories[0], "model": model_id, "confidence": 0.25},
                )
        except BaseException as exc:  # reported by the test's thread
            slow_error.append(exc)

    try:
        with engine.connect() as gate:
            gate.execute(
                text(
                    "CREATE FUNCTION aa_test_wait() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                    " IF NEW.confidence = 0.25 THEN PERFORM pg_advisory_lock(4242);"
                    " PERFORM pg_advisory_unlock(4242); END IF; RETURN NEW; END $$"
                )
            )
            gate.execute(
                text(
                    "CREATE TRIGGER aa_test_wait BEFORE INSERT ON predictions"
                    " FOR EACH ROW EXECUTE FUNCTION aa_test_wait()"
                )
            )
            gate.commit()
            gate.execute(text("SELECT pg_advisory_lock(4242)"))  # held by this session
            slow = threading.Thread(target=slow_insert)
            slow.start()
            try:
                slow_started.wait(10)
                for _ in range(200):  # until the insert waits in its trigger, its id drawn
                    waiting = gate.execute(
                        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    ).scalar()
                    if waiting:
                        break
                    time.sleep(0.05)
                assert waiting, "the slow insert never reached its trigger"
                with engine.begin() as conn:  # a higher id, committed
                    conn.execute(
                        insert,
                        {"subject": subject, "category": categories[1], "model": model_id, "confidence": 0.5},
                    )
                export_id = start_here(project_id, "jsonl", tmp_path / "racing")
                service.run_here(runtime.database(), runtime.storage().get, export_id)
                assert _documents() == {}, "documents read before a lower id committed were kept"
            finally:
                gate.execute(text("SELECT pg_advisory_unlock(4242)"))
                slow.join(10)
                gate.rollback()
                gate.execute(text("DROP TRIGGER aa_test_wait ON predictions"))
                gate.execute(text("DROP FUNCTION aa_test_wait()"))
                gate.commit()
    finally:
        engine.dispose()
    assert not slow_error and not slow.is_alive()
    run_export(project_id, "jsonl", tmp_path / "after")
    assert set(_documents()) == set(reviewed["reviewed"])


def test_a_refresh_encodes_what_changed_so_the_next_export_reads_no_label(
    reviewed: dict[str, Any], tmp_path: Path, reads: list[list[int] | str]
) -> None:
    project_id = reviewed["project"]["id"]
    corrected, undocumented = reviewed["reviewed"][0], reviewed["reviewed"][2]
    db = runtime.database()
    assert service.refresh_documents(db, project_id) == service.Refreshed(0, 0, True)  # no export yet
    run_export(project_id, "jsonl", tmp_path / "first")
    assert service.refresh_documents(db, project_id) == service.Refreshed(1, 0, True)  # none stale
    assert list(_refresh_marks(project_id).values()) == [_latest_event()]  # a complete walk
    after = _other_value("top.color", None)
    _relabel(corrected, "top.color", after)
    # A document lost without a label event: only a full refresh looks for it.
    with db.session_scope() as session:
        session.execute(delete(ExportDocument).where(ExportDocument.subject_id == undocumented))
    reads.clear()

    assert service.refresh_documents(db, project_id) == service.Refreshed(1, 1, True)
    assert reads == [[corrected]], "the refresh looked beyond the subjects changed since its last"
    assert undocumented not in _documents()
    reads.clear()
    assert service.refresh_documents(db, project_id, full=True) == service.Refreshed(1, 1, True)
    assert reads == [[undocumented]]
    latest = _latest_event()
    assert _documents()[corrected][1] == _documents()[undocumented][1] == latest
    assert list(_refresh_marks(project_id).values()) == [latest]
    reads.clear()
    run_export(project_id, "jsonl", tmp_path / "second")
    assert reads == [], "the export read labels the refresh had encoded"
    by_subject = {d["subject_id"]: d for d in _contents(tmp_path / "second", "jsonl")}
    assert _value_of(by_subject[corrected], "top.color") == after
    assert set(by_subject) == set(reviewed["reviewed"])


def _exported_then_forgotten(project_id: int, tmp_path: Path) -> Database:
    """The project exported once, then every kept document dropped."""
    db = runtime.database()
    run_export(project_id, "jsonl", tmp_path / "first")
    with db.session_scope() as session:
        session.execute(delete(ExportDocument))
    return db


def test_a_refresh_stops_at_its_limit_and_the_next_one_goes_on(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id = reviewed["project"]["id"]
    db = _exported_then_forgotten(project_id, tmp_path)
    assert service.refresh_documents(db, project_id, limit=2, batch=1).documents == 2
    assert len(_documents()) == 2
    assert _refresh_marks(project_id) == {}, "a walk stopped at its limit kept its marks"
    assert service.refresh_documents(db, project_id, limit=2, batch=1).documents == REVIEWED - 2
    assert set(_documents()) == set(reviewed["reviewed"])
    assert list(_refresh_marks(project_id).values()) == [_latest_event()]


def test_a_refresh_since_its_marks_stops_at_its_limit_and_keeps_them_until_it_goes_through(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id, changed = reviewed["project"]["id"], reviewed["reviewed"][:3]
    db = runtime.database()
    run_export(project_id, "jsonl", tmp_path / "first")
    assert service.refresh_documents(db, project_id).documents == 0
    marks = _refresh_marks(project_id)
    for subject in changed:
        _relabel(subject, "top.color", _other_value("top.color", None))
    # Three candidates in one batch, cut at two by the limit: the third waits for the next call.
    assert service.refresh_documents(db, project_id, limit=2, batch=3).documents == 2
    assert _refresh_marks(project_id) == marks
    assert service.refresh_documents(db, project_id, limit=2, batch=3).documents == 1
    latest = _latest_event()
    assert {_documents()[s][1] for s in changed} == {latest}
    assert list(_refresh_marks(project_id).values()) == [latest]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_refresh_keeps_nothing_while_a_transaction_older_than_its_marks_is_open(
    reviewed: dict[str, Any], tmp_path: Path, database_url: str
) -> None:
    project_id = reviewed["project"]["id"]
    db = _exported_then_forgotten(project_id, tmp_path)
    engine = create_engine(database_url)
    try:
        with engine.connect() as open_transaction:
            open_transaction.execute(text("SELECT pg_current_xact_id()"))  # takes an id, stays open
            assert service.refresh_documents(db, project_id) == service.Refreshed(1, 0, False)
            assert _documents() == {}
            assert _refresh_marks(project_id) == {}
            open_transaction.rollback()
    finally:
        engine.dispose()
    assert service.refresh_documents(db, project_id) == service.Refreshed(1, REVIEWED, True)


def test_preloading_loads_the_caption_tokenizer_before_parts_fork() -> None:
    tokens._merge_ranks.cache_clear()
    service.preload()
    assert tokens._merge_ranks.cache_info().currsize == 1  # a forked part inherits the ranks


def test_part_processes_leave_what_they_inherit_out_of_the_collectors_passes(db: Database) -> None:
    # A full pass in a part process walks what its parts made, not every object of the parent.
    gc.unfreeze()  # an app started by an earlier test froze this process's start-up objects
    with service.part_pool(db, runtime.storage().get, 1) as pool:
        assert gc.get_freeze_count() == 0  # the parent collects as before
        inherited = pool.apply(gc.get_freeze_count)
    assert inherited > 10_000  # the modules, pandas and the tokenizer's ranks, at least


@sqlite_only
def test_parts_written_in_forked_processes_are_the_parts_written_here(
    reviewed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = reviewed["project"]["id"]

    def export_here(name: str, processes: int, pool: service.PartPool | None = None) -> None:
        export_id = start_here(project_id, "webdataset", tmp_path / name, options=ExportOptions(shard_size=1))
        done: list[tuple[int, int]] = []
        service.run_here(
            runtime.database(),
            runtime.storage().get,
            export_id,
            lambda n, total: done.append((n, total)),
            processes=processes,
            pool=pool,
        )
        assert done == [(n, REVIEWED) for n in range(1, REVIEWED + 1)]
        with runtime.database().session_scope() as session:
            export = session.get(Export, export_id)
            assert export is not None and export.status == "done", export and export.error

    export_here("here", 1)
    export_here("forked", 2)
    # A pool kept across exports, as a worker keeps its own: the same processes write both.
    with service.part_pool(runtime.database(), runtime.storage().get, 2) as pool:

        def not_here(*_: Any, **__: Any) -> bool:
            raise AssertionError("a part ran in the parent, not in the pool")

        monkeypatch.setattr(service, "write_part", not_here)  # the pool forked before this
        export_here("pooled", 1, pool)
        export_here("pooled again", 1, pool)
    here = _contents(tmp_path / "here", "webdataset")
    for name in ("forked", "pooled", "pooled again"):
        assert _contents(tmp_path / name, "webdataset") == here, name
    assert len(list((tmp_path / "forked").glob("*.tar"))) == REVIEWED


def _fingerprint(encode: Callable[[Any], Any]) -> str:
    """A digest of the documents of 200 made-up subjects with the default taxonomy."""
    spec = load_default()
    categories = spec.categories()
    category_ids = {n + 1: c.full_key for n, c in enumerate(categories)}
    rows, labels = [], []
    for subject_id in range(1, 201):
        rows.append(
            SubjectRow(
                0,
                subject_id,
                0,
                "[0, 0, 10, 20]",
                None,
                None,
                None,
                None,
                subject_id,
                "00" * 32,
                10,
                20,
                "image/jpeg",
                None,
                "",
                "",
                "{}",
                f"k{subject_id}",
            )  # fmt: skip
        )
        for category_id in category_ids:
            category = categories[category_id - 1]
            if category.kind == "text" or (subject_id + category_id) % 3 == 0:
                continue
            if category.kind == "boolean":
                value: Any = subject_id % 2 == 0
            else:
                keys = [v.key for v in category.values]
                value = keys[(subject_id * 7 + category_id) % len(keys)]
                if category.kind == "multi":
                    value = [value]
            state = ("verified", "gold", "auto_accepted")[(subject_id + category_id) % 3]
            labels.append((subject_id, category_id, json.dumps(value), state, 1, 2, 0.25 + subject_id / 1000))
    records = build_records(
        spec,
        rows,
        labels,
        category_ids,
        {2: "stats:v@1"},
        states=["verified", "gold"],
        include_sensitive=False,
    )
    digest = hashlib.sha256()
    for record in records:
        document = encode(record)
        digest.update(json.dumps([*document._replace(body=document.body.decode())], sort_keys=True).encode())
    return digest.hexdigest()


# The fingerprint of each document version. A change to what documents hold changes the
# fingerprint: give it a new DOCUMENT_VERSION (records.py) and its fingerprint here.
FINGERPRINTS = {
    1: "16857944a2b01e1cb6b531024016815d9665678f171d3c170bf8f7190ead0296",
    2: "e963247381f71e6fd6486b5f16466f402ac2caf9b069a579135b6112d279b4a4",
}


def test_a_change_to_what_documents_hold_comes_with_a_new_document_version() -> None:
    encoder = AttributesEncoder(load_default(), {})
    assert _fingerprint(encoder.document) == FINGERPRINTS[DOCUMENT_VERSION], (
        "documents changed: kept ones would be taken for current; bump DOCUMENT_VERSION"
    )


def test_a_kept_document_makes_the_bytes_its_labels_make() -> None:
    spec = load_default()
    snapshot = {"id": 1, "label_event_high_water": 9, "taxonomy": "human-v1@1"}
    encoder = AttributesEncoder(spec, snapshot)
    rows = [
        SubjectRow(
            0,
            5,
            0,
            "[1, 2, 3, 4]",
            "full_body",
            0.9,
            "a@1",
            None,
            7,
            "ab" * 32,
            10,
            20,
            "image/png",
            3,
            "cc-by",
            "yes",
            '{"sharpness": 0.5}',
            "k",
        )  # fmt: skip
    ]
    labels = [
        (5, n + 1, json.dumps(v.values[0].key), "verified", 1, None, None)
        for n, v in enumerate(spec.categories()[:3])
    ]
    category_ids = {n + 1: c.full_key for n, c in enumerate(spec.categories())}
    (record,) = build_records(
        spec, rows, labels, category_ids, {}, states=["verified"], include_sensitive=False
    )
    kept = record_of(rows[0], document=encoder.document(record))
    assert encoder.encode(kept) == encoder.encode(record)
    assert kept.caption == record.caption and kept.caption
    # CosmicMan's aa_text, written with the body, is what the labels' groups make.
    assert (
        aa_text(spec, kept)
        == aa_text(spec, record)
        == json.dumps(attribute_groups(spec, record), ensure_ascii=False)
    )
