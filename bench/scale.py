"""The engine at scale: 1,000,000 subjects x 20 categories on Postgres (docs/PERFORMANCE.md).

1. Fill: a fresh Postgres database migrated by the real migrations, filled by the review
   benchmark's bulk path (bench/review_api.py `prepare`: COPY of images, subjects, predictions,
   labels and one queued review assignment per subject, 16 annotators) and the dashboard
   benchmark's history (bench/dashboard.py `seed_history`), written before the bulk tables'
   indexes are built. With `--database-url` a database this script filled before (`--keep`) is
   measured again as it is, without a fill.
2. Dashboard: what the beat stores for a large project (the funnel, the work series, the
   flywheel's activity, the pipeline's prediction count), then every endpoint the dashboard pages
   call (bench/dashboard.py `ENDPOINTS`), `--calls` times each, against the real API (uvicorn).
3. Routing a round: what a flywheel round's re-label writes once the GPU has answered. A new
   model version is promoted, trusted on every other routed category (cut 0.8); its predictions
   for `--round-subjects` subjects that still have a queued review are persisted and routed by
   the real code (`server.prelabel.service.persist_predictions`, which upserts the predictions,
   moves the labels and calls `server.assignments.routing.route`), in batches of the re-label's
   chunk (`server.flywheel.service.RELABEL_CHUNK` images), one transaction each, as the persist
   task runs them. Also timed: the round's selection of the images to re-label
   (`server.flywheel.repository.undecided_image_ids`) over the whole project.
4. Review: `--annotators` simulated annotators against the API for `--seconds` with
   `--think-ms` between steps (bench/review_api.py `load` and `check`): next and submit
   latency, and the collisions, lost and duplicated submits found in the database afterwards.

`--steps` picks which of 2 to 4 run (default all of them, in that order); the fill of a new
database always runs. The machine's load average and CPU and I/O pressure are printed with the
figures: on a shared machine every figure is an upper bound.

    .venv/bin/python bench/scale.py --keep            # fill 1M x 20, measure, keep the database
    .venv/bin/python bench/scale.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/aa_bench_...
    .venv/bin/python bench/scale.py --database-url ... --steps dashboard   # only the dashboard
    .venv/bin/python bench/scale.py --subjects 2000 --categories 5 --seconds 5 --round-subjects 500

Figures go to stderr; the last line on stdout is one JSON object. Not a test: never collected.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dashboard import measure, prepare_with_history, store_figures  # noqa: E402
from review_api import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    Setup,
    _psycopg_dsn,
    bench_environment,
    check,
    create_database,
    drop_database,
    free_port,
    load,
    log,
    percentiles,
    start_server,
    stop_and_show,
    stop_server,
    summarise,
    wait_healthy,
)

TRUST_CUT = 0.8
STEPS = ("dashboard", "round", "review")


def filled_setup(url: str) -> Setup:
    """The project, annotators and categories of a database this script filled before."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM projects WHERE slug LIKE 'bench-%%' ORDER BY id LIMIT 1")
        row = cur.fetchone()
        if row is None:
            raise SystemExit(f"{url}: no benchmark project (fill one with --keep first)")
        project_id = int(row[0])
        cur.execute(
            "SELECT u.email, u.id FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.project_id = %s AND m.role = 'annotator' ORDER BY u.email",
            (project_id,),
        )
        users = {str(email): int(user_id) for email, user_id in cur.fetchall()}
        cur.execute(
            "SELECT DISTINCT l.category_id FROM labels l WHERE l.subject_id = "
            "(SELECT min(id) FROM subjects WHERE project_id = %s) ORDER BY 1",
            (project_id,),
        )
        category_ids = [int(r[0]) for r in cur.fetchall()]
    return Setup(project_id, users, category_ids, 0.0)


def _scalar(url: str, query: str) -> int:
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
        assert row is not None
        return int(row[0] or 0)


# -- routing a round -----------------------------------------------------------------------------


def _round_subjects(url: str, project_id: int, n: int) -> list[tuple[int, int]]:
    """(image, subject) of n subjects with a queued review assignment, spread over the project."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT s.image_id, s.id FROM subjects s WHERE s.project_id = %s AND EXISTS "
            "(SELECT 1 FROM assignments a WHERE a.subject_id = s.id AND a.kind = 'review' "
            "AND a.status = 'queued') ORDER BY s.id",
            (project_id,),
        )
        rows = [(int(i), int(s)) for i, s in cur.fetchall()]
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def route_round(project_id: int, n: int, seed: int) -> dict[str, Any]:
    """Promote a new model version and persist and route its predictions for n subjects."""
    from sqlalchemy import func, select

    from server.core import runtime
    from server.core.config import get_settings
    from server.flywheel import repository as flywheel_repository
    from server.flywheel.service import RELABEL_CHUNK
    from server.labelers import service as labelers
    from server.orm import Assignment, CategoryValue, LabelEvent, ModelVersion, Project
    from server.orm.enums import ModelStatus
    from server.prelabel import repository as prelabel_repository
    from server.prelabel import service as prelabel
    from workers import contracts

    rng = random.Random(seed)
    database = runtime.database()
    with database.session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None and project.taxonomy_version_id is not None
        start = time.perf_counter()
        undecided = len(flywheel_repository.undecided_image_ids(session, project_id))
        select_ms = (time.perf_counter() - start) * 1000
        log(f"round: {undecided} images to re-label selected in {select_ms:.0f} ms")
        routed_ids = {
            int(c)
            for c in session.scalar(
                select(Assignment.category_ids)
                .where(Assignment.project_id == project_id, Assignment.kind == "review")
                .limit(1)
            )
            or []
        }
        categories = [
            c
            for c in prelabel_repository.categories_of(session, project.taxonomy_version_id)
            if c.id in routed_ids
        ]
        values = {
            c.id: list(
                session.scalars(
                    select(CategoryValue.key)
                    .where(CategoryValue.category_id == c.id)
                    .order_by(CategoryValue.position)
                )
            )
            for c in categories
        }
        # An evaluation's per-category scores (server.flywheel): every other category trusted.
        scores = {
            c.key: {
                "support": 400,
                "correct": 384 if i % 2 == 0 else 300,
                "accuracy": 0.96 if i % 2 == 0 else 0.75,
                "low": 0.94 if i % 2 == 0 else 0.71,
                "high": 0.97 if i % 2 == 0 else 0.79,
                "cut": TRUST_CUT,
                "trusted": i % 2 == 0,
            }
            for i, c in enumerate(categories)
        }
        version = ModelVersion(
            project_id=project_id,
            family="stats",
            version=f"bench-round-{int(time.time())}",
            spec={},
            status=ModelStatus.candidate.value,
            metrics={"categories": scores},
        )
        session.add(version)
        session.flush()
        labelers.promote(session, project, version)
        version_id, version_ref = version.id, version.version
        events_before = session.scalar(select(func.max(LabelEvent.id))) or 0
        assignments_before = session.scalar(select(func.max(Assignment.id))) or 0
    pairs = _round_subjects(get_settings().database_url, project_id, n)

    batch_ms: list[float] = []
    start = time.perf_counter()
    for offset in range(0, len(pairs), RELABEL_CHUNK):
        items = []
        for image_id, _ in pairs[offset : offset + RELABEL_CHUNK]:
            predictions = {}
            for category in categories:
                options = values[category.id]
                value = options[rng.randrange(len(options))]
                confidence = round(0.3 + 0.69 * rng.random(), 4)
                rest = round((1 - confidence) / max(1, len(options) - 1), 6)
                predictions[category.key] = contracts.CategoryPrediction(
                    value=value,
                    confidence=confidence,
                    distribution={o: (confidence if o == value else rest) for o in options},
                )
            items.append(contracts.PrelabelItem(image_id=image_id, predictions=predictions))
        result = contracts.PrelabelResult(
            batch_id=offset // RELABEL_CHUNK,
            project_id=project_id,
            model_version_id=version_id,
            model_version=version_ref,
            items=items,
        )
        t0 = time.perf_counter()
        with database.session_scope() as session:
            prelabel.persist_predictions(session, result)
        batch_ms.append((time.perf_counter() - t0) * 1000)
    total_ms = (time.perf_counter() - start) * 1000

    with database.session_scope() as session:
        queued = session.scalar(select(func.count()).where(Assignment.id > assignments_before)) or 0
        auto = (
            session.scalar(
                select(func.count()).where(LabelEvent.id > events_before, LabelEvent.reason == "auto_accept")
            )
            or 0
        )
    runtime.reset()
    figures = {
        "subjects": len(pairs),
        "categories": len(categories),
        "batch_size": RELABEL_CHUNK,
        "total_ms": round(total_ms, 1),
        "subjects_per_s": round(len(pairs) / (total_ms / 1000), 1) if total_ms else None,
        "batch_ms": {**percentiles(batch_ms), "max": round(max(batch_ms, default=0), 1)},
        "assignments_queued": int(queued),
        "fields_auto_accepted": int(auto),
        "select_undecided_ms": round(select_ms, 1),
        "undecided_images": undecided,
    }
    log(
        f"round: {len(pairs)} subjects x {len(categories)} categories persisted and routed in "
        f"{total_ms / 1000:.1f} s ({figures['subjects_per_s']} subjects/s; batches of {RELABEL_CHUNK}: "
        f"{figures['batch_ms']}); {queued} assignments queued, {auto} fields auto-accepted"
    )
    return figures


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=20, help="first N single-choice categories")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="review load duration")
    parser.add_argument("--think-ms", type=float, default=1000.0)
    parser.add_argument("--calls", type=int, default=5, help="calls per dashboard endpoint")
    parser.add_argument("--round-subjects", type=int, default=10_000, help="subjects a round re-labels")
    parser.add_argument(
        "--server-workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes"
    )
    parser.add_argument(
        "--database-url", default=None, help="a database filled by this script before (no fill)"
    )
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the database and the data folder")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"which measurements to run after the fill, comma-separated (default: {','.join(STEPS)})",
    )
    args = parser.parse_args()
    steps = {step.strip() for step in args.steps.split(",") if step.strip()}
    if not steps or steps - set(STEPS):
        parser.error(f"--steps: choose from {', '.join(STEPS)}")

    created = args.database_url is None
    url = create_database(args.postgres_admin_url) if created else args.database_url
    data_dir = Path(tempfile.mkdtemp(prefix="aa-bench-scale-"))
    env = bench_environment(url, data_dir)
    os.environ.update(env)
    log(f"database {url}, data {data_dir}")
    result: dict[str, Any] = {}
    process = None
    try:
        if created:
            start = time.perf_counter()
            setup = prepare_with_history(url, args.subjects, args.annotators, args.categories, data_dir)
            fill_s = round(time.perf_counter() - start, 1)
            log(f"fill: {fill_s} s")
        else:
            from server.cli import _migrate
            from server.core.config import ensure_secret, get_settings

            settings = get_settings()
            ensure_secret(settings)
            _migrate(settings)  # a migration added since the fill (e.g. an index) applies now
            setup = filled_setup(url)
            fill_s = None
        size_gb = round(_scalar(url, "SELECT pg_database_size(current_database())") / 1e9, 2)
        log(f"database size: {size_gb} GB")

        result = {
            "database_url": url if args.keep or not created else None,
            "subjects": args.subjects if created else None,
            "fill_s": fill_s,
            "seed_s": round(setup.seed_seconds, 1) if created else None,
            "database_gb": size_gb,
            "categories": len(setup.category_ids),
            "steps": sorted(steps, key=STEPS.index),
            "cpus": os.cpu_count(),
        }
        base = ""
        if "dashboard" in steps or "review" in steps:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server_log = data_dir / "server.log"
            process = start_server(port, {**os.environ, **env}, server_log, args.server_workers)
            wait_healthy(base, process, server_log)
        if "dashboard" in steps:
            beat_ms = store_figures()
            endpoints = measure(base, setup.project_id, args.calls)
            dashboard_load = os.getloadavg()
            log(f"load average during the dashboard calls (1, 5, 15 min): {dashboard_load}")
            result["dashboard"] = {
                "endpoints": endpoints,
                "slowest_ms": max(f["max_ms"] for f in endpoints.values()),
                "beat_ms": {name: round(ms, 1) for name, ms in beat_ms.items()},
                "load_average": [round(x, 2) for x in dashboard_load],
            }
        if "round" in steps:
            routing = route_round(setup.project_id, args.round_subjects, seed=len(setup.users))
            result["routing"] = {**routing, "load_average": [round(x, 2) for x in os.getloadavg()]}
        if "review" in steps:
            assert process is not None
            history = _scalar(url, "SELECT max(id) FROM label_events")
            run = load(base, setup.users, setup.project_id, args.seconds, args.think_ms / 1000.0)
            stop_and_show(process, server_log)
            process = None
            figures = check(url, setup.project_id, run.out, after_event=history)
            result["review"] = {
                "annotators": len(setup.users),
                "seconds": args.seconds,
                "think_ms": args.think_ms,
                "server_workers": args.server_workers,
                **summarise(run, figures, args.seconds),
                "load_average": [round(x, 2) for x in run.load_average],
            }
    finally:
        if process is not None:
            stop_server(process)
        if not args.keep:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
            if created:
                from server.core import runtime

                runtime.reset()
                drop_database(args.postgres_admin_url, url)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
