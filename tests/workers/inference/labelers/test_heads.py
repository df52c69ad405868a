from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.workers.inference.labelers.conftest import assert_valid
from workers.contracts import CategorySpec, ModelSpec, Value
from workers.inference.labelers.heads import HeadsLabeler, HeadsOnBackbone, load_head, train
from workers.inference.labelers.stats import StatsLabeler

SLEEVE = CategorySpec.model_validate(
    {
        "key": "top.sleeve_length",
        "kind": "single",
        "question": "q",
        "values": [{"key": "short"}, {"key": "long"}, {"key": "sleeveless"}],
    }
)
COAT = CategorySpec(key="coat.worn", kind="boolean", question="q")
PATTERN = CategorySpec.model_validate(
    {
        "key": "top.pattern",
        "kind": "multi",
        "question": "q",
        "values": [{"key": "plain"}, {"key": "striped"}, {"key": "floral"}],
    }
)


def _blobs(n: int, dim: int, classes: int, seed: int, draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around one random centre per class (fixed by `seed`); `draw` picks the sample."""
    centres = np.random.default_rng(seed).normal(size=(classes, dim))
    rng = np.random.default_rng([seed, draw])
    labels = rng.integers(0, classes, size=n)
    x = centres[labels] + 0.8 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def test_a_head_learns_a_separable_problem() -> None:
    x, y = _blobs(400, 32, 3, seed=0)
    keys = SLEEVE.value_keys
    head = train(x, [keys[i] for i in y], SLEEVE, backbone_version="stats/stats@1")
    assert head.metrics["holdout_accuracy"] > 0.9
    x_new, y_new = _blobs(200, 32, 3, seed=0, draw=1)
    assert (head.probabilities(x_new).argmax(axis=1) == y_new).mean() > 0.9
    assert head.train_size == 400


def test_training_is_deterministic_given_the_seed() -> None:
    x, y = _blobs(100, 16, 3, seed=1)
    labels = [SLEEVE.value_keys[i] for i in y]
    first, second = (train(x, labels, SLEEVE, backbone_version="b", seed=7) for _ in range(2))
    assert np.array_equal(first.weight, second.weight) and first.metrics == second.metrics


def test_heads_round_trip_through_safetensors_and_json(tmp_path: Path) -> None:
    x, y = _blobs(60, 8, 2, seed=2)
    head = train(x, [bool(v) for v in y], COAT, backbone_version="b")
    head.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coat.worn.json", "coat.worn.safetensors"]
    loaded = load_head(tmp_path / "coat.worn.json")
    assert np.array_equal(loaded.weight, head.weight) and loaded.value_keys == ("yes", "no")
    assert loaded.metrics == head.metrics and loaded.backbone_version == "b"


def test_multi_labels_train_on_soft_targets_and_predict_sets() -> None:
    x, y = _blobs(120, 16, 3, seed=3)
    labels: list[Value] = [[PATTERN.value_keys[i]] if i < 2 else ["plain", "floral"] for i in y]
    head = train(x, labels, PATTERN, backbone_version="b")
    labeler = HeadsLabeler(ModelSpec(family="heads", source="-", name="h", version="1"), [head])
    predictions = labeler.predict_embeddings(x, [PATTERN])
    assert_valid(predictions, [PATTERN])
    assert head.metrics["train_accuracy"] > 0.9


def test_heads_whose_values_changed_are_not_used() -> None:
    x, y = _blobs(30, 8, 3, seed=4)
    head = train(x, [SLEEVE.value_keys[i] for i in y], SLEEVE, backbone_version="b")
    renamed = SLEEVE.model_copy(update={"values": SLEEVE.values[:2]})
    labeler = HeadsLabeler(ModelSpec(family="heads", source="-", name="h", version="1"), [head])
    assert labeler.supports(SLEEVE) and not labeler.supports(renamed)
    assert labeler.predict_embeddings(x[:2], [renamed]) == [{}, {}]


def test_unknown_labels_and_text_categories_are_refused() -> None:
    x, _ = _blobs(4, 8, 2, seed=5)
    with pytest.raises(ValueError):
        train(x, ["short", "short", "medium", "long"], SLEEVE, backbone_version="b")
    with pytest.raises(ValueError):
        train(x, ["a"] * 4, CategorySpec(key="a.b", kind="text", question="q"), backbone_version="b")


def test_stats_backbone_plus_heads_learns_colours_from_labels(stats_spec: ModelSpec, tmp_path: Path) -> None:
    """The embedded demo's labeler: weight-free embeddings, heads trained on human labels."""
    rng = np.random.default_rng(0)
    colour = CategorySpec.model_validate(
        {"key": "top.color", "kind": "single", "question": "q", "values": [{"key": "red"}, {"key": "blue"}]}
    )

    def picture(red: bool) -> Image.Image:
        base = np.array([170, 40, 40] if red else [40, 40, 170], dtype=np.float64)
        noise = rng.normal(0, 45, size=(48, 32, 3))
        return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))

    truth = [bool(v) for v in rng.integers(0, 2, size=160)]
    backbone = StatsLabeler.load(stats_spec)
    train_x = backbone.embed([picture(t) for t in truth[:120]])
    head = train(
        train_x, ["red" if t else "blue" for t in truth[:120]], colour, backbone_version=stats_spec.ref
    )
    head.save(tmp_path)
    heads = HeadsLabeler.load(ModelSpec(family="heads", source=str(tmp_path), name="h", version="1"))
    labeler = HeadsOnBackbone(heads, backbone)
    predictions = labeler.predict([picture(t) for t in truth[120:]], [colour])
    accuracy = np.mean(
        [
            p["top.color"].value == ("red" if t else "blue")
            for p, t in zip(predictions, truth[120:], strict=True)
        ]
    )
    assert accuracy > 0.9


def test_heads_refuse_a_backbone_they_were_not_trained_on(stats_spec: ModelSpec) -> None:
    x, y = _blobs(30, 8, 2, seed=6)
    head = train(x, [bool(v) for v in y], COAT, backbone_version="open_clip/other@1")
    heads = HeadsLabeler(ModelSpec(family="heads", source="-", name="h", version="1"), [head])
    with pytest.raises(ValueError, match="trained on"):
        HeadsOnBackbone(heads, StatsLabeler.load(stats_spec))
