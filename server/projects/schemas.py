from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


ShotType = Literal["full_body", "nearly_full_body", "upper_body", "portrait", "headshot"]


class AnalysisFilters(BaseModel):
    """What analysis keeps out of the dataset; a filtered image records which rule it failed."""

    model_config = ConfigDict(extra="forbid")

    min_sharpness: float | None = Field(default=None, ge=0, description="variance of the Laplacian")
    min_brightness: float | None = Field(default=None, ge=0, le=1)
    max_brightness: float | None = Field(default=None, ge=0, le=1)
    max_exposure_clipped: float | None = Field(default=None, ge=0, le=1)
    min_detector_score: float | None = Field(default=None, ge=0, le=1)
    shot_types: list[ShotType] | None = Field(default=None, description="None keeps every shot type")

    def reason_to_filter(
        self, quality: dict[str, float], shot_type: str | None, score: float | None
    ) -> str | None:
        below = [
            ("low_sharpness", self.min_sharpness, quality.get("sharpness")),
            ("too_dark", self.min_brightness, quality.get("brightness")),
            ("low_person_score", self.min_detector_score, score),
        ]
        above = [
            ("too_bright", self.max_brightness, quality.get("brightness")),
            ("clipped_exposure", self.max_exposure_clipped, quality.get("exposure_clipped")),
        ]
        for reason, threshold, value in below:
            if threshold is not None and value is not None and value < threshold:
                return reason
        for reason, threshold, value in above:
            if threshold is not None and value is not None and value > threshold:
                return reason
        if self.shot_types is not None and shot_type is not None and shot_type not in self.shot_types:
            return "shot_type"
        return None


REVIEW_ACTIONS = ("submit", "skip", "undo", "help", "next_category", "previous_category", "yes", "no")


class ReviewSettings(BaseModel):
    """How the review queue treats people's time."""

    model_config = ConfigDict(extra="forbid")

    lease_seconds: int = Field(default=300, ge=30, le=24 * 3600)
    undo_seconds: int = Field(default=120, ge=0, le=3600)
    # The share of served items that are gold (known answers), while unseen gold remains.
    gold_share: float = Field(default=0.1, ge=0, le=1)
    key_bindings: dict[str, str] = Field(
        default_factory=dict, description=f"action -> key; actions: {', '.join(REVIEW_ACTIONS)}"
    )

    @model_validator(mode="after")
    def _bindings_do_not_clash(self) -> ReviewSettings:
        unknown = set(self.key_bindings) - set(REVIEW_ACTIONS)
        if unknown:
            raise ValueError(f"unknown actions: {sorted(unknown)}")
        keys = [k.lower() for k in self.key_bindings.values()]
        if len(set(keys)) != len(keys):
            raise ValueError("two actions are bound to the same key")
        if any(k.isdigit() and len(k) == 1 for k in keys):
            raise ValueError("digits pick values and cannot be rebound")
        return self


class FlywheelSettings(BaseModel):
    """How rounds train, judge and route (server.flywheel)."""

    model_config = ConfigDict(extra="forbid")

    eval_set_size: int = Field(default=200, ge=0, le=100_000, description="subjects reserved for I_e")
    min_support: int = Field(
        default=30, ge=1, description="evaluation answers a category needs to be trusted"
    )
    target_precision: float = Field(
        default=0.98, gt=0, le=1, description="precision the per-category confidence cut aims at"
    )
    promotion_margin: float = Field(
        default=0.02, ge=0, le=1, description="the most any category's accuracy may fall in a promotion"
    )
    auto_round_after: int = Field(
        default=0, ge=0, description="start a round after this many newly verified subjects (0: never)"
    )
    round_every_hours: float | None = Field(default=None, gt=0, description="a scheduled round (None: off)")
    eval_passes: int = Field(
        default=2,
        ge=1,
        le=2,
        description="people who label each evaluation subject; 2: disagreements adjudicated",
    )
    adjudicate_audits: bool = Field(
        default=True, description="an audit answer that disagrees with the auto-accepted value is adjudicated"
    )
    trainer: Literal["heads", "vqa_lora"] = "heads"
    train_options: dict[str, float | int | str] = Field(default_factory=dict)


class ProjectSettings(BaseModel):
    """What a lead tunes per project. Stored as JSON on the project, validated here."""

    model_config = ConfigDict(extra="forbid")

    pipeline: PipelineSettings = PipelineSettings()
    filters: AnalysisFilters = AnalysisFilters()
    review: ReviewSettings = ReviewSettings()
    min_side: int | None = Field(default=None, ge=1, le=20000, description="overrides AA_INGEST__MIN_SIDE")
    default_trust_threshold: float = Field(default=0.85, gt=0, le=1)
    audit_share: float = Field(default=0.05, ge=0, le=1)
    include_sensitive: bool = False
    flywheel: FlywheelSettings = FlywheelSettings()


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
