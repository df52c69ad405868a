"""The Celery app factory, shared by the API (to send), the CPU worker and the GPU worker.

Settings follow DESIGN.md: JSON only; a task is acknowledged after it ran (acks_late) and
requeued if its worker dies (reject_on_worker_lost); one message prefetched per process; time
limits on every task. Results travel as messages or database rows, never a result backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery


def filesystem_transport_options(folder: Path) -> dict[str, Any]:
    """kombu's filesystem transport: a broker that needs no server, for the embedded stack."""
    queue = folder / "queue"
    processed = folder / "processed"
    control = folder / "control"
    for path in (queue, processed, control):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(processed),
        "control_folder": str(control),
        "store_processed": False,
    }


def create_celery(
    name: str,
    broker_url: str,
    *,
    include: list[str] | None = None,
    task_routes: dict[str, dict[str, str]] | None = None,
    default_queue: str = "cpu",
    soft_time_limit: float = 600,
    time_limit: float = 660,
) -> Celery:
    app = Celery(name, broker=broker_url, include=include or [])
    options: dict[str, Any] = {}
    if broker_url.startswith("filesystem://"):
        options = filesystem_transport_options(Path(broker_url.removeprefix("filesystem://")))
    elif broker_url.startswith("redis"):
        # Redelivery of an unacknowledged message after a worker died (must exceed time_limit).
        options = {"visibility_timeout": int(time_limit * 2)}
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=default_queue,
        task_routes=task_routes or {},
        task_soft_time_limit=soft_time_limit,
        task_time_limit=time_limit,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app
