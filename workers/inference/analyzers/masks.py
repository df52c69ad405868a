"""Parsing masks without the model: PNG encoding, and the shot type read from visible regions.

Kept apart from `parsing` so that reading masks never imports transformers.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import ATR_LABELS, ShotType

_ID = {name: i for i, name in enumerate(ATR_LABELS)}
_SHOES = [_ID["left_shoe"], _ID["right_shoe"]]
_LOWER = [_ID["pants"], _ID["skirt"], _ID["left_leg"], _ID["right_leg"]]
_UPPER = [_ID["upper_clothes"], _ID["dress"], _ID["left_arm"], _ID["right_arm"]]
_HEAD = [_ID["face"], _ID["hair"], _ID["hat"], _ID["sunglasses"]]


def mask_png(mask: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def shot_type_from_mask(mask: NDArray[np.uint8]) -> ShotType | None:
    """The shot type from which body regions are visible: feet, legs, torso, or the head alone."""
    person = int((mask != _ID["background"]).sum())
    if person == 0:
        return None

    def share(ids: list[int]) -> float:
        return float(np.isin(mask, ids).sum()) / person

    lower, upper, head = share(_LOWER), share(_UPPER), share(_HEAD)
    if share(_SHOES) > 0.002:
        return "full_body"
    if lower > 0.5 * upper and lower > 0.05:
        return "nearly_full_body"
    if upper > head:
        return "upper_body"
    # Head and shoulders show some clothing; a headshot almost none.
    return "portrait" if upper >= 0.15 else "headshot"
