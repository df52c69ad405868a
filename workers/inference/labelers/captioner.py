"""Image-to-text: a caption per image, and free-text categories (e.g. a background description).

Loading (`CaptionLabeler.load`): `ModelSpec.source` is a `save_pretrained` folder or hub id of a
`VisionEncoderDecoderModel` or any `AutoModelForImageTextToText` model (BLIP captioning, BLIP-2,
InstructBLIP, LLaVA-style), with its processor, or an image processor and a tokenizer.
Options: `max_new_tokens` (default 40), `num_beams` (default 1), `prompt_template` (default
none: unconditional captions; "{question}" asks each text category's question, for
instruction-following models; a fixed prefix such as "a photography of" conditions BLIP),
`caption_prompt` (default none) for the scene caption. Decoding is greedy or beam search, never
sampled, so a caption is a function of the image. A text prediction's confidence is the geometric
mean of its tokens' probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, VisionEncoderDecoderModel

from workers.contracts import CategoryPrediction, CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.hf import (
    load_image_processor,
    load_processor,
    load_tokenizer,
    model_kwargs,
    move,
    source_kwargs,
    to_device,
)
from workers.inference.labelers.base import Caption, apply_conditions
from workers.inference.options import option_int, option_optional_str


class CaptionLabeler:
    def __init__(
        self,
        spec: ModelSpec,
        model: Any,
        image_processor: Any,
        tokenizer: Any,
        processor: Any,
        device: Device,
    ) -> None:
        self._spec = spec
        self.model = model
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.processor = processor
        self.device = device
        self.max_new_tokens = option_int(spec, "max_new_tokens", 40)
        self.num_beams = option_int(spec, "num_beams", 1)
        self.prompt_template = option_optional_str(spec, "prompt_template")
        self.caption_prompt = option_optional_str(spec, "caption_prompt")
        if processor is None and (self.prompt_template or self.caption_prompt):
            raise ValueError(f"{spec.ref}: this model has no text processor, so it takes no prompt")

    @classmethod
    def load(cls, spec: ModelSpec, device: Device) -> CaptionLabeler:
        config = AutoConfig.from_pretrained(spec.source, **source_kwargs(spec))
        architectures = list(getattr(config, "architectures", None) or [])
        is_encoder_decoder = "VisionEncoderDecoderModel" in architectures
        model_class: Any = VisionEncoderDecoderModel if is_encoder_decoder else AutoModelForImageTextToText
        model = to_device(
            model_class.from_pretrained(spec.source, **model_kwargs(spec, device, low_precision=True)),
            device,
        )
        processor: Any = None
        if not is_encoder_decoder:
            processor = load_processor(spec)
        if processor is not None and hasattr(processor, "image_processor"):
            image_processor, tokenizer = processor.image_processor, processor.tokenizer
        else:
            processor = None
            image_processor, tokenizer = load_image_processor(spec), load_tokenizer(spec)
        return cls(spec, model, image_processor, tokenizer, processor, device)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def supports(self, category: CategorySpec) -> bool:
        return category.kind == "text"

    def caption(self, images: Sequence[Image.Image], prompt: str | None = None) -> list[Caption]:
        if not images:
            return []
        dtype = next(self.model.parameters()).dtype
        if prompt:
            inputs = self.processor(
                images=list(images), text=[prompt] * len(images), padding=True, return_tensors="pt"
            )
        else:
            inputs = self.image_processor(images=list(images), return_tensors="pt")
        inputs = move(inputs, self.device, dtype)
        with self.device.inference():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            transition = self.model.compute_transition_scores(
                output.sequences, output.scores, getattr(output, "beam_indices", None), normalize_logits=True
            )
        # The scores cover the generated tokens only, which are the last len(scores) of a sequence.
        generated = output.sequences[:, -transition.shape[1] :]
        special = torch.tensor(sorted(self.tokenizer.all_special_ids), device=generated.device)
        counted = ~torch.isin(generated, special) & torch.isfinite(transition)
        log_probs = torch.where(counted, transition.float(), torch.zeros_like(transition, dtype=torch.float))
        mean = log_probs.sum(dim=1) / counted.sum(dim=1).clamp(min=1)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [
            Caption(text=text.strip(), confidence=float(torch.exp(m).clamp(0.0, 1.0)))
            for text, m in zip(texts, mean, strict=True)
        ]

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        return self.predict_and_caption(images, categories)[0]

    def predict_and_caption(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> tuple[list[dict[str, CategoryPrediction]], list[Caption]]:
        """Text-category predictions and the scene caption, sharing unconditional generations."""
        by_prompt: dict[str | None, list[Caption]] = {}

        def captions_for(prompt: str | None) -> list[Caption]:
            if prompt not in by_prompt:
                by_prompt[prompt] = self.caption(images, prompt)
            return by_prompt[prompt]

        per_image: list[dict[str, CategoryPrediction]] = [{} for _ in images]
        for category in categories:
            if not self.supports(category):
                continue
            prompt = self.prompt_template.format(question=category.question) if self.prompt_template else None
            for caption, prediction in zip(captions_for(prompt), per_image, strict=True):
                prediction[category.key] = CategoryPrediction(
                    value=caption.text, confidence=caption.confidence
                )
        scene = captions_for(self.caption_prompt)
        return [apply_conditions(categories, p) for p in per_image], scene
