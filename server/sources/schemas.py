from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FolderSourceCreate(BaseModel):
    kind: Literal["folder"] = "folder"
    name: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, max_length=2000, description="relative to a configured source root")
    licence: str = Field(default="", max_length=200)
    consent: str = Field(default="", max_length=200)


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    kind: str
    name: str
    config: dict[str, Any]
    licence: str
    consent: str
    created_at: datetime


class IngestRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source_id: int
    project_id: int
    status: str
    items_total: int
    items_done: int
    added: int
    duplicates: int
    rejected: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RejectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int | None
    name: str
    reason: str
    detail: str
    created_at: datetime
