"""The Labeler interface and what every labeler shares: turning scores into predictions.

A labeler gets decoded RGB images and the categories to answer and returns, per image, a
`CategoryPrediction` per category it answered. Categories it cannot answer (`supports` is False,
e.g. free text for a zero-shot model) are left out, and so are categories whose `when` condition
is false given the labeler's own answers (`apply_conditions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import CategoryPrediction, CategorySpec, ModelSpec, Value

# A value of a multi category is chosen when its probability reaches this share of the top one.
MULTI_RELATIVE_THRESHOLD = 0.5


@runtime_checkable
class Labeler(Protocol):
    @property
    def spec(self) -> ModelSpec: ...

    def supports(self, category: CategorySpec) -> bool: ...

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]: ...


@runtime_checkable
class Preparing(Protocol):
    """A labeler whose per-image preprocessing can run in the decode threads, ahead of the model.

    `input_side` is the smallest image side the model needs, so JPEGs decode at the smallest
    DCT scale that still covers it.
    """

    @property
    def input_side(self) -> int: ...

    def prepare(self, image: Image.Image) -> object: ...

    def predict_prepared(
        self, prepared: Sequence[object], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]: ...

    def embed_prepared(self, prepared: Sequence[object]) -> NDArray[np.float32]: ...


@runtime_checkable
class Embedder(Protocol):
    """A labeler whose image embeddings are cached and reused by heads."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def dim(self) -> int: ...

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """(n, dim) float32, each row L2-normalised."""
        ...


@dataclass(frozen=True)
class Caption:
    text: str
    confidence: float


@runtime_checkable
class Captioner(Protocol):
    """A labeler that also writes a scene caption per image."""

    def predict_and_caption(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> tuple[list[dict[str, CategoryPrediction]], list[Caption]]: ...


def softmax(logits: NDArray[np.floating], temperature: float = 1.0) -> NDArray[np.float64]:
    """Row-wise softmax in float64, so that each row sums to 1 after conversion to Python floats."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    result: NDArray[np.float64] = exp / exp.sum(axis=-1, keepdims=True)
    return result


def decide(category: CategorySpec, probabilities: Sequence[float]) -> CategoryPrediction:
    """The value, confidence and distribution of a closed-vocabulary category.

    single: the argmax and its probability. boolean: yes when p(yes) >= 0.5, confidence the larger
    side. multi: every value within MULTI_RELATIVE_THRESHOLD of the top one; confidence is the
    probability mass of the chosen set.
    """
    keys = category.value_keys
    if len(keys) != len(probabilities):
        raise ValueError(f"{category.key}: {len(probabilities)} probabilities for {len(keys)} values")
    distribution = {k: float(p) for k, p in zip(keys, probabilities, strict=True)}
    top_key = max(distribution, key=lambda k: distribution[k])
    value: Value
    if category.kind == "single":
        value, confidence = top_key, distribution[top_key]
    elif category.kind == "boolean":
        yes = distribution["yes"]
        value, confidence = yes >= 0.5, max(yes, 1.0 - yes)
    elif category.kind == "multi":
        cut = MULTI_RELATIVE_THRESHOLD * distribution[top_key]
        value = [k for k in keys if distribution[k] >= cut]
        confidence = sum(distribution[k] for k in value)
    else:
        raise ValueError(f"{category.key}: text categories have no distribution")
    return CategoryPrediction(
        value=value, confidence=min(1.0, max(0.0, confidence)), distribution=distribution
    )


def dependency_order(categories: Sequence[CategorySpec]) -> list[CategorySpec]:
    """Categories sorted so that each comes after the categories its condition reads."""
    by_key = {c.key: c for c in categories}
    ordered: list[CategorySpec] = []
    state: dict[str, str] = {}

    def visit(category: CategorySpec) -> None:
        mark = state.get(category.key)
        if mark == "done":
            return
        if mark == "visiting":
            raise ValueError(f"condition cycle through {category.key}")
        state[category.key] = "visiting"
        for dependency in sorted(category.when.categories() if category.when else ()):
            if dependency in by_key:
                visit(by_key[dependency])
        state[category.key] = "done"
        ordered.append(category)

    for category in categories:
        visit(category)
    return ordered


def apply_conditions(
    categories: Sequence[CategorySpec], predictions: Mapping[str, CategoryPrediction]
) -> dict[str, CategoryPrediction]:
    """Drop predictions whose `when` is false given the other predicted values.

    A condition on a category this labeler did not answer cannot be judged here and keeps the
    prediction; the server, which holds every label, decides. A category dropped by its own
    condition counts as not applying, so its dependants are dropped too.
    """
    known: dict[str, Value | None] = {}
    kept: dict[str, CategoryPrediction] = {}
    for category in dependency_order(categories):
        prediction = predictions.get(category.key)
        if prediction is None:
            continue
        holds = category.when.evaluate(known) if category.when is not None else True
        if holds is False:
            known[category.key] = None
            continue
        known[category.key] = prediction.value
        kept[category.key] = prediction
    return kept


def closed_categories(categories: Sequence[CategorySpec]) -> list[CategorySpec]:
    return [c for c in categories if c.kind != "text"]
