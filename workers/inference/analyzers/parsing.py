"""Human parsing: a mask of the 18 ATR labels (ids 0..17, `contracts.ATR_LABELS`) per image.

`HumanParser.load`: `ModelSpec.source` is a `save_pretrained` folder or hub id of an
`AutoModelForSemanticSegmentation` with 18 labels in ATR order (e.g. a SegFormer fine-tuned on
ATR) and its image processor. Masks come back at the original image size; `masks` encodes them
and reads the shot type from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from transformers import AutoModelForSemanticSegmentation

from workers.contracts import ATR_LABELS, ModelSpec
from workers.inference.device import Device
from workers.inference.hf import load_image_processor, model_kwargs, move, to_device

# Label ids are decided at up to this long side, then scaled to the image with nearest-neighbour:
# upsampling 18 channels of logits to a 24-megapixel image would take gigabytes.
DECISION_SIDE = 1024


class HumanParser:
    def __init__(self, spec: ModelSpec, model: Any, image_processor: Any, device: Device) -> None:
        if int(model.config.num_labels) != len(ATR_LABELS):
            raise ValueError(f"{spec.ref}: {model.config.num_labels} labels, expected the 18 ATR labels")
        self.spec = spec
        self.model = model
        self.image_processor = image_processor
        self.device = device

    @classmethod
    def load(cls, spec: ModelSpec, device: Device) -> HumanParser:
        model = to_device(
            AutoModelForSemanticSegmentation.from_pretrained(spec.source, **model_kwargs(spec, device)),
            device,
        )
        image_processor = load_image_processor(spec)
        return cls(spec, model, image_processor, device)

    @property
    def version(self) -> str:
        return self.spec.ref

    def parse(self, images: Sequence[Image.Image]) -> list[NDArray[np.uint8]]:
        """One (height, width) uint8 label map per image."""
        if not images:
            return []
        inputs = move(self.image_processor(images=list(images), return_tensors="pt"), self.device)
        with self.device.inference():
            logits = self.model(**inputs).logits.float()
        masks = []
        for image, image_logits in zip(images, logits, strict=True):
            width, height = image.size
            scale = min(1.0, DECISION_SIDE / max(width, height))
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            resized = torch.nn.functional.interpolate(
                image_logits.unsqueeze(0), size=size, mode="bilinear", align_corners=False
            )
            labels = resized.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
            mask = Image.fromarray(labels)
            if mask.size != image.size:
                mask = mask.resize(image.size, Image.Resampling.NEAREST)
            masks.append(np.asarray(mask, dtype=np.uint8))
        return masks
