from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.exc import SQLAlchemyError

from server.core import runtime
from server.core.config import get_settings
from server.operations import service

router = APIRouter(tags=["operations"])


@router.get("/health")
def health(response: Response) -> dict[str, Any]:
    """Public: database, broker and worker state. 503 when any of them is down."""
    settings = get_settings()
    report: dict[str, Any] = {"broker": service.check_broker(settings)}
    try:
        with runtime.database().session_scope() as session:
            report["database"] = service.check_database(session)
            report["workers"] = service.check_workers(session, settings)
    except SQLAlchemyError as exc:
        report["database"] = {"ok": False, "detail": type(exc).__name__}
        report["workers"] = {"ok": False, "detail": "unknown while the database is down"}
    report["ok"] = all(part["ok"] for part in report.values() if isinstance(part, dict))
    if not report["ok"]:
        response.status_code = 503
    return report
