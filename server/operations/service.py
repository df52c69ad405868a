"""Health of the engine: database, broker, workers; and the workers' heartbeats."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.core.config import Settings
from server.core.time import utcnow
from server.core.upsert import upsert
from server.orm import WorkerHeartbeat


def beat(session: Session, hostname: str, queues: str, started_at: Any) -> None:
    now = utcnow()
    upsert(
        session,
        WorkerHeartbeat.__table__,  # type: ignore[arg-type]
        [
            {
                "hostname": hostname,
                "queues": queues,
                "pid": os.getpid(),
                "started_at": started_at,
                "last_seen_at": now,
            }
        ],
        ["hostname"],
        ["queues", "pid", "started_at", "last_seen_at"],
    )


def forget(session: Session, hostname: str) -> None:
    worker = session.get(WorkerHeartbeat, hostname)
    if worker is not None:
        session.delete(worker)


def check_database(session: Session) -> dict[str, Any]:
    session.execute(text("SELECT 1"))
    return {"ok": True, "dialect": session.get_bind().dialect.name}


def check_broker(settings: Settings) -> dict[str, Any]:
    if settings.uses_filesystem_broker:
        folder = settings.broker_folder()
        ok = folder.is_dir() and os.access(folder, os.W_OK)
        return {"ok": ok, "transport": "filesystem", "detail": "" if ok else f"{folder} is not writable"}
    from kombu.connection import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": settings.broker_url.split(":", 1)[0]}
    except Exception as exc:  # a health probe reports any failure to connect, of any transport
        return {"ok": False, "transport": settings.broker_url.split(":", 1)[0], "detail": type(exc).__name__}


def check_workers(session: Session, settings: Settings) -> dict[str, Any]:
    fresh_after = utcnow() - timedelta(seconds=settings.worker_heartbeat_seconds * 3)
    workers = list(session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.hostname)))
    alive = [w for w in workers if w.last_seen_at >= fresh_after]
    return {
        "ok": bool(alive),
        "alive": [
            {
                "hostname": w.hostname,
                "queues": w.queues.split(","),
                "last_seen_at": w.last_seen_at.isoformat(),
            }
            for w in alive
        ],
        "stale": len(workers) - len(alive),
    }
