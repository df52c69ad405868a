from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Event = Literal["assignment.submitted", "round.finished", "export.done"]
EVENTS: tuple[Event, ...] = ("assignment.submitted", "round.finished", "export.done")


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2000, description="http(s); public addresses only")
    events: list[Event] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("a webhook URL is http:// or https://")
        return url


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[Event]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown once: verify X-AA-Signature with it")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
