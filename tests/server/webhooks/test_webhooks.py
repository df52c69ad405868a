"""Webhooks: signed, delivered once per event through the egress client, retried, never leaked."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from server.core import runtime
from server.core.config import get_settings
from server.core.time import utcnow
from server.operations.reconciler import reconcile
from server.orm import WebhookDelivery
from tests.server.assignments.test_queue import _answers, _no_gold, _upload
from tests.server.conftest import Api


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    answer = 204

    def log_message(self, *_: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(type(self).answer)
        self.end_headers()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any]) -> Iterator[str]:
    _Receiver.received, _Receiver.answer = [], 204
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("AA_EGRESS__ALLOW_NETWORKS", '["127.0.0.1/32"]')
    runtime.reset()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


def _submit_one(admin: Api, project_id: int) -> dict[str, Any]:
    assignment = admin.post(f"/projects/{project_id}/assignments/next").json()
    body = {"client_id": str(uuid.uuid4()), "answers": _answers(assignment), "lead_time_ms": 900}
    response = admin.post(f"/assignments/{assignment['id']}/submit", json=body)
    assert response.status_code == 200, response.text
    return dict(assignment)


def _deliveries() -> list[WebhookDelivery]:
    with runtime.database().session_scope() as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        session.expunge_all()
        return rows


def test_a_submit_is_announced_once_signed_with_the_webhooks_secret(
    receiver: str, admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    created = admin.post(
        f"/projects/{project['id']}/webhooks", json={"url": receiver, "events": ["assignment.submitted"]}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert "secret" not in admin.get(f"/projects/{project['id']}/webhooks").json()[0]
    assignment = _submit_one(admin, project["id"])
    assert len(_Receiver.received) == 1
    headers, body = _Receiver.received[0]
    assert headers["x-aa-event"] == "assignment.submitted"
    timestamp, digest = (part.split("=", 1)[1] for part in headers["x-aa-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)
    payload = json.loads(body)
    assert payload["event"] == "assignment.submitted" and payload["project_id"] == project["id"]
    assert payload["data"]["assignment_id"] == assignment["id"]
    (delivery,) = _deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 204)
    assert headers["x-aa-delivery"] == delivery.delivery_uuid
    # Sending the same delivery again (a redelivered message) posts nothing.
    from server.webhooks.tasks import deliver

    assert deliver(delivery.id) == "skipped" and len(_Receiver.received) == 1


def test_a_failed_delivery_is_retried_by_the_reconciler_after_its_backoff(
    receiver: str, admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    admin.post(
        f"/projects/{project['id']}/webhooks", json={"url": receiver, "events": ["assignment.submitted"]}
    )
    _Receiver.answer = 500
    _submit_one(admin, project["id"])
    (delivery,) = _deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at > utcnow() and "http_status" in (delivery.last_error or "")
    with runtime.database().session_scope() as session:
        assert reconcile(session, get_settings().reconciler).deliveries == 0  # not due yet
        row = session.get(WebhookDelivery, delivery.id)
        assert row is not None
        row.next_attempt_at = utcnow() - timedelta(minutes=5)
    _Receiver.answer = 200
    with runtime.database().session_scope() as session:
        assert reconcile(session, get_settings().reconciler).deliveries == 1
    (delivery,) = _deliveries()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(_Receiver.received) == 2
    assert len({h["x-aa-delivery"] for h, _ in _Receiver.received}) == 1  # the receiver can dedupe


def test_a_webhook_to_a_private_address_fails_without_contacting_it(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    hook = {"url": "http://169.254.169.254/latest/meta-data/", "events": ["assignment.submitted"]}
    assert admin.post(f"/projects/{project['id']}/webhooks", json=hook).status_code == 201
    _submit_one(admin, project["id"])
    (delivery,) = _deliveries()
    assert delivery.status == "failed" and (delivery.last_error or "").startswith("link_local")


def test_a_refused_submit_announces_nothing_and_unsubscribed_events_are_not_sent(
    receiver: str, admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 2)
    admin.post(f"/projects/{project['id']}/webhooks", json={"url": receiver, "events": ["export.done"]})
    _submit_one(admin, project["id"])
    assert _deliveries() == [] and _Receiver.received == []
    admin.post(
        f"/projects/{project['id']}/webhooks", json={"url": receiver, "events": ["assignment.submitted"]}
    )
    assignment = admin.post(f"/projects/{project['id']}/assignments/next").json()
    stale = [dict(a, label_version=a["label_version"] + 7) for a in _answers(assignment)]
    body = {"client_id": str(uuid.uuid4()), "answers": stale, "lead_time_ms": 5}
    assert admin.post(f"/assignments/{assignment['id']}/submit", json=body).status_code == 409
    assert _deliveries() == [] and _Receiver.received == []


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)"])
def test_only_http_urls_are_accepted(
    env: dict[str, Any], admin: Api, project: dict[str, Any], url: str
) -> None:
    response = admin.post(f"/projects/{project['id']}/webhooks", json={"url": url, "events": ["export.done"]})
    assert response.status_code == 422


def test_only_leads_manage_webhooks(
    env: dict[str, Any], member_factory: Any, project: dict[str, Any]
) -> None:
    reviewer = member_factory(project["id"], "reviewer")
    hook = {"url": "https://example.com/hook", "events": ["export.done"]}
    assert reviewer.post(f"/projects/{project['id']}/webhooks", json=hook).status_code == 403
    assert reviewer.get(f"/projects/{project['id']}/webhooks").status_code == 403


def test_a_finished_export_and_a_finished_round_are_announced(
    receiver: str, admin: Api, project: dict[str, Any]
) -> None:
    _no_gold(admin, project["id"])
    _upload(admin, project["id"], 1)
    events = {"url": receiver, "events": ["export.done", "round.finished"]}
    assert admin.post(f"/projects/{project['id']}/webhooks", json=events).status_code == 201
    export = admin.post(f"/projects/{project['id']}/exports", json={"format": "jsonl"})
    assert export.status_code == 202, export.text
    round_ = admin.post(f"/projects/{project['id']}/rounds")
    assert round_.status_code == 202, round_.text
    payloads = {json.loads(body)["event"]: json.loads(body)["data"] for _, body in _Receiver.received}
    assert set(payloads) == {"export.done", "round.finished"}
    assert payloads["export.done"]["export_id"] == export.json()["id"]
    done = admin.get(f"/projects/{project['id']}/exports/{export.json()['id']}").json()
    assert done["status"] == "done" and payloads["export.done"]["counts"] == done["counts"]
    assert len(payloads["export.done"]["manifest_sha256"]) == 64
    # Nothing verified yet: the round fails, and says so.
    finished = payloads["round.finished"]
    assert (finished["round_id"], finished["status"]) == (round_.json()["id"], "failed")
    assert finished["error"] == "no verified labels to train on"
