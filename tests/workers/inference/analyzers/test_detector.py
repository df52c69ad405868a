from __future__ import annotations

import pytest
from PIL import Image

from workers.contracts import ModelSpec, PersonBox
from workers.inference.analyzers.detector import TransformersPersonDetector
from workers.inference.analyzers.person import WholeImageDetector, shot_type_from_box
from workers.inference.device import Device
from workers.inference.images import load_image


@pytest.fixture(scope="module")
def images(image_refs: list) -> list[Image.Image]:  # type: ignore[type-arg]
    return [load_image(ref) for ref in image_refs]


def test_the_best_person_box_lies_inside_each_image(
    detr_spec: ModelSpec, cpu: Device, images: list[Image.Image]
) -> None:
    detector = TransformersPersonDetector.load(detr_spec, cpu)
    assert detector.person_id == 0
    detections = detector.detect(images)
    assert len(detections) == len(images)
    for image, detection in zip(images, detections, strict=True):
        box = detection.person
        assert box is not None and box.source == "detector"
        assert (
            box.x >= 0
            and box.y >= 0
            and box.x + box.w <= image.width + 1e-6
            and box.y + box.h <= image.height + 1e-6
        )
        assert box.score == detection.best_score and 0.0 <= box.score <= 1.0
        assert detection.shot_type is not None
    assert TransformersPersonDetector.load(detr_spec, cpu).detect(images) == detections


def test_a_low_scoring_box_is_no_person_but_keeps_its_score(
    detr_spec: ModelSpec, cpu: Device, images: list[Image.Image]
) -> None:
    strict = TransformersPersonDetector.load(
        detr_spec.model_copy(update={"options": {"min_score": 0.99}}), cpu
    )
    detection = strict.detect(images[:1])[0]
    assert detection.person is None and detection.shot_type is None and 0.0 < detection.best_score < 0.99


def test_a_detector_without_a_person_class_is_refused(detr_spec: ModelSpec, cpu: Device) -> None:
    with pytest.raises(ValueError, match="no label"):
        TransformersPersonDetector.load(
            detr_spec.model_copy(update={"options": {"person_label": "giraffe"}}), cpu
        )


def test_the_fallback_box_is_the_frame_with_no_shot_type() -> None:
    detection = WholeImageDetector().detect([Image.new("RGB", (30, 50))])[0]
    assert detection.person == PersonBox(x=0, y=0, w=30, h=50, score=1.0, source="whole_image")
    assert detection.shot_type is None


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((300, 50, 200, 600), "full_body"),  # whole person inside the frame
        ((300, 100, 200, 700), "nearly_full_body"),  # tall, cut by the bottom edge
        ((250, 250, 350, 550), "upper_body"),
        ((100, 350, 600, 450), "portrait"),  # head and shoulders: about as wide as tall
        ((0, 0, 800, 800), "headshot"),  # a face filling the frame
    ],
)
def test_shot_type_from_box(box: tuple[float, float, float, float], expected: str) -> None:
    x, y, w, h = box
    assert shot_type_from_box(PersonBox(x=x, y=y, w=w, h=h, score=0.9), 800, 800) == expected
