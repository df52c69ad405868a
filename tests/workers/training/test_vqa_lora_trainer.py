from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workers.contracts import (
    CategorySpec,
    ModelSpec,
    PrelabelBatch,
    PrelabelImage,
    TrainExample,
    TrainJob,
    TrainResult,
    Value,
)
from workers.inference.device import Device
from workers.inference.labelers.vqa import VqaLabeler
from workers.inference.pipeline import load_for_labeler, run_prelabel
from workers.inference.registry import ModelRegistry
from workers.inference.training import run_train
from workers.inference.training.vqa_lora import _loss_function, training_pairs

COLOR = CategorySpec.model_validate(
    {
        "key": "top.color",
        "kind": "single",
        "question": "what is the color of the shirt ?",
        "values": [{"key": "red"}, {"key": "blue"}],
    }
)
COAT = CategorySpec(key="coat.worn", kind="boolean", question="is the person wearing a coat ?")
CATEGORIES = [COLOR, COAT]
Trained = tuple[TrainResult, dict[str, str]]


def _people(folder: Path, n: int, first_id: int) -> tuple[list[PrelabelImage], list[dict[str, Value]]]:
    """Red or blue shirts; a coat on every third person, whose answers leave out the colour."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(first_id)
    images: list[PrelabelImage] = []
    answers: list[dict[str, Value]] = []
    for i in range(n):
        red, coat = i % 2 == 0, i % 3 == 0
        pixels = rng.integers(0, 40, size=(32, 32, 3), dtype=np.uint8)
        pixels[..., 0 if red else 2] += 200
        path = folder / f"{first_id + i}.png"
        Image.fromarray(pixels).save(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        images.append(PrelabelImage(image_id=first_id + i, uri=path.as_uri(), sha256=digest))
        answers.append(
            {"coat.worn": True} if coat else {"top.color": "red" if red else "blue", "coat.worn": False}
        )
    return images, answers


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, blip_vqa_spec: ModelSpec) -> TrainJob:
    folder = tmp_path_factory.mktemp("people")
    images, answers = _people(folder / "train", 12, first_id=100)
    evaluate, _ = _people(folder / "eval", 4, first_id=500)
    return TrainJob(
        round_id=4,
        project_id=2,
        model_version_id=11,
        trainer="vqa_lora",
        base=blip_vqa_spec,
        categories=CATEGORIES,
        examples=[TrainExample(image=i, answers=a) for i, a in zip(images, answers, strict=True)],
        evaluate=evaluate,
        output_dir=str(folder / "adapter"),
        version="round-4",
        options={"steps": 12, "lr": 2e-2, "rank": 4, "alpha": 8, "batch_size": 8, "seed": 3},
    )


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(job: TrainJob, cpu: Device) -> Trained:
    base_before = _digests(Path(job.base.source))
    return run_train(job, ModelRegistry(cpu)), base_before


def test_training_lowers_the_loss_of_the_verified_answers(trained: Trained) -> None:
    result, _ = trained
    assert result.error is None
    metrics = result.metrics
    # 8 people without a coat answer both categories, 4 with one answer only the coat.
    assert metrics["pairs"] == 20 and result.examples == 12
    assert metrics["final_loss"] < metrics["initial_loss"] - 0.1, metrics


def test_only_the_adapter_is_written_and_the_base_is_untouched(trained: Trained, job: TrainJob) -> None:
    result, base_before = trained
    folder = Path(job.output_dir)
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert _digests(Path(job.base.source)) == base_before
    base_size = sum(p.stat().st_size for p in Path(job.base.source).iterdir())
    assert (folder / "adapter_model.safetensors").stat().st_size < base_size / 5
    model = result.model
    assert model is not None
    assert model.family == "vqa" and model.source == job.base.source and model.version == "round-4"
    assert model.options["adapter"] == str(folder)


def test_the_adapted_labeler_loads_through_the_registry_and_answers_as_reported(
    trained: Trained, job: TrainJob, cpu: Device
) -> None:
    result, _ = trained
    model = result.model
    assert model is not None
    registry = ModelRegistry(cpu)
    assert isinstance(registry.labeler(model), VqaLabeler)
    batch = PrelabelBatch(
        batch_id=1, project_id=2, model_version_id=11, model=model, categories=CATEGORIES, images=job.evaluate
    )
    again = run_prelabel(batch, registry=registry).items
    predictions = result.predictions
    assert [item.image_id for item in predictions] == [image.image_id for image in job.evaluate]
    assert all(set(item.predictions) == {"top.color", "coat.worn"} for item in predictions)
    for mine, theirs in zip(predictions, again, strict=True):
        for key, prediction in mine.predictions.items():
            assert prediction.distribution == pytest.approx(theirs.predictions[key].distribution, abs=1e-5)
    # The adapter changed the answers: the base model's distributions are not these.
    base = run_prelabel(batch.model_copy(update={"model": job.base}), registry=registry).items
    assert any(
        abs(b.predictions["coat.worn"].distribution["yes"] - a.predictions["coat.worn"].distribution["yes"])
        > 1e-3
        for a, b in zip(again, base, strict=True)
    )


def test_a_pickled_adapter_is_refused(trained: Trained, job: TrainJob, tmp_path: Path, cpu: Device) -> None:
    (tmp_path / "adapter_config.json").write_bytes(
        (Path(job.output_dir) / "adapter_config.json").read_bytes()
    )
    (tmp_path / "adapter_model.bin").write_bytes(b"not loaded")
    spec = job.base.model_copy(update={"options": {"adapter": str(tmp_path)}})
    with pytest.raises(FileNotFoundError, match="safetensors"):
        VqaLabeler.load(spec, cpu)


def test_no_readable_example_fails_the_round(job: TrainJob, cpu: Device, tmp_path: Path) -> None:
    unreadable = [
        e.model_copy(update={"image": e.image.model_copy(update={"uri": str(tmp_path / "gone.png")})})
        for e in job.examples
    ]
    result = run_train(
        job.model_copy(update={"examples": unreadable, "output_dir": str(tmp_path / "a")}), ModelRegistry(cpu)
    )
    assert result.model is None and result.error is not None and "readable" in result.error
    assert not (tmp_path / "a").exists()


@pytest.fixture(scope="module")
def causal_spec(blip_caption_folder: Path) -> ModelSpec:
    return ModelSpec(family="vqa", source=str(blip_caption_folder), name="tiny-blip-caption", version="1")


@pytest.mark.parametrize("spec_name", ["blip_vqa_spec", "instructblip_spec", "causal_spec"])
def test_the_training_loss_is_minus_the_score_the_labeler_ranks_answers_by(
    spec_name: str, request: pytest.FixtureRequest, job: TrainJob, cpu: Device
) -> None:
    spec: ModelSpec = request.getfixturevalue(spec_name)
    labeler = VqaLabeler.load(spec, cpu)
    pairs = training_pairs(job.model_copy(update={"examples": job.examples[:4]}), labeler)
    images = {i: load_for_labeler(job.examples[i].image) for i in range(4)}
    with torch.no_grad():
        losses = _loss_function(labeler, cpu)(pairs, images)
    for pair, loss in zip(pairs, losses.tolist(), strict=True):
        prepared = labeler.scorer.prepare([images[pair.example]])
        score = labeler.scorer.score(prepared, pair.prompt, [pair.answer])[0, 0]
        assert loss == pytest.approx(-score, abs=1e-4)


@pytest.mark.parametrize("spec_name", ["instructblip_spec", "causal_spec"])
def test_the_other_scorings_train_too(
    spec_name: str, request: pytest.FixtureRequest, job: TrainJob, cpu: Device, tmp_path: Path
) -> None:
    spec: ModelSpec = request.getfixturevalue(spec_name)
    changes = {"base": spec, "output_dir": str(tmp_path / "adapter"), "evaluate": job.evaluate[:1]}
    result = run_train(job.model_copy(update=changes), ModelRegistry(cpu))
    assert result.error is None and result.model is not None
    assert result.metrics["final_loss"] < result.metrics["initial_loss"]
    assert len(result.predictions) == 1 and result.predictions[0].predictions


def test_a_base_that_is_not_a_vqa_labeler_fails_the_round(job: TrainJob, cpu: Device, tmp_path: Path) -> None:
    stats = ModelSpec(family="stats", source="builtin", name="stats", version="1")
    changes = {"base": stats, "output_dir": str(tmp_path / "a")}
    result = run_train(job.model_copy(update=changes), ModelRegistry(cpu))
    assert result.model is None and result.error is not None and "vqa" in result.error
