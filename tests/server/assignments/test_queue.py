from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from server.assignments import service
from server.auth import repository as auth_repository
from server.core import runtime
from server.core.time import utcnow
from server.demo.synthetic import render_person
from server.orm import Assignment, GoldAnswer, Label, LabelEvent, Project, Submission
from server.projects.policy import access
from tests.server.conftest import Api


def _upload(admin: Api, project_id: int, n: int) -> None:
    files = []
    for i in range(n):
        image, _ = render_person(100 + i)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        files.append(("files", (f"p{i}.jpg", buffer.getvalue(), "image/jpeg")))
    assert admin.post(f"/projects/{project_id}/uploads", files=files).status_code == 202


def _answers(assignment: dict[str, Any], change: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Accept what is pre-filled (the label's value), changing `change` (key -> value)."""
    change = change or {}
    out = []
    for category in assignment["categories"]:
        label = category["label"]
        if label is None:
            continue
        out.append(
            {
                "category_id": category["id"],
                "value": change.get(category["key"], label["value"]),
                "label_version": label["version"],
            }
        )
    return out


def _submit(
    api: Api, assignment: dict[str, Any], change: dict[str, Any] | None = None, client_id: str | None = None
) -> Any:
    body = {
        "client_id": client_id or str(uuid.uuid4()),
        "answers": _answers(assignment, change),
        "lead_time_ms": 1200,
    }
    return api.post(f"/assignments/{assignment['id']}/submit", json=body)


def _count(model: Any, *where: Any) -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _expire(assignment_id: int) -> None:
    """Its lease ran out a second ago."""
    with runtime.database().session_scope() as session:
        row = session.get(Assignment, assignment_id)
        assert row is not None
        row.lease_expires_at = utcnow() - timedelta(seconds=1)


def _no_gold(admin: Api, project_id: int) -> None:
    settings = admin.get(f"/projects/{project_id}").json()["settings"]
    settings["review"]["gold_share"] = 0
    assert admin.put(f"/projects/{project_id}/settings", json=settings).status_code == 200


def test_every_prelabelled_subject_is_queued_whole_for_review(admin: Api, project: dict[str, Any]) -> None:
    _upload(admin, project["id"], 3)
    stats = admin.get(f"/projects/{project['id']}/assignments/stats").json()
    assert stats["queued"] == 3 and stats["by_kind"] == {"review": {"queued": 3}}
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    keys = {c["key"] for c in assignment["categories"]}
    assert {"shot.type", "hair.color", "top.color"} <= keys
    assert "identity.gender" not in keys  # sensitive: not routed unless the project opts in
    assert assignment["caption_preview"]
    assert assignment["image"]["url"] == f"/api/v1/images/{assignment['image']['id']}/file"
    assert all(c["label"]["state"] == "predicted" for c in assignment["categories"] if c["label"])


def test_submit_verifies_labels_once_and_a_retry_is_answered_not_reapplied(
    admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    top = next(c for c in assignment["categories"] if c["key"] == "top.color")
    new_color = next(v["key"] for v in top["values"] if v["key"] != top["label"]["value"])
    client_id = str(uuid.uuid4())
    first = _submit(admin, assignment, {"top.color": new_color}, client_id)
    assert first.status_code == 200, first.text
    assert first.json()["changed_fields"] == 1
    events = _count(LabelEvent, LabelEvent.reason == "review")
    again = _submit(admin, assignment, {"top.color": new_color}, client_id)
    assert again.status_code == 200 and again.json() == first.json()
    assert _count(LabelEvent, LabelEvent.reason == "review") == events == len(_answers(assignment))
    assert _count(Submission) == 1
    with runtime.database().session_scope() as session:
        label = session.scalar(select(Label).where(Label.category_id == top["id"]))
        assert label is not None and (label.value, label.state, label.version) == (new_color, "verified", 2)


def test_a_stale_write_gets_409_with_the_current_values_and_changes_nothing(
    admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    top = next(c for c in assignment["categories"] if c["key"] == "top.color")
    # Someone else decides the top colour after this page loaded it.
    with runtime.database().session_scope() as session:
        label = session.scalar(select(Label).where(Label.category_id == top["id"]))
        assert label is not None
        label.value, label.state, label.version = "beige", "verified", label.version + 1
    stale = _submit(admin, assignment)
    assert stale.status_code == 409
    body = stale.json()
    assert body["error"] == "stale_labels"
    assert body["current"] == [
        {"category_id": top["id"], "value": "beige", "version": 2, "state": "verified"}
    ]
    assert _count(LabelEvent, LabelEvent.reason == "review") == 0 and _count(Submission) == 0


def test_two_people_asking_at_once_never_get_the_same_assignment(
    admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 8)
    emails = [f"a{i}@example.com" for i in range(4)]
    for email in emails:
        member_factory(project["id"], "annotator", email)
    claimed: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(emails))

    def work(email: str) -> None:
        try:
            barrier.wait()
            for _ in range(2):
                with runtime.database().session_scope() as session:
                    user = auth_repository.user_by_email(session, email)
                    assert user is not None
                    got = service.next_for(session, access(session, user, project["id"]))
                    assert got is not None
                    claimed.append(got.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in emails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(claimed) == 8 and len(set(claimed)) == 8
    assert admin.post(f"/projects/{project['id']}/assignments/next").status_code == 204


def test_an_expired_lease_returns_to_the_queue_and_the_late_submit_is_refused(
    admin: Api, project: dict[str, Any], member_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `next` releases expired leases at most once a second per process: every time here.
    monkeypatch.setattr(service, "RELEASE_EVERY_SECONDS", 0.0)
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    slow = member_factory(project["id"], "annotator", "slow@example.com")
    fast = member_factory(project["id"], "annotator", "fast@example.com")
    assignment = slow.post(f"/projects/{project['id']}/assignments/next").json()
    _expire(assignment["id"])
    taken = fast.post(f"/projects/{project['id']}/assignments/next")
    assert taken.status_code == 200 and taken.json()["id"] == assignment["id"]
    late = _submit(slow, assignment)
    assert late.status_code == 409 and late.json()["error"] == "lease_lost"
    assert _submit(fast, taken.json()).status_code == 200


def test_a_person_at_the_lease_cap_gets_their_oldest_lease_back_not_another(
    admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], service.MAX_LIVE_LEASES + 2)
    held = [admin.post(f"/projects/{project['id']}/assignments/next").json() for _ in range(3)]
    assert len({a["id"] for a in held}) == service.MAX_LIVE_LEASES == 3
    again = admin.post(f"/projects/{project['id']}/assignments/next")
    assert again.status_code == 200 and again.json()["id"] == held[0]["id"]
    assert _count(Assignment, Assignment.status == "leased") == service.MAX_LIVE_LEASES
    # Submitting one frees a place: the next lease is new work.
    assert _submit(admin, held[0]).status_code == 200
    fresh = admin.post(f"/projects/{project['id']}/assignments/next").json()
    assert fresh["id"] not in {a["id"] for a in held}


def test_the_reconciler_requeues_an_expired_lease_when_nobody_asks_for_work(
    admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    from server.core.config import ReconcilerSettings
    from server.operations.reconciler import reconcile

    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    slow = member_factory(project["id"], "annotator", "slow@example.com")
    assignment = slow.post(f"/projects/{project['id']}/assignments/next").json()
    _expire(assignment["id"])
    with runtime.database().session_scope() as session:
        assert reconcile(session, ReconcilerSettings()).leases == 1
        row = session.get(Assignment, assignment["id"])
        assert row is not None and (row.status, row.lease_holder_id) == ("queued", None)
    stats = admin.get(f"/projects/{project['id']}/assignments/stats").json()
    assert (stats["queued"], stats["leased"]) == (1, 0)
    assert _submit(slow, assignment).status_code == 409


def test_heartbeat_extends_the_lease_and_release_and_skip_requeue(
    admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 2)
    first = admin.post(f"/projects/{project['id']}/assignments/next").json()
    beat = admin.post(f"/assignments/{first['id']}/heartbeat")
    assert beat.status_code == 200 and beat.json()["lease_expires_at"] >= first["lease_expires_at"]
    assert admin.post(f"/assignments/{first['id']}/release").status_code == 204
    assert admin.post(f"/assignments/{first['id']}/heartbeat").status_code == 409
    again = admin.post(f"/projects/{project['id']}/assignments/next").json()
    assert admin.post(f"/assignments/{again['id']}/skip", json={"reason": "blurry"}).status_code == 204
    with runtime.database().session_scope() as session:
        skipped = session.get(Assignment, again["id"])
        assert skipped is not None and (skipped.status, skipped.skip_reason) == ("skipped", "blurry")
        requeued = session.scalars(
            select(Assignment).where(
                Assignment.subject_id == skipped.subject_id, Assignment.status == "queued"
            )
        ).all()
        assert len(requeued) == 1 and requeued[0].priority < skipped.priority


def test_undo_restores_the_labels_while_the_window_is_open(admin: Api, project: dict[str, Any]) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    top = next(c for c in assignment["categories"] if c["key"] == "top.color")
    other = next(v["key"] for v in top["values"] if v["key"] != top["label"]["value"])
    assert _submit(admin, assignment, {"top.color": other}).status_code == 200
    undone = admin.post(f"/assignments/{assignment['id']}/undo")
    assert undone.status_code == 200
    restored = next(c for c in undone.json()["categories"] if c["key"] == "top.color")
    assert (restored["label"]["value"], restored["label"]["state"]) == (top["label"]["value"], "predicted")
    assert undone.json()["status"] == "leased"
    with runtime.database().session_scope() as session:
        project_row = session.get(Project, project["id"])
        assert project_row is not None
        project_row.settings = {
            **project_row.settings,
            "review": {**project_row.settings["review"], "undo_seconds": 0},
        }
    assert _submit(admin, undone.json()).status_code == 200
    assert admin.post(f"/assignments/{assignment['id']}/undo").json()["error"] == "undo_window_closed"


def test_gold_items_are_served_unmarked_scored_and_disagreements_adjudicated(
    admin: Api, project: dict[str, Any], member_factory: Any
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 2)
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    assert _submit(admin, assignment).status_code == 200
    gold = admin.post(f"/projects/{project['id']}/gold", json={"subject_id": assignment["subject"]["id"]})
    assert gold.status_code == 201 and gold.json()["labels"] > 0
    settings = admin.get(f"/projects/{project['id']}").json()["settings"]
    settings["review"]["gold_share"] = 1.0
    admin.put(f"/projects/{project['id']}/settings", json=settings)
    annotator = member_factory(project["id"], "annotator", "gold@example.com")
    served = annotator.post(f"/projects/{project['id']}/assignments/next").json()
    assert served["subject"]["id"] == assignment["subject"]["id"]
    assert served["kind"] == "review" and all(c["label"] is None for c in served["categories"])
    wrong_key = "top.color"
    answers = []
    for category in served["categories"]:
        truth = next(c for c in assignment["categories"] if c["id"] == category["id"])["label"]["value"]
        value = truth
        if category["key"] == wrong_key:
            value = next(v["key"] for v in category["values"] if v["key"] != truth)
        answers.append({"category_id": category["id"], "value": value, "label_version": None})
    response = annotator.post(
        f"/assignments/{served['id']}/submit",
        json={"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": 900},
    )
    assert response.status_code == 200, response.text
    assert _count(GoldAnswer) == len(answers) and _count(GoldAnswer, GoldAnswer.correct.is_(False)) == 1
    assert _count(Label, Label.state == "gold") == gold.json()["labels"]  # gold never overwritten
    scores = admin.get(f"/projects/{project['id']}/annotators").json()
    (score,) = scores
    assert score["email"] == "gold@example.com" and score["by_category"][wrong_key] == {
        "answers": 1,
        "correct": 0,
    }
    assert _count(Assignment, Assignment.kind == "adjudicate", Assignment.status == "queued") == 1
    # The annotator never sees the same gold item twice, nor adjudication work.
    assert annotator.post(f"/projects/{project['id']}/assignments/next").json()["kind"] == "review"


def test_answers_must_be_values_of_their_category(admin: Api, project: dict[str, Any]) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    response = _submit(admin, assignment, {"top.color": "plaid-ish"})
    assert response.status_code == 422
    assert _count(Submission) == 0 and _count(LabelEvent, LabelEvent.reason == "review") == 0
