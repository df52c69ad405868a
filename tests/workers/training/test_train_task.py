from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import workers.tasks  # registers the GPU queue's shared tasks
from tests.workers.training.test_heads_trainer import _job
from workers import contracts


@pytest.fixture
def eager_app(monkeypatch: pytest.MonkeyPatch) -> tuple[Celery, list[dict[str, Any]]]:
    """An eager app whose forwarding to the cpu queue is recorded, not run: the server's own
    persist task (a shared task, in every app once the server's modules are imported) needs a
    database this test does not have."""
    app = Celery("train-test", broker="memory://")
    app.conf.task_always_eager = True
    received: list[dict[str, Any]] = []

    def forward(_app: Celery, task: str, result: contracts.Contract) -> None:
        assert task == contracts.PERSIST_TRAINING
        received.append(result.model_dump(mode="json"))

    monkeypatch.setattr(workers.tasks, "_forward", forward)
    return app, received


def test_the_train_task_forwards_its_result_to_the_persist_task(
    tmp_path: Path, eager_app: tuple[Celery, list[dict[str, Any]]]
) -> None:
    app, received = eager_app
    job = _job(tmp_path / "heads")
    app.tasks[contracts.TRAIN].apply(args=[job.model_dump(mode="json")], throw=True)
    [payload] = received
    result = contracts.TrainResult.model_validate(payload)
    assert result.error is None and result.model is not None and result.round_id == job.round_id
    assert len(result.predictions) == len(job.evaluate)


def test_a_failed_training_is_forwarded_as_an_error(
    tmp_path: Path, eager_app: tuple[Celery, list[dict[str, Any]]]
) -> None:
    app, received = eager_app
    job = _job(tmp_path / "heads", options={"min_examples": 10_000})
    app.tasks[contracts.TRAIN].apply(args=[job.model_dump(mode="json")], throw=True)
    [payload] = received
    result = contracts.TrainResult.model_validate(payload)
    assert result.model is None and result.error is not None
