from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from workers.contracts import (
    CategorySpec,
    ModelSpec,
    PrelabelBatch,
    PrelabelImage,
    TrainExample,
    TrainJob,
    Value,
)
from workers.inference.device import Device
from workers.inference.labelers.heads import HeadsLabeler, load_head
from workers.inference.pipeline import run_prelabel
from workers.inference.registry import ModelRegistry
from workers.inference.training import run_train

BACKBONE = ModelSpec(family="stats", source="builtin", name="stats", version="1")
SLEEVE = CategorySpec.model_validate(
    {
        "key": "top.sleeve_length",
        "kind": "single",
        "question": "what is the sleeve length ?",
        "values": [{"key": "short"}, {"key": "long"}, {"key": "sleeveless"}],
    }
)
COAT = CategorySpec(key="coat.worn", kind="boolean", question="is the person wearing a coat ?")
COAT_COLOR = CategorySpec.model_validate(
    {
        "key": "coat.color",
        "kind": "single",
        "question": "what is the color of the coat ?",
        "values": [{"key": "red"}, {"key": "blue"}],
        "when": {"category": "coat.worn", "equals": True},
    }
)
BACKGROUND = CategorySpec(key="background.description", kind="text", question="describe the background .")
CATEGORIES = [SLEEVE, COAT, COAT_COLOR, BACKGROUND]
DIM = 24


def _people(n: int, draw: int) -> tuple[list[PrelabelImage], list[dict[str, Value]]]:
    """Embeddings where each category's value shifts its own block of coordinates: separable."""
    rng = np.random.default_rng([11, draw])
    images, answers = [], []
    for i in range(n):
        sleeve, coat, color = int(rng.integers(3)), bool(rng.integers(2)), int(rng.integers(2))
        x = 0.3 * rng.normal(size=DIM)
        x[sleeve] += 2.0
        x[3 + int(coat)] += 2.0
        x[5 + color] += 2.0 if coat else 0.0
        x /= np.linalg.norm(x)
        image_id = draw * 1000 + i
        images.append(
            PrelabelImage(
                image_id=image_id,
                uri=f"/nowhere/{image_id}.jpg",
                sha256=f"{image_id:064x}",
                embedding_b64=base64.b64encode(x.astype("<f4").tobytes()).decode("ascii"),
            )
        )
        truth: dict[str, Value] = {"top.sleeve_length": SLEEVE.value_keys[sleeve], "coat.worn": coat}
        if coat:  # no coat: people were never asked its colour
            truth["coat.color"] = COAT_COLOR.value_keys[color]
        answers.append(truth)
    return images, answers


def _job(output: Path | str, **changes: object) -> TrainJob:
    images, answers = _people(120, draw=0)
    evaluate, _ = _people(40, draw=1)
    job = TrainJob(
        round_id=3,
        project_id=1,
        model_version_id=9,
        trainer="heads",
        base=BACKBONE,
        categories=CATEGORIES,
        examples=[TrainExample(image=image, answers=a) for image, a in zip(images, answers, strict=True)],
        evaluate=evaluate,
        output_dir=str(output),
        version="round-3",
        options={"seed": 5},
    )
    return job.model_copy(update=changes)


@pytest.fixture
def registry(cpu: Device) -> ModelRegistry:
    return ModelRegistry(cpu)


def test_heads_learn_each_closed_category_and_answer_the_evaluation_set(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    result = run_train(_job(tmp_path / "heads"), registry)
    assert result.error is None and result.model is not None
    assert (result.round_id, result.project_id, result.model_version_id) == (3, 1, 9)
    assert result.model.family == "heads" and result.model.version == "round-3"
    assert Path(result.model.source) == tmp_path / "heads"
    assert sorted(p.name for p in (tmp_path / "heads").iterdir()) == sorted(
        f"{key}.{ext}"
        for key in ("top.sleeve_length", "coat.worn", "coat.color")
        for ext in ("json", "safetensors")
    )
    assert result.examples == 120 and result.metrics["heads"] == 3
    _, truth = _people(40, draw=1)
    assert [item.image_id for item in result.predictions] == [1000 + i for i in range(40)]
    for key in ("top.sleeve_length", "coat.worn"):
        right = [
            item.predictions[key].value == t[key] for item, t in zip(result.predictions, truth, strict=True)
        ]
        assert np.mean(right) > 0.9, key
    # The coat's colour is predicted only where the candidate itself sees a coat.
    for item in result.predictions:
        assert ("coat.color" in item.predictions) == (item.predictions["coat.worn"].value is True)
        assert "background.description" not in item.predictions


def test_examples_without_an_answer_for_a_category_are_not_trained_on(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    job = _job(tmp_path / "heads")
    result = run_train(job, registry)
    coats = sum(1 for e in job.examples if "coat.color" in e.answers)
    assert 0 < coats < len(job.examples)
    assert load_head(tmp_path / "heads" / "coat.color.json").train_size == coats
    assert load_head(tmp_path / "heads" / "coat.worn.json").train_size == len(job.examples)
    assert result.metrics["coat.color/train_size"] == coats


def test_the_candidate_reloads_through_the_registry_and_predicts_the_same(
    tmp_path: Path, registry: ModelRegistry, cpu: Device
) -> None:
    job = _job(tmp_path / "heads")
    result = run_train(job, registry)
    assert result.model is not None
    fresh = ModelRegistry(cpu)
    assert set(fresh.get_as(result.model, HeadsLabeler).heads) == {
        "top.sleeve_length",
        "coat.worn",
        "coat.color",
    }
    again = run_prelabel(
        PrelabelBatch(
            batch_id=1,
            project_id=1,
            model_version_id=9,
            model=result.model,
            backbone=BACKBONE,
            categories=CATEGORIES,
            images=job.evaluate,
        ),
        registry=fresh,
    )
    assert again.items == result.predictions


def test_training_is_deterministic_given_the_seed(tmp_path: Path, registry: ModelRegistry) -> None:
    first = run_train(_job(tmp_path / "a"), registry)
    second = run_train(_job(tmp_path / "b"), registry)
    assert first.predictions == second.predictions and first.metrics == second.metrics
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_retraining_into_the_same_folder_replaces_the_old_heads(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    run_train(_job(tmp_path / "heads"), registry)
    only_sleeve = run_train(_job(tmp_path / "heads", categories=[SLEEVE]), registry)
    assert only_sleeve.error is None
    assert sorted(p.name for p in (tmp_path / "heads").iterdir()) == [
        "top.sleeve_length.json",
        "top.sleeve_length.safetensors",
    ]


def test_a_value_outside_the_taxonomy_fails_the_round_not_the_worker(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    job = _job(tmp_path / "heads")
    bad = TrainExample(image=job.examples[0].image, answers={"top.sleeve_length": "turtleneck"})
    result = run_train(job.model_copy(update={"examples": [bad, *job.examples[1:]]}), registry)
    assert result.model is None and result.predictions == []
    assert result.error is not None and "turtleneck" in result.error
    assert not (tmp_path / "heads").exists()


def test_too_few_answers_fail_the_round(tmp_path: Path, registry: ModelRegistry) -> None:
    job = _job(tmp_path / "heads", options={"min_examples": 500})
    result = run_train(job, registry)
    assert result.model is None and result.error is not None and "500" in result.error
    assert result.examples == 120


def test_examples_without_a_cached_embedding_are_embedded_or_counted_unreadable(
    tmp_path: Path, registry: ModelRegistry, image_refs: list[object]
) -> None:
    job = _job(tmp_path / "heads")
    from workers.contracts import ImageRef

    refs = [r for r in image_refs if isinstance(r, ImageRef)]
    # Real pixels on the stats backbone: right dimension only if the job's embeddings are stats'.
    stats_dim = registry.embedder(BACKBONE).dim
    images, answers = _people(60, draw=2)
    vectors = [np.frombuffer(base64.b64decode(i.embedding_b64 or ""), dtype="<f4") for i in images]
    padded = [np.resize(v, stats_dim).astype("<f4") for v in vectors]
    examples = [
        TrainExample(
            image=image.model_copy(update={"embedding_b64": base64.b64encode(p.tobytes()).decode("ascii")}),
            answers=a,
        )
        for image, p, a in zip(images, padded, answers, strict=True)
    ]
    on_disk = TrainExample(image=PrelabelImage(**refs[0].model_dump()), answers={"coat.worn": True})
    missing = TrainExample(
        image=PrelabelImage(image_id=77, uri=str(tmp_path / "gone.jpg"), sha256="0" * 64),
        answers={"coat.worn": False},
    )
    result = run_train(
        job.model_copy(update={"examples": [*examples, on_disk, missing], "evaluate": []}), registry
    )
    assert result.error is None and result.predictions == []
    assert result.examples == 61 and result.metrics["unreadable_examples"] == 1
    assert result.metrics["coat.worn/train_size"] == 61


def test_the_output_folder_may_be_a_file_uri(tmp_path: Path, registry: ModelRegistry) -> None:
    result = run_train(_job(tmp_path, output_dir=(tmp_path / "heads").as_uri()), registry)
    assert result.model is not None and Path(result.model.source) == tmp_path / "heads"
    assert (tmp_path / "heads" / "coat.worn.safetensors").is_file()
