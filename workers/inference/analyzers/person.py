"""What detectors return, the weight-free whole-image fallback, and a shot type from a box.

Kept apart from `detector` so that the embedded demo, which has no detector, never imports
transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from workers.contracts import PersonBox, ShotType

# A box reaching this close to the bottom edge is cut off by the frame.
EDGE_MARGIN = 0.03


@dataclass(frozen=True)
class Detection:
    person: PersonBox | None
    best_score: float
    shot_type: ShotType | None


class PersonDetector(Protocol):
    @property
    def version(self) -> str | None: ...

    def detect(self, images: Sequence[Image.Image]) -> list[Detection]: ...


class WholeImageDetector:
    @property
    def version(self) -> str | None:
        return None

    def detect(self, images: Sequence[Image.Image]) -> list[Detection]:
        return [
            Detection(
                PersonBox(x=0, y=0, w=image.width, h=image.height, score=1.0, source="whole_image"),
                best_score=1.0,
                shot_type=None,
            )
            for image in images
        ]


def shot_type_from_box(box: PersonBox, width: int, height: int) -> ShotType | None:
    """A coarse shot type from the box's shape and whether the frame cuts it at the bottom.

    Used when no parsing mask is available (parsing.shot_type_from_mask is better). A person not
    cut by the bottom edge is shown whole; a cut box over twice as tall as wide lost the feet; a
    cut box over 1.3 times as tall as wide is the upper body; a squarer one is head and shoulders,
    or a face when it fills the frame. The whole-image fallback box says nothing about the person,
    so it has no shot type.
    """
    if box.source == "whole_image" or width <= 0 or height <= 0:
        return None
    cut = box.y + box.h >= (1 - EDGE_MARGIN) * height
    tallness = box.h / box.w
    if not cut:
        return "full_body"
    if tallness >= 2.0:
        return "nearly_full_body"
    if tallness >= 1.3:
        return "upper_body"
    if box.h >= 0.9 * height and box.w >= 0.9 * width:
        return "headshot"
    return "portrait"
