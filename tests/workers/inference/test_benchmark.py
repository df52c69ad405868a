from __future__ import annotations

from pathlib import Path

from workers.contracts import ModelSpec
from workers.inference.benchmark import (
    default_benchmark_spec,
    forward_only_rate,
    pipeline_rate,
    write_synthetic_images,
)
from workers.inference.device import Device


def test_rates_are_measured_for_embedders_and_labelers(
    open_clip_spec: ModelSpec, blip_vqa_spec: ModelSpec, cpu: Device, tmp_path: Path
) -> None:
    paths = write_synthetic_images(tmp_path, 6, size=(120, 160))
    assert forward_only_rate(open_clip_spec, batch_size=4, n_images=8, device=cpu) > 0
    assert pipeline_rate(open_clip_spec, paths, batch_size=2, device=cpu) > 0
    assert pipeline_rate(blip_vqa_spec, paths, batch_size=2, device=cpu) > 0


def test_the_default_speed_model_is_a_random_vit_b_32() -> None:
    spec = default_benchmark_spec()
    assert (spec.family, spec.source, spec.options) == ("open_clip", "ViT-B-32", {"random_init": True})
