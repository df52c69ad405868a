"""HTTP plumbing shared by every router: the request's unit of work and the error renderer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server.core import runtime
from server.core.errors import DomainError

log = structlog.get_logger(__name__)


def _session() -> Iterator[Session]:
    # The request owns the transaction: commit when the route returned, before the response
    # is sent, so an acknowledged write is a committed write.
    with runtime.database().session_scope() as session:
        yield session


DbSession = Annotated[Session, Depends(_session, scope="function")]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        body = {"error": "validation_failed", "detail": "the request is not valid", "errors": errors}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        # A lost or restarting database is an outage, not a bug: the client may retry.
        log.warning("db.unavailable", error=str(exc.orig))
        body = {"error": "unavailable", "detail": "the database is unavailable; retry shortly"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
