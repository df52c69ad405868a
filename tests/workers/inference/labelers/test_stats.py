from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.workers.inference.labelers.conftest import assert_valid
from workers.contracts import CategorySpec, ModelSpec
from workers.inference.labelers.stats import FEATURES_PER_CELL, StatsLabeler


def test_embeddings_are_unit_vectors_of_grid_statistics(
    stats_spec: ModelSpec, images: list[Image.Image]
) -> None:
    labeler = StatsLabeler.load(stats_spec.model_copy(update={"options": {"grid": 8}}))
    vectors = labeler.embed(images)
    assert vectors.shape == (len(images), 8 * 8 * FEATURES_PER_CELL) == (len(images), labeler.dim)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(labeler.embed(images), vectors)


def test_colour_and_layout_change_the_embedding(stats_spec: ModelSpec) -> None:
    labeler = StatsLabeler.load(stats_spec)
    red, blue = Image.new("RGB", (50, 80), (200, 30, 30)), Image.new("RGB", (50, 80), (30, 30, 200))
    top_red = Image.new("RGB", (50, 80), (30, 30, 200))
    top_red.paste((200, 30, 30), (0, 0, 50, 40))
    vectors = labeler.embed([red, blue, top_red])
    assert float(vectors[0] @ vectors[1]) < 0.99
    assert float(vectors[2] @ vectors[0]) < 0.99 and float(vectors[2] @ vectors[1]) < 0.99


def test_on_its_own_it_answers_with_uniform_distributions(
    stats_spec: ModelSpec, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    predictions = StatsLabeler.load(stats_spec).predict(images, categories)
    assert_valid(predictions, categories)
    sleeve = predictions[0]["top.sleeve_length"]
    assert sleeve.confidence == pytest.approx(1 / 3)


def test_grid_is_bounded(stats_spec: ModelSpec) -> None:
    with pytest.raises(ValueError):
        StatsLabeler.load(stats_spec.model_copy(update={"options": {"grid": 0}}))
