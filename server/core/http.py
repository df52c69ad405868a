"""HTTP plumbing shared by every router: the request's unit of work and the error renderer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
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

    @app.exception_handler(DataError)
    async def _does_not_fit(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (an id beyond 64 bits, a string past its column):
        # the request's fault, and nothing was written (the unit of work rolled back).
        log.warning("db.value_out_of_range", error=str(exc.orig).splitlines()[0])
        return JSONResponse(_OUT_OF_RANGE, status_code=422)

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        # SQLite's driver refuses an integer beyond 64 bits before the query runs.
        if "SQLite INTEGER" in str(exc):
            return JSONResponse(_OUT_OF_RANGE, status_code=422)
        log.error("http.unhandled", error=repr(exc))
        return JSONResponse({"error": "internal", "detail": "internal server error"}, status_code=500)


_OUT_OF_RANGE = {"error": "out_of_range", "detail": "a value in the request is beyond what can be stored"}
