"""What the server and the GPU worker say to each other: queue and task names, payloads, results.

Everything here is plain pydantic and the standard library, because the API process imports this
module and must never load torch. Payloads cross Celery as JSON: send `model.model_dump(mode="json")`
and rebuild with `Model.model_validate(payload)`.

The GPU side is stateless: a payload names the images (URI and sha256), the model (ModelSpec) and,
for prelabelling, the taxonomy categories to answer. Results echo `batch_id`, `project_id` and
`model_version_id`, so the CPU-side persist tasks can upsert on natural keys and a redelivered
message writes nothing twice. A bad image fails only itself (an `ImageError` on its item); a bad
model or payload fails the task.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"

ANALYZE = "gpu.analyze"
EMBED = "gpu.embed"
PRELABEL = "gpu.prelabel"
TRAIN = "gpu.train"

# Implemented by the server's CPU worker; the GPU tasks send their results there.
PERSIST_ANALYSIS = "cpu.persist_analysis"
PERSIST_EMBEDDINGS = "cpu.persist_embeddings"
PERSIST_PREDICTIONS = "cpu.persist_predictions"
PERSIST_TRAINING = "cpu.persist_training"

# heads: linear heads on cached backbone embeddings; vqa_lora: LoRA adapters on the VQA labeler.
TrainerKind = Literal["heads", "vqa_lora"]
ModelFamily = Literal["open_clip", "vqa", "captioner", "heads", "stats", "detector", "parser", "quality"]
CategoryKind = Literal["single", "multi", "boolean", "text"]
ShotType = Literal["full_body", "nearly_full_body", "upper_body", "portrait", "headshot"]
ImageErrorCode = Literal[
    "not_found",
    "unreadable",
    "too_large",
    "too_small",
    "checksum_mismatch",
    "unsupported_uri",
    "missing_embedding",
]
# A predicted value: a value key (single), value keys (multi), a bool (boolean) or free text (text).
Value = bool | str | list[str]

# The 18 ATR human-parsing labels, in label-id order: parsing masks hold these ids.
ATR_LABELS: tuple[str, ...] = (
    "background",
    "hat",
    "hair",
    "sunglasses",
    "upper_clothes",
    "skirt",
    "pants",
    "dress",
    "belt",
    "left_shoe",
    "right_shoe",
    "face",
    "left_leg",
    "right_leg",
    "left_arm",
    "right_arm",
    "bag",
    "scarf",
)
BOOLEAN_VALUE_KEYS = ("yes", "no")


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------------
# Models and images
# ---------------------------------------------------------------------------------------------


class ModelSpec(Contract):
    """Which model to run. `source` is a local folder (production: a configured path) or a hub id."""

    family: ModelFamily
    source: str = Field(min_length=1)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    options: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """Stable identity of the weights, e.g. the backbone version embeddings are cached under."""
        return f"{self.family}/{self.name}@{self.version}"


class ImageRef(Contract):
    image_id: int
    uri: str = Field(min_length=1, description="file:// URI or plain local path (s3:// later)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ImageError(Contract):
    code: ImageErrorCode
    detail: str


# ---------------------------------------------------------------------------------------------
# Taxonomy as the workers see it
# ---------------------------------------------------------------------------------------------


class ValueCondition(Contract):
    """`{category, equals}`, `{category, in}` or `{category, not_in}`: exactly one test."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    category: str
    equals: bool | str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ValueCondition:
        tests = [t for t in (self.equals, self.in_, self.not_in) if t is not None]
        if len(tests) != 1:
            raise ValueError("a condition needs exactly one of equals, in, not_in")
        return self

    @model_serializer(mode="wrap")
    def _plain(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The taxonomy stores conditions as {category, <one test>}: no null siblings on the wire.
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}

    def evaluate(self, values: Mapping[str, Value | None]) -> bool | None:
        """True/False given the values known so far; None when `category` is not among them.

        A key present with None means the category is known not to apply, so nothing below it does.
        """
        if self.category not in values:
            return None
        value = values[self.category]
        if value is None:
            return False
        chosen = {_as_key(v) for v in value} if isinstance(value, list) else {_as_key(value)}
        if self.equals is not None:
            return _as_key(self.equals) in chosen
        if self.in_ is not None:
            return bool(chosen & set(self.in_))
        assert self.not_in is not None
        return not chosen & set(self.not_in)

    def categories(self) -> set[str]:
        return {self.category}


class AllCondition(Contract):
    all: list[Condition] = Field(min_length=1)

    def evaluate(self, values: Mapping[str, Value | None]) -> bool | None:
        results = [c.evaluate(values) for c in self.all]
        if False in results:
            return False
        return None if None in results else True

    def categories(self) -> set[str]:
        return set().union(*(c.categories() for c in self.all))


class AnyCondition(Contract):
    any: list[Condition] = Field(min_length=1)

    def evaluate(self, values: Mapping[str, Value | None]) -> bool | None:
        results = [c.evaluate(values) for c in self.any]
        if True in results:
            return True
        return None if None in results else False

    def categories(self) -> set[str]:
        return set().union(*(c.categories() for c in self.any))


Condition = Annotated[ValueCondition | AllCondition | AnyCondition, Field(union_mode="smart")]
AllCondition.model_rebuild()
AnyCondition.model_rebuild()


def _as_key(value: bool | str) -> str:
    # Boolean categories store bools but their values are keyed "yes"/"no" everywhere else.
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class ValueSpec(Contract):
    key: str = Field(min_length=1)
    label: str | None = Field(default=None, description="answer text; defaults to the key")
    prompts: list[str] = Field(default_factory=list, description="zero-shot prompts")

    @property
    def answer(self) -> str:
        return self.label if self.label is not None else self.key.replace("_", " ")


class CategorySpec(Contract):
    key: str = Field(pattern=r"^[a-z0-9_]+\.[a-z0-9_.]+$", description='full key, e.g. "top.color"')
    kind: CategoryKind
    question: str = Field(min_length=1)
    values: list[ValueSpec] = Field(default_factory=list)
    when: Condition | None = None

    @model_validator(mode="after")
    def _values_fit_kind(self) -> CategorySpec:
        keys = [v.key for v in self.values]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.key}: duplicate value keys")
        if self.kind in ("single", "multi") and len(keys) < 2:
            raise ValueError(f"{self.key}: a {self.kind} category needs at least two values")
        if self.kind == "boolean" and keys and sorted(keys) != sorted(BOOLEAN_VALUE_KEYS):
            raise ValueError(f"{self.key}: boolean values must be keyed yes and no")
        if self.kind == "text" and keys:
            raise ValueError(f"{self.key}: a text category has no values")
        return self

    @property
    def value_keys(self) -> list[str]:
        if self.kind == "boolean" and not self.values:
            return list(BOOLEAN_VALUE_KEYS)
        return [v.key for v in self.values]

    def answers(self) -> dict[str, str]:
        """Value key -> the answer text a VLM is scored on, in `value_keys` order."""
        given = {v.key: v.answer for v in self.values}
        return {k: given.get(k, k) for k in self.value_keys}


class CategoryPrediction(Contract):
    value: Value
    confidence: float = Field(ge=0.0, le=1.0)
    distribution: dict[str, float] = Field(
        default_factory=dict, description="value key -> probability; empty for text"
    )


# ---------------------------------------------------------------------------------------------
# Tasks: analyze
# ---------------------------------------------------------------------------------------------


class BatchHeader(Contract):
    batch_id: int
    project_id: int


class AnalyzeBatch(BatchHeader):
    images: list[ImageRef] = Field(min_length=1)
    detector: ModelSpec | None = Field(default=None, description="None: whole-image person box")
    parser: ModelSpec | None = Field(default=None, description="None: no parsing mask")
    quality: bool = True
    mask_dir: str | None = Field(
        default=None, description="write masks as <mask_dir>/<sha256>.png; None: inline base64"
    )


class PersonBox(Contract):
    """The person's box in original image pixels, and how sure the detector was.

    `source` "whole_image" is the weight-free fallback (no detector configured): the box is the
    frame and the score 1.0 by convention, as the demo's images are assumed to show one person.
    """

    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)
    score: float = Field(ge=0.0, le=1.0)
    source: Literal["detector", "whole_image"] = "detector"


class AnalyzeItem(Contract):
    image_id: int
    width: int | None = None
    height: int | None = None
    person: PersonBox | None = None
    shot_type: ShotType | None = None
    detector_score: float | None = Field(default=None, description="best person score, even if rejected")
    quality: dict[str, float] = Field(default_factory=dict)
    parsing_mask_png_b64: str | None = None
    parsing_mask_uri: str | None = None
    error: ImageError | None = None


class AnalyzeResult(BatchHeader):
    detector_version: str | None
    parser_version: str | None
    items: list[AnalyzeItem]


# ---------------------------------------------------------------------------------------------
# Tasks: embed
# ---------------------------------------------------------------------------------------------


class EmbedBatch(BatchHeader):
    model: ModelSpec
    images: list[ImageRef] = Field(min_length=1)


class EmbedItem(Contract):
    image_id: int
    vector_b64: str | None = Field(default=None, description="little-endian float32, L2-normalised")
    error: ImageError | None = None

    def vector_bytes(self) -> bytes:
        if self.vector_b64 is None:
            raise ValueError(f"image {self.image_id} has no vector")
        return base64.b64decode(self.vector_b64)


class EmbedResult(BatchHeader):
    backbone_version: str = Field(description="ModelSpec.ref of the backbone")
    dim: int = Field(gt=0)
    items: list[EmbedItem]

    @model_validator(mode="after")
    def _vectors_have_dim(self) -> EmbedResult:
        for item in self.items:
            if item.vector_b64 is not None and len(item.vector_bytes()) != 4 * self.dim:
                raise ValueError(f"image {item.image_id}: vector is not {self.dim} float32 values")
        return self


def encode_vector(little_endian_float32: bytes) -> str:
    return base64.b64encode(little_endian_float32).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Tasks: prelabel
# ---------------------------------------------------------------------------------------------


class PrelabelImage(ImageRef):
    embedding_b64: str | None = Field(
        default=None, description="cached backbone embedding (heads labelers read this, not pixels)"
    )


class PrelabelBatch(BatchHeader):
    model_version_id: int
    model: ModelSpec
    backbone: ModelSpec | None = Field(
        default=None, description="heads only: the backbone the heads were trained on"
    )
    categories: list[CategorySpec] = Field(min_length=1)
    images: list[PrelabelImage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_categories(self) -> PrelabelBatch:
        keys = [c.key for c in self.categories]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate category keys")
        return self


class PrelabelItem(Contract):
    image_id: int
    predictions: dict[str, CategoryPrediction] = Field(default_factory=dict)
    caption: str | None = Field(default=None, description="scene caption, captioners only")
    error: ImageError | None = None


class PrelabelResult(BatchHeader):
    model_version_id: int
    model_version: str = Field(description="ModelSpec.ref of the labeler")
    skipped_categories: list[str] = Field(
        default_factory=list, description="categories this labeler cannot answer (e.g. text for CLIP)"
    )
    items: list[PrelabelItem]


# ---------------------------------------------------------------------------------------------
# Tasks: train (a flywheel round's candidate labeler)
# ---------------------------------------------------------------------------------------------


class TrainExample(Contract):
    """One verified subject: its image (and cached embedding, for heads) and its people's answers."""

    image: PrelabelImage
    answers: dict[str, Value] = Field(description="category key -> verified value")


class TrainJob(Contract):
    """Train a candidate on verified labels, then predict the evaluation images with it.

    The CPU side builds `examples` from verified labels only, never from the evaluation set;
    `evaluate` carries the evaluation set's images for inference (they are never trained on).
    `base` is the backbone (heads) or the VQA model to adapt (vqa_lora). The trained artifact is
    written under `output_dir` (a local folder or file:// URI), and the result's `model` is the
    ModelSpec that loads it through the ordinary labeler registry.
    """

    round_id: int
    project_id: int
    model_version_id: int = Field(description="the candidate's model_versions row")
    trainer: TrainerKind
    base: ModelSpec
    categories: list[CategorySpec] = Field(min_length=1)
    examples: list[TrainExample] = Field(min_length=1)
    evaluate: list[PrelabelImage] = Field(default_factory=list)
    output_dir: str = Field(min_length=1)
    version: str = Field(min_length=1, description="the candidate's ModelSpec.version")
    options: dict[str, JsonValue] = Field(
        default_factory=dict, description="seed, epochs/steps, learning rate, LoRA rank, ..."
    )


class TrainResult(Contract):
    round_id: int
    project_id: int
    model_version_id: int
    trainer: TrainerKind
    model: ModelSpec | None = Field(default=None, description="None when training failed")
    metrics: dict[str, float] = Field(default_factory=dict, description="training-side figures")
    examples: int = 0
    predictions: list[PrelabelItem] = Field(
        default_factory=list, description="the candidate's answers on `evaluate`, in its order"
    )
    error: str | None = None
