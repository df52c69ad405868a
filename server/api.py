"""The API's table of contents: every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from server.assignments.router import router as assignments
from server.auth.router import router as auth
from server.captions.router import router as captions
from server.dashboard.router import router as dashboard
from server.exports.router import router as exports
from server.flywheel.router import router as flywheel
from server.images.router import router as images
from server.interchange.router import router as interchange
from server.invites.router import router as invites
from server.labelers.router import router as labelers
from server.operations.router import router as operations
from server.prelabel.router import router as prelabel
from server.projects.router import router as projects
from server.sources.router import router as sources
from server.taxonomy.router import router as taxonomy
from server.webhooks.router import router as webhooks

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
# A request is matched against the routes in this order, one by one: the review queue's routes
# (the hot path: every `next`, submit and heartbeat) come first. No path of theirs matches a
# route of another router (tests/server/test_api_routes.py).
for router in (assignments, operations, auth, projects, taxonomy, sources, images, labelers, prelabel):
    api_router.include_router(router)
api_router.include_router(captions)
api_router.include_router(exports)
api_router.include_router(flywheel)
api_router.include_router(interchange)
api_router.include_router(invites)
api_router.include_router(webhooks)
api_router.include_router(dashboard)
