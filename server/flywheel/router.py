"""The flywheel's API: the evaluation set, rounds (start, list, detail, rollback), the figures."""

from __future__ import annotations

from fastapi import APIRouter, status

from server.core.http import DbSession
from server.flywheel import service
from server.flywheel.schemas import (
    EvalSetIn,
    EvalSetOut,
    FlywheelOut,
    PromoteIn,
    RollbackIn,
    RoundIn,
    RoundOut,
)
from server.projects.deps import ProjectLead, ProjectMember

router = APIRouter(tags=["flywheel"])


@router.get("/projects/{project_id}/eval-set", response_model=EvalSetOut)
def get_eval_set(session: DbSession, grant: ProjectMember) -> EvalSetOut:
    return service.eval_set(session, grant.project)


@router.post("/projects/{project_id}/eval-set", response_model=EvalSetOut)
def grow_eval_set(body: EvalSetIn, session: DbSession, grant: ProjectLead) -> EvalSetOut:
    """Reserve a stratified sample of subjects up to `size`; each is queued as an `eval` assignment."""
    return service.grow_eval_set(session, grant.project, body.size)


@router.get("/projects/{project_id}/flywheel", response_model=FlywheelOut)
def flywheel(session: DbSession, grant: ProjectMember) -> FlywheelOut:
    """The active labeler per category (accuracy, bound, cut, trust), human share, audit interval."""
    return service.overview(session, grant.project)


@router.get("/projects/{project_id}/rounds", response_model=list[RoundOut])
def list_rounds(session: DbSession, grant: ProjectMember) -> list[RoundOut]:
    from server.flywheel import repository

    return [
        service.round_out(session, grant.project, r) for r in repository.rounds(session, grant.project.id)
    ]


@router.post("/projects/{project_id}/rounds", response_model=RoundOut, status_code=status.HTTP_202_ACCEPTED)
def start_round(session: DbSession, grant: ProjectLead, body: RoundIn | None = None) -> RoundOut:
    """Queue a round: train a candidate on verified labels, evaluate, promote or reject."""
    round_ = service.start_round(session, grant.project, (body or RoundIn()).trigger)
    return service.round_out(session, grant.project, round_)


@router.get("/projects/{project_id}/rounds/{round_id}", response_model=RoundOut)
def get_round(round_id: int, session: DbSession, grant: ProjectMember) -> RoundOut:
    return service.round_out(session, grant.project, service.round_of(session, grant.project, round_id))


@router.post("/projects/{project_id}/rollback", response_model=FlywheelOut)
def rollback(body: RollbackIn, session: DbSession, grant: ProjectLead) -> FlywheelOut:
    """Make an earlier model version active again; undecided subjects are re-labelled and re-routed."""
    service.rollback(session, grant.project, body.model_version_id)
    return service.overview(session, grant.project)


@router.post("/projects/{project_id}/promote", response_model=FlywheelOut)
def promote(body: PromoteIn, session: DbSession, grant: ProjectLead) -> FlywheelOut:
    """Promote a candidate its round rejected (a lead overriding the gate, with a reason kept on the
    version); undecided subjects are re-labelled and re-routed as after any promotion."""
    service.promote_rejected(session, grant.project, body.model_version_id, grant.user.id, body.reason)
    return service.overview(session, grant.project)
