from __future__ import annotations

from celery import shared_task

from server.core import runtime, tasknames
from server.exports import service


@shared_task(name=tasknames.EXPORT_PLAN)
def plan(export_id: int) -> None:
    try:
        with runtime.database().session_scope() as session:
            service.plan(session, export_id)
    except Exception as exc:
        service.fail(runtime.database(), export_id, f"{type(exc).__name__}: {exc}")
        raise


@shared_task(name=tasknames.EXPORT_PART)
def part(export_id: int, index: int) -> None:
    try:
        service.write_part(runtime.database(), runtime.storage().get, export_id, index)
    except Exception as exc:
        service.fail(runtime.database(), export_id, f"part {index}: {type(exc).__name__}: {exc}")
        raise


@shared_task(name=tasknames.EXPORT_FINISH)
def finish(export_id: int) -> None:
    try:
        service.finish(runtime.database(), runtime.storage().get, export_id)
    except Exception as exc:
        service.fail(runtime.database(), export_id, f"finish: {type(exc).__name__}: {exc}")
        raise


@shared_task(name=tasknames.EXPORT_REFRESH_DOCUMENTS)
def refresh_documents(project_id: int | None = None) -> dict[int, int]:
    """One project's stale documents, or (the beat) those of every project that has exported;
    returns project id -> documents kept."""
    db = runtime.database()
    if project_id is None:
        with db.session_scope() as session:
            project_ids = service.projects_to_refresh(session)
    else:
        project_ids = [project_id]
    return {p: service.refresh_documents(db, p).documents for p in project_ids}
