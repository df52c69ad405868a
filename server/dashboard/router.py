"""The dashboard's own figures; the pages also call the pipeline, flywheel, exports, ... routes."""

from __future__ import annotations

from fastapi import APIRouter, Query

from server.core.http import DbSession
from server.dashboard import service
from server.dashboard.schemas import AnnotatorRow, FunnelOut, WorkOut
from server.projects.deps import ProjectMember, ProjectReviewer

router = APIRouter(tags=["dashboard"])


@router.get("/projects/{project_id}/dashboard/funnel", response_model=FunnelOut)
def funnel(session: DbSession, grant: ProjectMember) -> FunnelOut:
    """Counts and rates per stage, for the project and for each source."""
    return service.funnel(session, grant.project)


@router.get("/projects/{project_id}/dashboard/work", response_model=WorkOut)
def work(
    session: DbSession,
    grant: ProjectMember,
    hours: int = Query(default=48, ge=1, le=service.MAX_HOURS),
) -> WorkOut:
    """Queue depth per assignment kind over the last `hours` hours, and submits per hour."""
    return service.work(session, grant.project, hours)


@router.get("/projects/{project_id}/dashboard/annotators", response_model=list[AnnotatorRow])
def annotators(session: DbSession, grant: ProjectReviewer) -> list[AnnotatorRow]:
    """One row per member: items per hour, median lead time, gold accuracy, audits, adjudications."""
    return service.annotators(session, grant.project)
