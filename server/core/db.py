"""Engines and the session boundary.

The boundary (`session_scope`, and the request dependency built on it) is the only place that
commits. Jobs queued on the session during the unit of work are sent after the commit succeeds,
so a worker never sees a row that is not there yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from server.core import jobs

# Seconds a Postgres connect may take (see create_db_engine).
CONNECT_TIMEOUT_SECONDS = 10


def create_db_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is off (see _sqlite_pragmas); every transaction
        # takes the write lock up front, so a read-then-write never fails on lock upgrade
        # (SQLITE_BUSY_SNAPSHOT) when the API and a worker write at once.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A server that drops packets (rather than refusing) fails a connect in seconds, not after
        # the OS's TCP timeout: the start-up warm-up and requests answer 503 instead of hanging.
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A pooled connection that sat idle may have been closed under us (a database restart, a
# firewall's idle timeout): it is pinged before use. One in steady use is not: a ping is a round
# trip on every request, and a connection lost mid-request is an error the client retries (503)
# after which the pool replaces every connection of the lost server.
IDLE_BEFORE_PING_SECONDS = 10.0


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        # The server went away (a restart): every pooled connection is as dead as this one. The
        # pool discards them all and checks out a fresh connection.
        raise InvalidatePoolError(f"a pooled connection is gone: {exc}") from exc


SQLITE_MMAP_BYTES = 1 << 30  # address space per connection, not memory


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Pages are read straight from the kernel's page cache, without a read call and a copy per
    # page: an export part reads about 10 MB of kept documents, a quarter faster.
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


# A connection execution option: this transaction only reads (see Database.read_scope).
READ_ONLY = "aa_read_only"


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory; one per process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, echo=echo)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error, then send queued jobs."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            jobs.discard(session)
            raise
        finally:
            session.close()
        jobs.flush(session)

    @contextmanager
    def read_scope(self) -> Iterator[Session]:
        """A unit of work that only reads, never committed. On SQLite its transaction takes no
        lock (WAL gives it a consistent snapshot), so readers in other processes, such as an
        export's parts, do not queue behind each other. Nothing may be written in it: on SQLite
        the write could fail to take the lock."""
        session = self.sessionmaker()
        try:
            session.connection(execution_options={READ_ONLY: True})
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
