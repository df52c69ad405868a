"""The migrations are the schema: one head, dated files, equal to the ORM, real downgrades."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from server.orm import Base
from tests.conftest import (
    ROOT,
    alembic_config,
    create_postgres_database,
    drop_postgres_database,
    migrate,
)

VERSIONS = ROOT / "migrations" / "versions"
DATED_NAME = re.compile(r"^(?P<date>\d{8})_[0-9a-z]+_[0-9a-z_]+\.py$")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own, migrated to head (the shared test database is left alone)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('migrations') / 'fresh.db'}"
        migrate(url)
        yield url
        return
    url = create_postgres_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_postgres_database(url)


def _differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _foreign_keys(url: str) -> set[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            (table, ",".join(fk["constrained_columns"]), fk["referred_table"])
            for table in inspector.get_table_names()
            for fk in inspector.get_foreign_keys(table)
        }
    finally:
        engine.dispose()


def test_migrations_have_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"alembic has {len(heads)} heads: {heads}; merge them"


def test_every_migration_file_name_starts_with_its_date() -> None:
    names = sorted(p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert names, f"no migrations under {VERSIONS}"
    for name in names:
        match = DATED_NAME.match(name)
        assert match, f"{name} is not named YYYYMMDD_<rev>_<slug>.py"
        datetime.strptime(match["date"], "%Y%m%d")  # a real calendar date


def test_every_revision_in_the_folder_is_reachable_from_the_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    files = {p.stem for p in VERSIONS.glob("*.py") if p.name != "__init__.py"}
    revisions = list(script.walk_revisions())
    assert len(revisions) == len(files)
    assert [r for r in revisions if r.down_revision is None] == [revisions[-1]], "more than one base"


def test_orm_metadata_matches_a_freshly_migrated_database(fresh_url: str) -> None:
    assert _differences(fresh_url) == []


def test_every_orm_table_and_foreign_key_exists_after_migrating(fresh_url: str) -> None:
    expected_fks = {
        (table.name, ",".join(c.name for c in fk.columns), fk.referred_table.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_key_constraints
    }
    assert _tables(fresh_url) - {"alembic_version"} == set(Base.metadata.tables)
    assert expected_fks - _foreign_keys(fresh_url) == set()


def test_upgrade_downgrade_upgrade_round_trip_leaves_the_same_schema(fresh_url: str) -> None:
    config = alembic_config(fresh_url)
    before = _tables(fresh_url)
    assert set(Base.metadata.tables) <= before

    command.downgrade(config, "base")
    assert _tables(fresh_url) <= {"alembic_version"}, "downgrade to base left tables behind"

    command.upgrade(config, "head")
    assert _tables(fresh_url) == before
    assert _differences(fresh_url) == []


def test_snapshots_taken_before_0015_keep_their_projects_sensitive_setting(fresh_url: str) -> None:
    """0015 freezes `include_sensitive` in every snapshot: older ones get their project's setting,
    what their next part or resumption would have read."""
    config = alembic_config(fresh_url)
    command.downgrade(config, "0014")
    engine = create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # rows without their taxonomy: skip the FK checks
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for project_id, settings in ((1, '{"include_sensitive": true}'), (2, "{}")):
                conn.execute(
                    text(
                        "INSERT INTO projects (id, name, slug, description, settings, created_at) "
                        "VALUES (:id, :name, :name, '', :settings, CURRENT_TIMESTAMP)"
                    ),
                    {"id": project_id, "name": f"p{project_id}", "settings": settings},
                )
                conn.execute(
                    text(
                        "INSERT INTO snapshots (id, project_id, taxonomy_version_id, "
                        "label_event_high_water, filters, created_at) "
                        "VALUES (:id, :id, 1, 0, '{}', CURRENT_TIMESTAMP)"
                    ),
                    {"id": project_id},
                )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            said = dict(conn.execute(text("SELECT project_id, include_sensitive FROM snapshots")).all())
            assert {k: bool(v) for k, v in said.items()} == {1: True, 2: False}
            conn.execute(text("DELETE FROM snapshots"))
            conn.execute(text("DELETE FROM projects"))
    finally:
        engine.dispose()
