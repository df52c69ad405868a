"""Heads: one small classifier per category on cached backbone embeddings.

This is what each flywheel round retrains: multinomial logistic regression (a linear layer and a
softmax, L2-regularised, fitted full-batch with L-BFGS from zero weights, so the result depends on
the data and the seed only), seconds for a thousand examples by fifty categories on a CPU.

On disk a head is `<category key>.safetensors` (tensors `weight` (values, dim) and `bias`) beside
`<category key>.json` (category, kind, value keys, backbone version, train size, metrics). Loading
reads both without pickle. `HeadsLabeler.load` reads every head in `ModelSpec.source`; it predicts
from embeddings (`predict_embeddings`), and `HeadsOnBackbone` pairs it with the backbone it was
trained on to label pixels.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from safetensors.numpy import load_file, save_file

from workers.contracts import CategoryKind, CategoryPrediction, CategorySpec, ModelSpec, Value
from workers.inference.labelers.base import Embedder, apply_conditions, decide, softmax

FORMAT_VERSION = 1
HOLDOUT_SHARE = 0.2
MIN_EXAMPLES_FOR_HOLDOUT = 20


@dataclass(frozen=True)
class Head:
    category: str
    kind: CategoryKind
    value_keys: tuple[str, ...]
    weight: NDArray[np.float32]
    bias: NDArray[np.float32]
    backbone_version: str
    train_size: int
    metrics: dict[str, float] = field(default_factory=dict)

    def fits(self, category: CategorySpec) -> bool:
        """False when the taxonomy changed the category's values since this head was trained."""
        return (
            category.key == self.category
            and category.kind == self.kind
            and tuple(category.value_keys) == self.value_keys
        )

    def probabilities(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        return softmax(embeddings @ self.weight.T + self.bias)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight, "bias": self.bias}, str(folder / f"{self.category}.safetensors"))
        sidecar = {
            "format_version": FORMAT_VERSION,
            "category": self.category,
            "kind": self.kind,
            "value_keys": list(self.value_keys),
            "backbone_version": self.backbone_version,
            "train_size": self.train_size,
            "metrics": self.metrics,
        }
        (folder / f"{self.category}.json").write_text(json.dumps(sidecar, indent=2), encoding="utf-8")


def load_head(sidecar_path: Path) -> Head:
    meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{sidecar_path}: unknown head format {meta.get('format_version')!r}")
    tensors = load_file(str(sidecar_path.with_suffix(".safetensors")))
    weight, bias = tensors["weight"].astype(np.float32), tensors["bias"].astype(np.float32)
    value_keys = tuple(str(k) for k in meta["value_keys"])
    if weight.shape[0] != len(value_keys) or bias.shape != (len(value_keys),):
        raise ValueError(f"{sidecar_path}: tensor shapes do not match {len(value_keys)} values")
    return Head(
        category=str(meta["category"]),
        kind=meta["kind"],
        value_keys=value_keys,
        weight=weight,
        bias=bias,
        backbone_version=str(meta["backbone_version"]),
        train_size=int(meta["train_size"]),
        metrics={str(k): float(v) for k, v in meta["metrics"].items()},
    )


def train(
    embeddings: NDArray[np.float32],
    labels: Sequence[Value],
    category: CategorySpec,
    *,
    backbone_version: str,
    seed: int = 0,
    l2: float = 1e-3,
    max_iter: int = 100,
) -> Head:
    """Fit a head; with enough examples, first measure accuracy on a seeded held-out share.

    `labels` are value keys (single), bools (boolean) or lists of value keys (multi). Metrics:
    `train_accuracy`, `train_log_loss` and, from `MIN_EXAMPLES_FOR_HOLDOUT` examples,
    `holdout_accuracy`; accuracy counts the top value being one of the true values.
    """
    if category.kind == "text":
        raise ValueError(f"{category.key}: text categories have no head")
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(labels) or not labels:
        raise ValueError(f"{category.key}: need (n, dim) embeddings for n = {len(labels)} labels")
    targets = _targets(labels, category)
    metrics: dict[str, float] = {}
    n = x.shape[0]
    if n >= MIN_EXAMPLES_FOR_HOLDOUT:
        order = np.random.default_rng(seed).permutation(n)
        cut = int(round(n * HOLDOUT_SHARE))
        held, kept = order[:cut], order[cut:]
        weight, bias = _fit(x[kept], targets[kept], l2, max_iter)
        metrics["holdout_accuracy"] = _accuracy(x[held], targets[held], weight, bias)
    weight, bias = _fit(x, targets, l2, max_iter)
    metrics["train_accuracy"] = _accuracy(x, targets, weight, bias)
    probabilities = softmax(x @ weight.T + bias)
    metrics["train_log_loss"] = float(-(targets * np.log(probabilities + 1e-12)).sum(axis=1).mean())
    return Head(
        category=category.key,
        kind=category.kind,
        value_keys=tuple(category.value_keys),
        weight=weight,
        bias=bias,
        backbone_version=backbone_version,
        train_size=n,
        metrics=metrics,
    )


def _targets(labels: Sequence[Value], category: CategorySpec) -> NDArray[np.float32]:
    """Soft targets: one-hot, or spread evenly over the chosen values of a multi label."""
    index = {key: i for i, key in enumerate(category.value_keys)}
    targets = np.zeros((len(labels), len(index)), dtype=np.float32)
    for row, label in enumerate(labels):
        if isinstance(label, bool):
            chosen = ["yes" if label else "no"]
        elif isinstance(label, str):
            chosen = [label]
        else:
            chosen = list(label)
        unknown = [k for k in chosen if k not in index]
        if unknown or not chosen:
            raise ValueError(f"{category.key}: label {label!r} is not among {list(index)}")
        for key in chosen:
            targets[row, index[key]] = 1.0 / len(chosen)
    return targets


def _fit(
    x: NDArray[np.float32], targets: NDArray[np.float32], l2: float, max_iter: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    features, soft = torch.from_numpy(x), torch.from_numpy(targets)
    # Zero start: the objective is convex, so L-BFGS lands on the same optimum every run.
    weight = torch.zeros((soft.shape[1], features.shape[1]), requires_grad=True)
    bias = torch.zeros(soft.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = features @ weight.T + bias
        loss = torch.nn.functional.cross_entropy(logits, soft) + l2 * weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    with torch.enable_grad(), _one_thread():
        optimizer.step(closure)  # type: ignore[no-untyped-call]  # torch leaves LBFGS.step untyped
    return weight.detach().numpy().copy(), bias.detach().numpy().copy()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # These matrices are small: intra-op threading costs more than it saves (3x slower on 2 cores).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _accuracy(
    x: NDArray[np.float32],
    targets: NDArray[np.float32],
    weight: NDArray[np.float32],
    bias: NDArray[np.float32],
) -> float:
    if x.shape[0] == 0:
        return float("nan")
    top = (x @ weight.T + bias).argmax(axis=1)
    return float((targets[np.arange(len(top)), top] > 0).mean())


class HeadsLabeler:
    def __init__(self, spec: ModelSpec, heads: Sequence[Head]) -> None:
        self._spec = spec
        self.heads = {head.category: head for head in heads}
        versions = {head.backbone_version for head in heads}
        if len(versions) > 1:
            raise ValueError(f"{spec.ref}: heads trained on several backbones {sorted(versions)}")
        self.backbone_version = versions.pop() if versions else None

    @classmethod
    def load(cls, spec: ModelSpec) -> HeadsLabeler:
        folder = Path(spec.source)
        if not folder.is_dir():
            raise FileNotFoundError(f"heads folder {folder} does not exist")
        return cls(spec, [load_head(path) for path in sorted(folder.glob("*.json"))])

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def supports(self, category: CategorySpec) -> bool:
        head = self.heads.get(category.key)
        return head is not None and head.fits(category)

    def predict_embeddings(
        self, embeddings: NDArray[np.float32], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        x = np.asarray(embeddings, dtype=np.float32)
        per_image: list[dict[str, CategoryPrediction]] = [{} for _ in range(x.shape[0])]
        for category in categories:
            if not self.supports(category):
                continue
            for row, prediction in zip(self.heads[category.key].probabilities(x), per_image, strict=True):
                prediction[category.key] = decide(category, row.tolist())
        return [apply_conditions(categories, p) for p in per_image]


class HeadsOnBackbone:
    """Heads plus the backbone they were trained on: a labeler of pixels, and an embedder."""

    def __init__(self, heads: HeadsLabeler, backbone: Embedder) -> None:
        if heads.backbone_version not in (None, backbone.spec.ref):
            raise ValueError(
                f"{heads.spec.ref} was trained on {heads.backbone_version}, not {backbone.spec.ref}"
            )
        self.heads = heads
        self.backbone = backbone

    @property
    def spec(self) -> ModelSpec:
        return self.heads.spec

    @property
    def dim(self) -> int:
        return self.backbone.dim

    def supports(self, category: CategorySpec) -> bool:
        return self.heads.supports(category)

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        return self.backbone.embed(images)

    def predict(
        self, images: Sequence[Image.Image], categories: Sequence[CategorySpec]
    ) -> list[dict[str, CategoryPrediction]]:
        return self.heads.predict_embeddings(self.embed(images), categories)
