"""The pipeline's CPU tasks: dispatch GPU batches, persist their results."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from server.core import runtime, tasknames
from server.prelabel import service
from workers import contracts


@shared_task(name=tasknames.DISPATCH_ANALYZE)
def dispatch_analysis(image_ids: list[int]) -> int:
    with runtime.database().session_scope() as session:
        return service.dispatch_analysis(session, runtime.storage(), image_ids)


@shared_task(name=tasknames.DISPATCH_EMBED)
def dispatch_embedding(image_ids: list[int]) -> int:
    with runtime.database().session_scope() as session:
        return service.dispatch_embedding(session, runtime.storage(), image_ids)


@shared_task(name=tasknames.DISPATCH_PRELABEL)
def dispatch_prelabel(image_ids: list[int]) -> int:
    with runtime.database().session_scope() as session:
        return service.dispatch_prelabel(session, runtime.storage(), image_ids)


@shared_task(name=contracts.PERSIST_ANALYSIS)
def persist_analysis(payload: dict[str, Any]) -> int:
    result = contracts.AnalyzeResult.model_validate(payload)
    with runtime.database().session_scope() as session:
        return service.persist_analysis(session, runtime.storage(), result)


@shared_task(name=contracts.PERSIST_EMBEDDINGS)
def persist_embeddings(payload: dict[str, Any]) -> int:
    result = contracts.EmbedResult.model_validate(payload)
    with runtime.database().session_scope() as session:
        return service.persist_embeddings(session, result)


@shared_task(name=contracts.PERSIST_PREDICTIONS)
def persist_predictions(payload: dict[str, Any]) -> int:
    result = contracts.PrelabelResult.model_validate(payload)
    with runtime.database().session_scope() as session:
        return service.persist_predictions(session, result)
