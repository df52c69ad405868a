"""Person detection: the highest-scoring person box, and a shot type estimated from it.

`TransformersPersonDetector.load`: `ModelSpec.source` is a `save_pretrained` folder or hub id of an
`AutoModelForObjectDetection` of the DETR family (DETR, Conditional/Deformable DETR, YOLOS,
RT-DETR: `logits` and normalised centre-format `pred_boxes` per query) with its image processor.
The person class is the label named `options["person_label"]` (default "person"); a box scoring
under `options["min_score"]` (default 0.3) is not a person, though its score is still reported.
The weight-free fallback of the embedded demo (the frame is the box) is `person.WholeImageDetector`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForObjectDetection

from workers.contracts import ModelSpec, PersonBox
from workers.inference.analyzers.person import Detection, shot_type_from_box
from workers.inference.device import Device
from workers.inference.hf import load_image_processor, model_kwargs, move, to_device
from workers.inference.options import option_float, option_str


class TransformersPersonDetector:
    def __init__(self, spec: ModelSpec, model: Any, image_processor: Any, device: Device) -> None:
        self.spec = spec
        self.model = model
        self.image_processor = image_processor
        self.device = device
        self.min_score = option_float(spec, "min_score", 0.3)
        wanted = option_str(spec, "person_label", "person").lower()
        ids = [int(i) for i, name in model.config.id2label.items() if str(name).lower() == wanted]
        if not ids:
            raise ValueError(f"{spec.ref}: no label named {wanted!r} among {model.config.id2label}")
        self.person_id = ids[0]

    @classmethod
    def load(cls, spec: ModelSpec, device: Device) -> TransformersPersonDetector:
        model = to_device(
            AutoModelForObjectDetection.from_pretrained(spec.source, **model_kwargs(spec, device)), device
        )
        image_processor = load_image_processor(spec)
        return cls(spec, model, image_processor, device)

    @property
    def version(self) -> str | None:
        return self.spec.ref

    def detect(self, images: Sequence[Image.Image]) -> list[Detection]:
        if not images:
            return []
        inputs = move(self.image_processor(images=list(images), return_tensors="pt"), self.device)
        with self.device.inference():
            outputs = self.model(**inputs)
        logits = outputs.logits.float()
        # Softmax detectors (DETR, YOLOS) carry a trailing "no object" class; sigmoid ones do not.
        if logits.shape[-1] == self.model.config.num_labels + 1:
            probabilities = logits.softmax(dim=-1)[..., :-1]
        else:
            probabilities = logits.sigmoid()
        person = probabilities[..., self.person_id]
        best = person.argmax(dim=1)
        rows = torch.arange(len(images), device=best.device)
        scores = person[rows, best].cpu().tolist()
        boxes = outputs.pred_boxes.float()[rows, best].cpu().tolist()
        return [
            self._detection(image, box, float(score))
            for image, box, score in zip(images, boxes, scores, strict=True)
        ]

    def _detection(self, image: Image.Image, box: list[float], score: float) -> Detection:
        width, height = image.size
        cx, cy, w, h = box
        x0, y0 = max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height)
        x1, y1 = min(float(width), (cx + w / 2) * width), min(float(height), (cy + h / 2) * height)
        if score < self.min_score or x1 - x0 < 1 or y1 - y0 < 1:
            return Detection(None, score, None)
        person = PersonBox(x=x0, y=y0, w=x1 - x0, h=y1 - y0, score=score)
        return Detection(person, score, shot_type_from_box(person, width, height))
