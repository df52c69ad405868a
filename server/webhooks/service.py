"""Webhooks: signed notifications of a project's events (assignment submitted, round finished,
export done) to URLs its leads chose.

`emit` writes one delivery row per subscribed webhook in the caller's transaction (so an event
that rolled back is never announced, and one that committed is never lost), and queues its send
after the commit. `claim`, `send` and `record` POST it through the egress client (public
addresses only, capped in size and time), signed:
`X-AA-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with `X-AA-Event`
and `X-AA-Delivery` (a UUID: receivers drop repeats). A failure is retried after a backoff (the
reconciler sends what is due, which also covers a lost message); after `MAX_ATTEMPTS`, or when
the address is refused, the delivery is `failed`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import jobs, tasknames
from server.core.egress import EgressClient, EgressFailed, EgressRefused
from server.core.errors import NotFound
from server.core.security import new_token
from server.core.time import utcnow
from server.orm import Webhook, WebhookDelivery
from server.projects.policy import ProjectAccess
from server.webhooks.schemas import WebhookCreate

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 6
# After a failed attempt; the reconciler (every minute) sends what is due.
BACKOFF_SECONDS = (30, 120, 600, 1800, 7200)
ATTEMPT_LEASE_SECONDS = 120
RESEND_GRACE_SECONDS = 30
# Which events each project listens to, cached briefly per process: the review hot path emits
# on every submit and must not pay a query when no webhook exists. A new webhook hears events
# within this many seconds.
SUBSCRIPTION_TTL_SECONDS = 5.0
_subscriptions: dict[int, tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def create(session: Session, grant: ProjectAccess, body: WebhookCreate) -> tuple[Webhook, str]:
    secret = new_token(32)
    webhook = Webhook(
        project_id=grant.project.id,
        url=body.url,
        secret=secret,
        events=sorted(set(body.events)),
        active=True,
        created_by_id=grant.user.id,
    )
    session.add(webhook)
    session.flush()
    forget(grant.project.id)
    return webhook, secret


def of_project(session: Session, project_id: int) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)))


def webhook_of(session: Session, project_id: int, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.project_id != project_id:
        raise NotFound("no such webhook")
    return webhook


def remove(session: Session, project_id: int, webhook_id: int) -> None:
    session.delete(webhook_of(session, project_id, webhook_id))
    forget(project_id)


def deliveries(session: Session, project_id: int, webhook_id: int, limit: int) -> list[WebhookDelivery]:
    webhook_of(session, project_id, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def forget(project_id: int) -> None:
    with _lock:
        _subscriptions.pop(project_id, None)


def _listened(session: Session, project_id: int) -> frozenset[str]:
    now = time.monotonic()
    with _lock:
        cached = _subscriptions.get(project_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = session.scalars(select(Webhook.events).where(Webhook.project_id == project_id, Webhook.active))
    events = frozenset(e for row in rows for e in row)
    with _lock:
        _subscriptions[project_id] = (now + SUBSCRIPTION_TTL_SECONDS, events)
    return events


def emit(session: Session, project_id: int, event: str, data: dict[str, Any], *, force: bool = False) -> int:
    """Record `event` for every active webhook of the project that subscribes to it; returns how
    many deliveries were queued. `force` skips the subscription cache (tests, pings)."""
    if not force and event not in _listened(session, project_id):
        return 0
    hooks = session.scalars(select(Webhook).where(Webhook.project_id == project_id, Webhook.active))
    now = utcnow()
    queued = 0
    for webhook in hooks:
        if event not in webhook.events:
            continue
        delivery = WebhookDelivery(
            webhook_id=webhook.id,
            event=event,
            payload={"event": event, "project_id": project_id, "occurred_at": now.isoformat(), "data": data},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            delivery_uuid=str(uuid.uuid4()),
        )
        session.add(delivery)
        session.flush()
        jobs.enqueue(session, tasknames.WEBHOOK_DELIVER, delivery_id=delivery.id)
        queued += 1
    return queued


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class Prepared:
    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]
    attempt: int


def claim(session: Session, delivery_id: int, clock: Callable[[], float] = time.time) -> Prepared | None:
    """Take a pending, due delivery for one attempt: its next attempt moves a lease ahead, so a
    second sender (a redelivered message, the reconciler) finds it not due and leaves it. The
    network call happens after this transaction commits: a slow receiver holds no database lock."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    now = utcnow()
    if delivery is None or delivery.status != "pending" or delivery.next_attempt_at > now:
        return None
    webhook = session.get(Webhook, delivery.webhook_id)
    if webhook is None or not webhook.active:
        delivery.status, delivery.last_error = "failed", "the webhook was removed or disabled"
        return None
    delivery.attempts += 1
    delivery.next_attempt_at = now + timedelta(seconds=ATTEMPT_LEASE_SECONDS)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "content-type": "application/json",
        "x-aa-event": delivery.event,
        "x-aa-delivery": delivery.delivery_uuid,
        "x-aa-signature": signature(webhook.secret, int(clock()), body),
    }
    return Prepared(delivery.id, webhook.url, body, headers, delivery.attempts)


def send(prepared: Prepared, client: EgressClient) -> tuple[int | None, EgressRefused | EgressFailed | None]:
    try:
        return client.post(prepared.url, prepared.body, headers=prepared.headers).status_code, None
    except (EgressRefused, EgressFailed) as exc:
        return None, exc


def record(
    session: Session, prepared: Prepared, status_code: int | None, error: EgressRefused | EgressFailed | None
) -> str:
    delivery = session.get(WebhookDelivery, prepared.delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "pending":
        return "gone" if delivery is None else delivery.status
    if error is None:
        delivery.status, delivery.response_status, delivery.last_error = "delivered", status_code, None
        delivery.delivered_at = utcnow()
        return delivery.status
    delivery.last_error = f"{error.reason}: {error.detail}"[:2000]
    if isinstance(error, EgressRefused) or prepared.attempt >= MAX_ATTEMPTS:
        delivery.status = "failed"  # a refused address does not become allowed by waiting
    else:
        wait = BACKOFF_SECONDS[min(prepared.attempt - 1, len(BACKOFF_SECONDS) - 1)]
        delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
    log.info(
        "webhooks.attempt_failed", delivery_id=delivery.id, status=delivery.status, error=delivery.last_error
    )
    return delivery.status


def due(session: Session, limit: int) -> list[int]:
    """Pending deliveries whose next attempt is due (a retry's backoff has passed, or the first
    send's message was lost): the reconciler sends them. A grace keeps it from racing the send
    that `emit` queued a moment ago."""
    before = utcnow() - timedelta(seconds=RESEND_GRACE_SECONDS)
    query = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < before)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))
