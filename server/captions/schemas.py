from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CaptionOut(BaseModel):
    caption: str
    tokens: int = Field(description="CLIP context tokens of the caption, start and end included")
    trimmed: bool = Field(description="whether trailing groups were dropped to fit CLIP's 77 tokens")
    values: dict[str, Any] = Field(
        description="category key -> the label value the caption was composed from"
    )


class CaptionPreviewIn(BaseModel):
    """Draft answers (category key -> value key, bool, list of keys or text), as the review UI holds them."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any] = Field(default_factory=dict, max_length=1000)
