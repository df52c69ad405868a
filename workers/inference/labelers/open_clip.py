"""open_clip: image embeddings, and zero-shot answers from each value's text prompts.

Loading (`OpenClipLabeler.load`), by `ModelSpec.source`:
- a local folder with `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}) and
  `open_clip_model.safetensors` (or `open_clip_pytorch_model.bin`, read with
  `torch.load(weights_only=True)`): open_clip's own `local-dir:` layout, the format tests use;
- `hf-hub:org/repo` or `org/repo`: the same layout on the model hub (production only);
- a built-in architecture name ("ViT-B-32") with `options["pretrained"]` naming a tag or file.
`options["random_init"] = true` builds the architecture without weights: speed figures only.

Zero-shot: each value's prompts are encoded, L2-normalised and averaged (a prompt ensemble), and
the image-text cosine times the model's logit scale, divided by `options["temperature"]` (default
1.0), goes through a softmax over the category's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from numpy.typing import NDArray
from PIL import Image

from workers.contracts import CategoryPrediction, CategorySpec, ModelSpec
from workers.inference.device import Device
from workers.inference.labelers.base import apply_conditions, decide, softmax
from workers.inference.options import option_bool, option_float, option_optional_str, option_str

CONFIG_FILE = "open_clip_config.json"
DEFAULT_PROMPT_TEMPLATE = "a photo of a person with {answer}"
MAX_LOGIT_SCALE = 100.0
_TEXT_CACHE_LIMIT = 4096


class OpenClipLabeler:
    def __init__(self, spec: ModelSpec, model: Any, preprocess: Any, tokenizer: Any, device: Device) -> None:
        self._spec = spec
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.temperature = option_float(spec, "temperature", 1.0)
        self.prompt_template = option_str(spec, "prompt_template", DEFAULT_PROMPT_TEMPLATE)
        self._text_cache: dict[tuple[tuple[str, ...], ...], torch.Tensor] = {}
        self._dim = int(model.visual.output_dim)

    @classmethod
    def load(cls, spec: ModelSpec, device: Device) -> OpenClipLabeler:
        name, pretrained = _resolve(spec)
        model, _, preprocess = open_clip.create_model_and_transforms(
            name,
            pretrained=pretrained,
            device=device.torch_device,
            weights_only=True,
            require_pretrained=not option_bool(spec, "random_init", False),
        )
        tokenizer = open_clip.get_tokenizer(name)
        return cls(spec, model, preprocess, tokenizer, device)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    def supports(self, category: CategorySpec) -> bool:
        if category.kind == "text":
            return False
        # yes/no alone says nothing to a contrastive model: a boolean needs prompts per side.
        if category.kind == "boolean":
            return len(category.values) == 2 and all(v.prompts for v in category.values)
        return True

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.preprocess(image) for image in images])

    @property
    def input_side(self) -> int:
        size = self.model.visual.image_size
        return int(min(size) if isinstance(size, (tuple, list)) else size)

    def prepare(self, image: Image.Image) -> object:
        """Resize, crop and normalise one image (run in the decode threads)."""
        return self.preprocess(image)

    def predict_prepared(
        self, prepared: Sequence[object], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        if not prepared:
            return []
        return self.predict_features(self.image_features(torch.stack(list(prepared))), categories)  # type: ignore[arg-type]

    def embed_prepared(self, prepared: Sequence[object]) -> NDArray[np.float32]:
        features = self.image_features(torch.stack(list(prepared)))  # type: ignore[arg-type]
        return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings, (n, dim) float32 on the model's device."""
        with self.device.inference():
            features = self.model.encode_image(pixels.to(self.device.torch_device))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        features = self.image_features(self.pixels(images))
        return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        features = self.image_features(self.pixels(images))
        return self.predict_features(features, categories)

    def predict_features(
        self, features: torch.Tensor, categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        answered = [c for c in categories if self.supports(c)]
        scale = float(self.model.logit_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))
        per_image: list[dict[str, CategoryPrediction]] = [{} for _ in range(features.shape[0])]
        for category in answered:
            logits = scale * (features @ self.value_embeddings(category).T)
            probabilities = softmax(logits.cpu().numpy(), self.temperature)
            for row, prediction in zip(probabilities, per_image, strict=True):
                prediction[category.key] = decide(category, row.tolist())
        return [apply_conditions(categories, p) for p in per_image]

    def value_embeddings(self, category: CategorySpec) -> torch.Tensor:
        """(values, dim): the normalised mean of each value's normalised prompt embeddings."""
        prompt_sets = tuple(tuple(self._prompts(category, key)) for key in category.value_keys)
        cached = self._text_cache.get(prompt_sets)
        if cached is not None:
            return cached
        flat = [prompt for prompts in prompt_sets for prompt in prompts]
        tokens = self.tokenizer(flat).to(self.device.torch_device)
        with self.device.inference():
            encoded = self.model.encode_text(tokens)
        encoded = torch.nn.functional.normalize(encoded.float(), dim=-1)
        means, start = [], 0
        for prompts in prompt_sets:
            means.append(encoded[start : start + len(prompts)].mean(dim=0))
            start += len(prompts)
        embeddings = torch.nn.functional.normalize(torch.stack(means), dim=-1)
        if len(self._text_cache) >= _TEXT_CACHE_LIMIT:
            self._text_cache.clear()
        self._text_cache[prompt_sets] = embeddings
        return embeddings

    def _prompts(self, category: CategorySpec, key: str) -> list[str]:
        value = next((v for v in category.values if v.key == key), None)
        if value is not None and value.prompts:
            return value.prompts
        answer = value.answer if value is not None else key
        return [self.prompt_template.format(answer=answer, question=category.question)]


def _resolve(spec: ModelSpec) -> tuple[str, str | None]:
    """open_clip's (model_name, pretrained) for a spec's source."""
    source = spec.source
    pretrained = option_optional_str(spec, "pretrained")
    if Path(source).is_dir():
        if not (Path(source) / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{source} has no {CONFIG_FILE}")
        return f"local-dir:{source}", None
    if source.startswith(("hf-hub:", "local-dir:")):
        return source, None
    if pretrained is not None or option_bool(spec, "random_init", False):
        return source, pretrained
    if "/" in source:
        return f"hf-hub:{source}", None
    raise ValueError(f"{source!r} is neither a folder, a hub id nor a built-in with a pretrained tag")
