"""A request that acts on a lease (submit, release) reads the assignment at its start and writes
it at its end. On Postgres another person's `next` may take the lease over in between (an expired
lease is claimable); the late request must then be refused, not overwrite the new holder's lease.

SQLite runs each transaction under BEGIN IMMEDIATE, so the two requests cannot interleave there:
these tests are Postgres-only.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from server.assignments import service
from server.assignments.errors import LeaseLost
from server.assignments.schemas import SubmitIn
from server.auth import repository as auth_repository
from server.core import runtime
from tests.server.assignments.test_queue import _answers, _expire, _no_gold, _submit, _upload


def _expired_lease_of_slow(
    admin: Any,
    project: dict[str, Any],
    member_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    images: int = 1,
) -> tuple[Any, Any, dict[str, Any]]:
    # `next` releases expired leases at most once a second per process: every time here.
    monkeypatch.setattr(service, "RELEASE_EVERY_SECONDS", 0.0)
    if runtime.database().is_sqlite:
        pytest.skip("SQLite serialises the two requests (BEGIN IMMEDIATE): they cannot interleave")
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], images)
    slow = member_factory(project["id"], "annotator", "slow@example.com")
    fast = member_factory(project["id"], "annotator", "fast@example.com")
    assignment = slow.post(f"/projects/{project['id']}/assignments/next").json()
    _expire(assignment["id"])
    return slow, fast, assignment


def test_a_late_submit_whose_expired_lease_is_taken_over_mid_request_is_refused(
    admin: Any, project: dict[str, Any], member_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow, fast, assignment = _expired_lease_of_slow(admin, project, member_factory, monkeypatch)
    session = runtime.database().sessionmaker()
    try:
        user = auth_repository.user_by_email(session, "slow@example.com")
        assert user is not None
        # The slow person's submit has read the assignment (still theirs, expired)...
        row, grant = service.assignment_for(session, user, assignment["id"])
        # ...when the fast person's `next` takes the expired lease over and commits.
        taken = fast.post(f"/projects/{project['id']}/assignments/next")
        fast_holds_it = taken.status_code == 200 and taken.json()["id"] == assignment["id"]
        body = SubmitIn(client_id=str(uuid.uuid4()), answers=_answers(assignment), lead_time_ms=1200)
        try:
            service.submit(session, row, user, grant.project, body)
            session.commit()
            slow_applied = True
        except LeaseLost:
            session.rollback()
            slow_applied = False
    finally:
        session.close()
    # Never both: the lease handed to the fast person and the slow person's late submit applied.
    assert not (fast_holds_it and slow_applied)
    if fast_holds_it:
        assert _submit(fast, taken.json()).status_code == 200


def test_a_late_release_does_not_free_a_lease_taken_over_mid_request(
    admin: Any, project: dict[str, Any], member_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow, fast, assignment = _expired_lease_of_slow(admin, project, member_factory, monkeypatch)
    third = member_factory(project["id"], "annotator", "third@example.com")
    session = runtime.database().sessionmaker()
    try:
        user = auth_repository.user_by_email(session, "slow@example.com")
        assert user is not None
        row, _ = service.assignment_for(session, user, assignment["id"])
        taken = fast.post(f"/projects/{project['id']}/assignments/next")
        fast_holds_it = taken.status_code == 200 and taken.json()["id"] == assignment["id"]
        try:
            service.release(row, user)
            session.commit()
        except LeaseLost:
            session.rollback()
    finally:
        session.close()
    if fast_holds_it:
        # Two people are never handed the same assignment: it is still the fast person's.
        again = third.post(f"/projects/{project['id']}/assignments/next")
        assert again.status_code == 204, again.json()
        assert _submit(fast, taken.json()).status_code == 200


def test_a_claim_in_flight_hides_no_other_claimable_assignment(
    admin: Any, project: dict[str, Any], member_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim looks at the queued head and the expired-lease head; while one person's claim is
    in flight, the head it did not take must stay claimable for someone else (no false 204)."""
    from server.projects.policy import access

    # Two items: one leased to the slow person, expired, and one queued.
    _expired_lease_of_slow(admin, project, member_factory, monkeypatch, images=2)
    member_factory(project["id"], "annotator", "third@example.com")
    database = runtime.database()
    first, second = database.sessionmaker(), database.sessionmaker()
    try:
        fast = auth_repository.user_by_email(first, "fast@example.com")
        third = auth_repository.user_by_email(second, "third@example.com")
        assert fast is not None and third is not None
        # A claim that waits on the first one's locks fails here instead of hanging the test.
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        # The fast person's `next` has claimed one of the two, and not committed yet...
        took = service.next_for(first, access(first, fast, project["id"]))
        assert took is not None
        # ...and the other one is still there for a third person.
        other = service.next_for(second, access(second, third, project["id"]))
        assert other is not None and other.id != took.id
    finally:
        first.rollback()
        second.rollback()
        first.close()
        second.close()
