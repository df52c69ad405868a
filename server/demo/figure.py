"""One synthetic person seen from the front: body proportions, pose and outfit, before drawing.

Everything here is in body units: one unit is one head height, y grows down from the top of the
head and x from the body's centre line (negative is the image's left). Landmarks: chin 1.0,
shoulders 1.35, waist 3.0, crotch 4.0, knees about 5.2, ankles about 6.85, soles about 7.15.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from server.demo.paint import COLOUR_RGB, RGB, Point, along, jitter, shade

SKIN_TONES: tuple[RGB, ...] = (
    (255, 224, 196),
    (240, 196, 162),
    (224, 172, 128),
    (196, 136, 94),
    (150, 94, 60),
    (96, 60, 40),
)
HAIR_RGB: Mapping[str, RGB] = {
    "black": (30, 26, 24),
    "brown": (98, 62, 36),
    "blonde": (222, 186, 110),
    "red": (170, 58, 26),
    "gray": (142, 142, 142),
    "white": (236, 236, 230),
}
_IRISES: tuple[RGB, ...] = ((70, 44, 24), (40, 90, 150), (60, 110, 60), (100, 80, 50))
_ACCESSORIES: tuple[RGB, ...] = (
    (30, 30, 34),
    (180, 40, 40),
    (40, 70, 150),
    (230, 230, 226),
    (120, 90, 60),
    (60, 120, 80),
    (200, 160, 60),
)
HAIR_END = {"above_chin": 0.92, "above_shoulders": 1.22, "above_chest": 1.9, "below_chest": 2.6}
SOLE_Y = 0.3  # from ankle to the bottom of the shoe


@dataclass(frozen=True)
class Figure:
    """What to draw. `look` holds a value for every garment drawn, including those the camera
    crops (a waist-up shot still draws trousers), so it may say more than the ground truth."""

    look: Mapping[str, str]
    skin: RGB
    hair: RGB
    top: RGB
    bottoms: RGB
    shoes: RGB
    sole: RGB
    hat: RGB
    bag: RGB
    iris: RGB
    lips: RGB
    frames: RGB
    head_rx: float
    shoulder: float
    waist: float
    hip: float
    hem: float
    sleeve: float
    garment_end: float
    skirt_width: float
    shoulders: tuple[Point, Point]
    elbows: tuple[Point, Point]
    wrists: tuple[Point, Point]
    hips: tuple[Point, Point]
    knees: tuple[Point, Point]
    ankles: tuple[Point, Point]
    bag_side: int
    fringe: bool
    smile: bool
    pompom: bool


def _fill_unseen(rng: random.Random, attributes: Mapping[str, str | None]) -> dict[str, str]:
    look = {key: value for key, value in attributes.items() if value is not None}
    if "bottoms.type" not in look:
        look["bottoms.type"] = rng.choice(("trousers", "jeans"))
        look["bottoms.length"] = "full_length"
        look["bottoms.color"] = rng.choice(tuple(COLOUR_RGB))
    look.setdefault("shoes.color", rng.choice(tuple(COLOUR_RGB)))
    look.setdefault("bag.type", "none")
    look.setdefault("hair.color", "black")
    return look


def _arm(rng: random.Random, side: int, shoulder: Point, waist: float) -> tuple[Point, Point]:
    pose = rng.choices(("down", "akimbo", "wave"), (0.6, 0.25, 0.15))[0]

    def reach(start: Point, degrees: float, length: float) -> Point:
        angle = math.radians(degrees)
        return (start[0] + side * length * math.sin(angle), start[1] + length * math.cos(angle))

    if pose == "down":
        upper = rng.uniform(6, 16)
        elbow = reach(shoulder, upper, 1.3)
        return elbow, reach(elbow, upper + rng.uniform(-6, 8), 1.15)
    if pose == "akimbo":
        elbow = reach(shoulder, rng.uniform(40, 52), 1.25)
        return elbow, (side * (waist + 0.12), rng.uniform(2.95, 3.15))
    elbow = reach(shoulder, rng.uniform(60, 95), 1.25)
    return elbow, reach(elbow, rng.uniform(150, 172), 1.05)


def sample_figure(rng: random.Random, attributes: Mapping[str, str | None]) -> Figure:
    look = _fill_unseen(rng, attributes)
    long_top = look["top.type"] in ("hoodie", "sweater")
    shoulder = rng.uniform(0.82, 0.98)
    waist = rng.uniform(0.55, 0.64)
    hip = max(waist + 0.05, rng.uniform(0.62, 0.74))
    ankle_y = rng.uniform(6.75, 6.95)
    joints = ((-(shoulder - 0.17), 1.55), (shoulder - 0.17, 1.55))
    arms = (_arm(rng, -1, joints[0], waist), _arm(rng, 1, joints[1], waist))
    hips = ((-0.32, 3.6), (0.32, 3.6))
    ankles = tuple((side * (0.3 + rng.uniform(-0.04, 0.32)), ankle_y) for side in (-1, 1))
    knees = tuple(
        (along(h, a, 0.5)[0] + side * rng.uniform(0, 0.05), (3.6 + ankle_y) / 2 - 0.1)
        for side, h, a in zip((-1, 1), hips, ankles, strict=True)
    )
    kind = look["bottoms.type"]
    if kind == "skirt":
        garment_end = rng.uniform(4.2, 4.45) if look["bottoms.length"] == "short" else rng.uniform(5.1, 5.4)
    else:
        garment_end = rng.uniform(0.4, 0.6)
    shoes = jitter(rng, COLOUR_RGB[look["shoes.color"]], 8)
    return Figure(
        look=look,
        skin=jitter(rng, rng.choice(SKIN_TONES), 6),
        hair=jitter(rng, HAIR_RGB[look["hair.color"]], 8),
        top=jitter(rng, COLOUR_RGB[look["top.color"]], 8),
        bottoms=jitter(rng, COLOUR_RGB[look["bottoms.color"]], 8),
        shoes=shoes,
        sole=(236, 236, 232) if rng.random() < 0.5 and look["shoes.color"] != "white" else shade(shoes, 0.55),
        hat=jitter(rng, rng.choice(_ACCESSORIES), 10),
        bag=jitter(rng, rng.choice(_ACCESSORIES), 10),
        iris=rng.choice(_IRISES),
        lips=jitter(rng, (176, 82, 84), 12),
        frames=rng.choice(((24, 24, 28), (110, 70, 40), (150, 150, 156))),
        head_rx=rng.uniform(0.36, 0.4),
        shoulder=shoulder,
        waist=waist,
        hip=hip,
        hem=rng.uniform(3.65, 3.8) if long_top else rng.uniform(3.45, 3.62),
        sleeve=rng.uniform(0.45, 0.6),
        garment_end=garment_end,
        skirt_width=hip + rng.uniform(0.18, 0.3) + (0.1 if garment_end > 5 else 0.0),
        shoulders=joints,
        elbows=(arms[0][0], arms[1][0]),
        wrists=(arms[0][1], arms[1][1]),
        hips=hips,
        knees=(knees[0], knees[1]),
        ankles=(ankles[0], ankles[1]),
        bag_side=rng.choice((-1, 1)),
        fringe=rng.random() < 0.5,
        smile=rng.random() < 0.6,
        pompom=rng.random() < 0.4,
    )


def hat_top(figure: Figure) -> float:
    return {
        "none": 0.0,
        "baseball_cap": -0.07,
        "beanie": -0.2 if figure.pompom else -0.1,
        "brimmed_hat": -0.34,
    }[figure.look["hat.type"]]


def extent(figure: Figure) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of everything drawn, in body units."""
    xs = [p[0] for p in (*figure.elbows, *figure.wrists)] + [
        -figure.shoulder,
        figure.shoulder,
        -figure.skirt_width,
        figure.skirt_width,
    ]
    if figure.look["bag.type"] == "handbag":
        xs.append(figure.bag_side * (figure.hip + 0.5))
    if figure.look["hat.type"] == "brimmed_hat":
        xs += [-0.76, 0.76]
    hands_top = min(p[1] for p in figure.wrists) - 0.15
    return (
        min(xs) - 0.15,
        min(hat_top(figure), hands_top, -0.05),
        max(xs) + 0.15,
        figure.ankles[0][1] + SOLE_Y,
    )


def regions(figure: Figure) -> dict[str, tuple[float, float, float, float]]:
    """Boxes (x0, y0, x1, y1) in body units of the parts the ground truth speaks about."""
    r = figure.head_rx
    out = {
        "head": (-r - 0.08, 0.0, r + 0.08, 1.0),
        "eyes": (-0.23, 0.475, 0.23, 0.565),
        "top": (-figure.shoulder, 1.32, figure.shoulder, figure.hem),
    }
    kind = figure.look["bottoms.type"]
    if kind == "skirt":
        out["bottoms"] = (-figure.skirt_width, figure.hem, figure.skirt_width, figure.garment_end)
    else:
        widths: list[tuple[Point, float]] = []
        for hip, knee, ankle in zip(figure.hips, figure.knees, figure.ankles, strict=True):
            if kind == "shorts":
                widths += [(hip, 0.29), (along(hip, knee, figure.garment_end), 0.26)]
            else:
                widths += [(hip, 0.28), (knee, 0.21), ((ankle[0], ankle[1] + 0.05), 0.17)]
        xs = [x for (px, _), w in widths for x in (px - w, px + w)] + [-figure.hip - 0.03, figure.hip + 0.03]
        end = max(p[1] + w for p, w in widths)
        out["bottoms"] = (min(xs), figure.hem, max(xs), end)
    ax = [a[0] for a in figure.ankles]
    ay = figure.ankles[0][1]
    out["shoes"] = (min(ax) - 0.26, ay + 0.05, max(ax) + 0.26, ay + SOLE_Y)
    if figure.look["bag.type"] == "handbag":
        x = figure.bag_side * (figure.hip + 0.12)
        out["bag"] = (x - 0.36, 2.75, x + 0.36, 3.35)
    elif figure.look["bag.type"] == "backpack":
        out["bag"] = (-figure.shoulder + 0.08, 1.15, figure.shoulder - 0.08, 3.1)
    if figure.look["hat.type"] != "none":
        wide = 0.76 if figure.look["hat.type"] == "brimmed_hat" else r + 0.06
        out["hat"] = (-wide, hat_top(figure), wide, 0.4)
    return out
