"""Simulated annotators over HTTP with a recorded history, and the checker that judges it.

Seeding, login and the per-assignment answers come from bench/review_api.py. What this adds:

- The client behaves as the review UI's outbox (web/src/features/review/outbox.ts): a submit is
  retried with the same client id after a transport error or a 5xx, with backoff, until the
  server answers; a 409 is never retried blindly: on `stale_labels` the annotator looks at the
  current values and decides again (a new submit, new client id, the versions just shown); on
  `lease_lost` the item is dropped. Every 20th acknowledged submit is sent again (a lost
  response): the answer must be the first one, applied once.
- Annotators change a share of the pre-filled values, so overwrites are visible in the data.
- `--shared` seeds a second review assignment for a share of the subjects, next to the first in
  queue order, so two people write the same labels at nearly the same time.
- Every request and response goes to a JSON-lines history.

The checker reads the database against the history: acknowledged submits stored exactly once
(lost, duplicated), no label written on top of a version its writer had not seen (a silent
overwrite), no assignment held or submitted by two people (collisions), and every label's
version equal to one plus its events.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import review_api
from bench.faults._stack import log, scalar

BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0)
GIVE_UP_AFTER = 60.0  # seconds past the end of the run: the outbox stops retrying


@dataclass
class History:
    started: float = field(default_factory=time.monotonic)
    # Set once every annotator is logged in: `started` is then the load's time zero.
    ready: threading.Event = field(default_factory=threading.Event)
    entries: list[dict[str, Any]] = field(default_factory=list)
    out: review_api.Log = field(default_factory=review_api.Log)
    # client id -> the acknowledged submit: user, assignment, answers and the response body
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsaved: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    resubmits: int = 0
    lease_lost: int = 0
    transient: int = 0  # 5xx and transport errors, each retried
    answered_after_retry: int = 0  # submits acknowledged only on a retry of the same client id
    changed_values: int = 0

    def record(self, **entry: Any) -> dict[str, Any]:
        entry["t"] = round(time.monotonic() - self.started, 4)
        self.entries.append(entry)
        return entry

    def write(self, path: Path) -> None:
        with path.open("w") as out:
            for entry in self.entries:
                out.write(json.dumps(entry, default=str) + "\n")


def prepare(subjects: int, annotators: int, categories: int, data_dir: Path, shared: float) -> Any:
    """review_api's seeding, plus a second queued review assignment for a share of the subjects."""
    setup = review_api.prepare(subjects, annotators, categories, data_dir)
    if shared > 0:
        from server.core import runtime

        every = max(1, round(1 / shared))
        scalar(
            "WITH x AS (INSERT INTO assignments (project_id, subject_id, kind, queue_rank, category_ids,"
            " status, priority, created_at) SELECT project_id, subject_id, kind, queue_rank, category_ids,"
            " status, priority, created_at FROM assignments WHERE project_id = :p AND id % :n = 0"
            " RETURNING 1) SELECT count(*) FROM x",
            p=setup.project_id,
            n=every,
        )
        runtime.reset()
    return setup


async def _login(client: Any, email: str) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": review_api.PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


async def _send(client: Any, url: str, body: dict[str, Any] | None, user: int, op: str, h: History) -> Any:
    """One request, recorded; None on a transport error."""
    import httpx

    t0 = time.perf_counter()
    try:
        response = await client.post(url, json=body) if body is not None else await client.post(url)
    except httpx.HTTPError as exc:
        h.record(user=user, op=op, url=url, request=body, error=f"{type(exc).__name__}: {exc}"[:200])
        return None
    ms = round((time.perf_counter() - t0) * 1000, 1)
    h.record(
        user=user, op=op, url=url, request=body, status=response.status_code, ms=ms, response=_body(response)
    )
    return response


async def _submit_until_answered(
    client: Any, url: str, body: dict[str, Any], user: int, op: str, h: History, give_up_at: float
) -> Any:
    """The outbox: the same body and client id until a non-transient answer, or give up."""
    attempt = 0
    while True:
        response = await _send(client, url, body, user, op if attempt == 0 else f"{op}-retry", h)
        if response is not None and response.status_code < 500:
            h.answered_after_retry += attempt > 0 and response.status_code == 200
            return response
        h.transient += 1
        if response is not None and response.status_code != 503:
            h.out.error(f"{op}: {response.status_code} {response.text[:200]}")
        if time.monotonic() > give_up_at:
            h.unsaved.append({"user": user, "url": url, "request": body})
            return None
        await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)] * (0.75 + random.random() / 2))
        attempt += 1


def _decide(
    assignment: dict[str, Any], rng: random.Random, change: float, h: History
) -> list[dict[str, Any]]:
    answers = []
    for category in assignment["categories"]:
        label = category["label"]
        if label is None:
            continue
        value = label["value"]
        keys = [v["key"] for v in category["values"]]
        if keys and rng.random() < change:
            value = rng.choice([k for k in keys if k != value] or keys)
            h.changed_values += 1
        answers.append({"category_id": category["id"], "value": value, "label_version": label["version"]})
    return answers


async def annotator(
    client: Any,
    user: int,
    project_id: int,
    think: float,
    start_at: float,
    stop_at: float,
    change: float,
    h: History,
) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(user)
    out = h.out
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    pause = max(think, 0.05)
    while loop.time() < stop_at:
        response = await _send(
            client, f"/api/v1/projects/{project_id}/assignments/next", None, user, "next", h
        )
        if response is None or response.status_code >= 500:
            h.transient += 1
            await asyncio.sleep(pause)
            continue
        out.statuses[f"next {response.status_code}"] += 1
        if response.status_code != 200:
            out.empty_queue += response.status_code == 204
            await asyncio.sleep(pause)
            continue
        assignment = response.json()
        lease = [float(user), time.monotonic(), time.monotonic() + review_api.LEASE_SECONDS]
        out.served[int(assignment["id"])].append(lease)
        await asyncio.sleep(think * rng.random() * 2)
        answers = _decide(assignment, rng, change, h)
        url = f"/api/v1/assignments/{assignment['id']}/submit"
        give_up_at = time.monotonic() + (stop_at - loop.time()) + GIVE_UP_AFTER
        for decision in range(3):
            body = {"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": int(think * 1000)}
            op = "submit" if decision == 0 else "resubmit"
            response = await _submit_until_answered(client, url, body, user, op, h, give_up_at)
            if response is None:
                break
            out.statuses[f"{op} {response.status_code}"] += 1
            if response.status_code == 200:
                lease[2] = time.monotonic()
                first = response.json()
                out.acked.append((user, body["client_id"], int(assignment["id"]), len(answers)))
                h.acked[body["client_id"]] = {
                    "user": user,
                    "assignment": int(assignment["id"]),
                    "answers": answers,
                    "response": first,
                }
                out.submits += 1
                if out.submits % review_api.RETRY_EVERY == 0:
                    again = await _submit_until_answered(
                        client, url, body, user, "lost-response", h, give_up_at
                    )
                    out.retries += 1
                    if again is None or again.status_code != 200 or again.json() != first:
                        out.retry_mismatches += 1
                break
            error = _body(response).get("error") if isinstance(_body(response), dict) else None
            if response.status_code == 409 and error == "stale_labels":
                # The person sees the current values and decides again on top of them.
                h.conflicts += 1
                current = {c["category_id"]: c for c in response.json().get("current", [])}
                answers = [
                    {**a, "label_version": current[a["category_id"]]["version"]}
                    if a["category_id"] in current
                    else a
                    for a in answers
                ]
                h.resubmits += 1
                continue
            if response.status_code == 409:
                h.lease_lost += 1
            lease[2] = time.monotonic()
            break
        await asyncio.sleep(think * rng.random())


async def run_load(
    base: str, users: dict[str, int], project_id: int, seconds: float, think: float, change: float, h: History
) -> float:
    import httpx

    clients = [
        httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            trust_env=False,
        )
        for _ in users
    ]
    for i in range(0, len(clients), 4):
        await asyncio.gather(*(_login(c, e) for c, e in list(zip(clients, users, strict=True))[i : i + 4]))
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2
    wall0 = time.perf_counter()
    h.started = time.monotonic() + 0.2
    h.ready.set()
    await asyncio.gather(
        *(
            annotator(c, uid, project_id, think, begin + think * i / len(clients), begin + seconds, change, h)
            for i, (c, uid) in enumerate(zip(clients, users.values(), strict=True))
        )
    )
    for client in clients:
        await client.aclose()
    return time.perf_counter() - wall0


def load(
    base: str, users: dict[str, int], project_id: int, seconds: float, think: float, change: float, h: History
) -> float:
    return float(review_api._run(run_load(base, users, project_id, seconds, think, change, h)))


def check(database_url: str, project_id: int, h: History) -> dict[str, Any]:
    """review_api's checks (lost, duplicated, collisions), plus silent overwrites from the events."""
    import psycopg

    figures = review_api.check(database_url, project_id, h.out)
    with psycopg.connect(review_api._psycopg_dsn(database_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT e.label_id, e.category_id, e.assignment_id, e.actor_user_id, e.from_value, e.to_value"
            " FROM label_events e JOIN subjects s ON s.id = e.subject_id WHERE s.project_id = %s"
            " ORDER BY e.label_id, e.id",
            (project_id,),
        )
        events = cur.fetchall()
    silent, unacknowledged, samples = silent_overwrites(events, h.acked.values())
    if samples:
        log("silent overwrites:\n  " + "\n  ".join(samples))
    figures["silent_overwrites"] = silent
    figures["writes_never_acknowledged"] = unacknowledged
    return figures


def silent_overwrites(
    events: Iterable[Sequence[Any]], acked: Iterable[dict[str, Any]]
) -> tuple[int, int, list[str]]:
    """Label writes made on a version their writer had not seen, from the label events (label id,
    category id, assignment id, user id, from value, to value; ordered by label, then event id)
    and the acknowledged submits (user, assignment, answers with the label version seen).
    Returns (silent overwrites, person writes no acknowledged submit explains, samples)."""
    seen = {(a["assignment"], a["user"]): a for a in acked}
    silent = unacknowledged = 0
    samples: list[str] = []
    position: dict[int, int] = {}
    for label_id, category_id, assignment_id, user_id, _from_value, to_value in events:
        # Seeded labels start at version 1 with no event; each event moved the version by one.
        before = 1 + position.get(label_id, 0)
        position[label_id] = position.get(label_id, 0) + 1
        if user_id is None or assignment_id is None:
            continue
        submit = seen.get((int(assignment_id), int(user_id)))
        if submit is None:
            unacknowledged += 1
            continue
        answer = next((a for a in submit["answers"] if a["category_id"] == category_id), None)
        if answer is None or answer["label_version"] != before or answer["value"] != to_value:
            silent += 1
            if len(samples) < 5:
                samples.append(f"label {label_id}: written at version {before}, writer saw {answer}")
    return silent, unacknowledged, samples


def summary(h: History) -> dict[str, Any]:
    return {
        "requests": len(h.entries),
        "acknowledged": len(h.acked),
        "conflicts_409": h.conflicts,
        "lease_lost_409": h.lease_lost,
        "transient_errors": h.transient,
        "answered_after_retry": h.answered_after_retry,
        "unsaved": len(h.unsaved),
        "values_changed": h.changed_values,
        "idempotent_retries": h.out.retries,
        "idempotent_mismatches": h.out.retry_mismatches,
    }


def serve(
    stack: Any, subjects: int, annotators: int, categories: int, shared: float, api_workers: int
) -> Any:
    """A migrated, seeded database of the stack's own, the API and a CPU worker on it."""
    assert stack.postgres is not None
    stack.use_database(stack.postgres.create_database("drill"), AA_ADMIN_EMAIL=review_api.ADMIN_EMAIL)
    setup = prepare(subjects, annotators, categories, stack.data_dir, shared)
    worker = stack.worker("review0", ("cpu",))
    _, base = stack.api(api_workers)
    stack.wait_heartbeat("review0", worker)
    return setup, base, worker
