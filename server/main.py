"""create_app(): lifespan, middleware, error handlers, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from server.api import api_router
from server.core import runtime
from server.core.config import get_settings
from server.core.http import install_error_handlers
from server.core.logging import configure_logging
from server.web import mount_web
from server.worker import install_job_sender

# The API serves JSON and images only; the UI (when built) ships its own assets from 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    install_job_sender()
    # Everything loaded at start-up lives as long as the process: keep it out of the collector's
    # full passes, which otherwise pause a request for ~100 ms every half minute.
    gc.freeze()
    yield
    runtime.database().dispose()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="Annotate Anyone",
        version="0.1.0",
        lifespan=_lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    app.include_router(api_router)
    mount_web(app)  # last: the built UI takes every path outside /api
    return app
