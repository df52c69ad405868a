"""Synthetic people with known ground truth, for the demo project and the benchmarks.

Nothing can be downloaded where the demo runs, so it labels drawn people whose attributes are
known. `render_person` draws one person from a seed; `generate_dataset` writes a folder of images
and, beside it (never inside, so labelers cannot see it), `ground_truth.jsonl`.

Same seed, same bytes: every random choice comes from one `random.Random(seed)`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from PIL import Image, ImageDraw, ImageFilter

from server.demo.drawing import draw_figure
from server.demo.figure import Figure, extent, regions, sample_figure
from server.demo.paint import COLOUR_RGB, Pen
from server.demo.scenery import BACKGROUND_TYPES, paint_background

__all__ = [
    "COLOUR_RGB",
    "VOCABULARY",
    "Person",
    "generate_dataset",
    "render_person",
    "render_person_with_mask",
    "sample_person",
]

_COLOURS = tuple(COLOUR_RGB)
VOCABULARY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "shot.type": ("full_body", "nearly_full_body", "upper_body", "portrait", "headshot"),
        "hair.color": ("black", "brown", "blonde", "red", "gray", "white"),
        "hair.length": (
            "bald",
            "above_eyes",
            "above_chin",
            "above_shoulders",
            "above_chest",
            "below_chest",
        ),
        "hat.type": ("none", "baseball_cap", "beanie", "brimmed_hat"),
        "eyewear.type": ("none", "glasses", "sunglasses"),
        "top.type": ("t_shirt", "shirt", "tank_top", "hoodie", "sweater"),
        "top.color": _COLOURS,
        "top.sleeve_length": ("sleeveless", "short", "long"),
        "bottoms.type": ("trousers", "jeans", "shorts", "skirt"),
        "bottoms.color": _COLOURS,
        "bottoms.length": ("short", "knee_length", "full_length"),
        "shoes.color": _COLOURS,
        "bag.type": ("none", "handbag", "backpack"),
        "background.type": BACKGROUND_TYPES,
    }
)

_IMAGE_FORMATS = {"jpeg": ("JPEG", ".jpg"), "png": ("PNG", ".png")}
_SUPERSAMPLE = 2  # drawn at twice the size and reduced: cheap anti-aliasing
_MIN_SIDE = 64


@dataclass(frozen=True)
class Person:
    """One drawn person and where it sits in its image. Boxes are (x, y, w, h) in pixels.

    `regions` holds the boxes of the parts the ground truth speaks about (head, eyes, top,
    bottoms, shoes, bag, hat), clipped to the image; a part outside the frame has none.
    """

    seed: int
    attributes: dict[str, str | None]
    bbox: tuple[int, int, int, int]
    width: int
    height: int
    regions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


def _pick(rng: random.Random, weighted: Mapping[str, float]) -> str:
    return rng.choices(tuple(weighted), tuple(weighted.values()))[0]


def sample_person(rng: random.Random) -> dict[str, str | None]:
    """Attributes of one person; a category the shot cannot show is None."""
    shot = _pick(
        rng, {"full_body": 3, "nearly_full_body": 2, "upper_body": 2, "portrait": 1.5, "headshot": 1.5}
    )
    hair_length = _pick(
        rng,
        {
            "bald": 0.6,
            "above_eyes": 1.2,
            "above_chin": 1,
            "above_shoulders": 1,
            "above_chest": 1,
            "below_chest": 1,
        },
    )
    hair_color = (
        None
        if hair_length == "bald"
        else _pick(rng, {"black": 3, "brown": 3, "blonde": 1.5, "red": 0.8, "gray": 1, "white": 0.7})
    )
    top = rng.choice(VOCABULARY["top.type"])
    sleeve = {
        "tank_top": "sleeveless",
        "hoodie": "long",
        "sweater": "long",
        "t_shirt": _pick(rng, {"short": 4, "long": 1}),
        "shirt": _pick(rng, {"short": 2, "long": 3}),
    }[top]
    attributes: dict[str, str | None] = {
        "shot.type": shot,
        "hair.color": hair_color,
        "hair.length": hair_length,
        "hat.type": _pick(rng, {"none": 5, "baseball_cap": 1.5, "beanie": 1.5, "brimmed_hat": 1.5}),
        "eyewear.type": _pick(rng, {"none": 5, "glasses": 2.5, "sunglasses": 2}),
        "top.type": top,
        "top.color": rng.choice(_COLOURS),
        "top.sleeve_length": sleeve,
        "bottoms.type": None,
        "bottoms.color": None,
        "bottoms.length": None,
        "shoes.color": None,
        "bag.type": None,
        "background.type": rng.choice(BACKGROUND_TYPES),
    }
    if shot in ("full_body", "nearly_full_body"):
        bottoms = _pick(rng, {"trousers": 1, "jeans": 1, "shorts": 0.8, "skirt": 0.8})
        attributes["bottoms.type"] = bottoms
        attributes["bottoms.length"] = {
            "shorts": "short",
            "skirt": rng.choice(("short", "knee_length")),
        }.get(bottoms, "full_length")
        attributes["bottoms.color"] = (
            _pick(rng, {"blue": 3, "black": 1, "gray": 0.5, "other": 1.5}) if bottoms == "jeans" else "other"
        )
        if attributes["bottoms.color"] == "other":
            attributes["bottoms.color"] = rng.choice(_COLOURS)
    if shot == "full_body":
        attributes["shoes.color"] = rng.choice(_COLOURS)
    if shot in ("full_body", "nearly_full_body", "upper_body"):
        attributes["bag.type"] = _pick(rng, {"none": 2, "handbag": 1, "backpack": 1})
    return attributes


@dataclass(frozen=True)
class _Framing:
    cx: float  # pixel column of the body's centre line
    oy: float  # pixel row of body unit y = 0 (top of the head)
    scale: float  # pixels per body unit
    horizon: float  # pixel row where ground meets sky or wall


# Where each shot cuts the body (body units) and the headroom above it.
_CUTS = {
    "nearly_full_body": ((5.7, 6.55), (0.2, 0.55)),
    "upper_body": ((3.05, 3.45), (0.25, 0.55)),
    "portrait": ((2.25, 2.6), (0.15, 0.35)),
    "headshot": ((1.55, 1.75), (0.04, 0.14)),
}
_CLOSE_HORIZON = {"portrait": (0.5, 0.7), "headshot": (0.42, 0.58)}


def _frame(rng: random.Random, figure: Figure, shot: str, width: int, height: int) -> _Framing:
    left, top, right, bottom = extent(figure)
    if shot == "full_body":
        y0 = top - rng.uniform(0.15, 0.6)
        y1 = bottom + rng.uniform(0.1, 0.5)
        scale = min(height / (y1 - y0), width / (right - left + 0.3))
        spare = height - (y1 - y0) * scale
        oy = -y0 * scale + rng.uniform(0, spare)
        low, high = -left * scale, width - right * scale
        cx = rng.uniform(low, high) if high > low else width / 2
    else:
        (cut_low, cut_high), (room_low, room_high) = _CUTS[shot]
        y0 = (0.0 if shot == "headshot" else min(0.0, top)) - rng.uniform(room_low, room_high)
        scale = height / (rng.uniform(cut_low, cut_high) - y0)
        oy = -y0 * scale
        wander = 0.05 if shot == "headshot" else 0.12
        cx = width * (0.5 + rng.uniform(-wander, wander))
    if shot in _CLOSE_HORIZON:
        # Beside a close-up's head and neck some ground still shows, as with a low camera.
        horizon = rng.uniform(*_CLOSE_HORIZON[shot]) * height
    else:
        chest = oy + rng.uniform(1.8, 3.2) * scale
        horizon = max(0.3 * height, min(chest, rng.uniform(0.75, 0.88) * height))
    return _Framing(cx, oy, scale, horizon)


def _to_pixels(
    box: tuple[float, float, float, float], framing: _Framing, width: int, height: int
) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = box
    s = framing.scale
    left = max(0, round((framing.cx + x0 * s) / _SUPERSAMPLE))
    top = max(0, round((framing.oy + y0 * s) / _SUPERSAMPLE))
    right = min(width, round((framing.cx + x1 * s) / _SUPERSAMPLE))
    bottom = min(height, round((framing.oy + y1 * s) / _SUPERSAMPLE))
    if right <= left or bottom <= top:
        return None
    return (left, top, right - left, bottom - top)


def render_person_with_mask(
    seed: int, width: int = 384, height: int = 512
) -> tuple[Image.Image, Image.Image, Person]:
    """The RGB image, the person's silhouette (mode "L", 255 inside) and the ground truth."""
    if min(width, height) < _MIN_SIDE:
        raise ValueError(f"image sides must be at least {_MIN_SIDE} pixels, got {width}x{height}")
    rng = random.Random(seed)
    attributes = sample_person(rng)
    figure = sample_figure(rng, attributes)
    shot = str(attributes["shot.type"])
    big_w, big_h = width * _SUPERSAMPLE, height * _SUPERSAMPLE
    framing = _frame(rng, figure, shot, big_w, big_h)

    scene = Image.new("RGB", (big_w, big_h))
    paint_background(scene, rng, str(attributes["background.type"]), framing.horizon)
    if shot == "full_body":
        feet = framing.oy + extent(figure)[3] * framing.scale
        rx, ry = 0.9 * framing.scale, 0.12 * framing.scale
        ImageDraw.Draw(scene, "RGBA").ellipse(
            (framing.cx - rx, feet - ry, framing.cx + rx, feet + ry), fill=(0, 0, 0, 60)
        )
    blur = {"portrait": 1.5, "headshot": 2.5}.get(shot)
    if blur is not None:
        # A quarter of the size is blurred, then enlarged: the same look at a fraction of the cost.
        small = scene.reduce(4).filter(ImageFilter.GaussianBlur(blur * _SUPERSAMPLE / 4))
        scene = small.resize(scene.size, Image.Resampling.BILINEAR)

    layer = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    draw_figure(Pen(ImageDraw.Draw(layer), framing.cx, framing.oy, framing.scale), figure)
    scene.paste(layer, (0, 0), layer)
    image = scene.reduce(_SUPERSAMPLE)
    mask = layer.getchannel("A").reduce(_SUPERSAMPLE)

    left, top, right, bottom = mask.getbbox() or (0, 0, 0, 0)
    boxes = {
        name: pixels
        for name, box in regions(figure).items()
        if _shown(name, attributes) and (pixels := _to_pixels(box, framing, width, height)) is not None
    }
    person = Person(
        seed=seed,
        attributes=attributes,
        bbox=(left, top, right - left, bottom - top),
        width=width,
        height=height,
        regions=boxes,
    )
    return image, mask, person


def _shown(region: str, attributes: Mapping[str, str | None]) -> bool:
    category = {"bottoms": "bottoms.type", "shoes": "shoes.color", "bag": "bag.type"}.get(region)
    return category is None or attributes[category] not in (None, "none")


def render_person(seed: int, width: int = 384, height: int = 512) -> tuple[Image.Image, Person]:
    """One person drawn from `seed`: the same seed always gives the same pixels."""
    image, _, person = render_person_with_mask(seed, width, height)
    return image, person


def generate_dataset(out_dir: Path, count: int, seed: int = 0, *, image_format: str = "jpeg") -> Path:
    """Writes `count` images to `out_dir/images` and their ground truth to
    `out_dir/ground_truth.jsonl` (one line per image, in file order). Returns the images folder.

    The ground truth file is written last, under a temporary name then renamed, so its presence
    means the set is complete. An images folder that already holds files is refused rather than
    mixed with another set.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if image_format not in _IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(_IMAGE_FORMATS)}, got {image_format!r}")
    pil_format, suffix = _IMAGE_FORMATS[image_format]
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    if any(images.iterdir()):
        raise FileExistsError(f"{images} is not empty")
    sizes = random.Random(seed)
    lines = []
    for index in range(count):
        person_seed = sizes.getrandbits(48)
        width, height = sizes.randint(320, 512), sizes.randint(448, 640)
        image, person = render_person(person_seed, width, height)
        buffer = io.BytesIO()
        if pil_format == "JPEG":
            image.save(buffer, pil_format, quality=90)
        else:
            image.save(buffer, pil_format)
        data = buffer.getvalue()
        name = f"person_{index:05d}{suffix}"
        (images / name).write_bytes(data)
        lines.append(
            json.dumps(
                {
                    "file": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "seed": person.seed,
                    "width": person.width,
                    "height": person.height,
                    "bbox": list(person.bbox),
                    "attributes": person.attributes,
                    "regions": {key: list(box) for key, box in person.regions.items()},
                }
            )
        )
    truth = out_dir / "ground_truth.jsonl"
    partial = out_dir / "ground_truth.jsonl.partial"
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(partial, truth)
    return images
