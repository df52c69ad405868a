from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class SubjectOut(BaseModel):
    id: int
    image_id: int
    bbox: list[int] | None
    shot_type: str | None
    parsing_mask_url: str | None


class ImageRefOut(BaseModel):
    id: int
    width: int
    height: int
    url: str
    thumbnail_url: str


class ValueOut(BaseModel):
    key: str
    label: str


class LabelOut(BaseModel):
    value: Any
    version: int
    state: str
    confidence: float | None


class PredictionOut(BaseModel):
    value: Any
    confidence: float
    distribution: dict[str, float]


class CategoryOut(BaseModel):
    id: int
    key: str
    region: str
    region_name: str
    question: str
    kind: str
    values: list[ValueOut]
    label: LabelOut | None
    prediction: PredictionOut | None
    parsing_ids: list[int]
    when: dict[str, Any] | None


class AssignmentOut(BaseModel):
    id: int
    project_id: int
    kind: str
    status: str
    lease_expires_at: datetime | None
    priority: float
    subject: SubjectOut
    image: ImageRefOut
    categories: list[CategoryOut]
    caption_preview: str


class Answer(BaseModel):
    category_id: int
    value: Any
    label_version: int | None = Field(default=None, description="the label version the client saw")


class SubmitIn(BaseModel):
    client_id: str = Field(min_length=8, max_length=100)
    answers: list[Answer] = Field(max_length=500)
    lead_time_ms: int = Field(default=0, ge=0, le=24 * 3600 * 1000)


class LabelState(BaseModel):
    category_id: int
    value: Any
    version: int
    state: str


class SubmitOut(BaseModel):
    assignment_id: int
    status: str
    changed_fields: int
    labels: list[LabelState]
    undo_until: datetime | None


class SkipIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class HeartbeatOut(BaseModel):
    lease_expires_at: datetime


class QueueStats(BaseModel):
    queued: int
    leased: int
    submitted: int
    by_kind: dict[str, dict[str, int]]
    mine_submitted: int


class GoldIn(BaseModel):
    subject_id: int


class AnnotatorScore(BaseModel):
    user_id: int
    email: str
    gold_answers: int
    gold_correct: int
    accuracy: float | None
    by_category: dict[str, dict[str, int]]
