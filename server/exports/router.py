from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from server.core.config import get_settings
from server.core.http import DbSession
from server.exports import service
from server.exports.schemas import ExportCreate, ExportDetail, ExportOut
from server.orm.exports import Export
from server.projects.deps import ProjectLead, ProjectMember

router = APIRouter(tags=["exports"])


def _detail(session: DbSession, export: Export) -> ExportDetail:
    snapshot = service.snapshot_of(session, export)
    return ExportDetail.model_validate(
        {
            **ExportOut.model_validate(export).model_dump(),
            "filters": snapshot.filters,
            "label_event_high_water": snapshot.label_event_high_water,
            "include_sensitive": snapshot.include_sensitive,
            "manifest": export.manifest,
            "note": service.empty_note(export, snapshot),
        }
    )


@router.post("/projects/{project_id}/exports", response_model=ExportDetail, status_code=202)
def create_export(body: ExportCreate, session: DbSession, access: ProjectLead) -> ExportDetail:
    export = service.start_export(
        session,
        access.project,
        fmt=body.format,
        destination=body.destination,
        default_root=get_settings().data_dir / "exports",
        filters=body.filters,
        options=body.options,
        user_id=access.user.id,
    )
    return _detail(session, export)


@router.post("/projects/{project_id}/exports/documents/refresh", status_code=202)
def refresh_documents(
    session: DbSession,
    access: ProjectLead,
    full: Annotated[
        bool,
        Query(
            description="look at every subject, not only those with label events or predictions "
            "since the last complete refresh: finds documents lost some other way (slower)"
        ),
    ] = False,
) -> dict[str, bool]:
    """Queue the encoding of the documents that label changes made stale (the beat also does it
    every five minutes), so that the next export reads them instead of encoding them."""
    service.queue_refresh(session, access.project.id, full=full)
    return {"queued": True, "full": full}


@router.get("/projects/{project_id}/exports", response_model=list[ExportOut])
def list_exports(session: DbSession, access: ProjectMember) -> list[ExportOut]:
    return [ExportOut.model_validate(e) for e in service.list_exports(session, access.project.id)]


@router.get("/projects/{project_id}/exports/{export_id}", response_model=ExportDetail)
def get_export(export_id: int, session: DbSession, access: ProjectMember) -> ExportDetail:
    return _detail(session, service.get(session, access.project.id, export_id))


@router.post("/projects/{project_id}/exports/{export_id}/cancel", response_model=ExportDetail)
def cancel_export(export_id: int, session: DbSession, access: ProjectLead) -> ExportDetail:
    export = service.cancel(service.get(session, access.project.id, export_id))
    return _detail(session, export)


@router.post("/projects/{project_id}/exports/{export_id}/resume", response_model=ExportDetail)
def resume_export(export_id: int, session: DbSession, access: ProjectLead) -> ExportDetail:
    export = service.resume(session, service.get(session, access.project.id, export_id))
    return _detail(session, export)


@router.get("/projects/{project_id}/exports/{export_id}/files/{name:path}")
def download(export_id: int, name: str, session: DbSession, access: ProjectMember) -> FileResponse:
    export = service.get(session, access.project.id, export_id)
    path = service.local_file(export, name)
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")
