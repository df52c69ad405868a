"""Label Studio's task JSON, read: the shapes its JSON export writes, checked task by task.

An export is a list of tasks (or `{"tasks": [...]}`); a task is
`{"id", "data": {"image": ...}, "annotations": [...], "predictions": [...]}`; an annotation or a
prediction holds `result`, a list of `{"from_name", "to_name", "type", "value"}` items (`choices`
with `value.choices`, `textarea` with `value.text`). A prediction carries `model_version` and
`score`, a result item may carry its own `score`. The annotation that counts is the latest one
not cancelled (`was_cancelled`), by `updated_at`, then `created_at`, then `id`.

A task that is not a task raises TaskError; a result item this importer cannot read becomes a
Problem beside the items it can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.core.errors import BadRequest

READABLE_TYPES = frozenset({"choices", "textarea"})


class TaskError(Exception):
    """A task, or one thing in it, that cannot be imported; `code` is stable, `detail` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str
    from_name: str | None = None


@dataclass(frozen=True)
class ResultItem:
    from_name: str
    kind: str  # choices | textarea
    answers: tuple[str, ...]  # the chosen choices, or the text lines
    score: float | None


@dataclass(frozen=True)
class LsPrediction:
    model_version: str
    score: float | None
    items: tuple[ResultItem, ...]


@dataclass
class LsTask:
    task_id: str | None
    image: str
    predictions: list[LsPrediction] = field(default_factory=list)
    annotation: tuple[ResultItem, ...] = ()
    problems: list[Problem] = field(default_factory=list)


def tasks_of(payload: Any) -> list[Any]:
    """The raw tasks of an export; BadRequest when the payload is not an export at all."""
    if isinstance(payload, Mapping) and "tasks" in payload:
        payload = payload["tasks"]
    elif isinstance(payload, Mapping) and "data" in payload:
        payload = [payload]  # a single task
    if not isinstance(payload, list):
        raise BadRequest(
            'a Label Studio export is a JSON list of tasks (or {"tasks": [...]})', code="not_an_export"
        )
    return payload


def parse_task(raw: Any, image_field: str) -> LsTask:
    if not isinstance(raw, Mapping):
        raise TaskError("invalid_task", "a task is a JSON object")
    task_id = raw.get("id")
    data = raw.get("data")
    if not isinstance(data, Mapping):
        raise TaskError("invalid_task", "the task has no `data` object")
    image = data.get(image_field)
    if not isinstance(image, str) or not image.strip():
        raise TaskError("no_image", f"`data.{image_field}` is missing or not a string")
    task = LsTask(task_id=None if task_id is None else str(task_id)[:100], image=image.strip())
    for index, prediction in enumerate(_list(raw.get("predictions"), "predictions")):
        if not isinstance(prediction, Mapping):
            task.problems.append(Problem("invalid_prediction", f"predictions[{index}] is not an object"))
            continue
        version = prediction.get("model_version")
        items = _items(prediction.get("result"), f"predictions[{index}]", task.problems)
        task.predictions.append(
            LsPrediction(
                # NUL: no database text column takes it.
                model_version=str(version or "").replace("\x00", "").strip()[:200] or "unnamed",
                score=_score(prediction.get("score")),
                items=tuple(items),
            )
        )
    annotations = [
        (i, a)
        for i, a in enumerate(_list(raw.get("annotations"), "annotations"))
        if isinstance(a, Mapping) and not a.get("was_cancelled")
    ]
    if annotations:
        index, latest = max(
            annotations,
            key=lambda pair: (
                str(pair[1].get("updated_at") or ""),
                str(pair[1].get("created_at") or ""),
                _number(pair[1].get("id")),
                pair[0],
            ),
        )
        task.annotation = tuple(_items(latest.get("result"), f"annotations[{index}]", task.problems))
    return task


def _list(value: Any, name: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TaskError("invalid_task", f"`{name}` is not a list")
    return value


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -1.0


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 <= float(value) <= 1.0 else None


def _items(result: Any, where: str, problems: list[Problem]) -> list[ResultItem]:
    if not isinstance(result, list):
        problems.append(Problem("invalid_result", f"{where}.result is not a list"))
        return []
    items: list[ResultItem] = []
    for index, item in enumerate(result):
        at = f"{where}.result[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("from_name"), str):
            problems.append(Problem("invalid_result", f"{at} has no from_name"))
            continue
        from_name, kind, value = item["from_name"], item.get("type"), item.get("value")
        if kind not in READABLE_TYPES:
            problems.append(
                Problem(
                    "unsupported_result_type", f"{at} is of type {kind!r}; read: choices, textarea", from_name
                )
            )
            continue
        answers = (
            value.get("choices" if kind == "choices" else "text") if isinstance(value, Mapping) else None
        )
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            problems.append(Problem("invalid_result", f"{at}.value has no list of strings", from_name))
            continue
        items.append(ResultItem(from_name, kind, tuple(answers), _score(item.get("score"))))
    return items
