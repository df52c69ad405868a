"""The CPU worker's start-up in its main process, before a prefork pool forks."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest

from server import worker


def test_a_prefork_worker_keeps_what_its_pool_inherits_out_of_their_collectors_passes(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker._Heartbeat, "hostname", worker._Heartbeat.hostname)
    monkeypatch.setattr(worker._Heartbeat, "queues", worker._Heartbeat.queues)
    prefork = SimpleNamespace(
        pool_cls="celery.concurrency.prefork:TaskPool",
        app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=None))),
    )
    gc.unfreeze()
    try:
        worker._remember_identity("cpu@test", prefork)
        # Frozen before the pool forks: the modules, pandas and the tokenizer's ranks preloaded.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
