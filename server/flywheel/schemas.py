from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EvalSetIn(BaseModel):
    size: int = Field(ge=1, le=100_000, description="subjects the evaluation set should hold")


class EvalSetOut(BaseModel):
    size: int = Field(description="subjects reserved")
    target_size: int
    labeled: int = Field(description="reserved subjects people have answered")
    fields_labeled: int


class RoundIn(BaseModel):
    trigger: str = Field(default="manual", max_length=50, pattern=r"^[a-z_]+$")


class RollbackIn(BaseModel):
    model_version_id: int


class PromoteIn(BaseModel):
    """A lead's override of the gate: the rejected candidate becomes active, with the reason kept."""

    model_version_id: int
    reason: str = Field(min_length=3, max_length=1000)


class AuditOut(BaseModel):
    """What reviewers found auditing auto-accepted labels: accuracy with its Wilson interval."""

    audited: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None


class CategoryScoreOut(BaseModel):
    key: str
    support: int
    correct: int
    accuracy: float | None
    low: float
    high: float
    cut: float | None
    trusted: bool


class RoundOut(BaseModel):
    id: int
    number: int
    status: str = Field(description="queued | training | promoted | rejected | failed")
    trigger: str
    decision: str | None
    reasons: list[Any]
    candidate_id: int | None
    baseline_id: int | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, Any] = Field(description="candidate and baseline per category, training figures")
    activity: dict[str, Any] = Field(
        description="fields decided by people and auto-accepted since the previous round, human share, "
        "fields per person-hour, audited accuracy so far"
    )


class FlywheelOut(BaseModel):
    active_model_version_id: int
    active_model_version: str
    cold_start: bool
    eval_set: EvalSetOut
    categories: list[CategoryScoreOut]
    trusted: list[str]
    macro_accuracy: float | None
    rounds: int
    activity: dict[str, Any]
    activity_computed_at: datetime = Field(
        description="when the activity was counted: now, or by the beat for a large project (at most a few "
        "minutes ago)"
    )
