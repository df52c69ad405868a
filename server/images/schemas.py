from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ImageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    source_id: int | None
    sha256: str
    original_name: str
    mime: str
    width: int
    height: int
    bytes: int
    stage: str
    filter_reason: str | None
    quality: dict[str, Any]
    licence: str
    consent: str
    created_at: datetime


class StageCounts(BaseModel):
    stages: dict[str, int]
    filtered_by_reason: dict[str, int]
    total: int
