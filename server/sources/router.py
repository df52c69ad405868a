from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status

from server.core import runtime
from server.core.config import get_settings
from server.core.errors import BadRequest, PayloadTooLarge
from server.core.http import DbSession
from server.projects.deps import ProjectLead, ProjectMember
from server.sources import repository, service
from server.sources.schemas import (
    FolderSourceCreate,
    IngestRunOut,
    LinkedUrlListCreate,
    RejectionOut,
    S3SourceCreate,
    SourceOut,
    SourceWatch,
)

router = APIRouter(tags=["sources"])

MAX_FILES_PER_UPLOAD = 500
# Ids are 64-bit rows: a larger filter value is refused here, not overflowed in the driver.
MAX_ROW_ID = 2**63 - 1


@router.post("/projects/{project_id}/sources", response_model=SourceOut, status_code=status.HTTP_201_CREATED)
def create_source(body: FolderSourceCreate, session: DbSession, access: ProjectLead) -> SourceOut:
    source = service.create_folder_source(
        session,
        access.project,
        body.name,
        body.path,
        get_settings().source_roots,
        licence=body.licence,
        consent=body.consent,
        user_id=access.user.id,
        watch_every_seconds=body.watch_every_seconds,
    )
    return SourceOut.model_validate(source)


@router.post(
    "/projects/{project_id}/sources/s3", response_model=SourceOut, status_code=status.HTTP_201_CREATED
)
def create_s3_source(body: S3SourceCreate, session: DbSession, access: ProjectLead) -> SourceOut:
    """The images under an S3 prefix (jpg, png, webp), read with the deployment's credentials."""
    source = service.create_s3_source(
        session,
        access.project,
        body.name,
        body.url,
        get_settings().source_s3_prefixes,
        licence=body.licence,
        consent=body.consent,
        user_id=access.user.id,
        watch_every_seconds=body.watch_every_seconds,
    )
    return SourceOut.model_validate(source)


@router.post(
    "/projects/{project_id}/sources/url-list-link",
    response_model=SourceOut,
    status_code=status.HTTP_201_CREATED,
)
def create_linked_url_list_source(
    body: LinkedUrlListCreate, session: DbSession, access: ProjectLead
) -> SourceOut:
    """A URL list that lives at a URL, fetched again by each run (public http(s) only); watched,
    each run ingests only the URLs it has not seen."""
    source = service.create_linked_url_list_source(
        session,
        access.project,
        body.name,
        body.list_url,
        column=body.column,
        licence=body.licence,
        consent=body.consent,
        user_id=access.user.id,
        watch_every_seconds=body.watch_every_seconds,
    )
    return SourceOut.model_validate(source)


@router.put("/projects/{project_id}/sources/{source_id}/watch", response_model=SourceOut)
def set_watch(source_id: int, body: SourceWatch, session: DbSession, access: ProjectLead) -> SourceOut:
    """Watch a folder or S3 source (new files ingested by the beat), or stop watching it."""
    source = service.source_of(session, access.project.id, source_id)
    return SourceOut.model_validate(service.set_watch(source, body.every_seconds))


MAX_URL_LIST_BYTES = 200 * 1024 * 1024


@router.post(
    "/projects/{project_id}/sources/url-list", response_model=SourceOut, status_code=status.HTTP_201_CREATED
)
def create_url_list_source(
    file: Annotated[UploadFile, File(description="CSV or parquet with a column of image URLs")],
    session: DbSession,
    access: ProjectLead,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    column: Annotated[str, Form(min_length=1, max_length=200)] = "url",
    licence: Annotated[str, Form(max_length=200)] = "",
    consent: Annotated[str, Form(max_length=200)] = "",
) -> SourceOut:
    """A URL list, as img2dataset takes it; a run fetches public http(s) URLs only."""
    data = file.file.read(MAX_URL_LIST_BYTES + 1)
    if len(data) > MAX_URL_LIST_BYTES:
        raise PayloadTooLarge(f"a URL list is at most {MAX_URL_LIST_BYTES} bytes")
    source = service.create_url_list_source(
        session,
        runtime.storage(),
        access.project,
        name,
        service.UploadedFile(name=(file.filename or "urls.csv")[-300:], data=data),
        column=column,
        licence=licence,
        consent=consent,
        user_id=access.user.id,
    )
    return SourceOut.model_validate(source)


@router.get("/projects/{project_id}/sources", response_model=list[SourceOut])
def list_sources(session: DbSession, access: ProjectMember) -> list[SourceOut]:
    return [SourceOut.model_validate(s) for s in repository.sources_of(session, access.project.id)]


@router.post(
    "/projects/{project_id}/sources/{source_id}/runs",
    response_model=IngestRunOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def start_run(source_id: int, session: DbSession, access: ProjectLead) -> IngestRunOut:
    source = service.source_of(session, access.project.id, source_id)
    return IngestRunOut.model_validate(service.start_run(session, source))


@router.get("/projects/{project_id}/ingest-runs", response_model=list[IngestRunOut])
def list_runs(
    session: DbSession, access: ProjectMember, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[IngestRunOut]:
    return [IngestRunOut.model_validate(r) for r in repository.runs_of(session, access.project.id, limit)]


@router.get("/projects/{project_id}/ingest-runs/{run_id}", response_model=IngestRunOut)
def get_run(run_id: int, session: DbSession, access: ProjectMember) -> IngestRunOut:
    return IngestRunOut.model_validate(service.run_of(session, access.project.id, run_id))


@router.post("/projects/{project_id}/ingest-runs/{run_id}/cancel", response_model=IngestRunOut)
def cancel_run(run_id: int, session: DbSession, access: ProjectLead) -> IngestRunOut:
    run = service.run_of(session, access.project.id, run_id)
    service.cancel_run(session, run)
    return IngestRunOut.model_validate(run)


@router.get("/projects/{project_id}/rejections", response_model=list[RejectionOut])
def list_rejections(
    session: DbSession,
    access: ProjectMember,
    run_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RejectionOut]:
    rows = repository.rejections(session, access.project.id, run_id, limit, after_id)
    return [RejectionOut.model_validate(r) for r in rows]


@router.post(
    "/projects/{project_id}/uploads", response_model=IngestRunOut, status_code=status.HTTP_202_ACCEPTED
)
def upload(
    request: Request,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP images")],
    session: DbSession,
    access: ProjectLead,
) -> IngestRunOut:
    settings = get_settings().ingest
    declared = int(request.headers.get("content-length") or 0)
    if declared > settings.max_upload_bytes * MAX_FILES_PER_UPLOAD:
        raise PayloadTooLarge("the upload is too large")
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise BadRequest(f"at most {MAX_FILES_PER_UPLOAD} files per upload")
    staged = []
    for f in files:
        data = f.file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLarge(f"{f.filename!r} is over the {settings.max_upload_bytes}-byte limit")
        staged.append(service.UploadedFile(name=(f.filename or "upload")[-300:], data=data))
    run = service.stage_upload(session, runtime.storage(), access.project, staged, settings)
    return IngestRunOut.model_validate(run)
