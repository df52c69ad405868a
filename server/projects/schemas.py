from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from server.orm.enums import Role
from workers.contracts import ModelSpec

WEIGHT_FREE_BACKBONE = ModelSpec(family="stats", source="builtin", name="grid-stats", version="1")


class PipelineSettings(BaseModel):
    """Which models analyse, embed and pre-label this project's images."""

    model_config = ConfigDict(extra="forbid")

    backbone: ModelSpec = Field(
        default=WEIGHT_FREE_BACKBONE, description="embeds every image (cached per image and version)"
    )
    labeler: ModelSpec = Field(default=WEIGHT_FREE_BACKBONE, description="the initial pre-labeler")
    detector: ModelSpec | None = Field(default=None, description="None: the whole frame is the person")
    parser: ModelSpec | None = Field(default=None, description="human parsing (18 ATR labels)")
    batch_size: int = Field(default=32, ge=1, le=512)


class ProjectSettings(BaseModel):
    """What a lead tunes per project. Stored as JSON on the project, validated here."""

    model_config = ConfigDict(extra="forbid")

    pipeline: PipelineSettings = PipelineSettings()
    min_side: int | None = Field(default=None, ge=1, le=20000, description="overrides AA_INGEST__MIN_SIDE")
    default_trust_threshold: float = Field(default=0.85, gt=0, le=1)
    audit_share: float = Field(default=0.05, ge=0, le=1)
    include_sensitive: bool = False


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    description: str = Field(default="", max_length=2000)
    taxonomy: str = Field(default="human-v1", description="a shipped taxonomy name")
    settings: ProjectSettings = ProjectSettings()


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    slug: str
    description: str
    taxonomy_version_id: int | None
    settings: ProjectSettings
    created_at: datetime
    role: Role | None = None


class MemberAdd(BaseModel):
    email: str = Field(max_length=320)
    role: Role


class MemberOut(BaseModel):
    user_id: int
    email: str
    display_name: str
    role: Role
