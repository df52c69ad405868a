"""Pooled Postgres connections: pinged only after idling, and a failed ping recycles the pool."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import NullPool

from server.core import db


class _Connection:
    def __init__(self, fail: bool) -> None:
        self.fail, self.pings = fail, 0

    def cursor(self) -> Any:
        connection = self

        class _Cursor:
            def __enter__(self) -> _Cursor:
                return self

            def __exit__(self, *_: object) -> None:
                return None

            def execute(self, _sql: str) -> None:
                connection.pings += 1
                if connection.fail:
                    raise OSError("server closed the connection unexpectedly")

        return _Cursor()

    def rollback(self) -> None:
        return None


class _Record:
    def __init__(self, idle_seconds: float | None) -> None:
        self.info = {} if idle_seconds is None else {"checked_in_at": time.monotonic() - idle_seconds}


def test_a_connection_in_steady_use_is_not_pinged() -> None:
    connection = _Connection(fail=True)
    db._ping_if_idle(connection, _Record(idle_seconds=1.0), None)
    db._ping_if_idle(connection, _Record(idle_seconds=None), None)  # new: never checked in
    assert connection.pings == 0


def test_an_idle_connection_is_pinged_and_a_dead_one_recycles_the_whole_pool() -> None:
    alive = _Connection(fail=False)
    db._ping_if_idle(alive, _Record(idle_seconds=db.IDLE_BEFORE_PING_SECONDS + 1), None)
    assert alive.pings == 1
    dead = _Connection(fail=True)
    with pytest.raises(InvalidatePoolError):
        db._ping_if_idle(dead, _Record(idle_seconds=db.IDLE_BEFORE_PING_SECONDS + 1), None)


def test_a_postgres_pool_survives_its_connections_being_killed(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a Postgres pool: SQLite connections are files")
    engine = db.create_db_engine(database_url, pool_size=2)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The server ends the pooled connection (as a restart would); once it has idled, the
        # next checkout pings it, finds it dead and hands out a fresh one.
        other = create_engine(database_url, poolclass=NullPool)
        with other.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        for record in list(engine.pool._pool.queue):  # type: ignore[attr-defined]
            record.info["checked_in_at"] -= db.IDLE_BEFORE_PING_SECONDS + 1
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()


def test_a_read_scope_on_sqlite_does_not_hold_back_a_writer(tmp_path: Any) -> None:
    """Every other transaction takes SQLite's write lock when it begins; a read scope takes none,
    so a writer (or an export part in another process) need not wait for it to end."""
    database = db.Database(f"sqlite:///{tmp_path / 'scopes.db'}")
    with database.session_scope() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    writer = create_engine(f"sqlite:///{tmp_path / 'scopes.db'}", connect_args={"timeout": 0.2})
    try:
        with database.read_scope() as reading:
            assert reading.execute(text("SELECT count(*) FROM t")).scalar() == 1
            with writer.begin() as conn:  # waits 0.2 s at most for the lock, then fails
                conn.execute(text("INSERT INTO t VALUES (2)"))
            # The reader's snapshot is the one it began with.
            assert reading.execute(text("SELECT count(*) FROM t")).scalar() == 1
        with database.session_scope() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        writer.dispose()
        database.dispose()


def test_sqlite_connections_read_through_a_memory_map_and_see_other_writers(tmp_path: Any) -> None:
    database = db.Database(f"sqlite:///{tmp_path / 'mapped.db'}")
    other = create_engine(f"sqlite:///{tmp_path / 'mapped.db'}")
    try:
        with database.session_scope() as session:
            assert session.execute(text("PRAGMA mmap_size")).scalar() == db.SQLITE_MMAP_BYTES
            session.execute(text("CREATE TABLE t (x BLOB)"))
            session.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
        with other.begin() as conn:  # a writer without the map: the mapped reader sees its rows
            conn.execute(text("UPDATE t SET x = randomblob(100000)"))
            written = conn.execute(text("SELECT x FROM t")).scalar()
        with database.read_scope() as reading:
            assert reading.execute(text("SELECT x FROM t")).scalar() == written
    finally:
        other.dispose()
        database.dispose()
