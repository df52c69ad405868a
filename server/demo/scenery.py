"""Backgrounds behind a synthetic person, one painter per `background.type` value.

Painters work in pixels on the supersampled canvas. `horizon` is where ground meets sky or wall;
the framing puts it near the person's chest, as an eye-level camera would.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageDraw

from server.demo.paint import RGB, jitter, mix, shade

Painter = Callable[[ImageDraw.ImageDraw, random.Random, int, int, float], None]

_WALLS: tuple[RGB, ...] = (
    (236, 232, 222),
    (214, 222, 230),
    (200, 214, 196),
    (232, 208, 200),
    (190, 190, 196),
    (96, 104, 116),
    (226, 214, 180),
)
_ROOM_WALLS: tuple[RGB, ...] = ((238, 226, 204), (206, 222, 214), (222, 206, 190), (204, 208, 224))
_FLOORS: tuple[RGB, ...] = ((150, 102, 60), (118, 78, 46), (170, 126, 80))
_BUILDINGS: tuple[RGB, ...] = (
    (150, 78, 62),
    (198, 184, 160),
    (132, 132, 138),
    (112, 124, 140),
    (176, 150, 118),
    (214, 204, 190),
)


def paint_background(image: Image.Image, rng: random.Random, kind: str, horizon: float) -> None:
    """Paints `kind` over all of `image` (RGB)."""
    draw = ImageDraw.Draw(image, "RGBA")
    _PAINTERS[kind](draw, rng, image.width, image.height, horizon)


def _gradient(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], top: RGB, bottom: RGB
) -> None:
    x0, y0, x1, y1 = box
    if y1 <= y0:
        return
    bands = 24
    step = (y1 - y0) / bands
    for i in range(bands):
        colour = mix(top, bottom, i / (bands - 1))
        draw.rectangle((x0, y0 + i * step, x1, y0 + (i + 1) * step + 1), fill=colour)


def _sky(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, bottom: float) -> None:
    top = jitter(rng, (92, 156, 224), 10)
    _gradient(draw, (0, 0, w, bottom), top, mix(top, (236, 242, 248), 0.65))
    for _ in range(rng.randint(0, 3)):
        cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.6) * bottom
        size = rng.uniform(0.05, 0.12) * w
        for _ in range(5):
            dx, dy = rng.uniform(-1.2, 1.2) * size, rng.uniform(-0.3, 0.3) * size
            r = rng.uniform(0.4, 0.7) * size
            draw.ellipse(
                (cx + dx - r, cy + dy - r * 0.6, cx + dx + r, cy + dy + r * 0.6), fill=(255, 255, 255, 200)
            )


def _plain_wall(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: float) -> None:
    base = jitter(rng, rng.choice(_WALLS), 8)
    _gradient(draw, (0, 0, w, h), shade(base, 1.04), shade(base, 0.9))


def _park(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: float) -> None:
    _sky(draw, rng, w, horizon)
    far = jitter(rng, (52, 98, 58), 8)
    bumps = [(0.0, horizon)]
    x = 0.0
    while x < w:
        bumps.append((x, horizon - rng.uniform(0.03, 0.09) * h))
        x += rng.uniform(0.03, 0.07) * w
    bumps += [(float(w), horizon - 0.05 * h), (float(w), horizon)]
    draw.polygon(bumps, fill=far)
    grass = jitter(rng, (104, 168, 70), 10)
    _gradient(draw, (0, horizon, w, h), grass, shade(grass, 0.72))
    blade = shade(grass, 0.8)
    for _ in range(120):
        bx, by = rng.uniform(0, w), rng.uniform(horizon, h)
        length = 0.004 * h + 0.02 * h * (by - horizon) / max(1.0, h - horizon)
        draw.line((bx, by, bx + rng.uniform(-2, 2), by - length), fill=blade, width=2)
    tx = rng.uniform(0.05, 0.95) * w
    base = horizon + rng.uniform(0.02, 0.1) * h
    height = rng.uniform(0.35, 0.6) * h
    trunk_w = 0.035 * w
    draw.rectangle(
        (tx - trunk_w / 2, base - height * 0.6, tx + trunk_w / 2, base), fill=jitter(rng, (96, 66, 42), 8)
    )
    leaves = jitter(rng, (58, 122, 54), 10)
    crown_y, crown_r = base - height * 0.72, height * 0.3
    for i in range(7):
        dx, dy = rng.uniform(-0.7, 0.7) * crown_r, rng.uniform(-0.5, 0.4) * crown_r
        r = rng.uniform(0.45, 0.7) * crown_r
        colour = shade(leaves, 0.85 + 0.05 * i)
        draw.ellipse((tx + dx - r, crown_y + dy - r, tx + dx + r, crown_y + dy + r), fill=colour)


def _street(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: float) -> None:
    _sky(draw, rng, w, horizon)
    ground = horizon + 0.02 * h
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = rng.uniform(0.2, 0.42) * w
        top = rng.uniform(0.0, max(0.01, horizon / h - 0.25)) * h
        wall = jitter(rng, rng.choice(_BUILDINGS), 8)
        draw.rectangle((x, top, x + bw, ground), fill=wall)
        draw.rectangle((x, top, x + bw, top + 0.012 * h), fill=shade(wall, 0.75))
        lit = rng.random() < 0.3
        glass = (228, 208, 150) if lit else jitter(rng, (88, 116, 148), 8)
        ww, wh = bw / 7, 0.05 * h
        wy = top + 0.04 * h
        while wy + wh < ground - 0.03 * h:
            for col in range(3):
                wx = x + bw * (0.12 + 0.3 * col)
                draw.rectangle((wx, wy, wx + ww, wy + wh), fill=glass, outline=shade(wall, 0.7))
            wy += wh * 1.9
        x += bw
    walk = jitter(rng, (176, 174, 168), 6)
    curb = ground + min(rng.uniform(0.06, 0.12) * h, 0.5 * (h - ground))
    draw.rectangle((0, ground, w, curb), fill=walk)
    for jx in range(0, w, max(1, w // 6)):
        draw.line((jx, ground, jx - 0.05 * w, curb), fill=shade(walk, 0.85), width=2)
    road = jitter(rng, (72, 74, 80), 6)
    draw.rectangle((0, curb, w, h), fill=road)
    draw.rectangle((0, curb, w, curb + 0.01 * h), fill=shade(walk, 0.7))
    lane = curb + (h - curb) * 0.55
    for lx in range(0, w, max(1, w // 4)):
        draw.rectangle((lx, lane, lx + w * 0.12, lane + 0.012 * h), fill=(232, 232, 226))


def _beach(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: float) -> None:
    _sky(draw, rng, w, horizon)
    if rng.random() < 0.4:
        sx, sy, r = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.4) * horizon, 0.05 * w
        draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 246, 206))
    shore = horizon + min(rng.uniform(0.06, 0.14) * h, 0.5 * (h - horizon))
    sea = jitter(rng, (34, 96, 156), 8)
    _gradient(draw, (0, horizon, w, shore), sea, mix(sea, (90, 176, 196), 0.7))
    for _ in range(14):
        wy = rng.uniform(horizon + 0.01 * h, shore)
        wx = rng.uniform(0, w)
        draw.line((wx, wy, wx + rng.uniform(0.05, 0.15) * w, wy), fill=(220, 236, 244, 160), width=2)
    sand = jitter(rng, (232, 206, 158), 8)
    _gradient(draw, (0, shore, w, h), sand, shade(sand, 0.9))
    draw.rectangle((0, shore, w, shore + 0.012 * h), fill=(246, 246, 240, 210))
    speck = shade(sand, 0.82)
    for _ in range(160):
        px, py = rng.uniform(0, w), rng.uniform(shore, h)
        draw.rectangle((px, py, px + 2, py + 2), fill=speck)


def _indoor_room(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: float) -> None:
    floor_y = min(0.94 * h, horizon + rng.uniform(0.05, 0.2) * h)
    wall = jitter(rng, rng.choice(_ROOM_WALLS), 8)
    _gradient(draw, (0, 0, w, floor_y), shade(wall, 1.03), shade(wall, 0.92))
    wood = jitter(rng, rng.choice(_FLOORS), 8)
    _gradient(draw, (0, floor_y, w, h), shade(wood, 0.9), wood)
    gap = 0.03 * h
    y = floor_y + gap
    while y < h:
        draw.line((0, y, w, y), fill=shade(wood, 0.78), width=2)
        seam = rng.uniform(0, w)
        draw.line((seam, y, seam, y + gap), fill=shade(wood, 0.78), width=2)
        gap *= 1.25
        y += gap
    draw.rectangle((0, floor_y - 0.02 * h, w, floor_y), fill=(240, 238, 232))
    fw, fh = rng.uniform(0.2, 0.32) * w, rng.uniform(0.22, 0.36) * h
    fx = rng.choice((rng.uniform(0.02, 0.2), rng.uniform(0.55, 0.75))) * w
    fy = max(0.04 * h, floor_y - fh - rng.uniform(0.2, 0.4) * h)
    border = 0.025 * w
    if rng.random() < 0.5:
        draw.rectangle((fx, fy, fx + fw, fy + fh), fill=(246, 246, 244))
        _gradient(
            draw,
            (fx + border, fy + border, fx + fw - border, fy + fh - border),
            (120, 176, 228),
            (210, 232, 246),
        )
        draw.line((fx + fw / 2, fy, fx + fw / 2, fy + fh), fill=(246, 246, 244), width=4)
        draw.line((fx, fy + fh / 2, fx + fw, fy + fh / 2), fill=(246, 246, 244), width=4)
    else:
        draw.rectangle((fx, fy, fx + fw, fy + fh), fill=jitter(rng, (70, 48, 30), 10))
        draw.rectangle((fx + border, fy + border, fx + fw - border, fy + fh - border), fill=(240, 236, 226))
        for _ in range(3):
            colour = jitter(rng, rng.choice(((200, 80, 60), (60, 110, 170), (230, 190, 70))), 20)
            bx = rng.uniform(fx + 2 * border, fx + fw - 4 * border)
            by = rng.uniform(fy + 2 * border, fy + fh - 4 * border)
            draw.ellipse((bx, by, bx + 2 * border, by + 2 * border), fill=colour)


_PAINTERS: dict[str, Painter] = {
    "plain_wall": _plain_wall,
    "park": _park,
    "street": _street,
    "beach": _beach,
    "indoor_room": _indoor_room,
}
BACKGROUND_TYPES: tuple[str, ...] = tuple(_PAINTERS)
