"""The heads trainer: one linear head per closed category on cached backbone embeddings.

Examples carry the embedding the CPU side cached for `TrainJob.base` (little-endian float32);
those without one are embedded here with the base backbone, and unreadable ones are left out and
counted. Each closed category gets a head fitted on the examples people answered it for
(`labelers.heads.train`, deterministic given `options["seed"]`); a category with fewer than
`options["min_examples"]` (default 2) answers gets none, and the candidate simply does not answer
it. Options: seed (0), l2 (1e-3), max_iter (100), min_examples (2), name (`<base name>-heads`).
"""

from __future__ import annotations

import base64

import numpy as np
from numpy.typing import NDArray

from workers.contracts import EmbedBatch, ImageRef, ModelSpec, TrainJob
from workers.inference.labelers.heads import Head, train
from workers.inference.pipeline import run_embed
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


def train_heads(job: TrainJob, registry: ModelRegistry) -> TrainedModel:
    seed = job_option_int(job, "seed", 0)
    l2 = job_option_float(job, "l2", 1e-3)
    max_iter = job_option_int(job, "max_iter", 100)
    min_examples = max(1, job_option_int(job, "min_examples", 2))
    embeddings = example_embeddings(job, registry)
    usable = sorted(embeddings)
    metrics: dict[str, float] = {"unreadable_examples": float(len(job.examples) - len(usable))}
    heads: list[Head] = []
    for category in job.categories:
        if category.kind == "text":
            continue
        answered = [(i, value) for i, value in labelled(job.examples, category) if i in embeddings]
        for _, value in answered:
            check_value(category, value)
        if len(answered) < min_examples:
            continue
        x = np.stack([embeddings[i] for i, _ in answered])
        try:
            head = train(
                x,
                [value for _, value in answered],
                category,
                backbone_version=job.base.ref,
                seed=seed,
                l2=l2,
                max_iter=max_iter,
            )
        except ValueError as exc:
            raise TrainingError(str(exc), examples=len(usable)) from None
        heads.append(head)
        metrics.update({f"{category.key}/{name}": value for name, value in head.metrics.items()})
        metrics[f"{category.key}/train_size"] = float(head.train_size)
    if not heads:
        raise TrainingError(
            f"no category has {min_examples} verified answers on a readable example", examples=len(usable)
        )
    metrics["heads"] = float(len(heads))
    folder = output_folder(job)
    staging = staging_folder(folder)
    for head in heads:
        head.save(staging)
    publish(staging, folder)
    model = ModelSpec(
        family="heads",
        source=str(folder),
        name=job_option_str(job, "name", f"{job.base.name}-heads"),
        version=job.version,
        options={"backbone": job.base.ref, "seed": seed},
    )
    return TrainedModel(model=model, examples=len(usable), metrics=metrics)


def example_embeddings(job: TrainJob, registry: ModelRegistry) -> dict[int, NDArray[np.float32]]:
    """Position of each readable example -> its embedding; one dimension for all of them."""
    vectors: dict[int, NDArray[np.float32]] = {}
    for position, example in enumerate(job.examples):
        if example.image.embedding_b64 is not None:
            vectors[position] = np.frombuffer(base64.b64decode(example.image.embedding_b64), dtype="<f4")
    missing = [p for p in range(len(job.examples)) if p not in vectors]
    if missing:
        refs = [
            ImageRef.model_validate(job.examples[p].image.model_dump(exclude={"embedding_b64"}))
            for p in missing
        ]
        # Image ids may repeat across examples; positions keep them apart.
        embedded = run_embed(
            EmbedBatch(batch_id=job.round_id, project_id=job.project_id, model=job.base, images=refs),
            registry=registry,
        )
        for position, item in zip(missing, embedded.items, strict=True):
            if item.vector_b64 is not None:
                vectors[position] = np.frombuffer(item.vector_bytes(), dtype="<f4")
    dims = {v.shape[0] for v in vectors.values()}
    if len(dims) > 1:
        raise TrainingError(f"examples' embeddings have several dimensions {sorted(dims)}")
    return {p: v.astype(np.float32) for p, v in vectors.items()}
