"""Colours and a pen that draws in body units: the shared kit of the synthetic painters."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from PIL import ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]

# Far enough apart that a little jitter and shading never moves a colour nearer another name.
COLOUR_RGB: Mapping[str, RGB] = MappingProxyType(
    {
        "black": (28, 28, 32),
        "white": (242, 242, 238),
        "gray": (128, 128, 130),
        "red": (204, 32, 38),
        "orange": (240, 128, 24),
        "yellow": (244, 212, 44),
        "green": (40, 140, 64),
        "blue": (36, 76, 192),
        "purple": (122, 52, 164),
        "pink": (244, 138, 186),
        "brown": (112, 66, 36),
        "beige": (214, 194, 156),
    }
)


def _channel(value: float) -> int:
    return max(0, min(255, round(value)))


def shade(colour: RGB, factor: float) -> RGB:
    """Darker below 1, lighter above; lightening also moves toward white so black can brighten."""
    if factor <= 1:
        return (_channel(colour[0] * factor), _channel(colour[1] * factor), _channel(colour[2] * factor))
    return mix(colour, (255, 255, 255), factor - 1)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        _channel(a[0] + (b[0] - a[0]) * t),
        _channel(a[1] + (b[1] - a[1]) * t),
        _channel(a[2] + (b[2] - a[2]) * t),
    )


def jitter(rng: random.Random, colour: RGB, amount: int) -> RGB:
    return (
        _channel(colour[0] + rng.randint(-amount, amount)),
        _channel(colour[1] + rng.randint(-amount, amount)),
        _channel(colour[2] + rng.randint(-amount, amount)),
    )


class Pen:
    """Draws shapes given in body units (one unit is one head height) onto a pixel canvas."""

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, oy: float, scale: float) -> None:
        self._draw = draw
        self._cx = cx
        self._oy = oy
        self.scale = scale

    def at(self, point: Point) -> Point:
        return (self._cx + point[0] * self.scale, self._oy + point[1] * self.scale)

    def polygon(self, points: Sequence[Point], fill: RGB) -> None:
        self._draw.polygon([self.at(p) for p in points], fill=fill)

    def ellipse(
        self,
        centre: Point,
        rx: float,
        ry: float,
        fill: RGB | None = None,
        outline: RGB | None = None,
        width: float = 0.0,
    ) -> None:
        x, y = self.at(centre)
        self._draw.ellipse(
            (x - rx * self.scale, y - ry * self.scale, x + rx * self.scale, y + ry * self.scale),
            fill=fill,
            outline=outline,
            width=self._px(width) if outline else 0,
        )

    def line(self, points: Sequence[Point], fill: RGB, width: float) -> None:
        self._draw.line([self.at(p) for p in points], fill=fill, width=self._px(width), joint="curve")

    def limb(
        self, a: Point, b: Point, width_a: float, width_b: float, fill: RGB, *, cut: bool = False
    ) -> None:
        """A tapered segment with rounded ends, for arms and legs; `cut` squares the end at `b`,
        as at a hem or a cuff."""
        self.band(a, b, width_a, width_b, fill)
        self.ellipse(a, width_a / 2, width_a / 2, fill)
        if not cut:
            self.ellipse(b, width_b / 2, width_b / 2, fill)

    def band(self, a: Point, b: Point, width_a: float, width_b: float, fill: RGB) -> None:
        """A tapered segment with square ends."""
        dx, dy = b[0] - a[0], b[1] - a[1]
        length = math.hypot(dx, dy) or 1e-6
        nx, ny = -dy / length, dx / length
        ha, hb = width_a / 2, width_b / 2
        self.polygon(
            [
                (a[0] + nx * ha, a[1] + ny * ha),
                (b[0] + nx * hb, b[1] + ny * hb),
                (b[0] - nx * hb, b[1] - ny * hb),
                (a[0] - nx * ha, a[1] - ny * ha),
            ],
            fill,
        )

    def _px(self, width: float) -> int:
        return max(1, round(width * self.scale))


def along(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def arc(centre: Point, rx: float, ry: float, start: float, stop: float, steps: int = 16) -> list[Point]:
    """Points on an ellipse from `start` to `stop` degrees (0 is +x, 90 is down, as on screen)."""
    out = []
    for i in range(steps + 1):
        angle = math.radians(start + (stop - start) * i / steps)
        out.append((centre[0] + rx * math.cos(angle), centre[1] + ry * math.sin(angle)))
    return out
