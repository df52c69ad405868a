"""The GPU queue's tasks: a batch payload in, its result sent on to the CPU queue for persisting.

Stateless: no database. A redelivered batch recomputes and re-sends the same result; the CPU
side's upserts make the second one a no-op.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task, shared_task

from workers import contracts
from workers.inference.device import pick_device
from workers.inference.pipeline import run_analyze, run_embed, run_prelabel
from workers.inference.registry import ModelRegistry
from workers.settings import WorkerSettings

_registry: ModelRegistry | None = None


def _models() -> ModelRegistry:
    """Models stay loaded in this process between batches, on the configured device."""
    global _registry
    if _registry is None:
        _registry = ModelRegistry(pick_device(WorkerSettings().device or None))
    return _registry


def _forward(app: Celery, task: str, result: contracts.Contract) -> None:
    body = [result.model_dump(mode="json")]
    if app.conf.task_always_eager:
        # Inline mode (scripts, tests): the persist task runs here, as Celery's eager mode does.
        app.tasks[task].apply(args=body, throw=True)
    else:
        app.send_task(task, args=body, queue=contracts.CPU_QUEUE)


@shared_task(name=contracts.ANALYZE, bind=True)
def analyze(self: Task, payload: dict[str, Any]) -> None:
    _forward(
        self.app,
        contracts.PERSIST_ANALYSIS,
        run_analyze(contracts.AnalyzeBatch.model_validate(payload), registry=_models()),
    )


@shared_task(name=contracts.EMBED, bind=True)
def embed(self: Task, payload: dict[str, Any]) -> None:
    _forward(
        self.app,
        contracts.PERSIST_EMBEDDINGS,
        run_embed(contracts.EmbedBatch.model_validate(payload), registry=_models()),
    )


@shared_task(name=contracts.PRELABEL, bind=True)
def prelabel(self: Task, payload: dict[str, Any]) -> None:
    _forward(
        self.app,
        contracts.PERSIST_PREDICTIONS,
        run_prelabel(contracts.PrelabelBatch.model_validate(payload), registry=_models()),
    )


@shared_task(name=contracts.TRAIN, bind=True)
def train(self: Task, payload: dict[str, Any]) -> None:
    # A failed training is a TrainResult with an error, forwarded like a success: the round
    # records why. Only a malformed payload fails the task.
    from workers.inference.training import run_train

    _forward(
        self.app,
        contracts.PERSIST_TRAINING,
        run_train(contracts.TrainJob.model_validate(payload), registry=_models()),
    )
