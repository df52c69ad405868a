from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from server.core.http import DbSession
from server.labelers import service
from server.projects.deps import ProjectMember

router = APIRouter(tags=["labelers"])


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    family: str
    version: str
    status: str
    spec: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    promoted_at: datetime | None


@router.get("/projects/{project_id}/model-versions", response_model=list[ModelVersionOut])
def list_versions(session: DbSession, access: ProjectMember) -> list[ModelVersionOut]:
    return [ModelVersionOut.model_validate(v) for v in service.versions_of(session, access.project.id)]
