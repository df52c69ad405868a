"""The review queue's routes are matched first (server.api); that is safe only while no request
that one of them matches was meant for a route of another router."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import compile_path

from server.api import API_PREFIX, api_router
from server.assignments.router import router as assignments


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _included() -> list[Any]:
    # FastAPI keeps each included router as one entry, in inclusion order.
    return [getattr(entry, "original_router", entry) for entry in api_router.routes]


def test_the_queue_routes_come_first_and_overlap_no_other_route() -> None:
    included = _included()
    assert included[0] is assignments
    queue = [(API_PREFIX + r.path, set(r.methods)) for r in assignments.routes]
    others = [
        (API_PREFIX + r.path, set(getattr(r, "methods", None) or ()))
        for router in included[1:]
        for r in router.routes
    ]
    assert len(others) > 50
    for path, methods in queue:
        for other, other_methods in others:
            if not methods & other_methods:
                continue
            # Neither route may match a request for the other.
            assert not compile_path(other)[0].match(_concrete(path)), (path, other)
            assert not compile_path(path)[0].match(_concrete(other)), (path, other)
