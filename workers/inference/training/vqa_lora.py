"""The vqa_lora trainer: LoRA adapters on the VQA labeler, trained on verified answers.

What the CosmicMan paper did to its InstructBLIP labeler, with peft: every (example, closed
category) people answered becomes (image, the category's prompt, the answer text), the
category's value label or yes/no, once per chosen value of a multi category. The loss is the
negative mean log-likelihood of the answer tokens, the very score the labeler ranks answers by
(`answer_scoring`), so training raises the verified answer against the others. The base weights
are frozen; only the adapter is saved (`adapter_config.json` + `adapter_model.safetensors`), and
the candidate is `TrainJob.base` with `options["adapter"]` naming it. Each round trains from the
base model itself: an adapter already in `base.options` is not stacked on. The model stays in
eval mode (no dropout) and batches are drawn from a seeded permutation, so on the CPU a seed gives
the same adapter. The examples' images are decoded once and held in memory while training.

Options: steps (20), lr (1e-4), rank (8), alpha (16), dropout (0.0), batch_size (8), seed (0),
target_modules (list; default: the attention query/value projections the model has),
min_examples (1), eval_pairs (256: pairs the loss before and after training is measured on),
name (`<base name>-lora`).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from workers.contracts import ModelSpec, TrainJob
from workers.inference.device import Device
from workers.inference.hf import move
from workers.inference.images import ImageLoadError
from workers.inference.labelers.answer_scoring import (
    BlipVqaScorer,
    CausalScorer,
    Seq2SeqScorer,
    _mean_log_likelihood,
)
from workers.inference.labelers.vqa import VqaLabeler
from workers.inference.pipeline import load_for_labeler
from workers.inference.registry import ModelRegistry
from workers.inference.training.common import (
    TrainedModel,
    TrainingError,
    check_value,
    job_option_float,
    job_option_int,
    job_option_str,
    labelled,
    output_folder,
    publish,
    staging_folder,
)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# Attention projections by the names the supported families give them: BLIP's text encoder and
# decoder and InstructBLIP's Q-Former (query, value), T5 (q, v), decoder-only LMs (q_proj, v_proj).
DEFAULT_TARGETS = ("query", "value", "q", "v", "q_proj", "v_proj")


@dataclass(frozen=True)
class Pair:
    example: int
    prompt: str
    answer: str


def train_vqa_lora(job: TrainJob, registry: ModelRegistry) -> TrainedModel:
    from peft import LoraConfig, get_peft_model

    if job.base.family != "vqa":
        raise TrainingError(f"vqa_lora adapts a vqa labeler, not {job.base.family}")
    steps = job_option_int(job, "steps", 20)
    lr = job_option_float(job, "lr", 1e-4)
    batch_size = max(1, job_option_int(job, "batch_size", 8))
    seed = job_option_int(job, "seed", 0)
    min_examples = max(1, job_option_int(job, "min_examples", 1))
    base = job.base.model_copy(
        update={"options": {k: v for k, v in job.base.options.items() if k != "adapter"}}
    )
    torch.manual_seed(seed)
    labeler = VqaLabeler.load(base, registry.device)
    pairs = training_pairs(job, labeler)
    answered = sorted({p.example for p in pairs})
    images = _load_images(job, answered)
    pairs = [p for p in pairs if p.example in images]
    examples = len({p.example for p in pairs})
    if examples < min_examples or not pairs:
        raise TrainingError(
            f"{examples} readable examples with a verified answer; need {min_examples}", examples
        )

    scorer: Any = labeler.scorer  # every scorer holds its model
    model: Any = scorer.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    config = LoraConfig(
        r=job_option_int(job, "rank", 8),
        lora_alpha=job_option_int(job, "alpha", 16),
        lora_dropout=job_option_float(job, "dropout", 0.0),
        target_modules=_targets(job, model),
        bias="none",
    )
    peft_model = get_peft_model(model, config)  # injects the adapter into `model` itself
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    losser = _loss_function(labeler, registry.device)
    rng = np.random.default_rng(seed)
    sample = [pairs[i] for i in rng.permutation(len(pairs))[: job_option_int(job, "eval_pairs", 256)]]

    initial_loss = _mean_loss(losser, sample, images, batch_size)
    order: list[int] = []
    losses: list[float] = []
    for _ in range(steps):
        if len(order) < batch_size:
            order.extend(rng.permutation(len(pairs)).tolist())
        chosen, order = order[:batch_size], order[batch_size:]
        optimizer.zero_grad()
        loss = losser([pairs[i] for i in chosen], images).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    final_loss = _mean_loss(losser, sample, images, batch_size)

    folder = output_folder(job)
    staging = staging_folder(folder)
    peft_model.save_pretrained(str(staging), safe_serialization=True)
    for path in staging.iterdir():
        if path.name not in ADAPTER_FILES:  # peft's model card: the adapter is the artifact
            path.unlink()
    publish(staging, folder)
    # The training copy of the base model goes before the adapted one is loaded to evaluate.
    del peft_model, model, scorer, losser, labeler, optimizer, trainable
    gc.collect()
    if registry.device.is_cuda:
        torch.cuda.empty_cache()

    adapted = ModelSpec(
        family="vqa",
        source=base.source,
        name=job_option_str(job, "name", f"{base.name}-lora"),
        version=job.version,
        options={**base.options, "adapter": str(folder)},
    )
    metrics = {
        "pairs": float(len(pairs)),
        "unreadable_examples": float(len(answered) - len(images)),
        "steps": float(steps),
        "initial_loss": initial_loss,
        "final_loss": final_loss,
        "last_step_loss": losses[-1] if losses else initial_loss,
    }
    return TrainedModel(model=adapted, examples=examples, metrics=metrics)


def training_pairs(job: TrainJob, labeler: VqaLabeler) -> list[Pair]:
    """(example, prompt, answer text) for every verified answer to a closed category."""
    pairs: list[Pair] = []
    for category in job.categories:
        if not labeler.supports(category):
            continue
        texts = category.answers()
        prompt = labeler.prompt(category)
        for position, value in labelled(job.examples, category):
            pairs.extend(Pair(position, prompt, texts[key]) for key in check_value(category, value))
    return pairs


def _load_images(job: TrainJob, positions: Sequence[int]) -> dict[int, Image.Image]:
    images: dict[int, Image.Image] = {}
    for position in positions:
        try:
            images[position] = load_for_labeler(job.examples[position].image)
        except ImageLoadError:
            continue
    return images


def _targets(job: TrainJob, model: Any) -> list[str]:
    given = job.options.get("target_modules")
    if given is not None:
        if not isinstance(given, list) or not all(isinstance(t, str) for t in given) or not given:
            raise TrainingError(f"option target_modules must be a list of module names, got {given!r}")
        return [str(t) for t in given]
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    targets = [t for t in DEFAULT_TARGETS if t in names]
    if not targets:
        raise TrainingError("no attention projection to adapt: set options.target_modules")
    return targets


Losser = Any  # (pairs, images) -> per-pair loss tensor with grad


def _mean_loss(
    losser: Losser, pairs: Sequence[Pair], images: dict[int, Image.Image], batch_size: int
) -> float:
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            total += float(losser(pairs[start : start + batch_size], images).sum())
    return total / max(1, len(pairs))


def _loss_function(labeler: VqaLabeler, device: Device) -> Losser:
    """Per pair, minus the mean log-likelihood of the answer tokens, as each scorer computes it."""
    scorer = labeler.scorer
    autocast = device.autocast_dtype

    def run(compute: Any, pairs: Sequence[Pair], images: dict[int, Image.Image]) -> torch.Tensor:
        pictures = [images[p.example] for p in pairs]
        if autocast is None:
            result: torch.Tensor = compute(scorer, pictures, pairs, device)
            return result
        with torch.autocast(device.torch_device.type, dtype=autocast):
            result = compute(scorer, pictures, pairs, device)
            return result.float()

    if isinstance(scorer, BlipVqaScorer):
        return lambda pairs, images: run(_blip_vqa_loss, pairs, images)
    if isinstance(scorer, Seq2SeqScorer):
        return lambda pairs, images: run(_seq2seq_loss, pairs, images)
    if isinstance(scorer, CausalScorer):
        return lambda pairs, images: run(_causal_loss, pairs, images)
    raise TrainingError(f"no training loss for {type(scorer).__name__}")


def _dtype(model: Any) -> torch.dtype:
    dtype: torch.dtype = next(model.parameters()).dtype
    return dtype


def _blip_vqa_loss(
    scorer: BlipVqaScorer, images: Sequence[Image.Image], pairs: Sequence[Pair], device: Device
) -> torch.Tensor:
    model, tokenizer = scorer.model, scorer.processor.tokenizer
    pixels = scorer.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
    embeds = model.vision_model(pixel_values=pixels.to(device.torch_device, _dtype(model))).last_hidden_state
    question = move(tokenizer([p.prompt for p in pairs], padding=True, return_tensors="pt"), device)
    answer = move(tokenizer([p.answer for p in pairs], padding=True, return_tensors="pt"), device)
    ids = answer["input_ids"].clone()
    ids[:, 0] = scorer.bos_id
    encoded = model.text_encoder(
        input_ids=question["input_ids"],
        attention_mask=question["attention_mask"],
        encoder_hidden_states=embeds,
        encoder_attention_mask=torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device),
    ).last_hidden_state
    logits = model.text_decoder(
        input_ids=ids,
        attention_mask=answer["attention_mask"],
        encoder_hidden_states=encoded,
        encoder_attention_mask=question["attention_mask"],
    ).logits
    return -_mean_log_likelihood(logits[:, :-1], ids[:, 1:], answer["attention_mask"][:, 1:])


def _seq2seq_loss(
    scorer: Seq2SeqScorer, images: Sequence[Image.Image], pairs: Sequence[Pair], device: Device
) -> torch.Tensor:
    tokenizer = scorer.processor.tokenizer
    labels = move(tokenizer([p.answer for p in pairs], padding=True, return_tensors="pt"), device)
    inputs = scorer.processor(
        images=list(images), text=[p.prompt for p in pairs], padding=True, return_tensors="pt"
    )
    inputs = move(inputs, device, _dtype(scorer.model))
    logits = scorer.model(**inputs, labels=labels["input_ids"]).logits
    return -_mean_log_likelihood(logits, labels["input_ids"], labels["attention_mask"])


def _causal_loss(
    scorer: CausalScorer, images: Sequence[Image.Image], pairs: Sequence[Pair], device: Device
) -> torch.Tensor:
    lengths = torch.tensor(
        [scorer.answer_lengths(p.prompt, [p.answer])[0] for p in pairs], device=device.torch_device
    )
    texts = [p.prompt + scorer.separator + p.answer for p in pairs]
    inputs = move(
        scorer.processor(images=list(images), text=texts, padding=True, return_tensors="pt"),
        device,
        _dtype(scorer.model),
    )
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    width = ids.shape[1]
    ends = width - torch.argmax(mask.flip(dims=[1]), dim=1)
    if scorer.first_token_id is not None:
        starts = torch.argmax(mask, dim=1)
        ids = ids.clone()
        ids[torch.arange(ids.shape[0]), starts] = scorer.first_token_id
        inputs["input_ids"] = ids
    logits = scorer.model(**inputs).logits[:, -width:]
    positions = torch.arange(width, device=ids.device).unsqueeze(0)
    answer_mask = (positions >= (ends - lengths).unsqueeze(1)) & (positions < ends.unsqueeze(1))
    return -_mean_log_likelihood(logits[:, :-1], ids[:, 1:], answer_mask[:, 1:])
