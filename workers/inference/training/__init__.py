"""Training a flywheel round's candidate labeler: a `TrainJob` in, a `TrainResult` out.

Two trainers, both stateless like the rest of the GPU side:

- `heads` (`training.heads`): one linear head per closed category on the backbone embeddings the
  CPU side cached (images without one are embedded with `TrainJob.base`), saved in the layout
  `HeadsLabeler.load` reads.
- `vqa_lora` (`training.vqa_lora`): LoRA adapters on the transformers VQA labeler, trained on the
  verified answers as (image, question, answer) triples, the CosmicMan paper's route; only the
  adapter is saved, and `ModelSpec.options["adapter"]` makes the VQA labeler apply it at load.

Either way the candidate then answers `TrainJob.evaluate` through the ordinary prelabel pipeline,
so its predictions are exactly what a promoted version would write. A training failure (a label
outside the taxonomy, too few examples, unreadable images only, a model that will not load) is
the round's outcome, not the worker's: it comes back as `TrainResult.error` with no model.
"""

from __future__ import annotations

from workers.contracts import PrelabelBatch, PrelabelItem, TrainJob, TrainResult
from workers.inference.pipeline import run_prelabel
from workers.inference.registry import ModelRegistry, process_registry
from workers.inference.training.common import TrainedModel, TrainingError


def run_train(job: TrainJob, registry: ModelRegistry | None = None) -> TrainResult:
    registry = registry or process_registry()
    header = {
        "round_id": job.round_id,
        "project_id": job.project_id,
        "model_version_id": job.model_version_id,
        "trainer": job.trainer,
    }
    try:
        trained = _train(job, registry)
        predictions = evaluate(job, trained, registry)
    except TrainingError as exc:
        return TrainResult(**header, examples=exc.examples, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failed round is reported to the server, not retried
        return TrainResult(**header, error=f"{type(exc).__name__}: {exc}")
    return TrainResult(
        **header,
        model=trained.model,
        metrics=trained.metrics,
        examples=trained.examples,
        predictions=predictions,
    )


def _train(job: TrainJob, registry: ModelRegistry) -> TrainedModel:
    if job.trainer == "heads":
        from workers.inference.training.heads import train_heads

        return train_heads(job, registry)
    from workers.inference.training.vqa_lora import train_vqa_lora

    return train_vqa_lora(job, registry)


def evaluate(job: TrainJob, trained: TrainedModel, registry: ModelRegistry) -> list[PrelabelItem]:
    """The candidate's answers on the evaluation images, through the prelabel pipeline."""
    if not job.evaluate:
        return []
    batch = PrelabelBatch(
        batch_id=job.round_id,
        project_id=job.project_id,
        model_version_id=job.model_version_id,
        model=trained.model,
        backbone=job.base if trained.model.family == "heads" else None,
        categories=job.categories,
        images=job.evaluate,
    )
    return run_prelabel(batch, registry=registry).items


__all__ = ["TrainingError", "run_train"]
