"""The flywheel's CPU tasks: build a round's training job, persist its result, re-label, and
the beat's check for rounds that are due."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from server.core import runtime, tasknames
from server.flywheel import service
from workers import contracts


@shared_task(name=tasknames.FLYWHEEL_ROUND)
def build_round(round_id: int) -> int:
    with runtime.database().session_scope() as session:
        job = service.build_training(session, runtime.storage(), round_id)
        return len(job.examples) if job is not None else 0


@shared_task(name=contracts.PERSIST_TRAINING)
def persist_training(payload: dict[str, Any]) -> str:
    result = contracts.TrainResult.model_validate(payload)
    with runtime.database().session_scope() as session:
        return service.persist_training(session, result)


@shared_task(name=tasknames.FLYWHEEL_RELABEL)
def relabel(image_ids: list[int]) -> int:
    with runtime.database().session_scope() as session:
        return service.dispatch_relabel(session, runtime.storage(), image_ids)


@shared_task(name=tasknames.FLYWHEEL_DUE_ROUNDS)
def due_rounds() -> list[int]:
    with runtime.database().session_scope() as session:
        return service.due_rounds(session)
