from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ExportFormat = Literal["webdataset", "cosmicman", "jsonl", "labelstudio"]
# Gold labels are verified ones a reviewer confirmed: they come with "verified".
ExportState = Literal["verified", "auto_accepted"]
# A quality metric's name, as the analyzers write them (the plan looks it up in the database).
QualityMetric = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ExportFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    states: list[ExportState] = Field(default=["verified"], min_length=1)
    min_quality: dict[QualityMetric, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, description="image quality metric -> minimum value"
    )
    subject_ids: list[int] | None = Field(default=None, max_length=1_000_000)
    source_ids: list[int] | None = Field(default=None, max_length=10_000)
    since_export_id: int | None = Field(default=None, description="only subjects whose labels changed since")

    def label_states(self) -> list[str]:
        states: set[str] = set(self.states)
        if "verified" in states:
            states.add("gold")
        return sorted(states)


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shard_size: int = Field(default=1000, ge=1, le=1_000_000, description="samples per shard at most")
    shard_bytes: int | None = Field(default=None, ge=1 << 16, description="image bytes per shard at most")
    image_url_prefix: str | None = Field(default=None, max_length=1000, description="Label Studio data.image")


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    destination: str | None = Field(
        default=None,
        max_length=1000,
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,62}(/[A-Za-z0-9._\-/]*)?$",
        description="an s3:// URL; by default a folder of the server's data directory",
    )
    filters: ExportFilters = ExportFilters()
    options: ExportOptions = ExportOptions()


class ExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    snapshot_id: int
    format: str
    destination: str
    options: dict[str, Any]
    status: str
    progress: float
    counts: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class ExportDetail(ExportOut):
    filters: dict[str, Any]
    label_event_high_water: int
    include_sensitive: bool = Field(
        description="whether sensitive categories are exported: the project's setting when the export began"
    )
    manifest: dict[str, Any] | None
    note: str | None = Field(
        default=None, description="why a finished export holds no sample, and how to get some; null otherwise"
    )
