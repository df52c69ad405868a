from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.workers.inference.labelers.conftest import assert_valid, assert_when_respected
from workers.contracts import CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.labelers.answer_scoring import BlipVqaScorer, CausalScorer, Seq2SeqScorer
from workers.inference.labelers.vqa import VqaLabeler

# Answers of one, two and three tokens, so padding and length normalisation are exercised.
ANSWERS = ["red", "long sleeve", "short sleeve shirt"]


@pytest.fixture(scope="module")
def blip(blip_vqa_spec: ModelSpec, cpu: Device) -> VqaLabeler:
    return VqaLabeler.load(blip_vqa_spec, cpu)


@pytest.fixture(scope="module")
def instructblip(instructblip_spec: ModelSpec, cpu: Device) -> VqaLabeler:
    return VqaLabeler.load(instructblip_spec, cpu)


@pytest.fixture(scope="module")
def causal(blip_caption_folder: Path, cpu: Device) -> VqaLabeler:
    spec = ModelSpec(family="vqa", source=str(blip_caption_folder), name="tiny-blip-caption", version="1")
    return VqaLabeler.load(spec, cpu)


def test_the_scoring_follows_the_architecture(
    blip: VqaLabeler, instructblip: VqaLabeler, causal: VqaLabeler
) -> None:
    assert isinstance(blip.scorer, BlipVqaScorer)
    assert isinstance(instructblip.scorer, Seq2SeqScorer)
    assert isinstance(causal.scorer, CausalScorer)


@pytest.mark.parametrize("name", ["blip", "instructblip", "causal"])
def test_batched_scores_equal_one_image_one_answer_at_a_time(
    name: str, request: pytest.FixtureRequest, images: list[Image.Image]
) -> None:
    labeler: VqaLabeler = request.getfixturevalue(name)
    scorer = labeler.scorer
    question = "what is the color of the shirt ?"
    batched = scorer.score(scorer.prepare(images[:3]), question, ANSWERS)
    single = np.array(
        [
            [scorer.score(scorer.prepare([image]), question, [answer])[0, 0] for answer in ANSWERS]
            for image in images[:3]
        ]
    )
    assert batched.shape == (3, len(ANSWERS))
    assert np.all(batched < 0)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["blip", "instructblip", "causal"])
def test_predictions_are_distributions_that_respect_conditions(
    name: str, request: pytest.FixtureRequest, images: list[Image.Image], categories: list[CategorySpec]
) -> None:
    labeler: VqaLabeler = request.getfixturevalue(name)
    predictions = labeler.predict(images, categories)
    assert len(predictions) == len(images)
    assert_valid(predictions, categories)
    assert_when_respected(predictions)
    assert all("background.description" not in p for p in predictions)
    assert labeler.predict(images, categories) == predictions


def test_blip_scores_match_the_decoders_own_likelihood(blip: VqaLabeler, images: list[Image.Image]) -> None:
    """An independent computation: log-softmax of the decoder's logits at each answer token."""
    import torch

    scorer = blip.scorer
    assert isinstance(scorer, BlipVqaScorer)
    model, tokenizer = scorer.model, scorer.processor.tokenizer
    question = tokenizer(["is the person wearing a coat ?"], return_tensors="pt")
    answer = tokenizer(["yes"], return_tensors="pt")["input_ids"]
    answer[:, 0] = model.config.text_config.bos_token_id
    pixels = scorer.processor.image_processor(images=[images[0]], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state
        encoded = model.text_encoder(
            input_ids=question["input_ids"],
            attention_mask=question["attention_mask"],
            encoder_hidden_states=image_embeds,
        ).last_hidden_state
        logits = model.text_decoder(input_ids=answer, encoder_hidden_states=encoded).logits
    log_probs = torch.log_softmax(logits[0, :-1], dim=-1)
    expected = log_probs[torch.arange(answer.shape[1] - 1), answer[0, 1:]].mean().item()
    got = scorer.score(scorer.prepare([images[0]]), "is the person wearing a coat ?", ["yes"])[0, 0]
    assert got == pytest.approx(expected, abs=1e-5)


def test_prompt_template_fills_question_and_choices(instructblip_spec: ModelSpec, cpu: Device) -> None:
    spec = instructblip_spec.model_copy(
        update={"options": {"prompt_template": "{question} options : {choices}"}}
    )
    labeler = VqaLabeler.load(spec, cpu)
    category = CategorySpec.model_validate(
        {
            "key": "a.b",
            "kind": "single",
            "question": "what color ?",
            "values": [{"key": "red"}, {"key": "dark_blue", "label": "blue"}],
        }
    )
    assert labeler.prompt(category) == "what color ? options : red, blue"


def test_an_unknown_scoring_is_refused(blip_vqa_spec: ModelSpec, cpu: Device) -> None:
    with pytest.raises(ValueError, match="scoring"):
        VqaLabeler.load(blip_vqa_spec.model_copy(update={"options": {"scoring": "guess"}}), cpu)


def test_seq2seq_scores_are_the_negative_mean_loss_of_the_answer(
    instructblip: VqaLabeler, images: list[Image.Image]
) -> None:
    import torch

    scorer = instructblip.scorer
    assert isinstance(scorer, Seq2SeqScorer)
    prompt = "question : what is the color of the shirt ? short answer :"
    inputs = scorer.processor(images=[images[1]], text=[prompt], return_tensors="pt")
    labels = scorer.processor.tokenizer(["long sleeve"], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        loss = scorer.model(**inputs, labels=labels).loss.item()
    got = scorer.score(scorer.prepare([images[1]]), prompt, ["long sleeve"])[0, 0]
    assert got == pytest.approx(-loss, abs=1e-5)


def test_causal_scores_read_the_answer_tokens_at_the_end_of_the_sequence(
    causal: VqaLabeler, images: list[Image.Image]
) -> None:
    import torch

    scorer = causal.scorer
    assert isinstance(scorer, CausalScorer)
    tokenizer = scorer.processor.tokenizer
    ids = tokenizer(["what color ? short sleeve"], return_tensors="pt")["input_ids"]
    answer_tokens = len(tokenizer("short sleeve", add_special_tokens=False)["input_ids"]) + 1  # and [SEP]
    ids[:, 0] = scorer.model.config.text_config.bos_token_id
    pixels = scorer.processor.image_processor(images=[images[2]], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        logits = scorer.model(pixel_values=pixels, input_ids=ids).logits[0]
    log_probs = torch.log_softmax(logits, dim=-1)
    positions = range(ids.shape[1] - answer_tokens, ids.shape[1])
    expected = sum(log_probs[p - 1, ids[0, p]].item() for p in positions) / answer_tokens
    got = scorer.score(scorer.prepare([images[2]]), "what color ?", ["short sleeve"])[0, 0]
    assert got == pytest.approx(expected, abs=1e-5)
