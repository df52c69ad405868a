"""Per-process singletons built from Settings: the database, blob storage and the job sender.

Created on first use, so a forked worker process builds its own connections.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from server.core.config import Settings, get_settings
from server.core.db import Database
from server.core.egress import EgressClient, EgressPolicy
from server.core.storage import LocalStorage, ObjectStorage, S3Storage
from workers.celery_app import create_celery
from workers.contracts import CPU_QUEUE


@lru_cache
def database() -> Database:
    return Database(get_settings().database_url)


@lru_cache
def storage() -> ObjectStorage:
    settings = get_settings()
    if settings.storage.backend == "s3":
        config = settings.storage
        return S3Storage(config.bucket, config.prefix, config.endpoint_url or None)
    return LocalStorage(settings.blob_dir)


@lru_cache
def egress() -> EgressClient:
    """The only client for URLs users choose (URL lists, webhooks): see server.core.egress."""
    settings = get_settings()
    return EgressClient(
        EgressPolicy.of(
            settings.egress.allow_networks,
            max_bytes=settings.ingest.max_upload_bytes,
            timeout_seconds=settings.egress.timeout_seconds,
            max_redirects=settings.egress.max_redirects,
        )
    )


@lru_cache
def celery_app() -> Celery:
    return make_celery(get_settings())


def make_celery(settings: Settings) -> Celery:
    return create_celery("annotate-anyone", settings.broker_url, default_queue=CPU_QUEUE)


def reset(*, after_fork: bool = False) -> None:
    """Forget the singletons (tests, a settings change, a forked worker process).

    After a fork the inherited connections belong to the parent: they are dropped, not closed.
    """
    if database.cache_info().currsize:
        database().engine.dispose(close=not after_fork)
    if egress.cache_info().currsize:
        egress().close()
    for cached in (database, storage, egress, celery_app):
        cached.cache_clear()
    if not after_fork:
        get_settings.cache_clear()
