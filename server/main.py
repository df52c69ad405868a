"""create_app(): lifespan, middleware, error handlers, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api import api_router
from server.core import runtime
from server.core.config import get_settings
from server.core.http import install_error_handlers
from server.core.logging import configure_logging
from server.warmup import warm_up
from server.web import mount_web
from server.worker import install_job_sender

# The API serves JSON and images only; the UI (when built) ships its own assets from 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    """Adds the security headers to every HTTP response (a CSP only where the route set none).

    Plain ASGI rather than `@app.middleware("http")`: the latter runs each request through a
    task and a memory stream, which costs the review hot path about a millisecond.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    install_job_sender()
    if get_settings().warm_up:
        # Before the first request (a thread: it reads the database).
        await run_in_threadpool(warm_up, runtime.database())
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

    app.add_middleware(SecurityHeaders)
    app.include_router(api_router)
    mount_web(app)  # last: the built UI takes every path outside /api
    return app
