"""Snapshots: what an export reads is frozen at its label-event high-water mark; filters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import runtime
from server.core.time import utcnow
from server.exports import repository, service
from server.exports.schemas import ExportFilters, ExportOptions
from server.orm import Category, Label, LabelEvent, Project
from server.orm.exports import Export, Snapshot, SnapshotSubject
from server.projects import service as projects
from server.taxonomy import service as taxonomy
from tests.server.conftest import Api
from tests.server.exports.conftest import REVIEWED, review_next, run_export, start_here


def _jsonl(out: Path) -> dict[int, dict[str, Any]]:
    lines = (out / "labels.jsonl").read_text().splitlines()
    return {doc["subject_id"]: doc for doc in map(json.loads, lines)}


def _relabel(subject_id: int, key: str, value: Any) -> None:
    """A reviewer changes one label: the label row and its event, as a submit writes them."""
    with runtime.database().session_scope() as session:
        relabel_in(session, subject_id, key, lambda _: value)


def relabel_in(session: Session, subject_id: int, key: str, choose: Callable[[Any], Any]) -> Any:
    """`_relabel` in the caller's transaction, to the value `choose(current value)`; returns it."""
    category = session.scalar(select(Category).where(Category.key == key))
    assert category is not None
    label = session.scalar(
        select(Label).where(Label.subject_id == subject_id, Label.category_id == category.id)
    )
    assert label is not None
    value = choose(label.value)
    _change(session, label, value, "verified", "review")
    session.flush()
    return value


def _change(session: Session, label: Label, value: Any, state: str, reason: str) -> None:
    """The label's new value and state, and its event, as the engine's writers record them."""
    session.add(
        LabelEvent(
            label_id=label.id,
            subject_id=label.subject_id,
            category_id=label.category_id,
            actor_user_id=label.decided_by_id,
            from_value=label.value,
            to_value=value,
            from_state=label.state,
            to_state=state,
            reason=reason,
        )
    )
    label.value, label.state, label.version, label.updated_at = value, state, label.version + 1, utcnow()


def _other_value(key: str, current: Any) -> Any:
    with runtime.database().session_scope() as session:
        category = session.scalar(select(Category).where(Category.key == key))
        assert category is not None
        return next(v.key for v in category.values if v.key != current)


def test_a_label_changed_after_the_snapshot_does_not_show_up(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    export_id = start_here(project_id, "jsonl", tmp_path / "frozen")
    before = None
    with runtime.database().session_scope() as session:
        category = session.scalar(select(Category).where(Category.key == "top.color"))
        assert category is not None
        label = session.scalar(
            select(Label).where(Label.subject_id == subject, Label.category_id == category.id)
        )
        assert label is not None
        before = label.value
    after = _other_value("top.color", before)
    _relabel(subject, "top.color", after)  # after the snapshot, before its subjects are even frozen

    service.run_here(runtime.database(), runtime.storage().get, export_id)
    frozen = _jsonl(tmp_path / "frozen")[subject]
    assert frozen["regions"]["top"]["color"] == before

    fresh = run_export(project_id, "jsonl", tmp_path / "fresh")
    assert fresh.status == "done"
    assert _jsonl(tmp_path / "fresh")[subject]["regions"]["top"]["color"] == after


def _say_gender(subject_id: int, project_id: int) -> None:
    """A person says the subject's apparent gender (a sensitive category), verified."""
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        version = taxonomy.current_version(session, project)
        in_version = Category.taxonomy_version_id == version.id
        category = session.scalar(select(Category).where(in_version, Category.key == "identity.gender"))
        assert category is not None and category.sensitive
        existing = session.scalar(
            select(Label).where(Label.subject_id == subject_id, Label.category_id == category.id)
        )
        assert existing is None  # the demo labeler does not predict sensitive categories
        label = Label(
            subject_id=subject_id,
            category_id=category.id,
            taxonomy_version_id=version.id,
            value=category.values[0].key,
            state="verified",
            updated_at=utcnow(),
        )
        session.add(label)
        session.flush()
        session.add(
            LabelEvent(
                label_id=label.id,
                subject_id=subject_id,
                category_id=category.id,
                to_value=label.value,
                to_state="verified",
                reason="review",
            )
        )


def _opt_in(project_id: int, include_sensitive: bool) -> None:
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        settings = projects.settings_of(project)
        settings.include_sensitive = include_sensitive
        projects.update_settings(project, settings)


@pytest.mark.parametrize("at_start", [False, True], ids=["opted-out", "opted-in"])
def test_an_export_says_sensitive_categories_as_its_project_did_when_it_began(
    reviewed: dict[str, Any], tmp_path: Path, at_start: bool
) -> None:
    project_id, subject = reviewed["project"]["id"], reviewed["reviewed"][0]
    _say_gender(subject, project_id)
    _opt_in(project_id, at_start)
    export_id = start_here(project_id, "jsonl", tmp_path / "out", options=ExportOptions(shard_size=1))
    # The lead changes the setting before the plan and every part run.
    _opt_in(project_id, not at_start)

    service.run_here(runtime.database(), runtime.storage().get, export_id)
    with runtime.database().session_scope() as session:
        export = session.get(Export, export_id)
        assert export is not None and export.status == "done", export and export.error
        assert export.manifest is not None
        manifest = export.manifest
    documents = _jsonl(tmp_path / "out")
    assert len(documents) == REVIEWED == manifest["counts"]["parts"]
    assert ("gender" in documents[subject]["regions"]["identity"]) is at_start
    assert manifest["include_sensitive"] is at_start
    # The labels the manifest counts are those the parts wrote.
    said = sum(len(values) for doc in documents.values() for values in doc["regions"].values())
    assert manifest["counts"]["labels"] == said

    # What the project says now holds for the next export.
    run_export(project_id, "jsonl", tmp_path / "next")
    assert ("gender" in _jsonl(tmp_path / "next")[subject]["regions"]["identity"]) is not at_start


def test_filters_choose_states_subjects_sources_quality_and_changes_since(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id, done = reviewed["project"]["id"], reviewed["reviewed"]

    def exported(name: str, **filters: Any) -> set[int]:
        export = run_export(project_id, "jsonl", tmp_path / name, filters=ExportFilters(**filters))
        assert export.status == "done", export.error
        return set(_jsonl(tmp_path / name))

    assert exported("verified") == set(done)  # predicted labels are never exported
    assert exported("one", subject_ids=[done[1]]) == {done[1]}
    assert exported("no-source", source_ids=[999]) == set()
    assert exported("sharp", min_quality={"sharpness": 1e9}) == set()
    assert exported("any-quality", min_quality={"sharpness": -1.0}) == set(done)
    assert exported("unmeasured", min_quality={"no_such_metric": -1.0}) == set()  # missing fails
    with runtime.database().session_scope() as session:
        first = session.scalar(select(Export.id).order_by(Export.id))
    _relabel(done[2], "top.color", _other_value("top.color", None))
    assert exported("since", since_export_id=first) == {done[2]}


def test_manifest_counts_and_checksums_equal_the_database_and_the_files(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id = reviewed["project"]["id"]
    export = run_export(project_id, "webdataset", tmp_path / "wds", options=ExportOptions(shard_size=2))
    assert export.status == "done", export.error
    manifest = json.loads((tmp_path / "wds" / "manifest.json").read_text())
    assert manifest == export.manifest
    # The database's own count: current labels in the exported states, non-sensitive, applicable.
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        spec = taxonomy.spec_of(taxonomy.current_version(session, project))
        include_sensitive = projects.settings_of(project).include_sensitive
        rows = session.execute(
            select(Label.subject_id, Category.key, Label.value)
            .join(Category, Category.id == Label.category_id)
            .where(Label.state.in_(["verified", "gold"]))
        ).all()
    by_subject: dict[int, dict[str, Any]] = {}
    for subject_id, key, value in rows:
        if include_sensitive or not spec.category(key).sensitive:
            by_subject.setdefault(subject_id, {})[key] = value
    labels = sum(
        len({c.full_key for c in spec.applicable_categories(values)} & set(values))
        for values in by_subject.values()
    )
    assert manifest["counts"]["samples"] == manifest["counts"]["subjects"] == len(by_subject) == REVIEWED
    assert manifest["counts"]["labels"] == labels
    assert manifest["counts"]["parts"] == 2 and manifest["shards"] == ["00000.tar", "00001.tar"]
    on_disk = {str(p.relative_to(tmp_path / "wds")) for p in (tmp_path / "wds").rglob("*") if p.is_file()} - {
        "manifest.json"
    }
    assert set(manifest["files"]) == on_disk
    for name, meta in manifest["files"].items():
        data = (tmp_path / "wds" / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert manifest["snapshot"]["label_event_high_water"] > 0
    assert manifest["taxonomy"]["name"] == "human-v1"
    # What every sample's groups leave out is said once, here, in taxonomy order.
    assert manifest["attributes_format"] == 2
    assert [g["group"] for g in manifest["groups"]] == [g.key for g in spec.caption_groups if g.key != "shot"]
    assert all(isinstance(g["noun"], str) and g["parsing_ids"] for g in manifest["groups"])


def _unverify(subject_id: int) -> None:
    """Every label of the subject goes back to `predicted` (its events say so): the subject has
    nothing verified any more."""
    with runtime.database().session_scope() as session:
        for label in session.scalars(select(Label).where(Label.subject_id == subject_id)):
            _change(session, label, label.value, "predicted", "reopened")


def _frozen(snapshot_id: int) -> list[int]:
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(SnapshotSubject.position, SnapshotSubject.subject_id)
            .where(SnapshotSubject.snapshot_id == snapshot_id)
            .order_by(SnapshotSubject.position)
        ).all()
    assert [position for position, _ in rows] == list(range(len(rows)))
    return [subject_id for _, subject_id in rows]


def test_a_freeze_starts_from_the_last_and_checks_again_only_subjects_relabelled_since(
    admin: Api, reviewed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id, done, everyone = reviewed["project"]["id"], reviewed["reviewed"], reviewed["subjects"]
    first = run_export(project_id, "jsonl", tmp_path / "first")
    assert first.status == "done", first.error
    assert _frozen(first.snapshot_id) == done
    # A day of review: the last subject reviewed (in), one taken back to predicted (out), one
    # relabelled (still in); a snapshot whose filters differ is frozen in between.
    (unreviewed,) = set(everyone) - set(done)
    assert review_next(admin, project_id)["subject"]["id"] == unreviewed
    _unverify(done[0])
    _relabel(done[1], "top.color", _other_value("top.color", None))
    other = run_export(project_id, "jsonl", tmp_path / "other", filters=ExportFilters(subject_ids=[done[2]]))
    assert _frozen(other.snapshot_id) == [done[2]]

    starts: list[repository.Frozen | None] = []
    freeze = repository.freeze_subjects

    def spy(*args: Any, **kwargs: Any) -> int:
        starts.append(kwargs.get("previous"))
        return freeze(*args, **kwargs)

    monkeypatch.setattr(repository, "freeze_subjects", spy)
    # A day's events per subject here are a round's in a large project: started from the last,
    # or frozen again in full past the limit.
    monkeypatch.setattr(repository, "REFREEZE_EVENTS_PER_SUBJECT", 100)
    second = run_export(project_id, "jsonl", tmp_path / "second")
    assert second.status == "done", second.error
    frozen = _frozen(second.snapshot_id)
    assert frozen == sorted([done[1], done[2], unreviewed])
    assert set(_jsonl(tmp_path / "second")) == set(frozen)
    # SQLite started from the first export's subjects (same filters; the other's differ);
    # Postgres froze them all again.
    sqlite = runtime.database().is_sqlite
    assert starts == [repository.Frozen(first.snapshot_id, _mark(first.snapshot_id)) if sqlite else None]

    # Past the limit of events between the marks, every subject is checked again.
    monkeypatch.setattr(repository, "REFREEZE_EVENTS_PER_SUBJECT", 0)
    _relabel(done[2], "top.color", _other_value("top.color", None))
    third = run_export(project_id, "jsonl", tmp_path / "third")
    assert third.status == "done", third.error
    assert starts[1] is None and _frozen(third.snapshot_id) == frozen
    # The same subjects as a freeze that checks every subject.
    session = runtime.database().sessionmaker()
    try:
        second_snapshot = session.get(Snapshot, second.snapshot_id)
        assert second_snapshot is not None
        category_ids = service._exported_category_ids(session, second_snapshot.taxonomy_version_id, False)
        count = freeze(
            session,
            second.snapshot_id,
            project_id,
            high_water=second_snapshot.label_event_high_water,
            category_ids=category_ids,
            states=ExportFilters().label_states(),
        )
        rows = session.scalars(
            select(SnapshotSubject.subject_id)
            .where(SnapshotSubject.snapshot_id == second.snapshot_id)
            .order_by(SnapshotSubject.position)
        ).all()
        assert count == len(rows) and list(rows) == frozen
    finally:
        session.rollback()
        session.close()


def _mark(snapshot_id: int) -> int:
    with runtime.database().session_scope() as session:
        snapshot = session.get(Snapshot, snapshot_id)
        assert snapshot is not None
        return snapshot.label_event_high_water


def test_a_snapshot_whose_stored_filters_todays_schema_refuses_is_not_started_from(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    project_id, done = reviewed["project"]["id"], reviewed["reviewed"]
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        # As a version before 4451f2e could store it: a quality floor on a name the schema now refuses.
        session.add(
            Snapshot(
                project_id=project_id,
                taxonomy_version_id=project.taxonomy_version_id,
                label_event_high_water=0,
                filters={"states": ["verified"], "min_quality": {"sharpness (old)": 0.5}},
                subject_count=1,
                include_sensitive=False,
            )
        )
    export = run_export(project_id, "jsonl", tmp_path / "out")
    assert export.status == "done", export.error
    assert _frozen(export.snapshot_id) == done
