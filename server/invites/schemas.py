from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from server.orm.enums import Role


class InviteCreate(BaseModel):
    email: EmailStr
    role: Role = Role.annotator
    expires_in_hours: int = Field(default=72, ge=1, le=24 * 30)


class InviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class InviteCreated(InviteOut):
    token: str = Field(description="shown once; the table keeps only its hash")
    url: str = Field(description="the page the invitee opens: /invite/<token>")


class InvitePreview(BaseModel):
    project_name: str
    email: str
    role: Role
    expires_at: datetime
    account_exists: bool = Field(description="accept then needs that account's session, not a password")


class InviteAccept(BaseModel):
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=10, max_length=1000)
