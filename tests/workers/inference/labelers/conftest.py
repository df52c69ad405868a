from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from PIL import Image

from workers.contracts import CategoryPrediction, CategorySpec, ImageRef
from workers.inference.images import load_image


@pytest.fixture(scope="session")
def images(image_refs: list[ImageRef]) -> list[Image.Image]:
    return [load_image(ref) for ref in image_refs]


def assert_valid(
    predictions: Sequence[Mapping[str, CategoryPrediction]], categories: Sequence[CategorySpec]
) -> None:
    """Every closed prediction is a distribution over the category's values that sums to 1."""
    by_key = {c.key: c for c in categories}
    for per_image in predictions:
        for key, prediction in per_image.items():
            category = by_key[key]
            assert 0.0 <= prediction.confidence <= 1.0
            if category.kind == "text":
                assert isinstance(prediction.value, str) and prediction.distribution == {}
                continue
            assert list(prediction.distribution) == category.value_keys
            assert sum(prediction.distribution.values()) == pytest.approx(1.0, abs=1e-9)
            assert all(0.0 <= p <= 1.0 for p in prediction.distribution.values())
            if category.kind == "boolean":
                assert isinstance(prediction.value, bool)
            elif category.kind == "multi":
                assert isinstance(prediction.value, list) and set(prediction.value) <= set(
                    category.value_keys
                )
            else:
                assert prediction.value in category.value_keys


def assert_when_respected(predictions: Sequence[Mapping[str, CategoryPrediction]]) -> None:
    """With coat.worn answered, coat.color appears exactly when True and top.fit exactly when False."""
    for per_image in predictions:
        worn = per_image["coat.worn"].value
        assert ("coat.color" in per_image) == (worn is True)
        assert ("top.fit" in per_image) == (worn is False)
