"""Weight-free image-quality metrics that feed the pool's filters.

Measured on the luma of a copy scaled to `ANALYSIS_SIDE` px on its long side, so a sharpness of
one image compares with another's whatever their resolutions. Keys (all floats):
- width, height, megapixels, aspect (width / height) of the original;
- sharpness: variance of the 4-neighbour Laplacian of luma in [0, 1] (blur lowers it);
- brightness: mean luma in [0, 1]; contrast: standard deviation of luma;
- clipped_dark / clipped_bright: share of pixels crushed to black / blown to white.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ANALYSIS_SIDE = 512
DARK_LEVEL = 4 / 255
BRIGHT_LEVEL = 251 / 255


def quality_metrics(image: Image.Image) -> dict[str, float]:
    width, height = image.size
    scale = ANALYSIS_SIDE / max(width, height)
    analysed = image
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        analysed = image.resize(size, Image.Resampling.BILINEAR)
    luma = np.asarray(analysed.convert("L"), dtype=np.float64) / 255.0
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
    return {
        "width": float(width),
        "height": float(height),
        "megapixels": width * height / 1e6,
        "aspect": width / height,
        "sharpness": float(laplacian.var()) if laplacian.size else 0.0,
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "clipped_dark": float((luma <= DARK_LEVEL).mean()),
        "clipped_bright": float((luma >= BRIGHT_LEVEL).mean()),
    }
