"""Idempotent writes on natural keys, for both databases."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str]) -> None:
    """Insert rows, skipping those whose `key` exists (also when a concurrent writer got there
    first). One statement compiled once and executed for every row (executemany)."""
    if rows:
        stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt, list(rows))


def insert_ignore_many_returning(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    """Insert rows unless their key exists; the `returning` columns of the rows inserted."""
    if not rows:
        return []
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(*(table.c[name] for name in returning))
    )
    return list(session.execute(stmt, list(rows)))


def insert_ignore_returning(
    session: Session, table: Table, row: dict[str, Any], key: Sequence[str]
) -> Any | None:
    """Insert one row unless its key exists; the new primary key, or None when it existed."""
    stmt = _insert_ignore_returning_id(session.get_bind().dialect.name, table, tuple(key))
    return session.execute(stmt, row).scalar_one_or_none()


@functools.cache
def _insert_ignore_returning_id(dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    # Built once per table and key (the review queue's submit runs it on every request).
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
    *,
    update_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert rows or overwrite `update` columns of the existing row with the same key; with
    `update_if` (given the incoming row, `excluded`), only where that holds for the existing one."""
    if not rows:
        return
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={c: getattr(stmt.excluded, c) for c in update},
        where=update_if(stmt.excluded) if update_if is not None else None,
    )
    session.execute(stmt, list(rows))
