"""Review-queue API under load: K simulated annotators against the real server on Postgres.

Setup: a fresh Postgres database migrated by the real migrations, an admin and K annotators, a
project with the default taxonomy (human-v1), then N subjects seeded by COPY (placeholder images
pointing at one real JPEG, subjects, predictions and labels in state `predicted` for the first
`--categories` single-choice categories, and one queued review assignment per subject).

The seeding is a bulk load: COPY into the tables without their secondary indexes and unique
constraints (built once afterwards), the per-row foreign-key triggers skipped for that session
(the rows are consistent by construction), then VACUUM ANALYZE and a CHECKPOINT so that the load
does not pay for the bulk write. The project keeps its default settings (gold share 0.1).

Load: the real API (`uvicorn server.main:create_app --factory --workers W --no-access-log`, W from
`--server-workers`, default one process per CPU as a deployment runs it) as a subprocess; each
annotator (one httpx AsyncClient each, on uvloop) logs in (cookie + CSRF header) and loops
{next -> think -> submit -> think} for `--seconds`, accepting the pre-filled values.
Latency is measured from just before sending to the response read. Every 20th acknowledged submit
is sent again with the same client id (the retry must be answered 200 with the same body, not
re-applied); retries are timed apart. A 5xx or a transport error is an error; 4xx are counted by
status.

Afterwards the database is checked against the client's log: every acknowledged submit stored
exactly once (`lost`, `duplicated`), no assignment leased to two people at once or submitted by
two people (`collisions`). The machine is shared: the CPU and I/O pressure (Linux PSI) during
the load are printed with the figures.

    .venv/bin/python bench/review_api.py --subjects 100000 --annotators 16 --seconds 60
    .venv/bin/python bench/review_api.py --subjects 10000 --annotators 8 --think-ms 0

Figures go to stderr; the last line on stdout is one JSON object. Not a test: never collected.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = os.environ.get(
    "AA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password-not-secret"
ADMIN_EMAIL = "bench-admin@example.com"
RETRY_EVERY = 20
LEASE_SECONDS = 300  # the project default (ReviewSettings.lease_seconds)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- database ----------------------------------------------------------------------------------


def _psycopg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"aa_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@dataclass
class Setup:
    project_id: int
    users: dict[str, int]  # annotator email -> user id
    category_ids: list[int]
    seed_seconds: float


def bench_environment(url: str, data_dir: Path) -> dict[str, str]:
    """The AA_* settings of a benchmark's engine on database `url` and data folder `data_dir`."""
    return {
        "AA_DATABASE_URL": url,
        "AA_DATA_DIR": str(data_dir),
        "AA_SOURCE_ROOTS": json.dumps([str(data_dir / "sources")]),
        "AA_LOG_LEVEL": "WARNING",
        "AA_ADMIN_EMAIL": ADMIN_EMAIL,
    }


def prepare(
    n_subjects: int,
    n_annotators: int,
    n_categories: int,
    data_dir: Path,
    before_indexes: Callable[[int], None] | None = None,
) -> Setup:
    """Migrate, create the people and the project, seed the queue. Uses AA_* from the environment.

    `before_indexes(project_id)`, when given, runs on the committed rows before the bulk tables'
    indexes are built (more bulk writes, e.g. a dashboard's history, at no index upkeep)."""
    from server.auth import service as auth_service
    from server.cli import _migrate
    from server.core import runtime
    from server.core.config import ensure_secret, get_settings
    from server.orm import Membership
    from server.orm.enums import Role
    from server.projects import service as projects

    settings = get_settings()
    ensure_secret(settings)
    if settings.uses_filesystem_broker:
        settings.broker_folder().mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _migrate(settings)
    log(f"migrate: {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    users: dict[str, int] = {}
    with runtime.database().session_scope() as session:
        admin = auth_service.create_user(session, ADMIN_EMAIL, PASSWORD, is_admin=True)
        project = projects.create_project(
            session, admin, "Review bench", slug=f"bench-{uuid.uuid4().hex[:8]}"
        )
        for i in range(n_annotators):
            email = f"annotator{i:03d}@example.com"
            user = auth_service.create_user(session, email, PASSWORD)
            session.add(Membership(project_id=project.id, user_id=user.id, role=Role.annotator.value))
            users[email] = user.id
        session.flush()
        project_id, version_id = project.id, project.taxonomy_version_id
        assert version_id is not None
    log(f"users and project: {time.perf_counter() - start:.1f} s ({n_annotators + 1} argon2 hashes)")

    start = time.perf_counter()
    category_ids = seed(
        settings.database_url, project_id, version_id, n_subjects, n_categories, before_indexes
    )
    seed_seconds = time.perf_counter() - start
    log(f"seed: {n_subjects} subjects x {len(category_ids)} categories in {seed_seconds:.1f} s")
    runtime.reset()
    return Setup(project_id, users, category_ids, seed_seconds)


def _blobs() -> tuple[str, str, int, int, int, str]:
    """One real JPEG and its WEBP thumbnail, stored once; every placeholder image points at them."""
    import hashlib

    from server.core import runtime
    from server.demo.synthetic import render_person

    image, _ = render_person(7)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    thumb = image.copy()
    thumb.thumbnail((256, 256))
    tbuffer = io.BytesIO()
    thumb.save(tbuffer, format="WEBP")
    digest = hashlib.sha256(data).hexdigest()
    key, thumb_key = f"images/{digest[:2]}/{digest}.jpg", f"thumbnails/{digest[:2]}/{digest}.webp"
    runtime.storage().put(key, data)
    runtime.storage().put(thumb_key, tbuffer.getvalue())
    return key, thumb_key, image.width, image.height, len(data), digest


def _one(cur: Any) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row[0]


def _reserve_ids(cur: Any, table: str, n: int) -> int:
    """The first of n consecutive ids taken from the table's sequence (we are its only writer)."""
    cur.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
    sequence = _one(cur)
    cur.execute(f"SELECT nextval('{sequence}')")
    first = int(_one(cur))
    cur.execute("SELECT setval(%s, %s)", (sequence, first + n - 1))
    return first


def _copy(cur: Any, table: str, columns: str, lines: Any) -> None:
    """COPY ... FROM STDIN in text format; `columns` space-separated, `lines` yields ready
    tab-separated lines."""
    statement = f"COPY {table} ({', '.join(columns.split())}) FROM STDIN"
    with cur.copy(statement) as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 20000:
                copy.write("".join(chunk))
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))


def _pick_categories(cur: Any, version_id: int, n: int) -> list[tuple[int, str, list[str]]]:
    """The first n single-choice categories of the version that are routed by default (not
    sensitive), in taxonomy order, with their value keys."""
    cur.execute(
        "SELECT c.id, c.key FROM taxonomy_categories c JOIN taxonomy_regions r ON r.id = c.region_id "
        "WHERE c.taxonomy_version_id = %s AND c.kind = 'single' AND NOT c.sensitive "
        "ORDER BY r.position, c.position LIMIT %s",
        (version_id, n),
    )
    picked = []
    for category_id, key in cur.fetchall():
        cur.execute(
            "SELECT key FROM taxonomy_values WHERE category_id = %s ORDER BY position", (category_id,)
        )
        values = [row[0] for row in cur.fetchall()]
        for value in values:
            assert all(ch not in value for ch in '\t\n\\"'), value
        picked.append((int(category_id), str(key), values))
    if len(picked) < n:
        raise SystemExit(f"the taxonomy has only {len(picked)} single-choice categories")
    return picked


BULK_TABLES = ("images", "subjects", "predictions", "labels", "label_events", "assignments")


def _drop_indexes(cur: Any, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Drops the tables' indexes and unique constraints (primary keys stay) and returns the
    statements that build them again: a bulk load then builds each index once, sorted, instead
    of inserting every row into it."""
    cur.execute(
        "SELECT t.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, "
        "pg_get_constraintdef(c.oid) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
        "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('u', 'x') "
        "AND c.conrelid = i.indrelid "
        "WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace AND NOT i.indisprimary",
        (list(tables),),
    )
    rebuild = []
    for table, index, index_def, constraint, constraint_def in cur.fetchall():
        if constraint is not None:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            rebuild.append((index, f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_def}'))
        else:
            cur.execute(f"DROP INDEX {index}")
            rebuild.append((index, index_def))
    return rebuild


def seed(
    url: str,
    project_id: int,
    version_id: int,
    n: int,
    n_categories: int,
    before_indexes: Callable[[int], None] | None = None,
) -> list[int]:
    """N images, subjects, predictions, labels and queued review assignments, by COPY into the
    tables without their secondary indexes, which are built afterwards."""
    import psycopg

    key, thumb_key, width, height, size, _ = _blobs()
    rng = random.Random(20261126)
    now = datetime.now(UTC).isoformat()
    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        # Bulk load: the rows are consistent by construction, so the per-row foreign-key
        # triggers are skipped for this session (needs a superuser; checked otherwise).
        try:
            cur.execute("SET session_replication_role = replica")
            fk_checks = "skipped (session_replication_role = replica)"
        except psycopg.Error:
            conn.rollback()
            fk_checks = "checked per row"
        categories = _pick_categories(cur, version_id, n_categories)
        cur.execute(
            "INSERT INTO model_versions (project_id, family, version, spec, status, metrics, created_at) "
            "VALUES (%s, 'stats', 'bench-1', '{}', 'active', '{}', now()) RETURNING id",
            (project_id,),
        )
        model_version_id = int(_one(cur))
        rebuild = _drop_indexes(cur, BULK_TABLES)

        t0 = time.perf_counter()
        first_image = _reserve_ids(cur, "images", n)
        _copy(
            cur,
            "images",
            "id project_id sha256 storage_key thumbnail_key original_name mime width height bytes "
            "stage stage_changed_at quality licence consent created_at",
            (
                f"{first_image + i}\t{project_id}\t{first_image + i:064x}\t{key}\t{thumb_key}\t"
                f"bench-{i}.jpg\timage/jpeg\t{width}\t{height}\t{size}\tprelabeled\t{now}\t{{}}\t\t\t{now}\n"
                for i in range(n)
            ),
        )
        first_subject = _reserve_ids(cur, "subjects", n)
        bbox = json.dumps([0, 0, width, height])
        _copy(
            cur,
            "subjects",
            "id image_id project_id index bbox shot_type detector_score created_at",
            (
                f"{first_subject + i}\t{first_image + i}\t{project_id}\t0\t{bbox}\tfull_body\t1.0\t{now}\n"
                for i in range(n)
            ),
        )
        t1 = time.perf_counter()
        log(f"  images + subjects: {t1 - t0:.1f} s")

        # Per category and predicted value: the value's JSON and a distribution peaked on it.
        choices = []
        for category_id, _, values in categories:
            options = []
            for value in values:
                rest = (1.0 - 0.7) / max(1, len(values) - 1)
                distribution = {v: round(0.7 if v == value else rest, 4) for v in values}
                options.append((json.dumps(value), json.dumps(distribution)))
            choices.append((category_id, options))
        picks = [[rng.randrange(len(options)) for _, options in choices] for _ in range(n)]
        confidences = [round(0.3 + 0.69 * rng.random(), 4) for _ in range(997)]

        _copy(
            cur,
            "predictions",
            "subject_id category_id model_version_id value confidence distribution created_at",
            (
                f"{first_subject + i}\t{category_id}\t{model_version_id}\t{options[pick[j]][0]}\t"
                f"{confidences[(i * 31 + j) % 997]}\t{options[pick[j]][1]}\t{now}\n"
                for i, pick in enumerate(picks)
                for j, (category_id, options) in enumerate(choices)
            ),
        )
        t2 = time.perf_counter()
        log(f"  predictions ({n * len(choices)} rows): {t2 - t1:.1f} s")
        _copy(
            cur,
            "labels",
            "subject_id category_id taxonomy_version_id value "
            "state confidence version model_version_id updated_at",
            (
                f"{first_subject + i}\t{category_id}\t{version_id}\t{options[pick[j]][0]}\tpredicted\t"
                f"{confidences[(i * 31 + j) % 997]}\t1\t{model_version_id}\t{now}\n"
                for i, pick in enumerate(picks)
                for j, (category_id, options) in enumerate(choices)
            ),
        )
        t3 = time.perf_counter()
        log(f"  labels ({n * len(choices)} rows): {t3 - t2:.1f} s")
        category_json = json.dumps([c[0] for c in categories])
        _copy(
            cur,
            "assignments",
            "project_id subject_id kind queue_rank category_ids status priority created_at",
            (
                f"{project_id}\t{first_subject + i}\treview\t2\t{category_json}\tqueued\t"
                f"{round(rng.random(), 6)}\t{now}\n"
                for i in range(n)
            ),
        )
        t4 = time.perf_counter()
        log(f"  assignments: {t4 - t3:.1f} s")
        conn.commit()
        if before_indexes is not None:
            before_indexes(project_id)
        t4 = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        for _, statement in rebuild:
            cur.execute(statement)
        conn.commit()
        log(f"  indexes ({len(rebuild)}) built: {time.perf_counter() - t4:.1f} s")
        t4 = time.perf_counter()
        conn.autocommit = True
        for table in BULK_TABLES:
            cur.execute(f"VACUUM ANALYZE {table}")
        # Write the bulk load's dirty pages out now, so the checkpointer does not do it during
        # the load (commits would wait behind its writes: that measures the seeding, not the API).
        t5 = time.perf_counter()
        cur.execute("CHECKPOINT")
        log(
            f"  vacuum analyze: {t5 - t4:.1f} s; checkpoint: {time.perf_counter() - t5:.1f} s; "
            f"foreign-key checks {fk_checks}"
        )
    return [c[0] for c in categories]


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, env: dict[str, str], log_path: Path, workers: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "server.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    out = log_path.open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            body = httpx.get(f"{base}/api/v1/health", timeout=2, trust_env=False).json()
            if body.get("database", {}).get("ok"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server was not healthy in {timeout} s:\n{log_path.read_text()[-4000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Log:
    next_ms: list[float] = field(default_factory=list)
    # (perf_counter at send, "next" | "submit", ms): latency over the run
    timeline: list[tuple[float, str, float]] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    retry_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    # assignment id -> [(user id, received at, released at)]
    served: dict[int, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    # (user id, client id, assignment id, number of answers)
    acked: list[tuple[int, str, int, int]] = field(default_factory=list)
    retries: int = 0
    submits: int = 0  # acknowledged, over all annotators: every RETRY_EVERY-th is sent twice
    retry_mismatches: int = 0
    empty_queue: int = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(what)


def _answers(assignment: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"category_id": c["id"], "value": c["label"]["value"], "label_version": c["label"]["version"]}
        for c in assignment["categories"]
        if c["label"] is not None
    ]


async def annotator(
    client: Any, user_id: int, project_id: int, think: float, start_at: float, stop_at: float, out: Log
) -> None:
    import httpx

    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    while loop.time() < stop_at:
        t0 = clock()
        try:
            response = await client.post(f"/api/v1/projects/{project_id}/assignments/next")
        except httpx.HTTPError as exc:
            out.error(f"next: {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(think, 0.05))
            continue
        out.next_ms.append((clock() - t0) * 1000)
        out.timeline.append((t0, "next", out.next_ms[-1]))
        out.statuses[f"next {response.status_code}"] += 1
        if response.status_code >= 500:
            out.error(f"next: {response.status_code} {response.text[:200]}")
            await asyncio.sleep(max(think, 0.05))
            continue
        if response.status_code == 204:
            out.empty_queue += 1
            await asyncio.sleep(max(think, 0.05))
            continue
        if response.status_code != 200:
            await asyncio.sleep(max(think, 0.05))
            continue
        assignment = response.json()
        lease = [float(user_id), time.monotonic(), time.monotonic() + LEASE_SECONDS]
        out.served[int(assignment["id"])].append(lease)
        if think:
            await asyncio.sleep(think)
        answers = _answers(assignment)
        client_id = str(uuid.uuid4())
        body = {"client_id": client_id, "answers": answers, "lead_time_ms": int(think * 1000)}
        url = f"/api/v1/assignments/{assignment['id']}/submit"
        t0 = clock()
        try:
            response = await client.post(url, json=body)
        except httpx.HTTPError as exc:
            out.error(f"submit: {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(think, 0.05))
            continue
        out.submit_ms.append((clock() - t0) * 1000)
        out.timeline.append((t0, "submit", out.submit_ms[-1]))
        out.statuses[f"submit {response.status_code}"] += 1
        if response.status_code >= 500:
            out.error(f"submit: {response.status_code} {response.text[:200]}")
        elif response.status_code == 200:
            lease[2] = time.monotonic()
            out.acked.append((user_id, client_id, int(assignment["id"]), len(answers)))
            out.submits += 1
            if out.submits % RETRY_EVERY == 0:
                # The response was "lost": the client sends the same submit again.
                first = response.json()
                t0 = clock()
                try:
                    again = await client.post(url, json=body)
                except httpx.HTTPError as exc:
                    out.error(f"retry: {type(exc).__name__}: {exc}")
                else:
                    out.retry_ms.append((clock() - t0) * 1000)
                    out.retries += 1
                    out.statuses[f"retry {again.status_code}"] += 1
                    if again.status_code >= 500:
                        out.error(f"retry: {again.status_code} {again.text[:200]}")
                    if again.status_code != 200 or again.json() != first:
                        out.retry_mismatches += 1
        if think:
            await asyncio.sleep(think)


async def run_load(
    base: str, users: dict[str, int], project_id: int, seconds: float, think: float
) -> tuple[Log, float, float]:
    import httpx

    clients = []
    for _ in users:
        client = httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            trust_env=False,
        )
        clients.append(client)

    async def login(client: httpx.AsyncClient, email: str) -> None:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]

    # Argon2 makes each login ~50 ms of server CPU: a few at a time, outside the clock.
    for i in range(0, len(clients), 4):
        await asyncio.gather(*(login(c, e) for c, e in list(zip(clients, users, strict=True))[i : i + 4]))
    out = Log()
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2
    stop_at = begin + seconds
    # Start staggered over one think time, so the annotators do not move in lockstep.
    stagger = think if think else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(
        *(
            annotator(c, uid, project_id, think, begin + stagger * i / len(clients), stop_at, out)
            for i, (c, uid) in enumerate(zip(clients, users.values(), strict=True))
        )
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    for client in clients:
        await client.aclose()
    return out, wall, cpu


# -- checks ------------------------------------------------------------------------------------


def check(url: str, project_id: int, out: Log, after_event: int = 0) -> dict[str, int]:
    """The database against the client's log; review events up to `after_event` (a history seeded
    before the load) are not the load's."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT s.user_id, s.client_id, min(s.assignment_id), count(*) FROM submissions s "
            "JOIN assignments a ON a.id = s.assignment_id WHERE a.project_id = %s "
            "GROUP BY s.user_id, s.client_id",
            (project_id,),
        )
        submissions = {(int(u), c): (int(a), int(n)) for u, c, a, n in cur.fetchall()}
        cur.execute(
            "SELECT e.assignment_id, e.actor_user_id, count(*) FROM label_events e "
            "JOIN assignments a ON a.id = e.assignment_id WHERE a.project_id = %s AND e.reason = 'review' "
            "AND e.id > %s GROUP BY e.assignment_id, e.actor_user_id",
            (project_id, after_event),
        )
        events = {(int(a), int(u)): int(n) for a, u, n in cur.fetchall()}
        cur.execute(
            "SELECT s.assignment_id FROM submissions s JOIN assignments a ON a.id = s.assignment_id "
            "WHERE a.project_id = %s GROUP BY s.assignment_id HAVING count(DISTINCT s.user_id) > 1",
            (project_id,),
        )
        submitted_by_two = {int(r[0]) for r in cur.fetchall()}
        # Seeded labels start at version 1 (with a creation event or none); every write since
        # moved the version by one and appended one event: a mismatch is a write that went
        # unrecorded.
        cur.execute(
            "SELECT count(*) FROM labels l JOIN subjects s ON s.id = l.subject_id "
            "JOIN (SELECT label_id, count(*) AS n FROM label_events WHERE from_state IS NOT NULL "
            "GROUP BY label_id) e "
            "ON e.label_id = l.id WHERE s.project_id = %s AND l.version <> 1 + e.n",
            (project_id,),
        )
        version_mismatches = int(_one(cur))
    lost = duplicated = 0
    acked_keys = set()
    for user_id, client_id, assignment_id, n_answers in out.acked:
        acked_keys.add((assignment_id, user_id))
        stored = submissions.get((user_id, client_id))
        n_events = events.get((assignment_id, user_id), 0)
        if stored is None or stored[0] != assignment_id or n_events < n_answers:
            lost += 1
        if stored is not None:
            duplicated += stored[1] - 1
        duplicated += max(0, n_events - n_answers)
    unacknowledged_stored = sum(1 for key in events if key not in acked_keys)
    # Two people holding live leases on the same assignment at once.
    overlapping = set()
    for assignment_id, leases in out.served.items():
        for i, (user_a, start_a, end_a) in enumerate(leases):
            for user_b, start_b, end_b in leases[i + 1 :]:
                if user_a != user_b and start_a < end_b and start_b < end_a:
                    overlapping.add(assignment_id)
    served_twice = sum(1 for leases in out.served.values() if len({u for u, _, _ in leases}) > 1)
    return {
        "lost": lost,
        "duplicated": duplicated,
        "collisions": len(overlapping | submitted_by_two),
        "served_to_two_people": served_twice,
        "unacknowledged_stored": unacknowledged_stored,
        "label_version_mismatches": version_mismatches,
    }


def explain_claim(url: str, project_id: int, user_id: int) -> str:
    """The claim query's plan at this size (the hot path of `next`), without claiming."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            "SELECT id FROM assignments WHERE project_id = %s AND status = 'queued' AND queue_rank >= 2 "
            "AND (assignee_id IS NULL OR assignee_id = %s) "
            "ORDER BY queue_rank DESC, priority DESC, id DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
            (project_id, user_id),
        )
        plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    return plan


def pressure_us(resource: str = "cpu") -> int | None:
    """Microseconds some task waited for `resource` (cpu, io), machine-wide (Linux PSI): how
    noisy the box was while we measured."""
    try:
        line = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
        return int(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        index = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
        return round(ordered[index], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}


def report_load(
    timeline: list[tuple[float, str, float]],
    seconds: float,
    wall: float,
    cpu: float,
    pressure0: dict[str, int | None],
    pressure1: dict[str, int | None],
    load_average: tuple[float, float, float],
) -> dict[str, float | None]:
    """Logs latency over time, the load generator's CPU and the machine's pressure during the
    load; returns the CPU and I/O pressure in percent of the wall time (None without PSI)."""
    if timeline:
        origin = min(t for t, _, _ in timeline)
        width = max(1.0, seconds / 6)
        buckets: dict[int, list[float]] = defaultdict(list)
        for t, _, ms in timeline:
            buckets[int((t - origin) // width)].append(ms)
        log("latency over time (next and submit together):")
        for b in sorted(buckets):
            q = percentiles(buckets[b])
            log(
                f"  {b * width:5.0f}-{(b + 1) * width:<5.0f}s n={len(buckets[b]):5d} p50 {q['p50']} "
                f"p99 {q['p99']} max {max(buckets[b]):.1f}"
            )
    log(f"load generator CPU: {cpu:.1f} s over {wall:.1f} s wall ({100 * cpu / wall:.0f}% of one core)")
    pressure: dict[str, float | None] = {}
    for resource in ("cpu", "io"):
        before, after = pressure0[resource], pressure1[resource]
        pressure[resource] = (
            round(100 * (after - before) / 1e6 / wall, 1)
            if before is not None and after is not None
            else None
        )
    log(
        f"machine during the load: some task waited for a CPU {pressure['cpu']}% and for I/O "
        f"{pressure['io']}% of the time; load average {load_average[0]:.2f} on {os.cpu_count()} CPUs"
    )
    return pressure


def _run(coroutine: Any) -> Any:
    """uvloop when installed (less client CPU per request), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@dataclass
class LoadRun:
    out: Log
    wall: float
    cpu: float  # the load generator's
    pressure0: dict[str, int | None]
    pressure1: dict[str, int | None]
    load_average: tuple[float, float, float]


def load(base: str, users: dict[str, int], project_id: int, seconds: float, think: float) -> LoadRun:
    """The annotators' load against the server at `base`, with the machine's pressure around it."""
    pressure0 = {r: pressure_us(r) for r in ("cpu", "io")}
    out, wall, cpu = _run(run_load(base, users, project_id, seconds, think))
    pressure1 = {r: pressure_us(r) for r in ("cpu", "io")}
    return LoadRun(out, wall, cpu, pressure0, pressure1, os.getloadavg())


def stop_and_show(process: subprocess.Popen[bytes], server_log: Path) -> None:
    """Stops the server (so no request is in flight for the checks) and logs its log's tail."""
    stop_server(process)
    if process.returncode not in (0, -signal.SIGINT):
        log(f"server exit code {process.returncode}")
    tail = server_log.read_text(errors="replace").strip()
    if tail:
        log("server log (tail):\n" + tail[-3000:])


def summarise(run: LoadRun, figures: dict[str, int], seconds: float) -> dict[str, Any]:
    """Logs the load's figures and checks; returns them for the JSON line."""
    out, wall = run.out, run.wall
    submits = len(out.acked)
    log(
        f"load: {wall:.1f} s wall, {len(out.next_ms)} next, {submits} submits acknowledged, "
        f"{out.empty_queue} empty-queue answers"
    )
    log(f"statuses: {dict(sorted(out.statuses.items()))}")
    log(f"next ms   {percentiles(out.next_ms)}  max {max(out.next_ms, default=0):.1f}")
    log(f"submit ms {percentiles(out.submit_ms)}  max {max(out.submit_ms, default=0):.1f}")
    log(f"retry ms  {percentiles(out.retry_ms)}  ({out.retries} retries, {out.retry_mismatches} mismatched)")
    pressure = report_load(
        out.timeline, seconds, wall, run.cpu, run.pressure0, run.pressure1, run.load_average
    )
    log(f"checks: {figures}")
    if out.error_samples:
        log("errors (first 10):\n  " + "\n  ".join(out.error_samples))
    return {
        "next_ms": percentiles(out.next_ms),
        "submit_ms": percentiles(out.submit_ms),
        "submits_per_s": round(submits / wall, 2),
        "errors": out.errors,
        "collisions": figures["collisions"],
        "lost": figures["lost"],
        "duplicated": figures["duplicated"],
        "idempotent_retries": out.retries,
        "idempotent_mismatches": out.retry_mismatches,
        "served_to_two_people": figures["served_to_two_people"],
        "cpu_pressure_pct": pressure["cpu"],
        "io_pressure_pct": pressure["io"],
    }


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think-ms", type=float, default=1000.0, help="0 measures saturation")
    parser.add_argument("--categories", type=int, default=15, help="first N single-choice categories")
    parser.add_argument("--database-url", default=None, help="default: a fresh aa_bench_* database")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument(
        "--server-workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes"
    )
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--keep", action="store_true", help="keep the database and the data folder")
    args = parser.parse_args()

    created = args.database_url is None
    url = create_database(args.postgres_admin_url) if created else args.database_url
    data_dir = Path(tempfile.mkdtemp(prefix="aa-bench-review-"))
    env = bench_environment(url, data_dir)
    os.environ.update(env)
    log(f"database {url.rsplit('/', 1)[-1]}, data {data_dir}")
    process = None
    try:
        setup = prepare(args.subjects, args.annotators, args.categories, data_dir)
        first_user = next(iter(setup.users.values()))
        log("claim query plan:\n  " + explain_claim(url, setup.project_id, first_user).replace("\n", "\n  "))

        port = args.port or free_port()
        base = f"http://127.0.0.1:{port}"
        server_log = data_dir / "server.log"
        process = start_server(port, {**os.environ, **env}, server_log, args.server_workers)
        wait_healthy(base, process, server_log)
        log(f"server up on {base} (uvicorn, {args.server_workers} worker processes)")

        run = load(base, setup.users, setup.project_id, args.seconds, args.think_ms / 1000.0)
        stop_and_show(process, server_log)
        figures = check(url, setup.project_id, run.out)
    finally:
        if process is not None:
            stop_server(process)
        if created and not args.keep:
            from server.core import runtime

            runtime.reset()
            drop_database(args.postgres_admin_url, url)
        if not args.keep:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)

    result = {
        "subjects": args.subjects,
        "annotators": args.annotators,
        "seconds": args.seconds,
        "think_ms": args.think_ms,
        "server_workers": args.server_workers,
        **summarise(run, figures, args.seconds),
        "seed_seconds": round(setup.seed_seconds, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
