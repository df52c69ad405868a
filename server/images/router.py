from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from server.auth.deps import CurrentUser
from server.core import runtime
from server.core.errors import NotFound
from server.core.http import DbSession
from server.images import repository, service
from server.images.schemas import ImageOut, StageCounts
from server.projects.deps import ProjectMember

router = APIRouter(tags=["images"])

# Ids are 64-bit rows: a larger filter value is refused here, not overflowed in the driver.
MAX_ROW_ID = 2**63 - 1
Stage = Literal["pooled", "filtered", "ready", "embedded", "prelabeled"]


@router.get("/projects/{project_id}/images", response_model=list[ImageOut])
def list_images(
    session: DbSession,
    access: ProjectMember,
    stage: Stage | None = None,
    source_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ImageOut]:
    rows = repository.list_images(
        session, access.project.id, stage=stage, source_id=source_id, after_id=after_id, limit=limit
    )
    return [ImageOut.model_validate(i) for i in rows]


@router.get("/projects/{project_id}/images/stats", response_model=StageCounts)
def image_stats(session: DbSession, access: ProjectMember) -> StageCounts:
    stages = repository.stage_counts(session, access.project.id)
    return StageCounts(
        stages=stages,
        filtered_by_reason=repository.filter_reason_counts(session, access.project.id),
        total=sum(stages.values()),
    )


@router.get("/images/{image_id}", response_model=ImageOut)
def get_image(image_id: int, session: DbSession, user: CurrentUser) -> ImageOut:
    return ImageOut.model_validate(service.image_for(session, user, image_id))


def _blob(key: str | None, media_type: str) -> Response:
    if key is None:
        raise NotFound("not available")
    try:
        data = runtime.storage().get(key)
    except FileNotFoundError:
        raise NotFound("the stored file is missing") from None
    # The type is the decoded content's, never the upload's name; nosniff is set globally.
    return Response(
        data,
        media_type=media_type,
        headers={"Cache-Control": "private, max-age=86400, immutable", "Content-Disposition": "inline"},
    )


@router.get("/images/{image_id}/file", response_class=Response)
def image_file(image_id: int, session: DbSession, user: CurrentUser) -> Response:
    image = service.image_for(session, user, image_id)
    return _blob(image.storage_key, image.mime)


@router.get("/images/{image_id}/thumbnail", response_class=Response)
def image_thumbnail(image_id: int, session: DbSession, user: CurrentUser) -> Response:
    image = service.image_for(session, user, image_id)
    return _blob(image.thumbnail_key, "image/webp")


@router.get("/subjects/{subject_id}/mask", response_class=Response)
def subject_mask(subject_id: int, session: DbSession, user: CurrentUser) -> Response:
    """The subject's human-parsing mask: a PNG of ATR label ids 0-17."""
    subject = service.subject_for(session, user, subject_id)
    return _blob(subject.parsing_mask_key, "image/png")
