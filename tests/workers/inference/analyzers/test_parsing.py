from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.workers import tiny_models
from workers.contracts import ATR_LABELS, ModelSpec
from workers.inference.analyzers.masks import mask_png, shot_type_from_mask
from workers.inference.analyzers.parsing import HumanParser
from workers.inference.device import Device


def test_masks_have_the_image_size_and_atr_label_ids(segformer_spec: ModelSpec, cpu: Device) -> None:
    parser = HumanParser.load(segformer_spec, cpu)
    images = [Image.new("RGB", (50, 70), (120, 80, 60)), Image.new("RGB", (90, 40), (10, 200, 30))]
    masks = parser.parse(images)
    assert [m.shape for m in masks] == [(70, 50), (40, 90)]
    assert all(m.dtype == np.uint8 and int(m.max()) < len(ATR_LABELS) for m in masks)
    decoded = np.asarray(Image.open(io.BytesIO(mask_png(masks[0]))))
    assert np.array_equal(decoded, masks[0])


def test_a_segmenter_without_the_18_atr_labels_is_refused(cpu: Device, tmp_path: Path) -> None:
    folder = tiny_models.segformer_folder(tmp_path / "seg", num_labels=19)
    with pytest.raises(ValueError, match="ATR"):
        HumanParser.load(ModelSpec(family="parser", source=str(folder), name="p", version="1"), cpu)


def _mask(*regions: tuple[str, int]) -> np.ndarray:
    """A 100-row mask with the given labels stacked top to bottom, each `rows` tall."""
    mask = np.zeros((100, 20), dtype=np.uint8)
    row = 0
    for name, rows in regions:
        mask[row : row + rows] = ATR_LABELS.index(name)
        row += rows
    return mask


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        ((("hair", 5), ("face", 10), ("upper_clothes", 30), ("pants", 40), ("left_shoe", 5)), "full_body"),
        ((("hair", 5), ("face", 10), ("upper_clothes", 35), ("pants", 50)), "nearly_full_body"),
        ((("hair", 10), ("face", 20), ("upper_clothes", 60), ("left_arm", 10)), "upper_body"),
        ((("hair", 20), ("face", 30), ("upper_clothes", 20)), "portrait"),
        ((("hair", 20), ("face", 70)), "headshot"),
        ((), None),
    ],
)
def test_shot_type_from_visible_regions(regions: tuple[tuple[str, int], ...], expected: str | None) -> None:
    assert shot_type_from_mask(_mask(*regions)) == expected
