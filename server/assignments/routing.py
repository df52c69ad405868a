"""Who decides a field (DESIGN.md, "Routing"): per subject and category, a person or the labeler.

- cold start (the active labeler has no evaluation yet): every category goes to people;
- untrusted categories go to people; trusted ones are auto-accepted when the prediction's
  confidence reaches the category's calibrated cut, else they go to people too;
- a seeded random audit share of subjects with auto-accepted fields is queued for reviewers;
- evaluation-set subjects get one `eval` assignment covering every category, never auto-accepted.

An assignment carries only the categories routed to people. `when` conditions are evaluated on
the values known at routing time: a decided or auto-accepted parent's value; a parent that a
person will decide is unknown, so its children are asked too (the review screen hides them live
from the person's answer). A subject someone holds a lease on is left as it is.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from server.assignments import repository, views
from server.core.time import utcnow
from server.labelers import service as labelers
from server.orm import Assignment, Label, LabelEvent, Project
from server.orm.enums import AssignmentKind, AssignmentStatus, LabelState
from server.projects.schemas import ProjectSettings

RANK = {
    AssignmentKind.eval: 4,
    AssignmentKind.gold: 3,
    AssignmentKind.review: 2,
    AssignmentKind.adjudicate: 1,
    AssignmentKind.audit: 0,
}
DECIDED = views.DECIDED_BY_PEOPLE
_UNKNOWN = object()


def applies(when: Mapping[str, Any] | None, values: Mapping[str, Any]) -> bool | None:
    """A taxonomy condition on the known values: True, False, or None while a parent is unknown.

    `values[key]` is the parent's value, None when the parent does not apply (so neither does
    the child), and a parent missing from `values` is unknown.
    """
    if when is None:
        return True
    if "all" in when or "any" in when:
        results = [applies(c, values) for c in when.get("all", when.get("any", []))]
        if "all" in when:
            return False if False in results else (None if None in results else True)
        return True if True in results else (None if None in results else False)
    value = values.get(str(when["category"]), _UNKNOWN)
    if value is _UNKNOWN:
        return None
    if value is None:
        return False
    chosen = {_key(v) for v in value} if isinstance(value, list) else {_key(value)}
    if "equals" in when:
        return _key(when["equals"]) in chosen
    if "in" in when:
        return bool(chosen & {_key(v) for v in when["in"]})
    return not chosen & {_key(v) for v in when.get("not_in", [])}


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def audited(project_id: int, subject_id: int, share: float) -> bool:
    """The audit draw, seeded per subject: a re-route never draws again differently."""
    return random.Random(f"audit:{project_id}:{subject_id}").random() < share


def route(session: Session, project: Project, subject_ids: Sequence[int]) -> int:
    """Route these subjects' undecided fields; returns how many assignments were queued."""
    if not subject_ids or project.taxonomy_version_id is None:
        return 0
    settings = ProjectSettings.model_validate(project.settings)
    categories = [
        c
        for c in views.categories(session, project.taxonomy_version_id, project)
        if settings.include_sensitive or not c.sensitive
    ]
    active = labelers.active_labeler(session, project)
    scores: dict[str, Any] = dict(active.metrics.get("categories", {}))
    evaluation = repository.eval_subjects(session, subject_ids)
    labels = repository.labels_by_subject(session, subject_ids)
    predictions = repository.predictions_by_subject(session, subject_ids, active.id)
    existing = repository.routed_assignments(session, subject_ids)
    now = utcnow()
    events: list[dict[str, Any]] = []
    queued = 0
    for subject_id in dict.fromkeys(subject_ids):
        current = existing.get(subject_id, [])
        if any(a.status == AssignmentStatus.leased.value for a in current):
            continue  # someone is deciding this subject now
        subject_labels = labels.get(subject_id, {})
        if subject_id in evaluation:
            queued += _route_eval(session, project, subject_id, categories, subject_labels, current)
            continue
        values: dict[str, Any] = {}
        human: list[int] = []
        auto: list[int] = []
        confidence: list[float] = []
        for category in categories:
            label = subject_labels.get(category.id)
            if label is not None and label.state in DECIDED:
                values[category.key] = label.value
                continue
            condition = applies(category.when, values)
            if condition is False:
                values[category.key] = None
                continue
            predicted = predictions.get(subject_id, {}).get(category.id)
            score = scores.get(category.key) or {}
            cut = score.get("cut")
            if (
                condition
                and predicted is not None
                and label is not None
                and score.get("trusted")
                and cut is not None
                and predicted[1] >= float(cut)
            ):
                _set(label, predicted, LabelState.auto_accepted, active.id, "auto_accept", now, events)
                values[category.key] = predicted[0]
                auto.append(category.id)
                continue
            if label is not None and label.state == LabelState.auto_accepted.value and predicted is not None:
                _set(label, predicted, LabelState.predicted, active.id, "reroute", now, events)
            human.append(category.id)
            confidence.append(predicted[1] if predicted is not None else 0.0)
        queued += _queue(session, project, subject_id, AssignmentKind.review, human, confidence, current)
        if (
            auto
            and audited(project.id, subject_id, settings.audit_share)
            and not any(a.kind == AssignmentKind.audit.value for a in current)
        ):
            queued += _queue(session, project, subject_id, AssignmentKind.audit, auto, [], current)
    if events:
        session.execute(insert(LabelEvent), events)
    return queued


def _set(
    label: Label,
    predicted: tuple[Any, float],
    state: LabelState,
    model_version_id: int,
    reason: str,
    now: Any,
    events: list[dict[str, Any]],
) -> None:
    value, confidence = predicted
    if label.state == state.value and label.value == value and label.model_version_id == model_version_id:
        return
    events.append(
        {
            "label_id": label.id,
            "subject_id": label.subject_id,
            "category_id": label.category_id,
            "actor_model_version_id": model_version_id,
            "from_value": label.value,
            "to_value": value,
            "from_state": label.state,
            "to_state": state.value,
            "reason": reason,
            "created_at": now,
        }
    )
    label.value, label.state, label.confidence = value, state.value, confidence
    label.model_version_id, label.version, label.updated_at = model_version_id, label.version + 1, now


def _queue(
    session: Session,
    project: Project,
    subject_id: int,
    kind: AssignmentKind,
    category_ids: list[int],
    confidence: list[float],
    current: list[Assignment],
) -> int:
    """Queue `kind` work on these categories, unless the same is queued already; a queued
    assignment of that kind asking something else is cancelled (nobody holds it)."""
    same_kind = [a for a in current if a.kind == kind.value and a.status == AssignmentStatus.queued.value]
    wanted = sorted(category_ids)
    if any(sorted(int(c) for c in a.category_ids) == wanted for a in same_kind):
        return 0
    for assignment in same_kind:
        if assignment.assignee_id is None:
            assignment.status = AssignmentStatus.cancelled.value
    if not wanted:
        return 0
    mean = sum(confidence) / len(confidence) if confidence else 0.0
    session.add(
        Assignment(
            project_id=project.id,
            subject_id=subject_id,
            kind=kind.value,
            queue_rank=RANK[kind],
            category_ids=wanted,
            status=AssignmentStatus.queued.value,
            priority=round(1.0 - mean, 6),
        )
    )
    return 1


def _route_eval(
    session: Session,
    project: Project,
    subject_id: int,
    categories: Sequence[views.CategoryView],
    subject_labels: Mapping[int, Label],
    current: list[Assignment],
) -> int:
    """An evaluation subject is labeled in full by people (its second pass and adjudication are
    queued by `second_opinions` as passes are submitted); nothing else is queued for it."""
    for assignment in current:
        if (
            assignment.kind not in (AssignmentKind.eval.value, AssignmentKind.adjudicate.value)
            and assignment.status == AssignmentStatus.queued.value
        ):
            assignment.status = AssignmentStatus.cancelled.value
    if any(a.kind == AssignmentKind.eval.value for a in current):
        return 0
    undecided = [
        c.id for c in categories if c.id not in subject_labels or subject_labels[c.id].state not in DECIDED
    ]
    if not undecided:
        return 0
    session.add(
        Assignment(
            project_id=project.id,
            subject_id=subject_id,
            kind=AssignmentKind.eval.value,
            queue_rank=RANK[AssignmentKind.eval],
            category_ids=sorted(undecided),
            status=AssignmentStatus.queued.value,
            priority=1.0,
        )
    )
    return 1
