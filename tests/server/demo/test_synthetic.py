"""The synthetic people draw what their ground truth says, and always the same way for a seed."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from server.demo.synthetic import (
    COLOUR_RGB,
    VOCABULARY,
    Person,
    generate_dataset,
    render_person,
    render_person_with_mask,
    sample_person,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_Pixel = TypeVar("_Pixel", bound=np.generic)
Rendered = tuple[FloatArray, BoolArray, Person]

_NAMES = tuple(COLOUR_RGB)
_PALETTE = np.array([COLOUR_RGB[name] for name in _NAMES], dtype=float)
_RENDERED_SEEDS = range(240)


@cache
def _rendered(seed: int) -> Rendered:
    image, mask, person = render_person_with_mask(seed)
    return np.asarray(image, dtype=float), np.asarray(mask) > 0, person


def _all_rendered() -> list[Rendered]:
    return [_rendered(seed) for seed in _RENDERED_SEEDS]


def _nearest_colours(pixels: FloatArray) -> list[str]:
    distances = ((pixels[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(axis=2)
    return [_NAMES[i] for i in distances.argmin(axis=1)]


def _crop(array: NDArray[_Pixel], box: tuple[int, int, int, int]) -> NDArray[_Pixel]:
    x, y, w, h = box
    return array[y : y + h, x : x + w]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _samples(count: int) -> list[dict[str, str | None]]:
    rng = random.Random(1234)
    return [sample_person(rng) for _ in range(count)]


# determinism


def test_the_same_seed_renders_byte_identical_images() -> None:
    for seed in (0, 7, 123456789):
        first_image, first = render_person(seed, 400, 560)
        second_image, second = render_person(seed, 400, 560)
        assert _png(first_image) == _png(second_image)
        assert _jpeg(first_image) == _jpeg(second_image)
        assert first == second


def test_different_seeds_render_different_images() -> None:
    images = {_png(render_person(seed)[0]) for seed in range(12)}
    assert len(images) == 12


def test_rendering_does_not_touch_the_global_random_state() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    render_person(3)
    assert random.random() == expected


def test_render_person_draws_at_the_requested_size_and_refuses_tiny_images() -> None:
    image, person = render_person(1, 333, 477)
    assert image.size == (333, 477) and image.mode == "RGB"
    assert (person.width, person.height) == (333, 477)
    with pytest.raises(ValueError):
        render_person(1, 40, 480)


# attributes


def test_sampled_attributes_name_every_category_with_vocabulary_values() -> None:
    for attributes in _samples(300):
        assert tuple(attributes) == tuple(VOCABULARY)
        for category, value in attributes.items():
            assert value is None or value in VOCABULARY[category], (category, value)


def test_sampled_attributes_are_consistent() -> None:
    for a in _samples(300):
        sleeve = {"tank_top": {"sleeveless"}, "hoodie": {"long"}, "sweater": {"long"}}
        assert a["top.sleeve_length"] in sleeve.get(str(a["top.type"]), {"short", "long"})
        assert (a["hair.color"] is None) == (a["hair.length"] == "bald")
        length = {
            "shorts": {"short"},
            "skirt": {"short", "knee_length"},
            "trousers": {"full_length"},
            "jeans": {"full_length"},
        }
        if a["bottoms.type"] is not None:
            assert a["bottoms.length"] in length[a["bottoms.type"]]
        for category in (
            "shot.type",
            "hat.type",
            "eyewear.type",
            "top.type",
            "top.color",
            "top.sleeve_length",
            "background.type",
        ):
            assert a[category] is not None, category


def test_only_visible_regions_have_attributes() -> None:
    for a in _samples(300):
        shot = a["shot.type"]
        legs_shown = shot in ("full_body", "nearly_full_body")
        for category in ("bottoms.type", "bottoms.color", "bottoms.length"):
            assert (a[category] is not None) == legs_shown, (shot, category)
        assert (a["shoes.color"] is not None) == (shot == "full_body")
        assert (a["bag.type"] is not None) == (shot not in ("portrait", "headshot"))


def test_every_vocabulary_value_occurs_in_500_samples() -> None:
    seen = Counter((category, value) for a in _samples(500) for category, value in a.items())
    missing = [(c, v) for c, values in VOCABULARY.items() for v in values if not seen[(c, v)]]
    assert missing == []


def test_rendered_ground_truth_is_what_sample_person_draws_from_the_seed() -> None:
    _, person = render_person(42)
    assert person.attributes == sample_person(random.Random(42))


# the pixels show the ground truth


def test_mean_colour_of_the_torso_is_nearest_the_declared_top_colour() -> None:
    checked = 0
    for image, _, person in _all_rendered():
        if person.attributes["shot.type"] == "headshot":
            continue  # only the neckline shows; the colour test below covers it loosely
        x, y, w, h = person.regions["top"]
        core = (x + int(0.4 * w), y + int(0.4 * h), max(1, int(0.2 * w)), max(1, int(0.35 * h)))
        mean = _crop(image, core).reshape(-1, 3).mean(axis=0)
        assert _nearest_colours(mean[None, :])[0] == person.attributes["top.color"], person.seed
        checked += 1
    assert checked > 150


def test_headshots_show_the_top_colour_below_the_face() -> None:
    for image, mask, person in _all_rendered():
        if person.attributes["shot.type"] != "headshot":
            continue
        rows = image[-max(2, person.height // 25) :][mask[-max(2, person.height // 25) :]]
        colours = Counter(_nearest_colours(rows))
        assert colours[str(person.attributes["top.color"])] > 0.1 * len(rows), person.seed


@pytest.mark.parametrize(("part", "category"), [("bottoms", "bottoms.color"), ("shoes", "shoes.color")])
def test_most_pixels_of_a_garment_are_nearest_its_declared_colour(part: str, category: str) -> None:
    checked = 0
    for image, mask, person in _all_rendered():
        declared = person.attributes[category]
        if declared is None:
            assert part not in person.regions
            continue
        pixels = _crop(image, person.regions[part])[_crop(mask, person.regions[part])]
        assert Counter(_nearest_colours(pixels)).most_common(1)[0][0] == declared, person.seed
        checked += 1
    assert checked > 40


def test_sunglasses_hide_the_whites_of_the_eyes() -> None:
    seen: Counter[str | None] = Counter()
    for image, _, person in _all_rendered():
        if person.attributes["shot.type"] not in ("upper_body", "portrait", "headshot"):
            continue
        eyes = _crop(image, person.regions["eyes"]).reshape(-1, 3)
        whites = ((eyes.min(axis=1) > 215) & (np.ptp(eyes, axis=1) < 20)).mean()
        eyewear = person.attributes["eyewear.type"]
        seen[eyewear] += 1
        if eyewear == "sunglasses":
            assert whites < 0.01, person.seed
        else:
            assert whites > 0.05, person.seed
    assert seen["sunglasses"] > 5 and seen["none"] > 5 and seen["glasses"] > 5


def _lowest_background(image: FloatArray, mask: BoolArray, wanted: int = 1500) -> FloatArray:
    """Mean colour of the background pixels nearest the bottom of the frame: the ground."""
    background = ~mask
    taken: list[FloatArray] = []
    total = 0
    for row in range(image.shape[0] - 1, -1, -1):
        taken.append(image[row][background[row]])
        total += int(background[row].sum())
        if total >= wanted:
            break
    return np.asarray(np.concatenate(taken).mean(axis=0), dtype=float)


@cache
def _ground_and_spread(seed: int) -> tuple[FloatArray, float]:
    image, mask, _ = _rendered(seed)
    return _lowest_background(image, mask), float(image[~mask].std(axis=0).mean())


def _looks_like(kind: str, seed: int) -> bool:
    ground, spread = _ground_and_spread(seed)
    r, g, b = ground
    lightness = (r + g + b) / 3
    signatures: dict[str, Callable[[], bool]] = {
        "plain_wall": lambda: spread < 12,
        "park": lambda: g > r + 15 and g > b + 15,  # grass
        "beach": lambda: r > b + 40 and lightness > 160,  # sand
        "street": lambda: max(r, g, b) - min(r, g, b) < 30 and lightness < 190 and spread > 20,
        "indoor_room": lambda: r > b + 40 and lightness < 150,  # a wooden floor
    }
    return signatures[kind]()


@pytest.mark.parametrize("kind", VOCABULARY["background.type"])
def test_background_colours_differ_by_background_type(kind: str) -> None:
    people = [person for _, _, person in _all_rendered()]
    own = [_looks_like(kind, p.seed) for p in people if p.attributes["background.type"] == kind]
    other = [_looks_like(kind, p.seed) for p in people if p.attributes["background.type"] != kind]
    assert len(own) > 20
    assert sum(own) >= 0.9 * len(own)
    assert sum(other) <= 0.1 * len(other)


def _bbox_share(person: Person) -> float:
    return person.bbox[2] * person.bbox[3] / (person.width * person.height)


def test_a_headshot_fills_much_more_of_the_frame_than_a_full_body() -> None:
    shares: dict[str, list[float]] = {}
    for _, _, person in _all_rendered():
        shares.setdefault(str(person.attributes["shot.type"]), []).append(_bbox_share(person))
    assert min(shares["headshot"]) > max(shares["full_body"])
    assert np.mean(shares["headshot"]) > 1.6 * np.mean(shares["full_body"])


def test_full_body_shows_head_to_shoes_and_closer_shots_are_cut_by_the_frame() -> None:
    for _, mask, person in _all_rendered():
        x, y, w, h = person.bbox
        if person.attributes["shot.type"] == "full_body":
            assert y > 0 and y + h < person.height, person.seed
            assert "shoes" in person.regions and not mask[-1].any()
        else:
            assert y + h == person.height, person.seed
            assert "shoes" not in person.regions


def test_person_mask_and_regions_lie_inside_the_bbox() -> None:
    for _, mask, person in _all_rendered():
        x, y, w, h = person.bbox
        rows, cols = np.nonzero(mask)
        assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (y, y + h, x, x + w)
        for name, (rx, ry, rw, rh) in person.regions.items():
            assert rw > 0 and rh > 0, name
            assert rx >= 0 and ry >= 0 and rx + rw <= person.width and ry + rh <= person.height


# datasets


def test_generate_dataset_writes_images_with_matching_ground_truth(tmp_path: Path) -> None:
    images = generate_dataset(tmp_path / "set", 6, seed=3)

    assert images == tmp_path / "set" / "images"
    lines = (tmp_path / "set" / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(p.name for p in images.iterdir()) == [r["file"] for r in records]
    assert [r["file"] for r in records] == [f"person_{i:05d}.jpg" for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["ground_truth.jsonl", "images"]
    for record in records:
        data = (images / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            assert image.size == (record["width"], record["height"])
        _, person = render_person(record["seed"], record["width"], record["height"])
        assert record["attributes"] == person.attributes
        assert record["bbox"] == list(person.bbox)
        assert 320 <= record["width"] <= 512 and 448 <= record["height"] <= 640


def test_generate_dataset_is_reproducible_and_writes_png_on_request(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", 3, seed=9, image_format="png")
    generate_dataset(tmp_path / "b", 3, seed=9, image_format="png")
    first = (tmp_path / "a" / "ground_truth.jsonl").read_bytes()
    assert first == (tmp_path / "b" / "ground_truth.jsonl").read_bytes()
    assert [json.loads(line)["file"] for line in first.splitlines()][0] == "person_00000.png"


def test_dataset_image_sizes_vary(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 12, seed=1)
    records = [json.loads(line) for line in (tmp_path / "ground_truth.jsonl").read_text().splitlines()]
    assert len({(r["width"], r["height"]) for r in records}) > 6
    assert all(min(r["width"], r["height"]) >= 320 for r in records)


def test_generate_dataset_refuses_to_mix_with_an_existing_set(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 1)
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path, 1)


def test_generate_dataset_rejects_unknown_formats_and_negative_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, 1, image_format="gif")
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, -1)
