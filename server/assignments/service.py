"""The review queue: people never wait, never lose work, never do a field twice.

Leases are atomic claims; a submit carries the client's id (a retry is answered, not re-applied)
and the label versions it saw (a stale write is refused with the current values); labels and
their events are written in the submit's one transaction.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from server.assignments import repository, routing, second_opinions, views
from server.assignments.errors import LeaseLost, StaleLabels, UndoWindowClosed
from server.assignments.schemas import (
    AnnotatorScore,
    AssignmentOut,
    QueueStats,
    SubmitIn,
    SubmitOut,
)
from server.assignments.schemas import (
    LabelState as LabelStateOut,
)
from server.core.errors import BadRequest, NotFound, ValidationFailed
from server.core.time import utcnow
from server.core.upsert import insert_ignore_returning
from server.orm import (
    Assignment,
    GoldAnswer,
    Label,
    LabelEvent,
    Project,
    Subject,
    Submission,
    User,
)
from server.orm.enums import AssignmentKind, AssignmentStatus, LabelState, Role
from server.projects.policy import ProjectAccess, grant_for
from server.projects.schemas import ProjectSettings, ReviewSettings
from server.webhooks import service as webhooks

RANK = routing.RANK
# Annotators see eval, gold and review; reviewers also adjudicate and audit.
MIN_RANK = {Role.annotator: RANK[AssignmentKind.review]}
# How many leases one person may hold: the current item plus what the UI prefetches.
MAX_LIVE_LEASES = 3


def review_settings(project: Project) -> ReviewSettings:
    return ProjectSettings.model_validate(project.settings).review


# -- creating work ---------------------------------------------------------------------------


def route_cold_start(session: Session, project: Project, subject_ids: Sequence[int]) -> int:
    """Route freshly pre-labelled subjects (the pre-label pipeline's call): per field, to people
    or auto-accepted, by the active labeler's trust (server.assignments.routing). Until the
    flywheel trusts a labeler this is the cold start: every category goes to people."""
    return routing.route(session, project, subject_ids)


# -- leasing ---------------------------------------------------------------------------------


def next_for(session: Session, grant: ProjectAccess) -> AssignmentOut | None:
    """Lease the next assignment: one claim statement on the hot path (the cap on live leases
    is inside it); a person at the cap gets their oldest live lease back."""
    project, user = grant.project, grant.user
    settings = review_settings(project)
    now = utcnow()
    _release_expired(session, project, now)
    until = now + timedelta(seconds=settings.lease_seconds)
    min_rank = MIN_RANK.get(grant.role, 0)
    assignment = None
    gold_turn = settings.gold_share > 0 and random.random() < settings.gold_share
    if gold_turn and len(repository.live_leases(session, project.id, user.id, now)) < MAX_LIVE_LEASES:
        assignment = _claim_gold(session, project, user, now, until)
    if assignment is None:
        assignment = repository.claim(session, project.id, user.id, min_rank, now, until, MAX_LIVE_LEASES)
    if assignment is None:
        # An empty queue, or the cap: the rare path reads the live leases to tell them apart.
        live = repository.live_leases(session, project.id, user.id, now)
        if len(live) < MAX_LIVE_LEASES:
            return None
        assignment = live[0]
    return views.render(session, project, assignment)


# How often, at most, one API process sends a project's expired leases back to the queue from
# `next` (an UPDATE per request would cost every request a round trip): an expired lease waits
# at most this long to be served again. The reconciler does the same on its own schedule.
RELEASE_EVERY_SECONDS = 1.0
_released_at: dict[tuple[int, object], float] = {}


def _release_expired(session: Session, project: Project, now: Any) -> None:
    # Keyed by the project's creation time too: two databases' project 1 are not the same.
    key = (project.id, project.created_at)
    clock = time.monotonic()
    if clock - _released_at.get(key, -math.inf) < RELEASE_EVERY_SECONDS:
        return
    _released_at[key] = clock
    repository.release_expired(session, now, project.id)


def warm_up(session: Session, projects: Sequence[Project]) -> None:
    """Run the queue's reads once with ids that match nothing, and read these projects'
    taxonomies into the process's cache: the first `next` of a fresh worker process would
    otherwise compile them while its annotators wait (about 200 ms)."""
    now = utcnow()
    repository.claim(session, 0, 0, 0, now, now, MAX_LIVE_LEASES)
    repository.live_leases(session, 0, 0, now)
    repository.assignment_with_project(session, 0, 0)
    repository.assignment_with_project(session, 0, 0, lock=True)
    repository.label_versions(session, 0, [0])
    views.warm_up(session, projects)


def mine(session: Session, grant: ProjectAccess) -> list[AssignmentOut]:
    leases = repository.live_leases(session, grant.project.id, grant.user.id, utcnow())
    return [views.render(session, grant.project, a) for a in leases]


def assignment_for(
    session: Session, user: User, assignment_id: int, *, viewing: bool = False
) -> tuple[Assignment, ProjectAccess]:
    """The assignment, for a member of its project (others get 404). Actions on it then check
    the lease (409 lease_lost); viewing someone else's work needs the reviewer role."""
    found = repository.assignment_with_project(session, assignment_id, user.id, lock=not viewing)
    if found is None:
        raise NotFound("no such assignment")
    assignment, project, member_role = found
    grant = grant_for(user, project, member_role, Role.annotator)
    mine = user.id in (assignment.lease_holder_id, assignment.submitted_by_id, assignment.assignee_id)
    if viewing and not mine and grant.role.rank < Role.reviewer.rank:
        raise NotFound("no such assignment")
    return assignment, grant


def _held(assignment: Assignment, user: User) -> None:
    if assignment.status != AssignmentStatus.leased.value or assignment.lease_holder_id != user.id:
        raise LeaseLost()


def heartbeat(session: Session, assignment: Assignment, user: User, project: Project) -> Any:
    _held(assignment, user)
    assignment.lease_expires_at = utcnow() + timedelta(seconds=review_settings(project).lease_seconds)
    return assignment.lease_expires_at


def release(assignment: Assignment, user: User) -> None:
    _held(assignment, user)
    assignment.status = AssignmentStatus.queued.value
    assignment.lease_holder_id = assignment.leased_at = assignment.lease_expires_at = None


def skip(session: Session, assignment: Assignment, user: User, reason: str) -> None:
    """The item goes back to the queue for someone else, behind the rest."""
    _held(assignment, user)
    assignment.status = AssignmentStatus.skipped.value
    assignment.skip_reason = reason
    assignment.submitted_by_id = user.id
    assignment.submitted_at = utcnow()
    if assignment.assignee_id is None:
        session.add(
            Assignment(
                project_id=assignment.project_id,
                subject_id=assignment.subject_id,
                kind=assignment.kind,
                queue_rank=assignment.queue_rank,
                category_ids=list(assignment.category_ids),
                status=AssignmentStatus.queued.value,
                priority=assignment.priority - 1.0,
            )
        )


# -- submitting ------------------------------------------------------------------------------


def _check_value(category: views.CategoryView, value: Any) -> None:
    allowed = {v.key for v in category.values}
    if category.kind == "single":
        ok = isinstance(value, str) and value in allowed
    elif category.kind == "multi":
        ok = isinstance(value, list) and all(isinstance(v, str) and v in allowed for v in value)
    elif category.kind == "boolean":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str) and len(value) <= 2000
    if not ok and value is not None:
        raise ValidationFailed(
            "an answer is not one of its category's values",
            [
                {
                    "path": f"answers.{category.key}",
                    "message": f"{value!r} is not a valid {category.kind} value",
                }
            ],
        )


def submit(
    session: Session, assignment: Assignment, user: User, project: Project, body: SubmitIn
) -> SubmitOut:
    # A retry of an applied submit is answered from its stored response. The lookup is made only
    # where a retry can land (the lease is gone, the labels moved on, or the client id is taken):
    # a first submit does not pay for it.
    now = utcnow()
    if assignment.lease_holder_id != user.id or assignment.status != AssignmentStatus.leased.value:
        if (answered := _answered(session, assignment, user, body.client_id)) is not None:
            return answered
        raise LeaseLost()
    routed = set(int(c) for c in assignment.category_ids)
    answers = {a.category_id: a for a in body.answers}
    if set(answers) - routed:
        raise BadRequest("answers for categories this assignment does not ask", code="not_routed")
    categories = {
        c.id: c
        for c in views.categories(session, project.taxonomy_version_id or 0, project)
        if c.id in answers
    }
    for category_id, answer in answers.items():
        _check_value(categories[category_id], answer.value)
    labels = repository.label_versions(session, assignment.subject_id, list(answers))
    gold = assignment.kind == AssignmentKind.gold.value
    # A gold answer changes no label, so there is nothing it could overwrite.
    stale = (
        []
        if gold
        else [
            {"category_id": cid, "value": label.value, "version": label.version, "state": label.state}
            for cid, label in labels.items()
            if answers[cid].label_version != label.version
        ]
    )
    stale += [
        {"category_id": cid, "value": None, "version": 0, "state": None}
        for cid, answer in answers.items()
        if not gold and cid not in labels and answer.label_version not in (None, 0)
    ]
    if stale:
        if (answered := _answered(session, assignment, user, body.client_id)) is not None:
            return answered
        raise StaleLabels(stale)
    # What this submit will write, decided before anything is written: the answer is stored with
    # the claim below, so a retry is answered from one row and nothing is read back.
    planned: list[tuple[int, Any, Any, Any, str | None, str]] = []
    changed = 0
    out: list[LabelStateOut] = []
    for category_id, answer in answers.items():
        label = labels.get(category_id)
        if gold:
            continue
        from_value, from_state = (label.value, label.state) if label is not None else (None, None)
        # An adjudicated gold answer stays gold; everything else a person decides is verified.
        to_state = (
            LabelState.gold.value
            if from_state == LabelState.gold.value and assignment.kind == AssignmentKind.adjudicate.value
            else LabelState.verified.value
        )
        if from_value != answer.value:
            changed += 1
        planned.append((category_id, answer.value, label, from_value, from_state, to_state))
        version = label.version + 1 if label is not None else 1
        out.append(
            LabelStateOut(category_id=category_id, value=answer.value, version=version, state=to_state)
        )
    undo_until = now + timedelta(seconds=review_settings(project).undo_seconds)
    response = SubmitOut(
        assignment_id=assignment.id,
        status=AssignmentStatus.submitted.value,
        changed_fields=changed,
        labels=out,
        undo_until=undo_until if not gold else None,
    )
    # Claim the client id first: a concurrent retry of the same submit waits here, then reads.
    claimed = insert_ignore_returning(
        session,
        Submission.__table__,  # type: ignore[arg-type]
        {
            "assignment_id": assignment.id,
            "user_id": user.id,
            "client_id": body.client_id,
            "response": response.model_dump(mode="json"),
            "created_at": now,
        },
        ["user_id", "client_id"],
    )
    if claimed is None:
        # A concurrent retry of this submit got there first (we waited on its row), or the
        # client id answered another assignment.
        answered = _answered(session, assignment, user, body.client_id)
        assert answered is not None
        return answered

    if gold:
        for category_id, answer in answers.items():
            _score_gold(session, assignment, user, category_id, answer.value, labels.get(category_id))
    # Written as two statements (Core, no unit-of-work bookkeeping): one executemany UPDATE of
    # the labels, guarded by the version each was read at, and one multi-row INSERT of events.
    label_updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for category_id, value, label, from_value, from_state, to_state in planned:
        if label is None:
            created = Label(
                subject_id=assignment.subject_id,
                category_id=category_id,
                taxonomy_version_id=project.taxonomy_version_id,
                value=value,
                state=to_state,
                version=1,
                decided_by_id=user.id,
                updated_at=now,
            )
            session.add(created)
            session.flush()
            label_id = created.id
        else:
            label_id = label.id
            label_updates.append(
                {
                    "b_id": label.id,
                    "b_version": label.version,
                    "value": value,
                    "state": to_state,
                    "decided_by_id": user.id,
                    "version": label.version + 1,
                    "updated_at": now,
                }
            )
        events.append(
            {
                "label_id": label_id,
                "subject_id": assignment.subject_id,
                "category_id": category_id,
                "actor_user_id": user.id,
                "actor_model_version_id": None,
                "assignment_id": assignment.id,
                "from_value": from_value,
                "to_value": value,
                "from_state": from_state,
                "to_state": to_state,
                "reason": assignment.kind,
                "created_at": now,
            }
        )
    if label_updates:
        written = session.connection().execute(_UPDATE_LABEL, label_updates).rowcount
        if session.get_bind().dialect.supports_sane_multi_rowcount and written != len(label_updates):
            # Someone wrote one of these labels after we read it: refuse, as the check above (the
            # whole unit of work, the claimed client id included, is rolled back).
            current = repository.label_versions(session, assignment.subject_id, list(answers))
            raise StaleLabels(
                [
                    {"category_id": cid, "value": lb.value, "version": lb.version, "state": lb.state}
                    for cid, lb in current.items()
                    if answers[cid].label_version != lb.version
                ]
            )
    if events:
        session.connection().execute(insert(LabelEvent.__table__), events)  # type: ignore[arg-type]
    if gold:
        _adjudicate_disagreements(session, assignment)
    assignment.status = AssignmentStatus.submitted.value
    assignment.submitted_at, assignment.submitted_by_id = now, user.id
    assignment.lead_time_ms, assignment.changed_fields = body.lead_time_ms, changed
    second_opinions.after_submit(session, assignment, project, [(p[0], p[3], p[4], p[1]) for p in planned])
    webhooks.emit(
        session,
        project.id,
        "assignment.submitted",
        {
            "assignment_id": assignment.id,
            "kind": assignment.kind,
            "subject_id": assignment.subject_id,
            "user_id": user.id,
            "fields": len(answers),
            "changed_fields": changed,
            "lead_time_ms": body.lead_time_ms,
        },
    )
    return response


def _answered(session: Session, assignment: Assignment, user: User, client_id: str) -> SubmitOut | None:
    """The stored response when this client id was applied before (a retry), else None."""
    previous = session.scalar(
        select(Submission).where(Submission.user_id == user.id, Submission.client_id == client_id)
    )
    if previous is None:
        return None
    if previous.assignment_id != assignment.id:
        raise BadRequest("this client id was used for another assignment", code="client_id_reused")
    return SubmitOut.model_validate(previous.response)


_labels = cast(Table, Label.__table__)
_UPDATE_LABEL = update(_labels).where(
    _labels.c.id == bindparam("b_id"), _labels.c.version == bindparam("b_version")
)


def undo(session: Session, assignment: Assignment, user: User, project: Project) -> AssignmentOut:
    """Put back what the last submit changed, while its window is open and nobody changed the
    labels since; the assignment is leased to the same person again."""
    now = utcnow()
    settings = review_settings(project)
    if (
        assignment.status != AssignmentStatus.submitted.value
        or assignment.submitted_by_id != user.id
        or assignment.submitted_at is None
        or assignment.submitted_at + timedelta(seconds=settings.undo_seconds) < now
        or assignment.kind == AssignmentKind.gold.value
    ):
        raise UndoWindowClosed()
    events = list(
        session.scalars(
            select(LabelEvent).where(
                LabelEvent.assignment_id == assignment.id, LabelEvent.reason == assignment.kind
            )
        )
    )
    labels = repository.labels_of(session, assignment.subject_id, [e.category_id for e in events])
    for event in events:
        label = labels[event.category_id]
        if label.decided_by_id != user.id or label.updated_at != event.created_at:
            raise UndoWindowClosed()
    for event in events:
        label = labels[event.category_id]
        session.add(
            LabelEvent(
                label_id=label.id,
                subject_id=label.subject_id,
                category_id=label.category_id,
                actor_user_id=user.id,
                assignment_id=assignment.id,
                from_value=label.value,
                to_value=event.from_value,
                from_state=label.state,
                to_state=event.from_state or LabelState.predicted.value,
                reason="undo",
                created_at=now,
            )
        )
        label.value, label.state = event.from_value, event.from_state or LabelState.predicted.value
        label.version += 1
        label.updated_at = now
    for submission in session.scalars(select(Submission).where(Submission.assignment_id == assignment.id)):
        submission.undone_at = submission.undone_at or now
    assignment.status = AssignmentStatus.leased.value
    assignment.lease_holder_id, assignment.leased_at = user.id, now
    assignment.lease_expires_at = now + timedelta(seconds=settings.lease_seconds)
    assignment.submitted_at = assignment.submitted_by_id = None
    session.flush()
    return views.render(session, project, assignment)


# -- gold ------------------------------------------------------------------------------------


def mark_gold(session: Session, grant: ProjectAccess, subject_id: int) -> int:
    """A reviewer confirms a subject's verified labels as known answers."""
    subject = session.get(Subject, subject_id)
    if subject is None or subject.project_id != grant.project.id:
        raise NotFound("no such subject")
    now = utcnow()
    count = 0
    for label in session.scalars(select(Label).where(Label.subject_id == subject_id)):
        if label.state not in (LabelState.verified.value, LabelState.gold.value):
            continue
        if label.state == LabelState.verified.value:
            session.add(
                LabelEvent(
                    label_id=label.id,
                    subject_id=subject_id,
                    category_id=label.category_id,
                    actor_user_id=grant.user.id,
                    from_value=label.value,
                    to_value=label.value,
                    from_state=label.state,
                    to_state=LabelState.gold.value,
                    reason="mark_gold",
                    created_at=now,
                )
            )
            label.state, label.version, label.updated_at = LabelState.gold.value, label.version + 1, now
        count += 1
    if count == 0:
        raise BadRequest("the subject has no verified labels to make gold", code="nothing_verified")
    return count


def _claim_gold(session: Session, project: Project, user: User, now: Any, until: Any) -> Assignment | None:
    """A gold subject this person has not answered, as an unmarked assignment of their own."""
    subject_id = views.unseen_gold_subject(session, project.id, user.id)
    if subject_id is None:
        return None
    category_ids = views.gold_category_ids(session, subject_id)
    assignment = Assignment(
        project_id=project.id,
        subject_id=subject_id,
        kind=AssignmentKind.gold.value,
        queue_rank=RANK[AssignmentKind.gold],
        category_ids=category_ids,
        status=AssignmentStatus.leased.value,
        assignee_id=user.id,
        lease_holder_id=user.id,
        leased_at=now,
        lease_expires_at=until,
    )
    session.add(assignment)
    session.flush()
    return assignment


def _score_gold(
    session: Session, assignment: Assignment, user: User, category_id: int, value: Any, label: Any
) -> None:
    """`label`: the gold label's row (repository.label_versions), None when there is none."""
    gold_value = label.value if label is not None else None
    session.add(
        GoldAnswer(
            project_id=assignment.project_id,
            assignment_id=assignment.id,
            user_id=user.id,
            subject_id=assignment.subject_id,
            category_id=category_id,
            value=value,
            gold_value=gold_value,
            correct=_same(value, gold_value),
        )
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    return bool(a == b)


def _adjudicate_disagreements(session: Session, assignment: Assignment) -> None:
    """A person who disagrees with a gold answer may be right: a reviewer decides."""
    session.flush()
    wrong = list(
        session.scalars(
            select(GoldAnswer.category_id).where(
                GoldAnswer.assignment_id == assignment.id, GoldAnswer.correct.is_(False)
            )
        )
    )
    if wrong:
        session.add(
            Assignment(
                project_id=assignment.project_id,
                subject_id=assignment.subject_id,
                kind=AssignmentKind.adjudicate.value,
                queue_rank=RANK[AssignmentKind.adjudicate],
                category_ids=sorted(int(c) for c in wrong),
                status=AssignmentStatus.queued.value,
                priority=1.0,
            )
        )


# -- reporting -------------------------------------------------------------------------------


def stats(session: Session, grant: ProjectAccess) -> QueueStats:
    by_kind: dict[str, dict[str, int]] = {}
    totals = {"queued": 0, "leased": 0, "submitted": 0}
    for kind, status, n in repository.counts(session, grant.project.id):
        by_kind.setdefault(kind, {})[status] = n
        if status in totals:
            totals[status] += n
    return QueueStats(
        **totals,
        by_kind=by_kind,
        mine_submitted=repository.submitted_by(session, grant.project.id, grant.user.id),
    )


def annotator_scores(session: Session, project_id: int) -> list[AnnotatorScore]:
    return views.annotator_scores(session, project_id)
