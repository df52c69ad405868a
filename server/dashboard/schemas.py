from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FunnelStage(BaseModel):
    key: str = Field(description="ingested | prelabeled | routed | verified | exported")
    count: int
    rate: float | None = Field(description="share of the previous stage (None when it is empty)")


class Funnel(BaseModel):
    """Images through the pipeline, then subjects through people and exports."""

    stages: list[FunnelStage]
    filtered: int
    filtered_by_reason: dict[str, int]
    rejected_at_ingest: int
    rejected_by_reason: dict[str, int]


class SourceFunnel(BaseModel):
    source_id: int | None
    name: str
    kind: str | None
    funnel: Funnel


class FunnelOut(BaseModel):
    project: Funnel
    sources: list[SourceFunnel]
    computed_at: datetime = Field(
        description="when these counts were taken: now, or by the beat for a large project (at most a few "
        "minutes ago)"
    )


class WorkOut(BaseModel):
    """Open assignments (queued or leased) at the end of each hour, and submits per hour, per kind."""

    since: datetime
    hours: list[datetime] = Field(description="the start of each hourly bucket")
    queue_depth: dict[str, list[int]]
    throughput: dict[str, list[int]]
    open_now: dict[str, int]
    submitted_total: int


class AnnotatorRow(BaseModel):
    user_id: int
    email: str
    display_name: str
    role: str
    submitted: int
    items_per_hour: float | None = Field(description="submits per hour of lead time")
    median_lead_time_ms: float | None
    gold_answers: int
    gold_correct: int
    gold_accuracy: float | None
    audited: int = Field(description="their reviews that an audit checked")
    audit_changed: int = Field(description="of those, audits that changed a field")
    audits_done: int
    adjudications_done: int
    last_submitted_at: datetime | None
