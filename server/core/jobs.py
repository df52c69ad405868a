"""Background jobs are sent only after the unit of work that asked for them commits.

Services call `enqueue(session, ...)`; the session boundary (`Database.session_scope`) calls
`flush` after a successful commit and `discard` after a rollback. Messages are nudges: the
database holds each item's stage, and the reconciler re-sends anything a lost message left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

_KEY = "aa_pending_jobs"


@dataclass(frozen=True)
class Job:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "cpu"


Sender = Callable[[Job], None]
_sender: Sender | None = None


def configure(sender: Sender | None) -> None:
    """Install how this process sends jobs (Celery's send_task, or a recorder in tests)."""
    global _sender
    _sender = sender


def enqueue(session: Session, name: str, queue: str = "cpu", **kwargs: Any) -> None:
    session.info.setdefault(_KEY, []).append(Job(name=name, kwargs=kwargs, queue=queue))


def discard(session: Session) -> None:
    session.info.pop(_KEY, None)


def flush(session: Session) -> None:
    pending: list[Job] = session.info.pop(_KEY, [])
    if not pending:
        return
    if _sender is None:
        log.warning("jobs.no_sender", count=len(pending))
        return
    for job in pending:
        try:
            _sender(job)
        except Exception as exc:
            # The commit already happened; the reconciler re-sends from database state.
            log.warning("jobs.send_failed", job=job.name, error=str(exc))
