"""What both trainers share: the output folder, typed options, the examples per category."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from workers.contracts import CategorySpec, ModelSpec, TrainExample, TrainJob, Value
from workers.inference.images import ImageLoadError, local_path


class TrainingError(Exception):
    """The job cannot produce a candidate: reported as `TrainResult.error`."""

    def __init__(self, message: str, examples: int = 0) -> None:
        super().__init__(message)
        self.examples = examples


@dataclass(frozen=True)
class TrainedModel:
    model: ModelSpec
    examples: int
    metrics: dict[str, float] = field(default_factory=dict)


def job_option_int(job: TrainJob, name: str, default: int) -> int:
    value = job.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrainingError(f"option {name} must be an integer, got {value!r}")
    return value


def job_option_float(job: TrainJob, name: str, default: float) -> float:
    value = job.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainingError(f"option {name} must be a number, got {value!r}")
    return float(value)


def job_option_str(job: TrainJob, name: str, default: str) -> str:
    value = job.options.get(name, default)
    if not isinstance(value, str):
        raise TrainingError(f"option {name} must be a string, got {value!r}")
    return value


def output_folder(job: TrainJob) -> Path:
    try:
        return local_path(job.output_dir)
    except ImageLoadError as exc:
        raise TrainingError(f"output_dir {job.output_dir!r}: {exc.detail}") from None


def labelled(examples: Iterable[TrainExample], category: CategorySpec) -> list[tuple[int, Value]]:
    """(position, value) of the examples people answered this category for.

    An example without the key means the category did not apply to that subject (its `when` was
    false), so it teaches nothing about the category's values.
    """
    return [(i, e.answers[category.key]) for i, e in enumerate(examples) if category.key in e.answers]


def check_value(category: CategorySpec, value: Value) -> list[str]:
    """The value keys a verified value names; a value outside the taxonomy is a bad example."""
    if isinstance(value, bool):
        keys = ["yes" if value else "no"]
    elif isinstance(value, str):
        keys = [value]
    else:
        keys = list(value)
    allowed = set(category.value_keys)
    if not keys or any(k not in allowed for k in keys) or (category.kind != "multi" and len(keys) != 1):
        raise TrainingError(f"{category.key}: verified value {value!r} is not among {category.value_keys}")
    return keys


def publish(staging: Path, folder: Path) -> None:
    """Replace `folder` by the fully written `staging` folder, so a reader never sees half of it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex}")
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def staging_folder(folder: Path) -> Path:
    staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    return staging
