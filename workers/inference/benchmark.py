"""Throughput figures for bench/: the model's forward pass alone, and the whole embed pipeline.

Speed does not depend on weights, so the default model is open_clip ViT-B-32 built randomly
initialised from open_clip's shipped config (`default_benchmark_spec`). Rates are images per
second of wall-clock time after warm-up, with CUDA synchronised before the clock is read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workers.contracts import CategorySpec, EmbedBatch, ImageRef, ModelSpec, PrelabelBatch, PrelabelImage
from workers.inference.device import Device, pick_device
from workers.inference.labelers.base import Embedder
from workers.inference.pipeline import run_embed, run_prelabel
from workers.inference.registry import ModelRegistry, load_model

WARMUP_BATCHES = 2
BENCH_CATEGORY = CategorySpec.model_validate(
    {
        "key": "top.sleeve_length",
        "kind": "single",
        "question": "What is the sleeve length of the top?",
        "values": [
            {"key": "short", "prompts": ["a photo of a person in a short sleeve top"]},
            {"key": "long", "prompts": ["a photo of a person in a long sleeve top"]},
            {"key": "sleeveless", "prompts": ["a photo of a person in a sleeveless top"]},
        ],
    }
)


def default_benchmark_spec() -> ModelSpec:
    return ModelSpec(
        family="open_clip",
        source="ViT-B-32",
        name="ViT-B-32",
        version="random-init",
        options={"random_init": True},
    )


def forward_only_rate(
    model_spec: ModelSpec, batch_size: int, n_images: int, device: Device | str | None = None
) -> float:
    """Images/s of the forward pass on tensors already on the device (no decode, no resize).

    open_clip: `encode_image`; detector and parser: the model on processed pixels; other
    labelers: `predict` of one category on ready PIL images (their preprocessing included).
    """
    resolved = _device(device)
    model = load_model(model_spec, resolved)
    step = _forward_step(model, batch_size, resolved)
    return _rate(step, batch_size, n_images, resolved)


def pipeline_rate(
    model_spec: ModelSpec,
    image_paths: Sequence[Path],
    batch_size: int,
    device: Device | str | None = None,
    categories: Sequence[CategorySpec] = (BENCH_CATEGORY,),
) -> float:
    """Images/s of read + sha256 check + decode + preprocess + forward over files on disk.

    Embedders (open_clip, stats) run `run_embed`; other labelers `run_prelabel` of `categories`.
    The model is loaded and warmed up before the clock starts.
    """
    resolved = _device(device)
    registry = ModelRegistry(resolved)
    refs = [
        ImageRef(image_id=i, uri=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
        for i, path in enumerate(image_paths)
    ]
    model = registry.get(model_spec)

    def run(selected: Sequence[ImageRef]) -> None:
        if isinstance(model, Embedder):
            run_embed(
                EmbedBatch(batch_id=0, project_id=0, model=model_spec, images=list(selected)),
                registry=registry,
                micro_batch=batch_size,
            )
        else:
            images = [PrelabelImage(**ref.model_dump()) for ref in selected]
            batch = PrelabelBatch(
                batch_id=0,
                project_id=0,
                model_version_id=0,
                model=model_spec,
                categories=list(categories),
                images=images,
            )
            run_prelabel(batch, registry=registry, micro_batch=batch_size)

    run(refs[: batch_size * WARMUP_BATCHES])
    _synchronize(resolved)
    start = time.perf_counter()
    run(refs)
    _synchronize(resolved)
    return len(refs) / (time.perf_counter() - start)


def write_synthetic_images(
    folder: Path, count: int, size: tuple[int, int] = (1255, 1488), seed: int = 0
) -> list[Path]:
    """JPEGs at the dataset's mean resolution: smooth noise, so they compress like photos."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        small = rng.integers(0, 256, size=(size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
        path = folder / f"{index:06d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def _forward_step(model: object, batch_size: int, device: Device) -> Callable[[], object]:
    from workers.inference.labelers.open_clip import OpenClipLabeler

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 360, 3), dtype=np.uint8))
    images = [image] * batch_size
    if isinstance(model, OpenClipLabeler):
        pixels = model.pixels(images).to(device.torch_device)
        return lambda: model.image_features(pixels)
    processor = getattr(model, "image_processor", None)
    network = getattr(model, "model", None)
    if processor is not None and network is not None and not hasattr(model, "predict"):
        inputs = {
            k: v.to(device.torch_device) for k, v in processor(images=images, return_tensors="pt").items()
        }

        def forward() -> object:
            with device.inference():
                return network(**inputs)

        return forward
    predict = getattr(model, "predict", None)
    if predict is None:
        raise TypeError(f"cannot benchmark {type(model).__name__}")
    return lambda: predict(images, [BENCH_CATEGORY])


def _rate(step: Callable[[], object], batch_size: int, n_images: int, device: Device) -> float:
    for _ in range(WARMUP_BATCHES):
        step()
    _synchronize(device)
    batches = max(1, -(-n_images // batch_size))
    start = time.perf_counter()
    for _ in range(batches):
        step()
    _synchronize(device)
    return batches * batch_size / (time.perf_counter() - start)


def _device(device: Device | str | None) -> Device:
    return device if isinstance(device, Device) else pick_device(device)


def _synchronize(device: Device) -> None:
    if device.is_cuda:
        torch.cuda.synchronize(device.torch_device)
