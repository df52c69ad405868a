from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A watched source is looked at again at most every minute and at least every 30 days.
WatchSeconds = Annotated[int, Field(ge=60, le=30 * 86400)]


class FolderSourceCreate(BaseModel):
    kind: Literal["folder"] = "folder"
    name: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, max_length=2000, description="relative to a configured source root")
    licence: str = Field(default="", max_length=200)
    consent: str = Field(default="", max_length=200)
    watch_every_seconds: WatchSeconds | None = Field(
        default=None, description="watch the folder: ingest new files this long after the last run"
    )


class S3SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(
        min_length=6, max_length=1000, description="s3://bucket/prefix, under a prefix the deployment allows"
    )
    licence: str = Field(default="", max_length=200)
    consent: str = Field(default="", max_length=200)
    watch_every_seconds: WatchSeconds | None = None


class LinkedUrlListCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    list_url: str = Field(
        min_length=8, max_length=2000, description="where the CSV or parquet list lives; fetched by each run"
    )
    column: str = Field(default="url", min_length=1, max_length=200)
    licence: str = Field(default="", max_length=200)
    consent: str = Field(default="", max_length=200)
    watch_every_seconds: WatchSeconds | None = None


class SourceWatch(BaseModel):
    every_seconds: WatchSeconds | None = Field(description="null: the source is not watched")


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    kind: str
    name: str
    config: dict[str, Any]
    licence: str
    consent: str
    watch_every_seconds: int | None
    created_at: datetime


class IngestRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source_id: int
    project_id: int
    status: str
    trigger: str
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
