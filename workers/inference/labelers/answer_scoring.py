"""Scoring closed-vocabulary answers with a vision-language model.

Each allowed answer is scored by its mean per-token log-likelihood as the model's answer to the
question (length normalisation, so long answers are not penalised for being long). Three shapes
of model cover the families worth supporting:

- `BlipVqaScorer`: BLIP VQA (`BlipForQuestionAnswering`): image encoder, question encoder, answer
  decoder. The image and question are encoded once and every answer is decoded against them.
- `Seq2SeqScorer`: models whose forward takes (images, prompt) and answer `labels` and returns
  logits aligned with the labels: InstructBLIP / BLIP-2 with Flan-T5 (the paper's labeler).
- `CausalScorer`: models that read the answer as a continuation of the prompt and return logits
  over the whole sequence: InstructBLIP / BLIP-2 with a decoder-only LM, LLaVA-style
  `AutoModelForImageTextToText` models, BLIP captioning with the question as a prefix.

A scorer's `prepare` does the image-side work once per micro-batch; `score` returns an
(images, answers) array for one question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from workers.inference.device import Device
from workers.inference.hf import move


class AnswerScorer(Protocol):
    def prepare(self, images: Sequence[Image.Image]) -> Any: ...

    def score(self, prepared: Any, prompt: str, answers: Sequence[str]) -> NDArray[np.float64]: ...


def _mean_log_likelihood(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, the mean log-probability of the masked-in target tokens; logits[:, t] -> targets[:, t]."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    weights = mask.to(picked.dtype)
    return (picked * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _model_dtype(model: Any) -> torch.dtype:
    dtype: torch.dtype = next(model.parameters()).dtype
    return dtype


class BlipVqaScorer:
    def __init__(self, model: Any, processor: Any, device: Device, rows_per_forward: int) -> None:
        self.model, self.processor, self.device = model, processor, device
        self.rows_per_forward = rows_per_forward
        self.bos_id = int(model.config.text_config.bos_token_id)

    def prepare(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device.torch_device, _model_dtype(self.model))
        with self.device.inference():
            embeds: torch.Tensor = self.model.vision_model(pixel_values=pixels).last_hidden_state
        return embeds

    def score(self, prepared: torch.Tensor, prompt: str, answers: Sequence[str]) -> NDArray[np.float64]:
        tokenizer = self.processor.tokenizer
        n = prepared.shape[0]
        question = move(tokenizer([prompt], return_tensors="pt"), self.device)
        answer = move(tokenizer(list(answers), padding=True, return_tensors="pt"), self.device)
        answer_ids = answer["input_ids"].clone()
        # BLIP's decoder starts from its own [DEC] token where the tokenizer put [CLS].
        answer_ids[:, 0] = self.bos_id
        with self.device.inference():
            image_mask = torch.ones(prepared.shape[:-1], dtype=torch.long, device=prepared.device)
            encoded = self.model.text_encoder(
                input_ids=question["input_ids"].expand(n, -1),
                attention_mask=question["attention_mask"].expand(n, -1),
                encoder_hidden_states=prepared,
                encoder_attention_mask=image_mask,
            ).last_hidden_state
            scores = []
            per_image = max(1, self.rows_per_forward // len(answers))
            for start in range(0, n, per_image):
                chunk = encoded[start : start + per_image]
                states = chunk.repeat_interleave(len(answers), dim=0)
                ids = answer_ids.repeat(chunk.shape[0], 1)
                mask = answer["attention_mask"].repeat(chunk.shape[0], 1)
                logits = self.model.text_decoder(
                    input_ids=ids,
                    attention_mask=mask,
                    encoder_hidden_states=states,
                    encoder_attention_mask=torch.ones(
                        states.shape[:-1], dtype=torch.long, device=states.device
                    ),
                ).logits
                scores.append(_mean_log_likelihood(logits[:, :-1], ids[:, 1:], mask[:, 1:]))
        return torch.cat(scores).view(n, len(answers)).double().cpu().numpy()


class Seq2SeqScorer:
    def __init__(self, model: Any, processor: Any, device: Device, rows_per_forward: int) -> None:
        self.model, self.processor, self.device = model, processor, device
        self.rows_per_forward = rows_per_forward

    def prepare(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        return list(images)

    def score(self, prepared: list[Image.Image], prompt: str, answers: Sequence[str]) -> NDArray[np.float64]:
        tokenizer = self.processor.tokenizer
        labels = move(tokenizer(list(answers), padding=True, return_tensors="pt"), self.device)
        scores = []
        per_image = max(1, self.rows_per_forward // len(answers))
        for start in range(0, len(prepared), per_image):
            chunk = prepared[start : start + per_image]
            inputs = self.processor(
                images=chunk, text=[prompt] * len(chunk), padding=True, return_tensors="pt"
            )
            inputs = move(inputs, self.device, _model_dtype(self.model))
            # Every (image, answer) pair is one row: the image rows repeat once per answer.
            inputs = {k: v.repeat_interleave(len(answers), dim=0) for k, v in inputs.items()}
            target = labels["input_ids"].repeat(len(chunk), 1)
            mask = labels["attention_mask"].repeat(len(chunk), 1)
            with self.device.inference():
                logits = self.model(**inputs, labels=target).logits
            scores.append(_mean_log_likelihood(logits, target, mask))
        return torch.cat(scores).view(len(prepared), len(answers)).double().cpu().numpy()


class CausalScorer:
    def __init__(
        self, model: Any, processor: Any, device: Device, rows_per_forward: int, separator: str = " "
    ) -> None:
        self.model, self.processor, self.device = model, processor, device
        self.rows_per_forward = rows_per_forward
        self.separator = separator
        # BLIP's captioning decoder, like its generate(), starts from [DEC] instead of [CLS].
        text_config = getattr(model.config, "text_config", None)
        self.first_token_id: int | None = None
        if type(model).__name__ == "BlipForConditionalGeneration" and text_config is not None:
            self.first_token_id = int(text_config.bos_token_id)

    def prepare(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        return list(images)

    def answer_lengths(self, prompt: str, answers: Sequence[str]) -> list[int]:
        """How many trailing tokens of `prompt + separator + answer` belong to the answer.

        Measured on text alone: the tokens the processor adds for the image sit in the prompt
        part, so they change where the answer starts but not how long it is.
        """
        tokenizer = self.processor.tokenizer
        prompt_ids = tokenizer(prompt)["input_ids"]
        lengths = []
        for answer in answers:
            full_ids = tokenizer(prompt + self.separator + answer)["input_ids"]
            shared = 0
            while shared < min(len(prompt_ids), len(full_ids)) and prompt_ids[shared] == full_ids[shared]:
                shared += 1
            if shared == len(full_ids):
                raise ValueError(f"answer {answer!r} adds no tokens to the prompt")
            lengths.append(len(full_ids) - shared)
        return lengths

    def score(self, prepared: list[Image.Image], prompt: str, answers: Sequence[str]) -> NDArray[np.float64]:
        lengths = torch.tensor(self.answer_lengths(prompt, answers), device=self.device.torch_device)
        texts = [prompt + self.separator + answer for answer in answers]
        scores = []
        per_image = max(1, self.rows_per_forward // len(answers))
        for start in range(0, len(prepared), per_image):
            chunk = prepared[start : start + per_image]
            images = [image for image in chunk for _ in answers]
            inputs = self.processor(images=images, text=texts * len(chunk), padding=True, return_tensors="pt")
            inputs = move(inputs, self.device, _model_dtype(self.model))
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            # Works for left and right padding: a row ends after its last attended token.
            width = ids.shape[1]
            ends = width - torch.argmax(mask.flip(dims=[1]), dim=1)
            if self.first_token_id is not None:
                starts = torch.argmax(mask, dim=1)
                ids = ids.clone()
                ids[torch.arange(ids.shape[0]), starts] = self.first_token_id
                inputs["input_ids"] = ids
            with self.device.inference():
                logits = self.model(**inputs).logits
            # Position p of the answer is predicted by logits at p - 1.
            positions = torch.arange(width, device=ids.device).unsqueeze(0)
            row_lengths = lengths.repeat(len(chunk)).unsqueeze(1)
            answer_mask = (positions >= ends.unsqueeze(1) - row_lengths) & (positions < ends.unsqueeze(1))
            logits = logits[:, -width:]
            scores.append(_mean_log_likelihood(logits[:, :-1], ids[:, 1:], answer_mask[:, 1:]))
        return torch.cat(scores).view(len(prepared), len(answers)).double().cpu().numpy()
