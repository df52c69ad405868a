"""Closed-vocabulary VQA: the category's question asked of a vision-language model.

Every allowed answer (a value's label, or yes/no for booleans) is scored by its length-normalised
log-likelihood as the model's answer (see answer_scoring), and a softmax over the answers, with
`options["temperature"]` (default 1.0), gives the distribution. This is the paper's InstructBLIP
route. Text categories are left to the captioner.

Loading (`VqaLabeler.load`): `ModelSpec.source` is a `save_pretrained` folder or hub id holding a
processor and either `BlipForQuestionAnswering` or any `AutoModelForImageTextToText` model.
`options["scoring"]`: "auto" (default; picked from the architecture), "blip_vqa", "seq2seq" or
"causal". `options["prompt_template"]` (default "{question}") may use {question} and {choices};
e.g. "Question: {question} Options: {choices}. Short answer:" for InstructBLIP.
`options["adapter"]`: a folder of LoRA adapter weights written by the `vqa_lora` trainer
(`adapter_config.json` + `adapter_model.safetensors`), applied with peft and merged at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, BlipForQuestionAnswering

from workers.contracts import CategoryPrediction, CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.hf import load_processor, model_kwargs, source_kwargs, to_device
from workers.inference.labelers.answer_scoring import (
    AnswerScorer,
    BlipVqaScorer,
    CausalScorer,
    Seq2SeqScorer,
)
from workers.inference.labelers.base import apply_conditions, decide, softmax
from workers.inference.options import option_float, option_int, option_optional_str, option_str

SCORINGS = ("auto", "blip_vqa", "seq2seq", "causal")


class VqaLabeler:
    def __init__(self, spec: ModelSpec, scorer: AnswerScorer) -> None:
        self._spec = spec
        self.scorer = scorer
        self.temperature = option_float(spec, "temperature", 1.0)
        self.prompt_template = option_str(spec, "prompt_template", "{question}")

    @classmethod
    def load(cls, spec: ModelSpec, device: Device) -> VqaLabeler:
        scoring = option_str(spec, "scoring", "auto")
        if scoring not in SCORINGS:
            raise ValueError(f"{spec.ref}: scoring must be one of {SCORINGS}")
        config = AutoConfig.from_pretrained(spec.source, **source_kwargs(spec))
        architectures = list(getattr(config, "architectures", None) or [])
        is_blip_vqa = "BlipForQuestionAnswering" in architectures
        model_class: Any = BlipForQuestionAnswering if is_blip_vqa else AutoModelForImageTextToText
        model = model_class.from_pretrained(spec.source, **model_kwargs(spec, device, low_precision=True))
        adapter = option_optional_str(spec, "adapter")
        if adapter is not None:
            model = with_adapter(model, Path(adapter))
        model = to_device(model, device)
        processor = load_processor(spec)
        if scoring == "auto":
            scoring = _auto_scoring(model, is_blip_vqa)
        rows = option_int(spec, "rows_per_forward", 256)
        scorer: AnswerScorer
        if scoring == "blip_vqa":
            scorer = BlipVqaScorer(model, processor, device, rows)
        elif scoring == "seq2seq":
            scorer = Seq2SeqScorer(model, processor, device, rows)
        else:
            scorer = CausalScorer(model, processor, device, rows, option_str(spec, "answer_separator", " "))
        return cls(spec, scorer)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def supports(self, category: CategorySpec) -> bool:
        return category.kind != "text"

    def prompt(self, category: CategorySpec) -> str:
        choices = ", ".join(category.answers().values())
        return self.prompt_template.format(question=category.question, choices=choices)

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        per_image: list[dict[str, CategoryPrediction]] = [{} for _ in images]
        answered = [c for c in categories if self.supports(c)]
        if not images or not answered:
            return per_image
        prepared = self.scorer.prepare(images)
        for category in answered:
            answers = category.answers()
            scores = self.scorer.score(prepared, self.prompt(category), list(answers.values()))
            for row, prediction in zip(softmax(scores, self.temperature), per_image, strict=True):
                prediction[category.key] = decide(category, row.tolist())
        return [apply_conditions(categories, p) for p in per_image]


def with_adapter(model: Any, folder: Path) -> Any:
    """The model with a LoRA adapter merged into its weights: inference costs what it did before."""
    from peft import PeftModel

    if not (folder / "adapter_model.safetensors").is_file():
        # peft would fall back to a pickled adapter_model.bin; weights are read from safetensors only.
        raise FileNotFoundError(f"{folder} holds no adapter_model.safetensors")
    return PeftModel.from_pretrained(model, str(folder), is_trainable=False).merge_and_unload()


def _auto_scoring(model: Any, is_blip_vqa: bool) -> str:
    if is_blip_vqa:
        return "blip_vqa"
    config = model.config
    if getattr(config, "use_decoder_only_language_model", True) is False or config.is_encoder_decoder:
        return "seq2seq"
    return "causal"
