from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from server.captions import service
from server.captions.schemas import CaptionOut, CaptionPreviewIn
from server.core.http import DbSession
from server.projects.deps import ProjectMember

router = APIRouter(tags=["captions"])

# Subject ids are BIGINT: a larger number is no id (422), never a database error.
SubjectId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/projects/{project_id}/subjects/{subject_id}/caption", response_model=CaptionOut)
def subject_caption(
    subject_id: SubjectId,
    session: DbSession,
    access: ProjectMember,
    states: Annotated[
        str, Query(max_length=100, description="comma-separated: verified, auto_accepted")
    ] = "verified",
) -> CaptionOut:
    """The subject's caption from its labels in `states`, trimmed to CLIP's 77 tokens."""
    return service.subject_caption(session, access.project, subject_id, service.parse_states(states))


@router.post("/projects/{project_id}/subjects/{subject_id}/caption/preview", response_model=CaptionOut)
def preview_caption(
    subject_id: SubjectId, body: CaptionPreviewIn, session: DbSession, access: ProjectMember
) -> CaptionOut:
    """The caption that draft answers would give (the review screen's live preview); stores nothing."""
    return service.preview_caption(session, access.project, subject_id, body.values)
