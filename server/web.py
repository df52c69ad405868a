"""The built web UI (`web/dist`, made by `make web`), served by the API at `/`.

Files of the build are served as they are; any other GET outside `/api` answers `index.html`, so
that a client route such as `/projects/3/review` survives a reload. Paths under `/api` never reach
it: an unknown one stays the API's 404, a wrong method on a known one its 405. Mount it after the
API routers: routes are matched in order and this one takes the rest.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

# Vite names every file under assets/ by its content hash: it never changes under that name.
_IMMUTABLE = "public, max-age=31536000, immutable"
# index.html names the current hashes, so a browser must ask for it again after a deploy.
_REVALIDATE = "no-cache"


class _SinglePageApp(StaticFiles):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=False)
        self._index = directory / "index.html"

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            if path.startswith("assets/") or path == "assets":
                # A missing hashed file is a stale page asking for an old build: say so plainly.
                return Response("not found", status_code=404, media_type="text/plain")
            response = FileResponse(self._index, media_type="text/html")
            response.headers["Cache-Control"] = _REVALIDATE
            return response
        response.headers["Cache-Control"] = _IMMUTABLE if path.startswith("assets/") else _REVALIDATE
        return response


class _OutsideTheApi(Mount):
    """A mount at `/` that does not match `/api/...`, so the router still tells a missing API
    route (404) from a wrong method on an existing one (405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = str(scope.get("path", ""))
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def mount_web(app: FastAPI, dist: Path = WEB_DIST) -> bool:
    """Serves the built UI at `/` when `dist` holds a build. Returns whether it did."""
    if not (dist / "index.html").is_file():
        return False
    app.router.routes.append(_OutsideTheApi("/", app=_SinglePageApp(dist), name="web"))
    return True
