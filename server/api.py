"""The API's table of contents: every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from server.assignments.router import router as assignments
from server.auth.router import router as auth
from server.images.router import router as images
from server.labelers.router import router as labelers
from server.operations.router import router as operations
from server.prelabel.router import router as prelabel
from server.projects.router import router as projects
from server.sources.router import router as sources
from server.taxonomy.router import router as taxonomy

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for router in (operations, auth, projects, taxonomy, sources, images, labelers, prelabel, assignments):
    api_router.include_router(router)
