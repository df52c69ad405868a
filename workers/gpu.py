"""The GPU worker: one process per GPU, concurrency 1, one message prefetched.

AA_BROKER_URL=redis://... celery -A workers.gpu worker -Q gpu --concurrency 1 --pool solo
"""

from __future__ import annotations

from workers.celery_app import create_celery
from workers.contracts import GPU_QUEUE
from workers.settings import WorkerSettings

settings = WorkerSettings()
app = create_celery(
    "annotate-anyone-gpu", settings.broker(), include=["workers.tasks"], default_queue=GPU_QUEUE
)
