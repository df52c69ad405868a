"""Expected failures, rendered as `{"error": code, "detail": message}` with their status.

    DomainError
    ├── BadRequest (400)         invalid input that passed schema validation
    │   └── ValidationFailed     (422) with a list of {path, message} errors
    ├── Unauthorized (401)       no or bad credentials
    ├── Forbidden (403)          authenticated, but the role does not allow it
    ├── NotFound (404)           missing, or in a project the caller is not a member of
    ├── Conflict (409)           stale version, duplicate, state that forbids the action
    ├── PayloadTooLarge (413)
    ├── UnsupportedMedia (415)
    ├── TooManyRequests (429)
    └── Unavailable (503)        a dependency (database, broker) is down; retry later

Anything else that escapes a route is a bug and answers 500.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    status_code = 422
    code = "validation_failed"

    def __init__(self, detail: str, errors: list[dict[str, str]]):
        super().__init__(detail, extra={"errors": errors})


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMedia(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"


class Unavailable(DomainError):
    status_code = 503
    code = "unavailable"
