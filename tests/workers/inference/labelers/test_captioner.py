from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.workers.inference.labelers.conftest import assert_valid
from workers.contracts import CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.labelers.captioner import CaptionLabeler


@pytest.fixture(scope="module")
def spec(blip_caption_folder: Path) -> ModelSpec:
    return ModelSpec(
        family="captioner",
        source=str(blip_caption_folder),
        name="tiny-blip-caption",
        version="1",
        options={"max_new_tokens": 6},
    )


def test_captions_are_deterministic_text_with_a_confidence(
    spec: ModelSpec, cpu: Device, images: list[Image.Image]
) -> None:
    labeler = CaptionLabeler.load(spec, cpu)
    captions = labeler.caption(images)
    assert len(captions) == len(images)
    assert all(isinstance(c.text, str) and 0.0 <= c.confidence <= 1.0 for c in captions)
    assert any(c.text for c in captions)
    assert CaptionLabeler.load(spec, cpu).caption(images) == captions


def test_text_categories_get_captions_and_closed_ones_are_left_alone(
    spec: ModelSpec, cpu: Device, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    labeler = CaptionLabeler.load(spec, cpu)
    predictions, scene = labeler.predict_and_caption(images, categories)
    assert_valid(predictions, categories)
    assert all(set(p) == {"background.description"} for p in predictions)
    # Without a prompt template the text category shares the unconditional scene caption.
    assert [p["background.description"].value for p in predictions] == [c.text for c in scene]


def test_a_prompt_conditions_the_generation(
    spec: ModelSpec, cpu: Device, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    prompted = spec.model_copy(update={"options": {"max_new_tokens": 6, "prompt_template": "a picture of"}})
    labeler = CaptionLabeler.load(prompted, cpu)
    predictions = labeler.predict(images, categories)
    assert all("background.description" in p for p in predictions)
    assert [c.text for c in labeler.caption(images, "a picture of")] == [
        p["background.description"].value for p in predictions
    ]
