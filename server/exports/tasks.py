from __future__ import annotations

import structlog
from celery import shared_task

from server.core import runtime, tasknames
from server.exports import service

log = structlog.get_logger(__name__)


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
def refresh_documents(project_id: int | None = None, full: bool = False) -> dict[int, int]:
    """One project's stale documents (`full`: walking every subject, not only those changed
    since its last complete refresh), or (the beat) those of every project that has exported;
    returns project id -> documents kept. On the beat a project whose refresh fails is logged and
    the others still run; the task then fails, naming the projects that did."""
    db = runtime.database()
    if project_id is not None:
        return {project_id: service.refresh_documents(db, project_id, full=full).documents}
    with db.session_scope() as session:
        project_ids = service.projects_to_refresh(session)
    kept: dict[int, int] = {}
    failed: dict[int, Exception] = {}
    for project in project_ids:
        try:
            kept[project] = service.refresh_documents(db, project).documents
        except Exception as exc:
            log.exception("export.refresh_failed", project_id=project)
            failed[project] = exc
    if failed:
        names = ", ".join(f"{p} ({type(e).__name__}: {e})" for p, e in failed.items())
        raise RuntimeError(f"document refresh failed for projects {names}") from next(iter(failed.values()))
    return kept
