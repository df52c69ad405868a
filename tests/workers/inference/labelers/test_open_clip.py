from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.workers.inference.labelers.conftest import assert_valid, assert_when_respected
from workers.contracts import CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.labelers.open_clip import OpenClipLabeler


@pytest.fixture(scope="module")
def labeler(open_clip_spec: ModelSpec, cpu: Device) -> OpenClipLabeler:
    return OpenClipLabeler.load(open_clip_spec, cpu)


def test_loads_the_saved_weights_from_the_local_folder(
    labeler: OpenClipLabeler, open_clip_spec: ModelSpec
) -> None:
    saved = load_file(str(Path(open_clip_spec.source) / "open_clip_model.safetensors"))
    loaded = labeler.model.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_embeddings_are_unit_float32_rows(labeler: OpenClipLabeler, images: list[Image.Image]) -> None:
    vectors = labeler.embed(images)
    assert vectors.shape == (len(images), labeler.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_predictions_are_distributions_that_respect_conditions(
    labeler: OpenClipLabeler, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    predictions = labeler.predict(images, categories)
    assert len(predictions) == len(images)
    assert_valid(predictions, categories)
    assert_when_respected(predictions)
    assert all("background.description" not in p for p in predictions)


def test_predictions_are_deterministic_across_loads(
    open_clip_spec: ModelSpec, cpu: Device, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    first = OpenClipLabeler.load(open_clip_spec, cpu).predict(images, categories)
    assert OpenClipLabeler.load(open_clip_spec, cpu).predict(images, categories) == first


def test_a_value_embedding_is_the_normalised_mean_of_its_prompts(
    labeler: OpenClipLabeler, categories: list[CategorySpec]
) -> None:
    sleeve = categories[0]
    prompts = next(v.prompts for v in sleeve.values if v.key == "long")
    with torch.inference_mode():
        each = torch.nn.functional.normalize(
            labeler.model.encode_text(labeler.tokenizer(prompts)).float(), dim=-1
        )
    expected = torch.nn.functional.normalize(each.mean(dim=0), dim=-1)
    assert torch.allclose(labeler.value_embeddings(sleeve)[1], expected, atol=1e-5)
    cached = labeler.value_embeddings(sleeve)
    assert labeler.value_embeddings(sleeve) is cached


def test_a_higher_temperature_flattens_the_distribution(
    open_clip_spec: ModelSpec, cpu: Device, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    def top_probability(temperature: float) -> float:
        spec = open_clip_spec.model_copy(update={"options": {"temperature": temperature}})
        prediction = OpenClipLabeler.load(spec, cpu).predict(images[:1], categories[:1])[0][
            "top.sleeve_length"
        ]
        return max(prediction.distribution.values())

    assert top_probability(0.1) > top_probability(1.0) > top_probability(10.0)


def test_booleans_without_prompts_and_text_are_not_answered(labeler: OpenClipLabeler) -> None:
    bare = CategorySpec(key="hat.worn", kind="boolean", question="is there a hat ?")
    text = CategorySpec(key="background.description", kind="text", question="describe")
    assert not labeler.supports(bare) and not labeler.supports(text)


def test_pickle_free_bin_checkpoints_load_too(
    open_clip_spec: ModelSpec,
    cpu: Device,
    tmp_path: Path,
    labeler: OpenClipLabeler,
    images: list[Image.Image],
) -> None:
    source = Path(open_clip_spec.source)
    (tmp_path / "open_clip_config.json").write_bytes((source / "open_clip_config.json").read_bytes())
    torch.save(
        load_file(str(source / "open_clip_model.safetensors")), tmp_path / "open_clip_pytorch_model.bin"
    )
    from_bin = OpenClipLabeler.load(open_clip_spec.model_copy(update={"source": str(tmp_path)}), cpu)
    assert np.array_equal(from_bin.embed(images), labeler.embed(images))


def test_a_folder_without_weights_is_refused(open_clip_spec: ModelSpec, cpu: Device, tmp_path: Path) -> None:
    (tmp_path / "open_clip_config.json").write_bytes(
        (Path(open_clip_spec.source) / "open_clip_config.json").read_bytes()
    )
    with pytest.raises(RuntimeError):
        OpenClipLabeler.load(open_clip_spec.model_copy(update={"source": str(tmp_path)}), cpu)
