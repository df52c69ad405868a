from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.contracts import (
    AnalyzeBatch,
    AnalyzeResult,
    CategorySpec,
    EmbedBatch,
    EmbedResult,
    ImageRef,
    ModelSpec,
    PrelabelBatch,
    PrelabelImage,
    PrelabelResult,
)
from workers.inference.device import Device
from workers.inference.labelers.heads import train
from workers.inference.pipeline import run_analyze, run_embed, run_prelabel
from workers.inference.registry import ModelRegistry


@pytest.fixture(scope="module")
def registry(cpu: Device) -> ModelRegistry:
    return ModelRegistry(cpu)


@pytest.fixture(scope="module")
def with_corrupt(image_refs: list[ImageRef], corrupt_ref: ImageRef) -> list[ImageRef]:
    """The corrupt image in the middle of a micro-batch."""
    return [*image_refs[:2], corrupt_ref, *image_refs[2:]]


def _prelabel_images(refs: list[ImageRef]) -> list[PrelabelImage]:
    return [PrelabelImage(**ref.model_dump()) for ref in refs]


def _round_trip(result: EmbedResult | PrelabelResult | AnalyzeResult) -> None:
    assert type(result).model_validate(json.loads(json.dumps(result.model_dump(mode="json")))) == result


@pytest.mark.parametrize("spec_name", ["open_clip_spec", "stats_spec"])
def test_embed_fails_only_the_corrupt_image(
    spec_name: str, request: pytest.FixtureRequest, registry: ModelRegistry, with_corrupt: list[ImageRef]
) -> None:
    spec: ModelSpec = request.getfixturevalue(spec_name)
    result = run_embed(
        EmbedBatch(batch_id=4, project_id=2, model=spec, images=with_corrupt),
        registry=registry,
        micro_batch=2,
    )
    assert [item.image_id for item in result.items] == [ref.image_id for ref in with_corrupt]
    assert result.backbone_version == spec.ref and (result.batch_id, result.project_id) == (4, 2)
    for item in result.items:
        if item.image_id == 999:
            assert item.vector_b64 is None and item.error is not None and item.error.code == "unreadable"
        else:
            vector = np.frombuffer(item.vector_bytes(), dtype="<f4")
            assert item.error is None and vector.shape == (result.dim,)
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    _round_trip(result)


@pytest.mark.parametrize("spec_name", ["open_clip_spec", "blip_vqa_spec"])
def test_prelabel_fails_only_the_corrupt_image(
    spec_name: str,
    request: pytest.FixtureRequest,
    registry: ModelRegistry,
    with_corrupt: list[ImageRef],
    categories: list[CategorySpec],
) -> None:
    spec: ModelSpec = request.getfixturevalue(spec_name)
    batch = PrelabelBatch(
        batch_id=5,
        project_id=2,
        model_version_id=11,
        model=spec,
        categories=categories,
        images=_prelabel_images(with_corrupt),
    )
    result = run_prelabel(batch, registry=registry, micro_batch=3)
    assert result.model_version_id == 11 and result.model_version == spec.ref
    assert result.skipped_categories == ["background.description"]
    for item in result.items:
        if item.image_id == 999:
            assert item.error is not None and item.predictions == {}
        else:
            assert item.error is None and {"top.sleeve_length", "coat.worn", "top.pattern"} <= set(
                item.predictions
            )
    _round_trip(result)


def test_a_captioner_fills_text_categories_and_the_scene_caption(
    registry: ModelRegistry,
    blip_caption_folder: Path,
    image_refs: list[ImageRef],
    categories: list[CategorySpec],
) -> None:
    spec = ModelSpec(
        family="captioner",
        source=str(blip_caption_folder),
        name="cap",
        version="1",
        options={"max_new_tokens": 5},
    )
    batch = PrelabelBatch(
        batch_id=1,
        project_id=1,
        model_version_id=1,
        model=spec,
        categories=categories,
        images=_prelabel_images(image_refs[:2]),
    )
    result = run_prelabel(batch, registry=registry)
    assert "background.description" not in result.skipped_categories
    assert all(
        item.caption is not None and set(item.predictions) == {"background.description"}
        for item in result.items
    )


def test_heads_use_cached_embeddings_and_compute_only_the_missing_ones(
    registry: ModelRegistry,
    stats_spec: ModelSpec,
    image_refs: list[ImageRef],
    corrupt_ref: ImageRef,
    categories: list[CategorySpec],
    tmp_path: Path,
) -> None:
    embedded = run_embed(
        EmbedBatch(batch_id=1, project_id=1, model=stats_spec, images=image_refs), registry=registry
    )
    vectors = np.stack([np.frombuffer(item.vector_bytes(), dtype="<f4") for item in embedded.items])
    sleeve = categories[0]
    train(
        vectors, ["short", "long", "sleeveless", "short", "long"], sleeve, backbone_version=stats_spec.ref
    ).save(tmp_path)
    heads = ModelSpec(family="heads", source=str(tmp_path), name="heads", version="r1")
    images = [
        image.model_copy(update={"embedding_b64": item.vector_b64})
        for image, item in zip(_prelabel_images(image_refs), embedded.items, strict=True)
    ]
    # The first image loses its cached vector and its file: only the backbone could help.
    images[0] = images[0].model_copy(update={"embedding_b64": None})
    images.append(PrelabelImage(**corrupt_ref.model_dump()))

    def run(backbone: ModelSpec | None) -> PrelabelResult:
        batch = PrelabelBatch(
            batch_id=1,
            project_id=1,
            model_version_id=2,
            model=heads,
            backbone=backbone,
            categories=categories,
            images=images,
        )
        return run_prelabel(batch, registry=registry)

    without = run(None)
    assert [i.error.code if i.error else None for i in without.items] == [
        "missing_embedding",
        None,
        None,
        None,
        None,
        "missing_embedding",
    ]
    with_backbone = run(stats_spec)
    assert [i.error.code if i.error else None for i in with_backbone.items] == [None] * 5 + ["unreadable"]
    assert all(set(i.predictions) == {"top.sleeve_length"} for i in with_backbone.items[:5])
    for computed, cached in zip(with_backbone.items[1:5], without.items[1:5], strict=True):
        a, b = computed.predictions["top.sleeve_length"], cached.predictions["top.sleeve_length"]
        assert a.value == b.value and a.distribution == pytest.approx(b.distribution, abs=1e-6)
    assert set(with_backbone.skipped_categories) == {c.key for c in categories} - {"top.sleeve_length"}
    with pytest.raises(ValueError, match="trained on"):
        run(stats_spec.model_copy(update={"version": "other"}))


def test_analyze_writes_masks_and_fails_only_the_corrupt_image(
    registry: ModelRegistry,
    detr_spec: ModelSpec,
    segformer_spec: ModelSpec,
    with_corrupt: list[ImageRef],
    tmp_path: Path,
) -> None:
    batch = AnalyzeBatch(
        batch_id=3,
        project_id=2,
        images=with_corrupt,
        detector=detr_spec,
        parser=segformer_spec,
        mask_dir=str(tmp_path / "masks"),
    )
    result = run_analyze(batch, registry=registry, micro_batch=2)
    assert result.detector_version == detr_spec.ref and result.parser_version == segformer_spec.ref
    for ref, item in zip(with_corrupt, result.items, strict=True):
        assert item.image_id == ref.image_id
        if ref.image_id == 999:
            assert item.error is not None and item.person is None and item.quality == {}
            continue
        assert item.error is None and item.person is not None and item.shot_type is not None
        assert item.parsing_mask_uri is not None and item.parsing_mask_png_b64 is None
        mask = Image.open(Path(item.parsing_mask_uri.removeprefix("file://")))
        assert mask.size == (item.width, item.height)
        assert set(item.quality) >= {"sharpness", "brightness", "contrast"}
    _round_trip(result)


def test_analyze_without_models_uses_the_whole_frame_and_inline_masks_are_optional(
    registry: ModelRegistry, segformer_spec: ModelSpec, image_refs: list[ImageRef]
) -> None:
    bare = run_analyze(AnalyzeBatch(batch_id=1, project_id=1, images=image_refs[:2]), registry=registry)
    assert bare.detector_version is None
    assert all(
        i.person is not None and i.person.source == "whole_image" and i.shot_type is None for i in bare.items
    )
    inline = run_analyze(
        AnalyzeBatch(batch_id=1, project_id=1, images=image_refs[:1], parser=segformer_spec, quality=False),
        registry=registry,
    )
    item = inline.items[0]
    assert item.quality == {} and item.parsing_mask_png_b64 is not None
    mask = Image.open(io.BytesIO(base64.b64decode(item.parsing_mask_png_b64)))
    assert mask.size == (item.width, item.height)
