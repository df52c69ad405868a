"""A weight-free backbone: colour and texture statistics over a spatial grid.

For offline demos and tests. The embedding of an image is, per cell of a `grid` x `grid` split of
a 64x64 thumbnail, the mean and standard deviation of R, G, B and a saturation-weighted hue
histogram, L2-normalised over the whole vector. It knows nothing about people: on its own it
answers every closed category with a uniform distribution. The embedded demo relies on `heads`
trained on these embeddings, which learn the taxonomy from human labels like any other backbone.
`ModelSpec.source` is not read (use "builtin"); `options["grid"]` (default 4) sets the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import CategoryPrediction, CategorySpec, ModelSpec
from workers.inference.labelers.base import apply_conditions, decide
from workers.inference.options import option_int

THUMBNAIL_SIDE = 64
HUE_BINS = 8
FEATURES_PER_CELL = 6 + HUE_BINS


class StatsLabeler:
    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self.grid = option_int(spec, "grid", 4)
        if not 1 <= self.grid <= THUMBNAIL_SIDE // 4:
            raise ValueError(f"{spec.ref}: grid must be between 1 and {THUMBNAIL_SIDE // 4}")

    @classmethod
    def load(cls, spec: ModelSpec) -> StatsLabeler:
        return cls(spec)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def dim(self) -> int:
        return self.grid * self.grid * FEATURES_PER_CELL

    def supports(self, category: CategorySpec) -> bool:
        return category.kind != "text"

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._embed_one(image) for image in images])

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        answered = [c for c in categories if self.supports(c)]
        uniform = {c.key: decide(c, [1.0 / len(c.value_keys)] * len(c.value_keys)) for c in answered}
        return [apply_conditions(categories, dict(uniform)) for _ in images]

    def _embed_one(self, image: Image.Image) -> NDArray[np.float32]:
        thumb = image.convert("RGB").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
        rgb = np.asarray(thumb, dtype=np.float32) / 255.0
        hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32) / 255.0
        cell = THUMBNAIL_SIDE // self.grid
        side = cell * self.grid
        # (grid, grid, cell*cell, channels): one row of pixels per grid cell.
        cells_rgb = _cells(rgb[:side, :side], self.grid, cell)
        cells_hsv = _cells(hsv[:side, :side], self.grid, cell)
        means = cells_rgb.mean(axis=2) - 0.5
        stds = cells_rgb.std(axis=2)
        bins = np.minimum((cells_hsv[..., 0] * HUE_BINS).astype(np.int64), HUE_BINS - 1)
        weights = cells_hsv[..., 1]
        histogram = np.zeros((self.grid, self.grid, HUE_BINS), dtype=np.float32)
        for b in range(HUE_BINS):
            histogram[..., b] = np.where(bins == b, weights, 0.0).sum(axis=2)
        histogram /= float(cell * cell)
        features = np.concatenate([means, stds, histogram], axis=-1).reshape(-1)
        norm = float(np.linalg.norm(features))
        return (features / norm if norm > 0 else features).astype(np.float32)


def _cells(array: NDArray[np.float32], grid: int, cell: int) -> NDArray[np.float32]:
    channels = array.shape[-1]
    split = array.reshape(grid, cell, grid, cell, channels).transpose(0, 2, 1, 3, 4)
    return split.reshape(grid, grid, cell * cell, channels)
