"""Drawing a `Figure` front view, back to front: hair and bag behind, body, clothes, face, hat.

Coordinates are body units (see `server.demo.figure`); the `Pen` maps them to pixels.
"""

from __future__ import annotations

import math

from server.demo.figure import HAIR_END, SOLE_Y, Figure
from server.demo.paint import Pen, Point, along, arc, mix, shade


def draw_figure(pen: Pen, figure: Figure) -> None:
    _Painter(pen, figure).draw()


class _Painter:
    def __init__(self, pen: Pen, figure: Figure) -> None:
        self.pen = pen
        self.f = figure
        self.look = figure.look

    def draw(self) -> None:
        self._back_hair()
        if self.look["top.type"] == "hoodie":
            self.pen.ellipse((0, 1.22), 0.44, 0.24, shade(self.f.top, 0.78))
        if self.look["bag.type"] == "backpack":
            self._backpack_body()
        self._legs()
        self._shoes()
        self._bottoms()
        self._neck()
        self._top()
        if self.look["bag.type"] == "backpack":
            self._backpack_straps()
        for side in (0, 1):
            self._arm(side)
        if self.look["bag.type"] == "handbag":
            self._handbag()
        self._head()
        self._front_hair()
        self._eyewear()
        self._hat()

    # body

    def _legs(self) -> None:
        for hip, knee, ankle in zip(self.f.hips, self.f.knees, self.f.ankles, strict=True):
            self.pen.limb(hip, knee, 0.5, 0.36, self.f.skin)
            self.pen.limb(knee, ankle, 0.36, 0.23, shade(self.f.skin, 0.96))

    def _shoes(self) -> None:
        for side, (ax, ay) in zip((-1, 1), self.f.ankles, strict=True):
            self.pen.ellipse((ax + side * 0.03, ay + 0.13), 0.16, 0.13, self.f.shoes)
            self.pen.ellipse((ax + side * 0.06, ay + 0.2), 0.2, 0.09, self.f.shoes)
            self.pen.polygon(
                [
                    (ax - 0.18 + side * 0.06, ay + 0.24),
                    (ax + 0.2 + side * 0.06, ay + 0.24),
                    (ax + 0.22 + side * 0.06, ay + SOLE_Y),
                    (ax - 0.2 + side * 0.06, ay + SOLE_Y),
                ],
                self.f.sole,
            )
            lace = shade(self.f.shoes, 0.7) if self.look["shoes.color"] != "black" else (90, 90, 96)
            for dy in (0.07, 0.12):
                self.pen.line([(ax - 0.06, ay + dy), (ax + 0.06, ay + dy)], lace, 0.02)

    def _neck(self) -> None:
        self.pen.polygon([(-0.14, 0.8), (0.14, 0.8), (0.15, 1.45), (-0.15, 1.45)], shade(self.f.skin, 0.92))
        self.pen.ellipse((0, 0.95), 0.14, 0.07, shade(self.f.skin, 0.8))

    def _torso_outline(self, inset: float = 0.0) -> list[Point]:
        sw, ww, hw, hem = self.f.shoulder - inset, self.f.waist - inset, self.f.hip + 0.02 - inset, self.f.hem
        right = [
            (0.15, 1.32),
            (sw - 0.2, 1.36),
            (sw, 1.5),
            (sw - 0.05, 1.75),
            (sw - 0.12, 2.1),
            (ww, 2.9),
            (hw, hem),
        ]
        return [(-x, y) for x, y in reversed(right)] + right

    def _top(self) -> None:
        f, pen, kind = self.f, self.pen, self.look["top.type"]
        sw, hem = f.shoulder, f.hem
        if kind == "tank_top":
            pen.polygon(self._torso_outline(), f.skin)
            right = [
                (0.18, 1.62),
                (0.3, 1.35),
                (0.45, 1.35),
                (0.5, 1.6),
                (sw - 0.15, 1.98),
                (sw - 0.12, 2.1),
                (f.waist, 2.9),
                (f.hip + 0.02, hem),
            ]
            pen.polygon([(0.0, 1.74), *right, *[(-x, y) for x, y in reversed(right)]], f.top)
            pen.line(
                [(-0.3, 1.35), (-0.18, 1.62), (0, 1.74), (0.18, 1.62), (0.3, 1.35)], shade(f.top, 0.8), 0.025
            )
        else:
            pen.polygon(self._torso_outline(), f.top)
        darker = shade(f.top, 0.86)
        pen.polygon(
            [
                (sw - 0.22, 1.42),
                (sw, 1.5),
                (sw - 0.05, 1.75),
                (sw - 0.12, 2.1),
                (f.waist, 2.9),
                (f.hip + 0.02, hem),
                (f.hip - 0.14, hem),
                (f.waist - 0.13, 2.9),
                (sw - 0.3, 2.1),
                (sw - 0.32, 1.6),
            ],
            darker,
        )
        for y in (2.95, 3.15):
            pen.line([(-f.waist + 0.05, y), (-f.waist + 0.3, y + 0.06)], darker, 0.02)
        if kind == "t_shirt":
            pen.ellipse((0, 1.3), 0.2, 0.13, shade(f.skin, 0.92))
            pen.line(arc((0, 1.3), 0.2, 0.13, 0, 180), shade(f.top, 0.78), 0.035)
        elif kind == "shirt":
            pen.polygon([(-0.14, 1.3), (0.14, 1.3), (0, 1.64)], shade(f.skin, 0.92))
            light, edge = shade(f.top, 1.08), shade(f.top, 0.7)
            for s in (-1, 1):
                flap = [(s * 0.17, 1.24), (s * 0.01, 1.62), (s * 0.32, 1.5)]
                pen.polygon(flap, light)
                pen.line([*flap, flap[0]], edge, 0.015)
            pen.line([(0, 1.62), (0, hem)], edge, 0.015)
            for y in (1.85, 2.2, 2.55, 2.9, 3.25):
                pen.ellipse((0.03, y), 0.022, 0.022, shade(f.top, 0.6) if f.top[0] > 90 else (220, 220, 216))
        elif kind == "hoodie":
            band = shade(f.top, 0.88)
            pen.polygon([(-0.4, 1.3), (-0.2, 1.3), (0, 1.56), (0.2, 1.3), (0.4, 1.3), (0, 1.8)], band)
            pen.ellipse((0, 1.32), 0.15, 0.08, shade(f.skin, 0.9))
            cord = (236, 236, 232) if sum(f.top) < 500 else (60, 60, 64)
            for s in (-1, 1):
                pen.line([(s * 0.09, 1.62), (s * 0.11, 2.15)], cord, 0.022)
            pocket = [(-0.45, 2.9), (0.45, 2.9), (0.56, 3.4), (-0.56, 3.4)]
            pen.line([*pocket, pocket[0]], shade(f.top, 0.72), 0.02)
            self._rib((-(f.hip + 0.02), hem - 0.14, f.hip + 0.02, hem))
        elif kind == "sweater":
            pen.ellipse((0, 1.3), 0.2, 0.12, shade(f.skin, 0.92))
            pen.line(arc((0, 1.3), 0.21, 0.14, 0, 180), shade(f.top, 0.8), 0.06)
            for x in (-0.5, -0.38, 0.38, 0.5):
                pen.line([(x, 1.9), (x, hem - 0.15)], shade(f.top, 0.92), 0.02)
            self._rib((-(f.hip + 0.02), hem - 0.16, f.hip + 0.02, hem))

    def _rib(self, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = box
        self.pen.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], shade(self.f.top, 0.9))
        x = x0 + 0.05
        while x < x1:
            self.pen.line([(x, y0), (x, y1)], shade(self.f.top, 0.8), 0.012)
            x += 0.08

    def _arm(self, side: int) -> None:
        f, pen = self.f, self.pen
        s, e, w = f.shoulders[side], f.elbows[side], f.wrists[side]
        pen.limb(s, e, 0.34, 0.28, f.skin)
        pen.limb(e, w, 0.28, 0.22, f.skin)
        sleeve = self.look["top.sleeve_length"]
        if sleeve == "short":
            pen.ellipse(s, 0.2, 0.2, f.top)
            end = along(s, e, f.sleeve)
            pen.limb(s, end, 0.42, 0.38, f.top, cut=True)
            pen.band(along(s, e, f.sleeve - 0.06), end, 0.38, 0.38, shade(f.top, 0.88))
        elif sleeve == "long":
            pen.ellipse(s, 0.2, 0.2, f.top)
            pen.limb(s, e, 0.4, 0.34, f.top)
            pen.limb(e, w, 0.34, 0.29, shade(f.top, 0.95), cut=True)
            if self.look["top.type"] in ("hoodie", "sweater"):
                pen.band(along(e, w, 0.85), w, 0.29, 0.29, shade(f.top, 0.85))
        dx, dy = w[0] - e[0], w[1] - e[1]
        length = math.hypot(dx, dy) or 1.0
        hand = (w[0] + dx / length * 0.1, w[1] + dy / length * 0.1)
        pen.ellipse(hand, 0.12, 0.14, shade(f.skin, 0.97))

    # head

    def _head(self) -> None:
        f, pen = self.f, self.pen
        r = f.head_rx
        for s in (-1, 1):
            pen.ellipse((s * r * 0.97, 0.56), 0.07, 0.11, shade(f.skin, 0.9))
        outline = [
            (r * math.cos(a) * (1 - 0.2 * max(0.0, math.sin(a)) ** 2), 0.5 + 0.5 * math.sin(a))
            for a in (2 * math.pi * i / 48 for i in range(48))
        ]
        pen.polygon(outline, f.skin)
        blush = mix(f.skin, (230, 110, 110), 0.12)
        for s in (-1, 1):
            pen.ellipse((s * 0.21, 0.7), 0.07, 0.045, blush)
        brow = shade(f.hair, 0.8) if self.look["hair.length"] != "bald" else shade(f.skin, 0.5)
        for s in (-1, 1):
            pen.line([(s * 0.08, 0.445), (s * 0.15, 0.425), (s * 0.23, 0.44)], brow, 0.028)
            pen.ellipse((s * 0.15, 0.52), 0.072, 0.04, (246, 246, 242))
            pen.ellipse((s * 0.15, 0.52), 0.034, 0.034, f.iris)
            pen.ellipse((s * 0.15, 0.52), 0.016, 0.016, (14, 14, 16))
            pen.ellipse((s * 0.15 + 0.012, 0.508), 0.007, 0.007, (250, 250, 250))
            pen.line(arc((s * 0.15, 0.525), 0.075, 0.045, 195, 345, 8), shade(f.skin, 0.45), 0.014)
        nose = shade(f.skin, 0.78)
        pen.line([(0.01, 0.56), (0.03, 0.68), (0.0, 0.7)], nose, 0.014)
        for s in (-1, 1):
            pen.ellipse((s * 0.035, 0.705), 0.018, 0.01, shade(f.skin, 0.6))
        if f.smile:
            pen.polygon(arc((0, 0.8), 0.1, 0.055, 0, 180, 10), f.lips)
            pen.line([(-0.095, 0.8), (0.095, 0.8)], shade(f.lips, 0.6), 0.012)
        else:
            pen.ellipse((0, 0.815), 0.085, 0.024, f.lips)
            pen.line([(-0.08, 0.815), (0.08, 0.815)], shade(f.lips, 0.6), 0.01)

    def _back_hair(self) -> None:
        length = self.look["hair.length"]
        if length in ("bald", "above_eyes"):
            return
        r, end = self.f.head_rx, min(HAIR_END[length], 1.4)
        self.pen.ellipse((0, 0.48), r + 0.07, 0.55, shade(self.f.hair, 0.8))
        self.pen.polygon(
            [
                (-r - 0.07, 0.48),
                (r + 0.07, 0.48),
                (r + 0.1, end - 0.05),
                (r, end),
                (-r, end),
                (-r - 0.1, end - 0.05),
            ],
            shade(self.f.hair, 0.8),
        )

    def _front_hair(self) -> None:
        f, pen, length = self.f, self.pen, self.look["hair.length"]
        r = f.head_rx
        if length == "bald":
            pen.ellipse((-0.12, 0.16), 0.1, 0.05, shade(f.skin, 1.12))
            return
        dome = arc((0, 0.48), r + 0.045, 0.53, 180, 360, 20)
        if length == "above_eyes":
            line = [
                (r - 0.01, 0.4),
                (r - 0.06, 0.3),
                (0.15, 0.22),
                (-0.15, 0.22),
                (-r + 0.06, 0.3),
                (-r + 0.01, 0.4),
            ]
        elif f.fringe:
            line = [
                (r - 0.04, 0.42),
                (0.2, 0.32),
                (0.07, 0.35),
                (-0.07, 0.31),
                (-0.2, 0.35),
                (-r + 0.04, 0.42),
            ]
        else:
            line = [(r - 0.04, 0.45), (0.16, 0.24), (-0.05, 0.17), (-0.25, 0.3), (-r + 0.04, 0.45)]
        pen.polygon([*dome, *line], f.hair)
        strand = shade(f.hair, 0.78)
        for x in (-0.2, -0.05, 0.1, 0.24):
            pen.line([(x * 0.6, 0.02), (x, 0.2)], strand, 0.012)
        if length == "above_eyes":
            return
        end = HAIR_END[length]
        for s in (-1, 1):
            if end < 1.5:
                side = [
                    (s * (r + 0.045), 0.45),
                    (s * (r + 0.09), end - 0.06),
                    (s * (r + 0.02), end),
                    (s * (r - 0.07), end - 0.08),
                    (s * (r - 0.06), 0.4),
                ]
            else:
                side = [
                    (s * (r + 0.045), 0.45),
                    (s * (r + 0.09), 0.95),
                    (s * (r + 0.2), 1.4),
                    (s * (r + 0.16), end - 0.1),
                    (s * (r + 0.04), end),
                    (s * (r - 0.1), end - 0.12),
                    (s * (r - 0.12), 1.35),
                    (s * (r - 0.08), 0.95),
                    (s * (r - 0.06), 0.4),
                ]
            pen.polygon(side, f.hair)
            pen.line([(s * (r + 0.0), 0.6), (s * (r + 0.03), end - 0.12)], strand, 0.012)

    def _eyewear(self) -> None:
        kind = self.look["eyewear.type"]
        if kind == "none":
            return
        f, pen = self.f, self.pen
        frame = (20, 20, 24) if kind == "sunglasses" else f.frames
        for s in (-1, 1):
            if kind == "sunglasses":
                pen.ellipse((s * 0.15, 0.525), 0.105, 0.075, (22, 24, 30), frame, 0.02)
                pen.line([(s * 0.19, 0.49), (s * 0.22, 0.51)], (84, 90, 104), 0.012)
            else:
                pen.ellipse((s * 0.15, 0.52), 0.1, 0.07, None, frame, 0.018)
            pen.line([(s * 0.25, 0.5), (s * f.head_rx, 0.49)], frame, 0.018)
        pen.line([(-0.05, 0.51), (0, 0.5), (0.05, 0.51)], frame, 0.018)

    def _hat(self) -> None:
        kind = self.look["hat.type"]
        f, pen = self.f, self.pen
        r = f.head_rx
        if kind == "baseball_cap":
            pen.polygon(arc((0, 0.32), r + 0.04, 0.39, 180, 360, 20), f.hat)
            for x in (-0.14, 0.14):
                pen.line([(x * 0.3, -0.05), (x, 0.3)], shade(f.hat, 0.8), 0.012)
            pen.ellipse((0, -0.06), 0.035, 0.02, shade(f.hat, 0.8))
            pen.ellipse((0.02, 0.33), r + 0.02, 0.07, shade(f.hat, 0.82))
            pen.line(arc((0.02, 0.33), r + 0.02, 0.07, 180, 360, 12), shade(f.hat, 1.1), 0.015)
        elif kind == "beanie":
            pen.polygon(arc((0, 0.36), r + 0.05, 0.46, 180, 360, 20), f.hat)
            band = [(-r - 0.06, 0.2), (r + 0.06, 0.2), (r + 0.06, 0.38), (-r - 0.06, 0.38)]
            pen.polygon(band, shade(f.hat, 0.88))
            x = -r - 0.02
            while x < r + 0.04:
                pen.line([(x, 0.21), (x, 0.37)], shade(f.hat, 0.75), 0.012)
                x += 0.06
            if f.pompom:
                pen.ellipse((0, -0.12), 0.1, 0.09, shade(f.hat, 1.2))
        elif kind == "brimmed_hat":
            pen.ellipse((0, 0.18), 0.76, 0.11, shade(f.hat, 0.9))
            pen.polygon(
                [(-0.34, 0.18), (-0.37, -0.2), (-0.25, -0.33), (0.25, -0.33), (0.37, -0.2), (0.34, 0.18)],
                f.hat,
            )
            pen.polygon([(-0.35, 0.04), (0.35, 0.04), (0.345, 0.15), (-0.345, 0.15)], shade(f.hat, 0.55))

    # carried things and bottoms

    def _backpack_body(self) -> None:
        sw = self.f.shoulder
        self.pen.polygon(
            [
                (-sw + 0.08, 1.3),
                (-sw + 0.2, 1.15),
                (sw - 0.2, 1.15),
                (sw - 0.08, 1.3),
                (sw - 0.08, 3.1),
                (-sw + 0.08, 3.1),
            ],
            self.f.bag,
        )
        self.pen.line(arc((0, 1.16), 0.12, 0.08, 180, 360, 8), shade(self.f.bag, 0.7), 0.03)

    def _backpack_straps(self) -> None:
        strap, buckle = shade(self.f.bag, 0.85), (40, 40, 44)
        for s in (-1, 1):
            self.pen.polygon([(s * 0.42, 1.33), (s * 0.6, 1.33), (s * 0.66, 2.75), (s * 0.5, 2.75)], strap)
            self.pen.polygon([(s * 0.47, 2.2), (s * 0.63, 2.2), (s * 0.635, 2.3), (s * 0.475, 2.3)], buckle)

    def _handbag(self) -> None:
        f, s = self.f, self.f.bag_side
        x = s * (f.hip + 0.12)
        self.pen.line([(s * 0.55, 1.36), (x - s * 0.15, 2.76)], shade(f.bag, 0.75), 0.04)
        self.pen.polygon([(x - 0.28, 2.75), (x + 0.28, 2.75), (x + 0.36, 3.35), (x - 0.36, 3.35)], f.bag)
        self.pen.line([(x - 0.28, 2.86), (x + 0.28, 2.86)], shade(f.bag, 0.7), 0.02)
        self.pen.ellipse((x, 2.9), 0.04, 0.03, (210, 180, 90))

    def _bottoms(self) -> None:
        f, pen, kind = self.f, self.pen, self.look["bottoms.type"]
        colour = f.bottoms
        if kind == "skirt":
            pen.polygon(
                [
                    (-f.waist - 0.03, 3.0),
                    (f.waist + 0.03, 3.0),
                    (f.skirt_width, f.garment_end),
                    (-f.skirt_width, f.garment_end),
                ],
                colour,
            )
            for t in (-0.5, 0.0, 0.5):
                pen.line([(t * f.waist, 3.1), (t * f.skirt_width, f.garment_end)], shade(colour, 0.82), 0.02)
            pen.line(
                [(-f.skirt_width, f.garment_end), (f.skirt_width, f.garment_end)], shade(colour, 0.75), 0.03
            )
            return
        lh, rh = f.hips
        pen.polygon(
            [
                (-f.waist - 0.02, 3.0),
                (f.waist + 0.02, 3.0),
                (f.hip + 0.03, 3.6),
                (rh[0] + 0.24, 3.9),
                (0, 4.02),
                (lh[0] - 0.24, 3.9),
                (-f.hip - 0.03, 3.6),
            ],
            colour,
        )
        for hip, knee, ankle in zip(f.hips, f.knees, f.ankles, strict=True):
            if kind == "shorts":
                end = along(hip, knee, f.garment_end)
                pen.limb(hip, end, 0.58, 0.52, colour, cut=True)
                pen.band(along(hip, knee, f.garment_end - 0.06), end, 0.52, 0.52, shade(colour, 0.88))
                continue
            foot = (ankle[0], ankle[1] + 0.05)
            pen.limb(hip, knee, 0.56, 0.42, colour)
            pen.limb(knee, foot, 0.42, 0.33, colour, cut=True)
            if kind == "jeans":
                self._denim(hip, knee, foot)
            else:
                pen.line([along(hip, knee, 0.15), knee, along(knee, foot, 0.95)], shade(colour, 0.86), 0.018)

    def _denim(self, hip: Point, knee: Point, foot: Point) -> None:
        pen, colour = self.pen, self.f.bottoms
        pen.ellipse(knee, 0.1, 0.26, shade(colour, 1.06))
        side = 1 if hip[0] > 0 else -1
        stitch = (206, 150, 70)
        pen.line(
            [
                (hip[0] + side * 0.21, hip[1]),
                (knee[0] + side * 0.16, knee[1]),
                (foot[0] + side * 0.12, foot[1] - 0.04),
            ],
            stitch,
            0.012,
        )
        pen.line([(hip[0] - 0.16, 3.6), (hip[0] + 0.16, 3.6)], stitch, 0.012)
        grain = shade(colour, 0.85)
        for i in range(14):
            a = along(hip, foot, 0.06 + i * 0.066)
            pen.line([(a[0] - 0.1, a[1]), (a[0] + 0.1, a[1] + 0.06)], grain, 0.01)
