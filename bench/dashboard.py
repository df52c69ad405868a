"""Dashboard endpoints on a project of N subjects (default 100,000) on Postgres.

Setup: the review benchmark's bulk seeding (bench/review_api.py `prepare`: images, subjects,
predictions and labels of `--categories` categories, one queued review assignment per subject),
and, by SQL before the bulk tables' indexes are built, the history a dashboard reads: the images
split between two sources, 5% of them filtered with reasons, assignments created over the last
three days, 30% of them submitted by the annotators (lead times, changed fields) with their
labels verified, each label's events (its pre-label, and the review that verified it), audits
of 2% of the reviews, gold answers on 5%, and one finished export of 20% of the subjects.

Load: the real API (uvicorn, one process) as a subprocess; the admin signs in and calls every
endpoint the dashboard pages call (the dashboard's own and the existing project endpoints),
`--calls` times each, one after another. The machine's load average is printed with the figures
(a shared machine inflates every one of them). Figures go to stderr; the last line on stdout is one
JSON object: {"subjects", "endpoints": {path: {"p50_ms", "max_ms", "first_ms"}}, "slowest_ms",
"beat_funnel_ms", "beat_work_ms", "load_average"} (`slowest_ms`: the largest max over the
endpoints; `first_ms`: the first call, included in max; `beat_funnel_ms`, `beat_work_ms`: the
beat's count of the funnel and the work series, which the endpoints of a project this large read
back while fresh, see server.dashboard).

    .venv/bin/python bench/dashboard.py --subjects 100000

Not a test: never collected.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from review_api import (  # noqa: E402
    ADMIN_EMAIL,
    DEFAULT_ADMIN_URL,
    PASSWORD,
    _psycopg_dsn,
    bench_environment,
    create_database,
    drop_database,
    free_port,
    log,
    prepare,
    start_server,
    stop_server,
    wait_healthy,
)

ENDPOINTS = [
    "/projects/{id}/dashboard/funnel",
    "/projects/{id}/dashboard/work?hours=48",
    "/projects/{id}/dashboard/annotators",
    "/projects/{id}/pipeline",
    "/projects/{id}/images/stats",
    "/projects/{id}/assignments/stats",
    "/projects/{id}/annotators",
    "/projects/{id}/flywheel",
    "/projects/{id}/rounds",
    "/projects/{id}/eval-set",
    "/projects/{id}/model-versions",
    "/projects/{id}/exports",
    "/projects/{id}/sources",
    "/projects/{id}/ingest-runs",
    "/projects/{id}/rejections",
    "/projects/{id}/taxonomy",
    "/projects/{id}/members",
    "/projects/{id}/invites",
]

HISTORY_SQL = [
    # Two sources; images alternate between them.
    "INSERT INTO sources (project_id, kind, name, config, licence, consent, created_at) VALUES "
    "(%(p)s, 'folder', 'shoots-2026', '{}', '', '', now()), "
    "(%(p)s, 'upload', 'uploads', '{}', '', '', now())",
    "UPDATE images SET source_id = (SELECT min(id) FROM sources WHERE project_id = %(p)s) + (id %% 2) "
    "WHERE project_id = %(p)s",
    "UPDATE images SET stage = 'filtered', filter_reason = (ARRAY['low_sharpness', 'shot_type', "
    "'too_dark'])[1 + id %% 3] WHERE project_id = %(p)s AND id %% 20 = 0",
    # Created over three days; 30% submitted since, by the annotators.
    "UPDATE assignments SET created_at = now() - make_interval(secs => 259200 * random()) "
    "WHERE project_id = %(p)s",
    "UPDATE assignments a SET status = 'submitted', submitted_by_id = u.ids[1 + a.id %% cardinality(u.ids)], "
    "submitted_at = a.created_at + (now() - a.created_at) * random(), "
    "leased_at = a.created_at, lead_time_ms = 1500 + (20000 * random())::int, "
    "changed_fields = (random() < 0.2)::int "
    "FROM (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM memberships "
    "WHERE project_id = %(p)s AND role = 'annotator') u "
    "WHERE a.project_id = %(p)s AND a.id %% 10 < 3",
    # Every label's history: its creation by the pre-label, then the reviewer's decision.
    "INSERT INTO label_events (label_id, subject_id, category_id, actor_model_version_id, to_value, "
    "to_state, reason, created_at) SELECT l.id, l.subject_id, l.category_id, l.model_version_id, l.value, "
    "'predicted', 'prelabel', l.updated_at FROM labels l JOIN subjects s ON s.id = l.subject_id "
    "WHERE s.project_id = %(p)s",
    "UPDATE labels l SET state = 'verified', decided_by_id = a.submitted_by_id, version = l.version + 1, "
    "updated_at = a.submitted_at FROM assignments a "
    "WHERE a.subject_id = l.subject_id AND a.project_id = %(p)s AND a.status = 'submitted'",
    "INSERT INTO label_events (label_id, subject_id, category_id, actor_user_id, assignment_id, "
    "from_value, to_value, from_state, to_state, reason, created_at) SELECT l.id, l.subject_id, "
    "l.category_id, a.submitted_by_id, a.id, l.value, l.value, 'predicted', 'verified', 'review', "
    "a.submitted_at FROM labels l JOIN assignments a ON a.subject_id = l.subject_id "
    "WHERE a.project_id = %(p)s AND a.status = 'submitted' AND l.state = 'verified'",
    # Audits of 2% of the reviews, by the admin; a fifth changed a field.
    "INSERT INTO assignments (project_id, subject_id, kind, queue_rank, category_ids, status, priority, "
    "submitted_by_id, submitted_at, lead_time_ms, changed_fields, created_at) "
    "SELECT project_id, subject_id, 'audit', 0, category_ids, 'submitted', 0, %(admin)s, now(), 3000, "
    "(random() < 0.2)::int, now() - interval '1 hour' FROM assignments "
    "WHERE project_id = %(p)s AND status = 'submitted' AND id %% 15 = 0",
    # Gold answers on 5% of the subjects, one category each, 90% correct.
    "INSERT INTO gold_answers (project_id, assignment_id, user_id, subject_id, category_id, value, "
    "gold_value, correct, created_at) "
    "SELECT a.project_id, a.id, a.submitted_by_id, a.subject_id, (a.category_ids->>0)::int, "
    "'\"x\"', '\"x\"', random() < 0.9, now() FROM assignments a "
    "WHERE a.project_id = %(p)s AND a.kind = 'review' AND a.status = 'submitted' AND a.id %% 6 = 0",
]

EXPORT_SQL = [
    "INSERT INTO snapshots (project_id, taxonomy_version_id, label_event_high_water, "
    "prediction_high_water, filters, subject_count, created_at) SELECT id, taxonomy_version_id, 0, 0, "
    "'{}', 0, now() FROM projects WHERE id = %(p)s RETURNING id",
]


def seed_history(url: str, project_id: int, admin_id: int) -> None:
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        # Consistent by construction, like the bulk seeding: no per-row foreign-key triggers.
        try:
            cur.execute("SET session_replication_role = replica")
        except psycopg.Error:
            conn.rollback()
        params = {"p": project_id, "admin": admin_id}
        for statement in HISTORY_SQL:
            cur.execute(statement, params)
        cur.execute(EXPORT_SQL[0], params)
        row = cur.fetchone()
        assert row is not None
        snapshot_id = int(row[0])
        cur.execute(
            "INSERT INTO snapshot_subjects (snapshot_id, position, subject_id) "
            "SELECT %s, row_number() OVER (ORDER BY id) - 1, id FROM subjects "
            "WHERE project_id = %s AND id %% 5 = 0",
            (snapshot_id, project_id),
        )
        cur.execute(
            "UPDATE snapshots SET subject_count = (SELECT count(*) FROM snapshot_subjects "
            "WHERE snapshot_id = %s) WHERE id = %s",
            (snapshot_id, snapshot_id),
        )
        cur.execute(
            "INSERT INTO exports (project_id, snapshot_id, format, destination, options, status, progress, "
            "counts, created_at, finished_at) VALUES (%s, %s, 'jsonl', 'bench', '{}', 'done', 1, '{}', "
            "now(), now())",
            (project_id, snapshot_id),
        )
        conn.commit()
        conn.autocommit = True
        for table in (
            "images",
            "assignments",
            "labels",
            "label_events",
            "gold_answers",
            "snapshot_subjects",
            "sources",
        ):
            cur.execute(f"VACUUM ANALYZE {table}")
    log(f"history: {time.perf_counter() - start:.1f} s")


def store_figures() -> dict[str, float]:
    """What the beat does every minute (server.dashboard.tasks): count and store the slow figures
    of large projects (funnel, work series, flywheel activity, the active labeler's
    predictions). Returns the milliseconds each took; their endpoints then read one row."""
    from server.core import runtime
    from server.dashboard import service
    from server.flywheel import service as flywheel
    from server.prelabel import service as prelabel

    took: dict[str, float] = {}
    for name, store in (
        ("funnel", service.store_funnels),
        ("work", service.store_work),
        ("flywheel_activity", flywheel.store_activity),
        ("predictions", prelabel.store_prediction_counts),
    ):
        start = time.perf_counter()
        with runtime.database().session_scope() as session:
            stored = store(session)
        took[name] = (time.perf_counter() - start) * 1000
        log(f"beat: {name} of projects {stored} counted and stored in {took[name]:.0f} ms")
    runtime.reset()
    return took


def prepare_with_history(url: str, subjects: int, annotators: int, categories: int, data_dir: Path) -> Any:
    """The review benchmark's bulk seeding with this history written before its indexes are built."""
    return prepare(
        subjects,
        annotators,
        categories,
        data_dir,
        lambda project_id: seed_history(url, project_id, admin_id(url)),
    )


def admin_id(url: str) -> int:
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE email = %s", (ADMIN_EMAIL,))
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def measure(base: str, project_id: int, calls: int) -> dict[str, dict[str, float]]:
    import httpx

    with httpx.Client(base_url=f"{base}/api/v1", timeout=60, trust_env=False) as client:
        response = client.post("/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
        response.raise_for_status()
        figures: dict[str, dict[str, float]] = {}
        for template in ENDPOINTS:
            path = template.format(id=project_id)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code} {response.text[:500]}")
            figures[template] = {
                "p50_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "first_ms": round(times[0], 1),
            }
            p50, worst = figures[template]["p50_ms"], figures[template]["max_ms"]
            log(f"{template:45s} p50 {p50:7.1f} ms  max {worst:7.1f} ms")
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--categories", type=int, default=15, help="first N single-choice categories")
    parser.add_argument("--calls", type=int, default=5, help="calls per endpoint")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the database and the data folder")
    args = parser.parse_args()

    url = create_database(args.postgres_admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="aa-bench-dashboard-"))
    env = bench_environment(url, data_dir)
    os.environ.update(env)
    log(f"database {url.rsplit('/', 1)[-1]}, data {data_dir}")
    process = None
    try:
        setup = prepare_with_history(url, args.subjects, args.annotators, args.categories, data_dir)
        beat_ms = store_figures()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server_log = data_dir / "server.log"
        process = start_server(port, {**os.environ, **env}, server_log, 1)
        wait_healthy(base, process, server_log)
        figures = measure(base, setup.project_id, args.calls)
        load_average = os.getloadavg()
    finally:
        if process is not None:
            stop_server(process)
        if not args.keep:
            from server.core import runtime

            runtime.reset()
            drop_database(args.postgres_admin_url, url)
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
    log(f"load average during the calls (1, 5, 15 min): {load_average}; {os.cpu_count()} CPUs")
    result: dict[str, Any] = {
        "subjects": args.subjects,
        "endpoints": figures,
        "slowest_ms": max(f["max_ms"] for f in figures.values()),
        "beat_funnel_ms": round(beat_ms["funnel"], 1),
        "beat_work_ms": round(beat_ms["work"], 1),
        "load_average": [round(x, 2) for x in load_average],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
