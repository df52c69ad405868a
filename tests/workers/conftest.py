"""Fixtures for the workers: tiny models built once per session, images on disk, the CPU device."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

# Nothing may reach a model hub: fail fast instead of trying the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pytest
from PIL import Image

from tests.workers import tiny_models
from workers.contracts import CategorySpec, ImageRef, ModelSpec

BuildFolder = Callable[[Path], Path]


def _built(factory: pytest.TempPathFactory, name: str, build: BuildFolder) -> Path:
    return build(factory.mktemp(name) / "model")


@pytest.fixture(scope="session")
def cpu() -> object:
    from workers.inference.device import pick_device

    return pick_device("cpu")


@pytest.fixture(scope="session")
def open_clip_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = _built(tmp_path_factory, "open_clip", tiny_models.open_clip_folder)
    return ModelSpec(family="open_clip", source=str(folder), name="tiny-vit", version="1")


@pytest.fixture(scope="session")
def blip_vqa_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = _built(tmp_path_factory, "blip_vqa", tiny_models.blip_vqa_folder)
    return ModelSpec(family="vqa", source=str(folder), name="tiny-blip-vqa", version="1")


@pytest.fixture(scope="session")
def blip_caption_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory, "blip_caption", tiny_models.blip_caption_folder)


@pytest.fixture(scope="session")
def instructblip_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = _built(tmp_path_factory, "instructblip", tiny_models.instructblip_t5_folder)
    return ModelSpec(
        family="vqa",
        source=str(folder),
        name="tiny-instructblip-t5",
        version="1",
        options={"prompt_template": "question : {question} short answer :"},
    )


@pytest.fixture(scope="session")
def detr_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = _built(tmp_path_factory, "detr", tiny_models.detr_folder)
    # A random detector's scores are low: accept any box so its geometry is exercised.
    return ModelSpec(
        family="detector", source=str(folder), name="tiny-detr", version="1", options={"min_score": 0.0}
    )


@pytest.fixture(scope="session")
def segformer_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = _built(tmp_path_factory, "segformer", tiny_models.segformer_folder)
    return ModelSpec(family="parser", source=str(folder), name="tiny-segformer", version="1")


@pytest.fixture(scope="session")
def stats_spec() -> ModelSpec:
    return ModelSpec(family="stats", source="builtin", name="stats", version="1")


def write_image(path: Path, size: tuple[int, int], seed: int, fmt: str = "JPEG") -> ImageRef:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return ImageRef(image_id=seed, uri=path.as_uri(), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture(scope="session")
def image_refs(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRef]:
    """Five decodable images of different sizes and formats."""
    folder = tmp_path_factory.mktemp("images")
    sizes = [(48, 64), (64, 48), (40, 90), (100, 100), (33, 57)]
    return [
        write_image(folder / f"{i}.{'png' if i % 2 else 'jpg'}", size, i, "PNG" if i % 2 else "JPEG")
        for i, size in enumerate(sizes, start=1)
    ]


@pytest.fixture(scope="session")
def corrupt_ref(tmp_path_factory: pytest.TempPathFactory) -> ImageRef:
    path = tmp_path_factory.mktemp("corrupt") / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return ImageRef(image_id=999, uri=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture(scope="session")
def categories() -> list[CategorySpec]:
    """A small taxonomy: a coat's colour is asked only with a coat on, a top's fit only without."""
    return [
        CategorySpec.model_validate(c)
        for c in [
            {
                "key": "top.sleeve_length",
                "kind": "single",
                "question": "what is the sleeve length ?",
                "values": [
                    {"key": "short", "prompts": ["a photo of a person in a short sleeve shirt"]},
                    {
                        "key": "long",
                        "prompts": [
                            "a photo of a person in a long sleeve shirt",
                            "a picture of a person wearing long sleeves",
                        ],
                    },
                    {"key": "sleeveless", "prompts": ["a photo of a person in a sleeveless shirt"]},
                ],
            },
            {
                "key": "coat.worn",
                "kind": "boolean",
                "question": "is the person wearing a coat ?",
                "values": [
                    {"key": "yes", "prompts": ["a photo of a person wearing a coat"]},
                    {"key": "no", "prompts": ["a photo of a person without a coat"]},
                ],
            },
            {
                "key": "coat.color",
                "kind": "single",
                "question": "what is the color of the coat ?",
                "values": [{"key": "red"}, {"key": "blue"}, {"key": "black"}],
                "when": {"category": "coat.worn", "equals": True},
            },
            {
                "key": "top.fit",
                "kind": "single",
                "question": "how does the shirt fit ?",
                "values": [{"key": "loose"}, {"key": "tight"}],
                "when": {"category": "coat.worn", "equals": False},
            },
            {
                "key": "top.pattern",
                "kind": "multi",
                "question": "what is the pattern of the shirt ?",
                "values": [{"key": "plain"}, {"key": "striped"}, {"key": "floral"}],
            },
            {"key": "background.description", "kind": "text", "question": "describe the background ."},
        ]
    ]
