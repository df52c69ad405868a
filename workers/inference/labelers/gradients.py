"""Gradient-orientation histograms (HOG-like, numpy only) for the weight-free `stats` backbone.

Colour names say what colour a region is; edges say what shape it has: a cap's peak, a brim, a
skirt's flare, a sleeve's end, a strap. Per pixel, the luminance gradient's magnitude votes for one
of `ORIENTATIONS` unsigned directions; votes are pooled over cells, either the `stats` person
cells (rows x distance from the figure's centre line) or a plain grid over a box.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

ORIENTATIONS = 8
# Added to a cell's total before dividing: a cell with almost no edges stays near zero.
CELL_FLOOR = 1.0
GRID_FLOOR = 10.0


def gradients(rgb: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """(magnitude, orientation bin) per pixel of an (h, w, 3) image, central differences."""
    grey = rgb.mean(axis=-1)
    dy = np.zeros_like(grey)
    dx = np.zeros_like(grey)
    dy[1:-1] = grey[2:] - grey[:-2]
    dx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    angle = np.mod(np.arctan2(dy, dx), np.pi)
    bins = np.minimum((angle / np.pi * ORIENTATIONS).astype(np.int64), ORIENTATIONS - 1)
    return np.hypot(dx, dy).astype(np.float32), bins


def cell_index(
    height: int,
    offset: NDArray[np.float32],
    row_edges: NDArray[np.float64],
    offset_edges: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.bool_], int]:
    """The cells of rows x distance from the centre line: each pixel's cell number (bands x
    zones, row-major) for the pixels inside a cell, which pixels those are, and how many cells."""
    bands, zones = len(row_edges) - 1, len(offset_edges) - 1
    band = np.digitize(np.arange(height), row_edges) - 1
    zone = np.digitize(offset, offset_edges) - 1
    inside = (band[:, None] >= 0) & (band[:, None] < bands) & (zone >= 0) & (zone < zones)
    return (band[:, None] * zones + zone)[inside], inside, bands * zones


def cell_histograms(
    magnitude: NDArray[np.float32],
    bins: NDArray[np.int64],
    offset: NDArray[np.float32],
    row_edges: NDArray[np.float64],
    offset_edges: NDArray[np.float64],
) -> NDArray[np.float32]:
    """(bands * zones, ORIENTATIONS): the orientation histogram of each cell of rows x distance
    from the centre line (the cells of `stats._region_cells`)."""
    index, inside, cells = cell_index(magnitude.shape[0], offset, row_edges, offset_edges)
    votes = np.bincount(
        index * ORIENTATIONS + bins[inside], weights=magnitude[inside], minlength=cells * ORIENTATIONS
    ).reshape(cells, ORIENTATIONS)
    out: NDArray[np.float32] = (votes / (votes.sum(axis=1, keepdims=True) + CELL_FLOOR + 1e-3)).astype(
        np.float32
    )
    return out


def grid_histograms(
    magnitude: NDArray[np.float32],
    bins: NDArray[np.int64],
    rows: int,
    columns: int,
    box: tuple[float, float, float, float],
) -> NDArray[np.float32]:
    """(rows * columns, ORIENTATIONS) over a grid on `box` (top, bottom, left, right in pixels,
    clipped to the image); zeros when the clipped box is smaller than the grid."""
    height, width = magnitude.shape
    top, bottom = max(0, int(box[0])), min(height, int(box[1]))
    left, right = max(0, int(box[2])), min(width, int(box[3]))
    out = np.zeros((rows * columns, ORIENTATIONS), dtype=np.float32)
    if bottom - top < rows or right - left < columns:
        return out
    row = (np.arange(bottom - top) * rows // (bottom - top))[:, None]
    column = (np.arange(right - left) * columns // (right - left))[None, :]
    index = (row * columns + column) * ORIENTATIONS + bins[top:bottom, left:right]
    votes = np.bincount(
        index.reshape(-1), weights=magnitude[top:bottom, left:right].reshape(-1), minlength=out.size
    ).reshape(out.shape)
    out[:] = votes / (np.linalg.norm(votes, axis=1, keepdims=True) + GRID_FLOOR)
    return out
