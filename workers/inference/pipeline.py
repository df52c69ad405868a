"""What the GPU worker's Celery tasks call: a payload in, a result out, no state kept.

Each function decodes images in a background thread pool one micro-batch ahead of the model,
answers every image it can, and reports the rest with an `ImageError`. Exceptions mean a bad
model, a bad payload or a bug, and fail the task.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import (
    AnalyzeBatch,
    AnalyzeItem,
    AnalyzeResult,
    CategoryPrediction,
    CategorySpec,
    EmbedBatch,
    EmbedItem,
    EmbedResult,
    ImageError,
    ImageRef,
    PrelabelBatch,
    PrelabelImage,
    PrelabelItem,
    PrelabelResult,
    encode_vector,
)
from workers.inference.analyzers.masks import mask_png, shot_type_from_mask
from workers.inference.analyzers.person import Detection, PersonDetector, WholeImageDetector
from workers.inference.analyzers.quality import quality_metrics
from workers.inference.images import ImageLoadError, load_image
from workers.inference.labelers.base import Captioner, Embedder, Labeler, Preparing
from workers.inference.options import option_int
from workers.inference.prefetch import prefetched
from workers.inference.registry import ModelRegistry, process_registry

DEFAULT_MICRO_BATCH = 16
# Labelers look at 224-448 px inputs: JPEGs are decoded at a reduced scale no smaller than this.
LABELER_DRAFT_SIDE = 512


def run_analyze(
    batch: AnalyzeBatch, *, registry: ModelRegistry | None = None, micro_batch: int = DEFAULT_MICRO_BATCH
) -> AnalyzeResult:
    registry = registry or process_registry()
    detector: PersonDetector = WholeImageDetector()
    if batch.detector is not None:
        from workers.inference.analyzers.detector import TransformersPersonDetector

        detector = registry.get_as(batch.detector, TransformersPersonDetector)
    parser = None
    if batch.parser is not None:
        from workers.inference.analyzers.parsing import HumanParser

        parser = registry.get_as(batch.parser, HumanParser)

    def load(ref: ImageRef) -> tuple[Image.Image, dict[str, float]]:
        image = load_image(ref)
        return image, quality_metrics(image) if batch.quality else {}

    items: list[AnalyzeItem] = []
    for chunk in prefetched(batch.images, micro_batch, load):
        ok = [(ref, loaded) for ref, loaded in chunk if not isinstance(loaded, ImageLoadError)]
        images = [image for _, (image, _) in ok]
        detections = detector.detect(images)
        masks: Sequence[NDArray[np.uint8] | None] = parser.parse(images) if parser else [None] * len(images)
        analysed = {
            id(ref): _analysis(ref, image, quality, detection, mask, batch.mask_dir)
            for (ref, (image, quality)), detection, mask in zip(ok, detections, masks, strict=True)
        }
        for ref, loaded in chunk:
            if isinstance(loaded, ImageLoadError):
                items.append(AnalyzeItem(image_id=ref.image_id, error=loaded.as_contract()))
            else:
                items.append(analysed[id(ref)])
    return AnalyzeResult(
        batch_id=batch.batch_id,
        project_id=batch.project_id,
        detector_version=detector.version,
        parser_version=parser.version if parser is not None else None,
        items=items,
    )


def _analysis(
    ref: ImageRef,
    image: Image.Image,
    quality: dict[str, float],
    detection: Detection,
    mask: NDArray[np.uint8] | None,
    mask_dir: str | None,
) -> AnalyzeItem:
    shot_type = detection.shot_type
    png_b64 = mask_uri = None
    if mask is not None:
        # What is visible of the body says more about the framing than the box does.
        shot_type = shot_type_from_mask(mask) or shot_type
        png = mask_png(mask)
        if mask_dir is not None:
            mask_uri = _write_atomically(Path(mask_dir) / f"{ref.sha256}.png", png)
        else:
            png_b64 = base64.b64encode(png).decode("ascii")
    return AnalyzeItem(
        image_id=ref.image_id,
        width=image.width,
        height=image.height,
        person=detection.person,
        shot_type=shot_type if detection.person is not None else None,
        detector_score=detection.best_score,
        quality=quality,
        parsing_mask_png_b64=png_b64,
        parsing_mask_uri=mask_uri,
    )


def run_embed(
    batch: EmbedBatch, *, registry: ModelRegistry | None = None, micro_batch: int | None = None
) -> EmbedResult:
    registry = registry or process_registry()
    embedder = registry.embedder(batch.model)
    size = micro_batch or option_int(batch.model, "batch_size", DEFAULT_MICRO_BATCH)
    items: list[EmbedItem] = []
    load, embed = _embedding_steps(embedder)
    for chunk in prefetched(batch.images, size, load):
        vectors = embed(chunk)
        for ref, loaded in chunk:
            if isinstance(loaded, ImageLoadError):
                items.append(EmbedItem(image_id=ref.image_id, error=loaded.as_contract()))
            else:
                items.append(EmbedItem(image_id=ref.image_id, vector_b64=_vector_b64(vectors[id(ref)])))
    return EmbedResult(
        batch_id=batch.batch_id,
        project_id=batch.project_id,
        backbone_version=batch.model.ref,
        dim=embedder.dim,
        items=items,
    )


def run_prelabel(
    batch: PrelabelBatch, *, registry: ModelRegistry | None = None, micro_batch: int | None = None
) -> PrelabelResult:
    registry = registry or process_registry()
    size = micro_batch or option_int(batch.model, "batch_size", DEFAULT_MICRO_BATCH)
    if batch.model.family == "heads":
        from workers.inference.pipeline_heads import prelabel_with_heads

        return prelabel_with_heads(batch, registry, size)
    labeler = registry.labeler(batch.model)
    items: list[PrelabelItem] = []
    load: Callable[[ImageRef], object] = (
        _prepared_loader(labeler) if isinstance(labeler, Preparing) else load_for_labeler
    )
    for chunk in prefetched(batch.images, size, load):
        ok = [(ref, loaded) for ref, loaded in chunk if not isinstance(loaded, ImageLoadError)]
        predictions, captions = _answer(labeler, [loaded for _, loaded in ok], batch.categories)
        answered = {id(ref): i for i, (ref, _) in enumerate(ok)}
        for ref, loaded in chunk:
            if isinstance(loaded, ImageLoadError):
                items.append(PrelabelItem(image_id=ref.image_id, error=loaded.as_contract()))
            else:
                i = answered[id(ref)]
                items.append(
                    PrelabelItem(image_id=ref.image_id, predictions=predictions[i], caption=captions[i])
                )
    return prelabel_result(batch, labeler.supports, items)


def _answer(
    labeler: Labeler, loaded: Sequence[object], categories: Sequence[CategorySpec]
) -> tuple[list[dict[str, CategoryPrediction]], list[str | None]]:
    if isinstance(labeler, Preparing):
        return labeler.predict_prepared(loaded, categories), [None] * len(loaded)
    return label_images(labeler, [i for i in loaded if isinstance(i, Image.Image)], categories)


def label_images(
    labeler: Labeler, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
) -> tuple[list[dict[str, CategoryPrediction]], list[str | None]]:
    """Predictions per image, plus the scene caption where the labeler is a captioner."""
    if not images:
        return [], []
    if isinstance(labeler, Captioner):
        predictions, captions = labeler.predict_and_caption(images, categories)
        return predictions, [c.text for c in captions]
    return labeler.predict(images, categories), [None] * len(images)


def prelabel_result(
    batch: PrelabelBatch, supports: Callable[[CategorySpec], bool], items: list[PrelabelItem]
) -> PrelabelResult:
    return PrelabelResult(
        batch_id=batch.batch_id,
        project_id=batch.project_id,
        model_version_id=batch.model_version_id,
        model_version=batch.model.ref,
        skipped_categories=[c.key for c in batch.categories if not supports(c)],
        items=items,
    )


def _prepared_loader(labeler: Preparing) -> Callable[[ImageRef], object]:
    """Decode at the model's input scale and preprocess, both in the decode threads, so the
    model's thread only stacks ready tensors."""
    side = labeler.input_side

    def load(ref: ImageRef) -> object:
        return labeler.prepare(load_image(ref, draft_to=side))

    return load


def _embedding_steps(
    embedder: Embedder,
) -> tuple[
    Callable[[ImageRef], object],
    Callable[[Sequence[tuple[ImageRef, object]]], dict[int, NDArray[np.float32]]],
]:
    if not isinstance(embedder, Preparing):
        return load_for_labeler, lambda chunk: embed_loaded(embedder, chunk)
    preparing = embedder

    def embed(chunk: Sequence[tuple[ImageRef, object]]) -> dict[int, NDArray[np.float32]]:
        ok = [(ref, p) for ref, p in chunk if not isinstance(p, ImageLoadError)]
        if not ok:
            return {}
        vectors = preparing.embed_prepared([p for _, p in ok])
        return {id(ref): vector for (ref, _), vector in zip(ok, vectors, strict=True)}

    return _prepared_loader(preparing), embed


def missing_embedding(image: PrelabelImage) -> ImageError:
    return ImageError(code="missing_embedding", detail=f"image {image.image_id} has no cached embedding")


def load_for_labeler(ref: ImageRef) -> Image.Image:
    return load_image(ref, draft_to=LABELER_DRAFT_SIDE)


def embed_loaded(
    embedder: Embedder, chunk: Sequence[tuple[ImageRef, Image.Image | ImageLoadError]]
) -> dict[int, NDArray[np.float32]]:
    ok = [(ref, image) for ref, image in chunk if not isinstance(image, ImageLoadError)]
    if not ok:
        return {}
    vectors = embedder.embed([image for _, image in ok])
    return {id(ref): vector for (ref, _), vector in zip(ok, vectors, strict=True)}


def _vector_b64(vector: NDArray[np.float32]) -> str:
    return encode_vector(np.asarray(vector, dtype="<f4").tobytes())


def _write_atomically(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return path.as_uri()
