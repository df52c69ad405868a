from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from workers.inference.analyzers.quality import quality_metrics


def _texture(size: tuple[int, int] = (300, 200)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_blur_lowers_sharpness() -> None:
    sharp = _texture()
    blurred = sharp.filter(ImageFilter.GaussianBlur(3))
    assert quality_metrics(blurred)["sharpness"] < 0.1 * quality_metrics(sharp)["sharpness"]


def test_exposure_metrics_see_black_and_white_frames() -> None:
    white, black = Image.new("RGB", (40, 30), "white"), Image.new("RGB", (40, 30), "black")
    assert quality_metrics(white)["brightness"] == 1.0 and quality_metrics(white)["clipped_bright"] == 1.0
    assert quality_metrics(black)["clipped_dark"] == 1.0 and quality_metrics(black)["contrast"] == 0.0


def test_size_metrics_describe_the_original_not_the_analysed_copy() -> None:
    metrics = quality_metrics(_texture((1600, 1000)))
    assert (metrics["width"], metrics["height"], metrics["megapixels"], metrics["aspect"]) == (
        1600,
        1000,
        1.6,
        1.6,
    )


def _checkerboard(side: int, squares: int = 16) -> Image.Image:
    cells = (np.indices((side, side)) * squares // side).sum(axis=0) % 2
    return Image.fromarray((cells * 255).astype(np.uint8)).convert("RGB")


def test_sharpness_is_comparable_across_resolutions() -> None:
    """The same scene shot at 800 px and at 3200 px scores about the same."""
    ratio = (
        quality_metrics(_checkerboard(3200))["sharpness"] / quality_metrics(_checkerboard(800))["sharpness"]
    )
    assert 0.5 < ratio < 2.0
