"""Label Studio out: task JSON (data.image, predictions per model version, the people's
decisions as an annotation) and a labeling config naming every category.

Pure functions of records, so an import can be tested against what this writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from server.exports.records import ExportRecord
from server.taxonomy.format import CategorySpec, TaxonomySpec

IMAGE_FIELD = "image"


def _result(category: CategorySpec, value: Any, score: float | None = None) -> dict[str, Any] | None:
    if value is None:
        return None
    item: dict[str, Any] = {
        "id": category.full_key.replace(".", "_"),
        "from_name": category.full_key,
        "to_name": IMAGE_FIELD,
        "origin": "prediction" if score is not None else "manual",
    }
    if category.kind == "text":
        item.update(type="textarea", value={"text": [str(value)]})
    else:
        keys = value if isinstance(value, list) else [value]
        choices = [("true" if k else "false") if isinstance(k, bool) else str(k) for k in keys]
        item.update(type="choices", value={"choices": choices})
    if score is not None:
        item["score"] = score
    return item


def task_of(spec: TaxonomySpec, record: ExportRecord, image_url: str) -> dict[str, Any]:
    """One Label Studio task. `image_url`: what `data.image` says (a URL or a path)."""
    predictions = []
    for model_version, values in sorted(record.predictions.items()):
        results = []
        scores = []
        for category in spec.categories():
            if category.full_key not in values:
                continue
            value, confidence = values[category.full_key]
            item = _result(category, value, confidence)
            if item is not None:
                results.append(item)
                scores.append(confidence)
        if results:
            score = sum(scores) / len(scores)
            predictions.append({"model_version": model_version, "score": score, "result": results})
    decided = [
        item
        for key, label in record.labels.items()
        if label.decided_by_person and (item := _result(spec.category(key), label.value)) is not None
    ]
    annotations = []
    if decided:
        gold = any(label.state == "gold" for label in record.labels.values())
        annotations.append({"result": decided, "ground_truth": gold, "was_cancelled": False})
    return {
        "id": record.subject_id,
        "data": {
            IMAGE_FIELD: image_url,
            "subject_id": record.subject_id,
            "image_sha256": record.row.sha256,
            "caption": record.caption,
        },
        "predictions": predictions,
        "annotations": annotations,
    }


def tasks_from_records(
    spec: TaxonomySpec, records: Iterable[ExportRecord], image_url_prefix: str = "images/"
) -> list[dict[str, Any]]:
    """`data.image` is `image_url_prefix` + the record's image name (e.g. a storage URL prefix)."""
    return [task_of(spec, r, image_url_prefix + r.image_name) for r in records]


def labeling_config(spec: TaxonomySpec, *, include_sensitive: bool = False) -> str:
    """A Label Studio labeling config: the image, then one block per category."""
    lines = ["<View>", f'  <Image name="{IMAGE_FIELD}" value="${IMAGE_FIELD}"/>']
    for category in _categories(spec, include_sensitive):
        lines.append(f"  <Header value={quoteattr(category.question)}/>")
        if category.kind == "text":
            lines.append(f'  <TextArea name={quoteattr(category.full_key)} toName="{IMAGE_FIELD}"/>')
            continue
        choice = "multiple" if category.kind == "multi" else "single"
        lines.append(
            f'  <Choices name={quoteattr(category.full_key)} toName="{IMAGE_FIELD}" choice="{choice}">'
        )
        for value in category.values:
            lines.append(f"    <Choice value={quoteattr(value.key)} hint={quoteattr(value.label)}/>")
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _categories(spec: TaxonomySpec, include_sensitive: bool) -> Sequence[CategorySpec]:
    return [c for c in spec.categories() if include_sensitive or not c.sensitive]
