from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from server.orm.enums import Role


class ProjectSettings(BaseModel):
    """What a lead tunes per project. Stored as JSON on the project, validated here."""

    model_config = ConfigDict(extra="forbid")

    labeler: str = Field(default="stats", description="the pre-label backbone family")
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
