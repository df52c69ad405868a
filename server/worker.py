"""The CPU worker: the explicit list of task modules and the beat schedule.

celery -A server.worker worker -Q cpu      # database tasks
celery -A server.worker beat               # the periodic schedule
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any

import structlog
from celery.signals import celeryd_after_setup, worker_process_init, worker_shutdown
from sqlalchemy.exc import SQLAlchemyError

from server.core import jobs, runtime, tasknames
from server.core.config import get_settings
from server.core.logging import configure_logging
from server.core.time import utcnow
from server.exports.service import preload as preload_export_parts
from server.operations import service as operations
from workers.contracts import CPU_QUEUE

log = structlog.get_logger(__name__)

TASK_MODULES = [
    "server.sources.tasks",
    "server.prelabel.tasks",
    "server.operations.tasks",
    "server.flywheel.tasks",
    "server.exports.tasks",
    "server.dashboard.tasks",
    "server.webhooks.tasks",
    # The GPU queue's tasks, so that one embedded worker can serve both queues; they import
    # torch only when a batch arrives.
    "workers.tasks",
]

_settings = get_settings()
configure_logging(_settings.log_level, json=_settings.log_json)
app = runtime.make_celery(_settings)
app.conf.include = TASK_MODULES
app.conf.task_always_eager = _settings.jobs_eager
app.conf.beat_schedule = {
    "reconcile": {"task": tasknames.RECONCILE, "schedule": _settings.reconciler.interval_seconds},
    # Watched sources (folders, S3 prefixes): an incremental run once a source's interval passed.
    "sources-watch": {"task": tasknames.SOURCES_WATCH, "schedule": 30.0},
    # Rounds that are due: enough newly verified subjects, or a project's schedule.
    "flywheel-due-rounds": {"task": tasknames.FLYWHEEL_DUE_ROUNDS, "schedule": 60.0},
    # The slow figures of large projects (funnel, work series, flywheel activity, prediction
    # count), so that their dashboard reads stored rows (server.dashboard).
    "dashboard-funnels": {"task": tasknames.DASHBOARD_STORE_FUNNELS, "schedule": 60.0},
    # Kept export documents that label changes made stale, encoded before the next export.
    "export-documents": {"task": tasknames.EXPORT_REFRESH_DOCUMENTS, "schedule": 300.0},
}
app.conf.beat_schedule_filename = str(_settings.data_dir / "celerybeat-schedule")


def install_job_sender() -> None:
    """Jobs leave through Celery, or run inline when AA_JOBS_EAGER is set (tests, scripts)."""
    if get_settings().jobs_eager:
        app.conf.task_always_eager = True
        jobs.configure(_run_inline)
        return
    app.conf.task_always_eager = False
    sender_app = runtime.celery_app()

    def send(job: jobs.Job) -> None:
        sender_app.send_task(job.name, kwargs=job.kwargs, queue=job.queue)

    jobs.configure(send)


def _run_inline(job: jobs.Job) -> None:
    app.loader.import_default_modules()
    app.tasks[job.name].apply(kwargs=job.kwargs, throw=True)


class _Heartbeat:
    """Writes this worker's heartbeat row, so /health can tell a live worker from a dead one.

    The row is written from the pool processes (or the worker itself when it does not fork):
    a process that forks must hold no database connection and run no database thread, or the
    child inherits SQLite's in-process lock state and half-held locks.
    """

    hostname = socket.gethostname()
    queues = CPU_QUEUE
    started_at = utcnow()
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls) -> None:
        if cls._thread is None or not cls._thread.is_alive():
            cls._thread = threading.Thread(target=cls._run, name="aa-heartbeat", daemon=True)
            cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        interval = get_settings().worker_heartbeat_seconds
        while True:
            try:
                with runtime.database().session_scope() as session:
                    operations.beat(session, cls.hostname, cls.queues, cls.started_at)
            except SQLAlchemyError as exc:  # the database may be restarting: try next beat
                log.warning("worker.heartbeat_failed", error=str(exc))
            time.sleep(interval)


@celeryd_after_setup.connect
def _remember_identity(sender: str, instance: Any, **_: Any) -> None:
    _Heartbeat.hostname = sender
    _Heartbeat.queues = ",".join(sorted(instance.app.amqp.queues.consume_from or [CPU_QUEUE]))
    install_job_sender()
    if "prefork" not in str(instance.pool_cls).lower():
        _Heartbeat.start()
    else:
        preload_export_parts()  # once here, not in every pool process's first export part
        # What the pool processes inherit lives as long as they do: keep it out of their
        # collector's full passes, which would otherwise walk every object loaded here (about
        # 160,000, 0.07 s a pass) each time a task's new objects trigger one.
        gc.freeze()


@worker_process_init.connect
def _pool_process_started(**_: Any) -> None:
    runtime.reset(after_fork=True)
    install_job_sender()
    _Heartbeat.start()


@worker_shutdown.connect
def _forget(**_: Any) -> None:
    try:
        with runtime.database().session_scope() as session:
            operations.forget(session, _Heartbeat.hostname)
    except SQLAlchemyError as exc:  # shutting down; the row goes stale on its own
        log.warning("worker.forget_failed", error=str(exc))
