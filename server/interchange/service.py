"""Label Studio in: tasks become images (the normal ingest path, deduplicated by sha256),
subjects, predictions (a model version per Label Studio `model_version`) and verified labels
(from the latest annotation that was not cancelled).

Mapping: a result's `from_name` names a category by its key (`top.sleeve_length`), through
`category_map`, or by its short key when only one category has it. A choice names a value by its
key, or by its label or caption text (case aside); booleans also read `yes`/`no`. Each task is
imported in a savepoint: a task that fails (no readable image) imports nothing and is reported;
a result item that cannot be mapped is reported and the rest of its task is kept.

People's decisions win: an annotation overwrites a predicted or auto-accepted label; a label
already verified here with another value is kept and reported (`label_conflict`). Sensitive
categories are imported only when the project opted in. Importing the same file again adds
nothing: images by sha256, subjects by (image, 0), predictions by (subject, category, model
version), labels by value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from server.core.config import IngestSettings
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.images import service as images
from server.images.decoding import ImageRejected
from server.interchange import repository
from server.interchange.labelstudio import LsTask, Problem, ResultItem, TaskError, parse_task, tasks_of
from server.interchange.media import read_image
from server.interchange.schemas import ImportOptions, ImportReport, TaskProblem
from server.orm import Label, LabelEvent, Project, User
from server.orm.enums import LabelState
from server.prelabel import service as pipeline
from server.projects.schemas import ProjectSettings
from server.taxonomy import service as taxonomy
from server.taxonomy.format import CategorySpec, TaxonomySpec

log = structlog.get_logger(__name__)

REASON = "import_label_studio"
_DECIDED = frozenset({LabelState.verified.value, LabelState.gold.value})


@dataclass
class _Context:
    session: Session
    storage: ObjectStorage
    project: Project
    user: User
    spec: TaxonomySpec
    category_ids: dict[str, int]
    taxonomy_version_id: int
    include_sensitive: bool
    options: ImportOptions
    roots: Sequence[Path]
    settings: IngestSettings
    min_side: int


@dataclass
class _Counts:
    images_added: int = 0
    images_existing: int = 0
    predictions_added: int = 0
    labels_verified: int = 0
    labels_unchanged: int = 0


def import_labelstudio(
    session: Session,
    storage: ObjectStorage,
    project: Project,
    user: User,
    payload: Any,
    options: ImportOptions,
    roots: Sequence[Path],
    settings: IngestSettings,
) -> ImportReport:
    raw_tasks = tasks_of(payload)
    version = taxonomy.current_version(session, project)
    context = _Context(
        session=session,
        storage=storage,
        project=project,
        user=user,
        spec=taxonomy.spec_of(version),
        category_ids=repository.categories_of(session, version.id),
        taxonomy_version_id=version.id,
        include_sensitive=ProjectSettings.model_validate(project.settings).include_sensitive,
        options=options,
        roots=roots,
        settings=settings,
        min_side=(project.settings.get("min_side") or settings.min_side),
    )
    counts = _Counts()
    problems: list[TaskProblem] = []
    added_images: list[int] = []
    imported = 0
    for index, raw in enumerate(raw_tasks):
        task_id = str(raw.get("id"))[:100] if isinstance(raw, Mapping) and raw.get("id") is not None else None
        savepoint = session.begin_nested()
        try:
            task = parse_task(raw, options.image_field)
            task_counts, added, task_problems = _import_task(context, task)
        except TaskError as exc:
            savepoint.rollback()
            problems.append(
                TaskProblem(task=index, task_id=task_id, code=exc.code, detail=exc.detail, imported=False)
            )
            continue
        savepoint.commit()
        imported += 1
        if added is not None:
            added_images.append(added)
        for name in vars(counts):
            setattr(counts, name, getattr(counts, name) + getattr(task_counts, name))
        problems.extend(
            TaskProblem(
                task=index,
                task_id=task_id,
                code=p.code,
                detail=p.detail,
                from_name=p.from_name,
                imported=True,
            )
            for p in task_problems
        )
    # New images go down the pipeline like any ingested image (analysis upserts subject 0).
    pipeline.request_analysis(session, project.id, added_images)
    report = ImportReport(
        tasks=len(raw_tasks),
        imported=imported,
        failed=len(raw_tasks) - imported,
        problems=problems,
        **vars(counts),
    )
    log.info(
        "interchange.labelstudio",
        project_id=project.id,
        tasks=report.tasks,
        imported=report.imported,
        problems=len(problems),
    )
    return report


def _import_task(context: _Context, task: LsTask) -> tuple[_Counts, int | None, list[Problem]]:
    """(counts, the id of a newly added image or None, problems); TaskError when nothing can be."""
    counts = _Counts()
    problems = list(task.problems)
    name, data = read_image(task.image, context.roots, context.settings.max_upload_bytes)
    try:
        decoded = images.decode(data, context.settings)
    except ImageRejected as exc:
        raise TaskError(f"image_{exc.reason}", exc.detail) from None
    source = repository.import_source(context.session, context.project.id, context.user.id)
    added = images.add_image(
        context.session,
        context.storage,
        context.project.id,
        source,
        name,
        decoded,
        context.settings,
        context.min_side,
    )
    if added.duplicate:
        counts.images_existing += 1
        image_id = repository.image_id_by_sha(context.session, context.project.id, added.sha256)
        assert image_id is not None
    else:
        counts.images_added += 1
        image_id = int(added.image_id or 0)
    subject_id = repository.first_subject(context.session, image_id, context.project.id)

    now = utcnow()
    for prediction in task.predictions:
        mapped = _mapped(context, prediction.items, problems)
        if not mapped:
            continue
        version_id = repository.model_version(context.session, context.project.id, prediction.model_version)
        rows = [
            {
                "subject_id": subject_id,
                "category_id": context.category_ids[category.full_key],
                "model_version_id": version_id,
                "value": value,
                # Label Studio's score, per item or per prediction; unknown reads as 0.
                "confidence": item.score if item.score is not None else (prediction.score or 0.0),
                "distribution": {},
                "created_at": now,
            }
            for category, value, item in mapped
        ]
        counts.predictions_added += repository.add_predictions(context.session, rows)

    decided = _mapped(context, task.annotation, problems)
    labels = repository.labels_of(
        context.session, subject_id, [context.category_ids[c.full_key] for c, _, _ in decided]
    )
    for category, value, _ in decided:
        category_id = context.category_ids[category.full_key]
        label = labels.get(category_id)
        if label is not None and label.state in _DECIDED:
            if label.value == value:
                counts.labels_unchanged += 1
            else:
                problems.append(
                    Problem(
                        "label_conflict",
                        f"{category.full_key} is already verified here as {label.value!r}; kept",
                        category.full_key,
                    )
                )
            continue
        _verify(context, subject_id, category_id, label, value)
        counts.labels_verified += 1
    return counts, (None if added.duplicate else image_id), problems


def _verify(context: _Context, subject_id: int, category_id: int, label: Label | None, value: Any) -> None:
    now = utcnow()
    from_value, from_state = (None, None) if label is None else (label.value, label.state)
    if label is None:
        label = Label(
            subject_id=subject_id,
            category_id=category_id,
            taxonomy_version_id=context.taxonomy_version_id,
            value=value,
            state=LabelState.verified.value,
            confidence=None,
            version=1,
            decided_by_id=context.user.id,
            updated_at=now,
        )
        context.session.add(label)
        context.session.flush()
    else:
        label.value, label.state, label.version = value, LabelState.verified.value, label.version + 1
        label.decided_by_id, label.updated_at = context.user.id, now
    context.session.add(
        LabelEvent(
            label_id=label.id,
            subject_id=subject_id,
            category_id=category_id,
            actor_user_id=context.user.id,
            from_value=from_value,
            to_value=value,
            from_state=from_state,
            to_state=LabelState.verified.value,
            reason=REASON,
            created_at=now,
        )
    )


def _mapped(
    context: _Context, items: Sequence[ResultItem], problems: list[Problem]
) -> list[tuple[CategorySpec, Any, ResultItem]]:
    """(category, our value, item) for each item that maps; a Problem for each that does not."""
    out: list[tuple[CategorySpec, Any, ResultItem]] = []
    seen: set[str] = set()
    for item in items:
        try:
            category = _category(context, item.from_name)
            value = _value(category, item)
        except TaskError as exc:
            problems.append(Problem(exc.code, exc.detail, item.from_name))
            continue
        if category.full_key in seen:
            problems.append(
                Problem("duplicate_result", f"{category.full_key} is answered twice", item.from_name)
            )
            continue
        seen.add(category.full_key)
        out.append((category, value, item))
    return out


def _category(context: _Context, from_name: str) -> CategorySpec:
    key = context.options.category_map.get(from_name, from_name)
    categories = context.spec.categories()
    matches = [c for c in categories if c.full_key == key] or [c for c in categories if c.key == key]
    if len(matches) != 1 or matches[0].full_key not in context.category_ids:
        raise TaskError(
            "unknown_category",
            f"from_name {from_name!r} names no category of the project's taxonomy (map it with category_map)",
        )
    category = matches[0]
    if category.sensitive and not context.include_sensitive:
        raise TaskError(
            "sensitive_category_skipped", f"{category.full_key} is sensitive and the project leaves it out"
        )
    return category


def _value(category: CategorySpec, item: ResultItem) -> Any:
    if category.kind == "text":
        text = "\n".join(a.strip() for a in item.answers).replace("\x00", "").strip()
        if not text:
            raise TaskError("empty_value", f"{category.full_key}: empty text")
        return text[:2000]
    if item.kind != "choices":
        raise TaskError("unknown_value", f"{category.full_key} takes choices, not {item.kind}")
    keys = []
    for answer in item.answers:
        key = _value_key(category, answer)
        if key is None:
            raise TaskError("unknown_value", f"{category.full_key} has no value {answer!r}")
        keys.append(key)
    if category.kind == "multi":
        return sorted(set(keys), key=[v.key for v in category.values].index)
    if len(keys) != 1:
        raise TaskError("unknown_value", f"{category.full_key} takes one choice, not {len(keys)}")
    return keys[0] == "true" if category.kind == "boolean" else keys[0]


def _value_key(category: CategorySpec, answer: str) -> str | None:
    text = answer.strip()
    for value in category.values:
        if value.key == text:
            return value.key
    folded = text.casefold()
    for value in category.values:
        if folded in {value.key.casefold(), value.label.casefold(), value.caption.casefold()} - {""}:
            return value.key
    if category.kind == "boolean" and folded in {"yes", "no"}:
        return "true" if folded == "yes" else "false"
    return None
