from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ValueOut(BaseModel):
    key: str
    label: str
    prompts: list[str]
    caption: str | None


class CategoryOut(BaseModel):
    id: int
    key: str
    question: str
    kind: str
    when: dict[str, Any] | None
    caption: dict[str, Any]
    trust_threshold: float
    sensitive: bool
    values: list[ValueOut]


class RegionOut(BaseModel):
    key: str
    name: str
    parsing_ids: list[int]
    categories: list[CategoryOut]


class TaxonomyVersionSummary(BaseModel):
    id: int
    name: str
    version: int
    content_hash: str
    created_at: datetime
    current: bool


class TaxonomyTree(TaxonomyVersionSummary):
    caption_groups: list[dict[str, Any]]
    regions: list[RegionOut]


class TaxonomyUpload(BaseModel):
    yaml: str = Field(min_length=1, max_length=2_000_000)
