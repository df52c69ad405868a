"""The CPU worker: the explicit list of task modules and the beat schedule.

    celery -A server.worker worker -Q cpu      # database tasks
    celery -A server.worker beat               # the periodic schedule
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from celery import bootsteps
from celery.signals import worker_process_init

from server.core import jobs, runtime, tasknames
from server.core.config import get_settings
from server.core.logging import configure_logging
from server.core.time import utcnow
from server.operations import service as operations

TASK_MODULES = [
    "server.sources.tasks",
    "server.images.tasks",
    "server.operations.tasks",
]

_settings = get_settings()
configure_logging(_settings.log_level, json=_settings.log_json)
app = runtime.make_celery(_settings)
app.conf.include = TASK_MODULES
app.conf.beat_schedule = {
    "reconcile": {"task": tasknames.RECONCILE, "schedule": _settings.reconciler.interval_seconds},
}
app.conf.beat_schedule_filename = str(_settings.data_dir / "celerybeat-schedule")


def install_job_sender() -> None:
    """Jobs leave through Celery, or run inline when AA_JOBS_EAGER is set (tests, scripts)."""
    if get_settings().jobs_eager:
        jobs.configure(_run_inline)
        return
    sender_app = runtime.celery_app()

    def send(job: jobs.Job) -> None:
        sender_app.send_task(job.name, kwargs=job.kwargs, queue=job.queue)

    jobs.configure(send)


def _run_inline(job: jobs.Job) -> None:
    app.loader.import_default_modules()
    app.tasks[job.name].apply(kwargs=job.kwargs, throw=True)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked pool process must not share the parent's database connections.
    runtime.reset(after_fork=True)
    install_job_sender()


class Heartbeat(bootsteps.StartStopStep):
    """Writes this worker's heartbeat row, so /health can tell a live worker from a dead one."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.hostname = f"{getattr(worker, 'hostname', None) or socket.gethostname()}"
        self.queues = ""
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        self.queues = ",".join(sorted(q.name for q in worker.app.amqp.queues.consume_from.values())) if worker.app.amqp.queues.consume_from else "cpu"
        install_job_sender()
        self._thread = threading.Thread(target=self._run, name="aa-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = get_settings().worker_heartbeat_seconds
        while not self._stop.is_set():
            try:
                with runtime.database().session_scope() as session:
                    operations.beat(session, self.hostname, self.queues, self.started_at)
            except Exception as exc:  # the database may be restarting; try again next beat
                app.log.get_default_logger().warning("heartbeat failed: %s", exc)
            self._stop.wait(interval)

    def stop(self, worker: Any) -> None:
        self._stop.set()
        try:
            with runtime.database().session_scope() as session:
                operations.forget(session, self.hostname)
        except Exception as exc:  # shutting down; the row goes stale on its own
            app.log.get_default_logger().warning("heartbeat cleanup failed: %s", exc)


app.steps["worker"].add(Heartbeat)
