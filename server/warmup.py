"""A fresh API process warms, before it takes requests, what its first requests would pay for.

Sixteen annotators starting at once land on cold processes: each would open its own database
connection, compile the queue's statements, read its project's taxonomy and the caption
tokenizer's vocabulary while the others wait behind it (about 200 ms on the first `next`).
Here that happens once, at start-up.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from server.assignments import service as assignments
from server.auth import repository as auth_repository
from server.captions.tokens import count_tokens
from server.core.db import Database
from server.orm import Project
from server.projects import policy

log = structlog.get_logger(__name__)

# The most recently created live projects whose taxonomies are read ahead.
WARM_PROJECTS = 50
# Connections opened ahead (Postgres; a SQLite connection costs nothing to open).
WARM_CONNECTIONS = 4


def warm_up(database: Database) -> None:
    """Never fatal: a database that is down at start-up is reported by /health, not here."""
    # The CLIP tokenizer's merges (every caption preview counts its tokens).
    count_tokens("a person")
    try:
        if not database.is_sqlite:
            connections = [database.engine.connect() for _ in range(WARM_CONNECTIONS)]
            for connection in connections:
                connection.close()
        with database.sessionmaker() as session:
            auth_repository.session_by_token_hash(session, "")
            auth_repository.api_token_by_hash(session, "")
            policy.warm_up(session)
            projects = session.scalars(
                select(Project)
                .where(Project.deleted_at.is_(None))
                .order_by(Project.id.desc())
                .limit(WARM_PROJECTS)
            ).all()
            assignments.warm_up(session, projects)
            # Reads only, and a claim that matched nothing: nothing to keep.
            session.rollback()
    except SQLAlchemyError as exc:
        log.warning("warm_up.failed", error=str(exc).splitlines()[0])
