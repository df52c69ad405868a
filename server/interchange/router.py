"""`POST /projects/{id}/import/labelstudio`: a Label Studio JSON export, as a multipart `file`
(with optional `image_field` and `category_map` form fields, the map as JSON) or as the JSON body
itself (a list of tasks, or `{"tasks": [...], "image_field": ..., "category_map": {...}}`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from server.core import runtime
from server.core.config import get_settings
from server.core.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from server.core.http import DbSession
from server.interchange import service
from server.interchange.schemas import ImportOptions, ImportReport
from server.projects.deps import ProjectLead

router = APIRouter(tags=["interchange"])

# A JSON export may embed its images as data URIs.
MAX_IMPORT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class _Upload:
    payload: Any
    options: ImportOptions


def _json(data: bytes | str, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}", code="invalid_json") from None


def _options(values: dict[str, Any]) -> ImportOptions:
    try:
        return ImportOptions.model_validate(values)
    except ValidationError as exc:
        raise BadRequest(
            f"invalid import options: {exc.errors()[0]['msg']}", code="invalid_options"
        ) from None


async def _upload(request: Request) -> _Upload:
    if int(request.headers.get("content-length") or 0) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequest("the form needs a `file` part: the Label Studio JSON export", code="no_file")
            data = await upload.read(MAX_IMPORT_BYTES + 1)
            fields = {
                k: v for k, v in form.items() if k in ("image_field", "category_map") and isinstance(v, str)
            }
        if len(data) > MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes")
        options: dict[str, Any] = {}
        if "image_field" in fields:
            options["image_field"] = fields["image_field"]
        if "category_map" in fields:
            options["category_map"] = _json(fields["category_map"], "category_map")
        return _Upload(_json(data, "the file"), _options(options))
    if content_type == "application/json":
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_IMPORT_BYTES:
                raise PayloadTooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes")
        payload = _json(bytes(body), "the body")
        if isinstance(payload, dict) and "tasks" in payload:
            options = {k: payload[k] for k in ("image_field", "category_map") if k in payload}
            return _Upload(payload["tasks"], _options(options))
        return _Upload(payload, ImportOptions())
    raise UnsupportedMedia("send the export as application/json or as a multipart `file`")


@router.post(
    "/projects/{project_id}/import/labelstudio",
    response_model=ImportReport,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "image_field": {"type": "string"},
                            "category_map": {"type": "string", "description": "JSON object"},
                        },
                        "required": ["file"],
                    }
                },
            },
            "required": True,
        }
    },
)
def import_labelstudio(
    session: DbSession, access: ProjectLead, upload: Annotated[_Upload, Depends(_upload)]
) -> ImportReport:
    """Import Label Studio tasks: images, predictions and verified labels; per-task problems reported."""
    settings = get_settings()
    return service.import_labelstudio(
        session,
        runtime.storage(),
        access.project,
        access.user,
        upload.payload,
        upload.options,
        settings.source_roots,
        settings.ingest,
    )
