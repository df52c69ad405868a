"""Prelabelling with heads: from cached embeddings, computing only the ones that are missing.

The CPU side sends each image's cached embedding (`PrelabelImage.embedding_b64`) for the heads'
backbone; an image without one is embedded with `PrelabelBatch.backbone` when given, and fails
with `missing_embedding` otherwise. Heads trained on another backbone than the one named fail the
task: that is a configuration error, not an image's.
"""

from __future__ import annotations

import base64

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import ImageError, PrelabelBatch, PrelabelImage, PrelabelItem, PrelabelResult
from workers.inference.images import ImageLoadError
from workers.inference.labelers.base import Embedder
from workers.inference.labelers.heads import HeadsLabeler
from workers.inference.pipeline import embed_loaded, load_for_labeler, missing_embedding, prelabel_result
from workers.inference.prefetch import prefetched
from workers.inference.registry import ModelRegistry


def prelabel_with_heads(batch: PrelabelBatch, registry: ModelRegistry, micro_batch: int) -> PrelabelResult:
    heads = registry.get_as(batch.model, HeadsLabeler)
    backbone: Embedder | None = None
    if batch.backbone is not None:
        if heads.backbone_version not in (None, batch.backbone.ref):
            raise ValueError(
                f"{batch.model.ref} was trained on {heads.backbone_version}, not {batch.backbone.ref}"
            )
        backbone = registry.embedder(batch.backbone)
    vectors: dict[int, NDArray[np.float32]] = {}
    errors: dict[int, ImageError] = {}
    for position, image in enumerate(batch.images):
        if image.embedding_b64 is not None:
            vectors[position] = np.frombuffer(base64.b64decode(image.embedding_b64), dtype="<f4")
    missing = [(p, image) for p, image in enumerate(batch.images) if p not in vectors]
    if backbone is None:
        errors.update({p: missing_embedding(image) for p, image in missing})
    else:
        for chunk in prefetched(missing, micro_batch, _load_positioned):
            ok = [(ref, loaded) for ref, loaded in chunk if not isinstance(loaded, ImageLoadError)]
            embedded = embed_loaded(backbone, [(image, loaded) for (_, image), loaded in ok])
            for (position, image), loaded in chunk:
                if isinstance(loaded, ImageLoadError):
                    errors[position] = loaded.as_contract()
                else:
                    vectors[position] = embedded[id(image)]
    positions = sorted(vectors)
    predictions = []
    if positions:
        matrix = np.stack([vectors[p] for p in positions]).astype(np.float32)
        _check_dim(heads, matrix.shape[1])
        predictions = heads.predict_embeddings(matrix, batch.categories)
    by_position = dict(zip(positions, predictions, strict=True))
    items = [
        PrelabelItem(image_id=image.image_id, error=errors[p])
        if p in errors
        else PrelabelItem(image_id=image.image_id, predictions=by_position[p])
        for p, image in enumerate(batch.images)
    ]
    return prelabel_result(batch, heads.supports, items)


def _load_positioned(item: tuple[int, PrelabelImage]) -> Image.Image:
    return load_for_labeler(item[1])


def _check_dim(heads: HeadsLabeler, dim: int) -> None:
    for head in heads.heads.values():
        if head.weight.shape[1] != dim:
            raise ValueError(f"head {head.category} expects {head.weight.shape[1]}-d embeddings, got {dim}")
