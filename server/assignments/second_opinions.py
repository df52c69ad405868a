"""Second opinions: where one person's answer should not stand alone.

- The evaluation set (the paper's I_e) judges every labeler version and calibrates the cuts that
  auto-accept labels, so its answers must be better than any one person's: a subject's first
  `eval` pass queues a second one over the same categories, and where the two passes disagree an
  `adjudicate` assignment asks a reviewer for the value that stands
  (`flywheel.eval_passes`; 1 turns the second pass off).
- An audit answer that disagrees with the auto-accepted value is adjudicated as well
  (`flywheel.adjudicate_audits`): a reviewer's own slips would otherwise count as the labeler's
  errors and bias the audited accuracy low.
- An audit or adjudication that changes a value re-routes its subject: a changed parent may make
  a `when` child apply that nobody was asked (or no longer apply).

Called by `service.submit` once the submit's labels and events are written and the assignment is
marked submitted (a subject with a live lease is not re-routed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.assignments import routing
from server.assignments.routing import RANK
from server.assignments.views import DECIDED_BY_PEOPLE
from server.orm import Assignment, Project
from server.orm.enums import AssignmentKind, AssignmentStatus, LabelState
from server.projects.schemas import ProjectSettings

# (category id, value before the submit, state before the submit, the person's answer)
Answered = tuple[int, Any, str | None, Any]


def after_submit(
    session: Session, assignment: Assignment, project: Project, answered: Sequence[Answered]
) -> int:
    """Queue the second pass, adjudication or re-routing this submit calls for; returns how
    many assignments were queued."""
    settings = ProjectSettings.model_validate(project.settings).flywheel
    queued = 0
    if assignment.kind in (AssignmentKind.audit.value, AssignmentKind.adjudicate.value) and any(
        not _same(before, answer) for _, before, _, answer in answered
    ):
        queued += _adjudicate_audit(session, assignment, answered, settings.adjudicate_audits)
        session.flush()
        return queued + routing.route(session, project, [assignment.subject_id])
    if assignment.kind == AssignmentKind.eval.value and settings.eval_passes > 1:
        if _earlier_eval_passes(session, assignment) == 0:
            return _queue(session, assignment, AssignmentKind.eval, [int(c) for c in assignment.category_ids])
        disagreed = disagreements(answered, DECIDED_BY_PEOPLE)
        return _queue(session, assignment, AssignmentKind.adjudicate, disagreed)
    return queued


def _adjudicate_audit(
    session: Session, assignment: Assignment, answered: Sequence[Answered], on: bool
) -> int:
    if assignment.kind != AssignmentKind.audit.value or not on:
        return 0
    accepted = (LabelState.auto_accepted.value,)
    return _queue(session, assignment, AssignmentKind.adjudicate, disagreements(answered, accepted))


def disagreements(answered: Sequence[Answered], states: Sequence[str]) -> list[int]:
    """Categories whose answer differs from a value that was in one of `states` before it."""
    return sorted(
        category_id
        for category_id, before, state, answer in answered
        if state in states and not _same(before, answer)
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    return bool(a == b)


def _earlier_eval_passes(session: Session, assignment: Assignment) -> int:
    query = select(func.count()).where(
        Assignment.subject_id == assignment.subject_id,
        Assignment.kind == AssignmentKind.eval.value,
        Assignment.id != assignment.id,
        Assignment.status != AssignmentStatus.cancelled.value,
    )
    return int(session.scalar(query) or 0)


def _queue(session: Session, assignment: Assignment, kind: AssignmentKind, category_ids: list[int]) -> int:
    if not category_ids:
        return 0
    session.add(
        Assignment(
            project_id=assignment.project_id,
            subject_id=assignment.subject_id,
            kind=kind.value,
            queue_rank=RANK[kind],
            category_ids=sorted(category_ids),
            status=AssignmentStatus.queued.value,
            priority=1.0,
        )
    )
    return 1
