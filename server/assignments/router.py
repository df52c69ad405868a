from __future__ import annotations

from fastapi import APIRouter, Response, status

from server.assignments import service
from server.assignments.schemas import (
    AnnotatorScore,
    AssignmentOut,
    GoldIn,
    HeartbeatOut,
    QueueStats,
    SkipIn,
    SubmitIn,
    SubmitOut,
)
from server.auth.deps import CurrentUser
from server.core.http import DbSession
from server.projects.deps import ProjectMember, ProjectReviewer

router = APIRouter(tags=["assignments"])


@router.post(
    "/projects/{project_id}/assignments/next",
    response_model=AssignmentOut,
    responses={204: {"description": "nothing is queued for you"}},
)
def next_assignment(session: DbSession, grant: ProjectMember) -> AssignmentOut | Response:
    """Lease the next assignment (atomically: two people never get the same one)."""
    assignment = service.next_for(session, grant)
    if assignment is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return assignment


@router.get("/projects/{project_id}/assignments/mine", response_model=list[AssignmentOut])
def my_assignments(session: DbSession, grant: ProjectMember) -> list[AssignmentOut]:
    """The assignments leased to you now (to resume after a reload)."""
    return service.mine(session, grant)


@router.get("/projects/{project_id}/assignments/stats", response_model=QueueStats)
def queue_stats(session: DbSession, grant: ProjectMember) -> QueueStats:
    return service.stats(session, grant)


@router.get("/assignments/{assignment_id}", response_model=AssignmentOut)
def get_assignment(assignment_id: int, session: DbSession, user: CurrentUser) -> AssignmentOut:
    from server.assignments import views

    assignment, grant = service.assignment_for(session, user, assignment_id, viewing=True)
    return views.render(session, grant.project, assignment)


@router.post("/assignments/{assignment_id}/heartbeat", response_model=HeartbeatOut)
def heartbeat(assignment_id: int, session: DbSession, user: CurrentUser) -> HeartbeatOut:
    assignment, grant = service.assignment_for(session, user, assignment_id)
    return HeartbeatOut(lease_expires_at=service.heartbeat(session, assignment, user, grant.project))


@router.post("/assignments/{assignment_id}/release", status_code=status.HTTP_204_NO_CONTENT)
def release(assignment_id: int, session: DbSession, user: CurrentUser) -> None:
    assignment, _ = service.assignment_for(session, user, assignment_id)
    service.release(assignment, user)


@router.post("/assignments/{assignment_id}/skip", status_code=status.HTTP_204_NO_CONTENT)
def skip(assignment_id: int, body: SkipIn, session: DbSession, user: CurrentUser) -> None:
    assignment, _ = service.assignment_for(session, user, assignment_id)
    service.skip(session, assignment, user, body.reason)


@router.post("/assignments/{assignment_id}/submit", response_model=SubmitOut)
def submit(assignment_id: int, body: SubmitIn, session: DbSession, user: CurrentUser) -> SubmitOut:
    """Apply the answers once per client id; a stale label version is refused with 409."""
    assignment, grant = service.assignment_for(session, user, assignment_id)
    return service.submit(session, assignment, user, grant.project, body)


@router.post("/assignments/{assignment_id}/undo", response_model=AssignmentOut)
def undo(assignment_id: int, session: DbSession, user: CurrentUser) -> AssignmentOut:
    assignment, grant = service.assignment_for(session, user, assignment_id)
    return service.undo(session, assignment, user, grant.project)


@router.post("/projects/{project_id}/gold", status_code=status.HTTP_201_CREATED)
def mark_gold(body: GoldIn, session: DbSession, grant: ProjectReviewer) -> dict[str, int]:
    """Make a subject's verified labels known answers, served unmarked to annotators."""
    return {"labels": service.mark_gold(session, grant, body.subject_id)}


@router.get("/projects/{project_id}/annotators", response_model=list[AnnotatorScore])
def annotators(session: DbSession, grant: ProjectReviewer) -> list[AnnotatorScore]:
    """Each annotator's accuracy against gold, per category."""
    return service.annotator_scores(session, grant.project.id)
