from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.workers.inference.labelers.conftest import assert_valid
from workers.contracts import CategorySpec, ModelSpec
from workers.inference.labelers.stats import COLOUR_NAMES, FEATURES_PER_CELL, StatsLabeler, colour_names


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


PALETTE = {"red": (200, 30, 30), "blue": (40, 80, 200), "green": (40, 140, 60), "yellow": (240, 210, 40)}


def _figure(rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A two-colour scene with a standing 'person' in the middle: torso of the labelled colour,
    legs of another, at a random height and size; the scene reuses the same colours, though not
    the torso's right behind it (a torso the colour of its backdrop is invisible)."""
    names = list(PALETTE)
    pixels = np.zeros((96, 72, 3), dtype=np.float64)
    horizon = int(rng.integers(30, 70))
    pixels[:horizon] = PALETTE[names[int(rng.integers(4))]]
    pixels[horizon:] = PALETTE[names[int(rng.integers(4))]]
    top = int(rng.integers(0, 30))
    bottom = int(rng.integers(top + 40, 97))
    waist = top + (bottom - top) // 2
    behind = {tuple(pixels[row, 0]) for row in range(top, waist)}
    torso = str(rng.choice([n for n in names if PALETTE[n] not in behind]))
    legs = names[int(rng.integers(4))]
    pixels[top:waist, 26:46] = PALETTE[torso]
    pixels[waist:bottom, 29:43] = PALETTE[legs]
    pixels += rng.normal(0, 12, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), torso


@pytest.mark.parametrize("features", ["person", "shapes"])
def test_person_features_are_unit_vectors_of_their_declared_size(
    stats_spec: ModelSpec, images: list[Image.Image], features: str
) -> None:
    labeler = StatsLabeler.load(stats_spec.model_copy(update={"options": {"features": features}}))
    vectors = labeler.embed(images)
    assert vectors.shape == (len(images), labeler.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(labeler.embed(images), vectors)


def test_each_basic_colour_is_named_by_itself() -> None:
    named = colour_names(np.array(list(COLOUR_NAMES.values()), dtype=np.float32))
    assert np.allclose(named.sum(axis=1), 1.0)
    assert list(named.argmax(axis=1)) == list(range(len(COLOUR_NAMES)))


def test_person_features_let_a_linear_head_find_the_torso_colour(stats_spec: ModelSpec) -> None:
    from workers.inference.labelers.heads import train

    rng = np.random.default_rng(3)
    scenes = [_figure(rng) for _ in range(240)]
    category = CategorySpec.model_validate(
        {"key": "top.color", "kind": "single", "question": "q", "values": [{"key": k} for k in PALETTE]}
    )
    labeler = StatsLabeler.load(stats_spec.model_copy(update={"options": {"features": "person"}}))
    x = labeler.embed([image for image, _ in scenes])
    head = train(x[:160], [c for _, c in scenes[:160]], category, backbone_version="b", l2=2e-6)
    predicted = head.probabilities(x[160:]).argmax(axis=1)
    truth = [category.value_keys.index(c) for _, c in scenes[160:]]
    assert float(np.mean(predicted == np.array(truth))) > 0.9


def test_an_unknown_feature_set_is_refused(stats_spec: ModelSpec) -> None:
    with pytest.raises(ValueError, match="features"):
        StatsLabeler.load(stats_spec.model_copy(update={"options": {"features": "edges"}}))


def _striped(rng: np.random.Generator, across: bool) -> Image.Image:
    """A plain scene with a 'person' whose torso is striped in two colours, across or down."""
    pixels = np.zeros((96, 72, 3), dtype=np.float64)
    pixels[:] = PALETTE["green"]
    top = int(rng.integers(8, 24))
    height, width = int(rng.integers(36, 56)), int(rng.integers(18, 26))
    left = 36 - width // 2
    stripe = int(rng.integers(3, 6))
    rows, columns = np.mgrid[0:height, 0:width]
    odd = ((rows if across else columns) // stripe) % 2 == 1
    torso = np.where(odd[..., None], PALETTE["red"], PALETTE["yellow"])
    pixels[top : top + height, left : left + width] = torso
    pixels[top + height : top + height + 30, left + 3 : left + width - 3] = PALETTE["blue"]
    pixels += rng.normal(0, 8, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_the_edge_block_of_shape_features_sees_which_way_stripes_run() -> None:
    from workers.inference.labelers.heads import train

    rng = np.random.default_rng(5)
    across = [bool(rng.integers(2)) for _ in range(160)]
    scenes = [_striped(rng, a) for a in across]
    category = CategorySpec.model_validate(
        {"key": "top.pattern", "kind": "boolean", "question": "striped across?", "values": []}
    )
    spec = ModelSpec(
        family="stats", source="builtin", name="shapes", version="1", options={"features": "shapes"}
    )
    person = StatsLabeler.load(spec.model_copy(update={"options": {"features": "person"}}))
    # Only the dimensions after the person block: the orientation histograms on their own.
    x = StatsLabeler.load(spec).embed(scenes)[:, person.dim :]
    head = train(x[:100], across[:100], category, backbone_version="b", l2=2e-6)
    predicted = head.probabilities(x[100:]).argmax(axis=1) == category.value_keys.index("yes")
    assert float(np.mean(predicted == np.array(across[100:]))) > 0.9


def test_gradient_orientations_follow_the_edges() -> None:
    from workers.inference.labelers.gradients import ORIENTATIONS, gradients

    image = np.zeros((20, 20, 3), dtype=np.float32)
    image[10:] = 255.0  # one horizontal edge: the gradient points down
    magnitude, bins = gradients(image)
    strongest = bins[magnitude > 0]
    assert magnitude.max() > 0 and set(strongest.tolist()) == {ORIENTATIONS // 2}
    magnitude, bins = gradients(image.transpose(1, 0, 2).copy())  # a vertical edge
    assert set(bins[magnitude > 0].tolist()) == {0}
