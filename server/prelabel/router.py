from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.core.http import DbSession
from server.prelabel import service
from server.projects.deps import ProjectMember

router = APIRouter(tags=["prelabel"])


@router.get("/projects/{project_id}/pipeline")
def pipeline_progress(session: DbSession, access: ProjectMember) -> dict[str, Any]:
    """Images per stage, subjects, cached embeddings and the active labeler's predictions."""
    return service.progress(session, access.project)
