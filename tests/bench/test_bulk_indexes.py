"""The bulk seeding of the benchmarks (bench/review_api.py) drops the bulk tables' indexes and
builds them after the load: what it builds must be the schema the migrations made, else every
figure measured on it is measured on another database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bench.review_api import BULK_TABLES, _drop_indexes, _psycopg_dsn
from tests.conftest import create_postgres_database, drop_postgres_database, migrate
from tests.test_migrations import _differences


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_postgres_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_postgres_database(url)


def _index_names(cur: psycopg.Cursor[tuple[str]]) -> list[str]:
    cur.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY indexname", (list(BULK_TABLES),)
    )
    return [row[0] for row in cur.fetchall()]


def test_indexes_dropped_for_a_bulk_load_are_built_back_as_the_migrations_made_them(
    postgres_url: str,
) -> None:
    with psycopg.connect(_psycopg_dsn(postgres_url)) as conn, conn.cursor() as cur:
        before = _index_names(cur)
        rebuild = _drop_indexes(cur, BULK_TABLES)
        # Only the primary keys are left during the load.
        assert all(name.startswith("pk_") for name in _index_names(cur))
        assert {index for index, _ in rebuild} == {name for name in before if not name.startswith("pk_")}
        for _, statement in rebuild:
            cur.execute(statement)
        conn.commit()
        assert _index_names(cur) == before
    assert _differences(postgres_url) == []
