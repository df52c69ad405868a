"""The flywheel on synthetic people with known ground truth: human work per round, measured.

Setup: a fresh embedded stack in a temporary folder (SQLite, jobs run inline through the real
Celery tasks, the weight-free `stats` backbone with its "person" features (`--features`; the
real deployment's stand-in for open_clip embeddings), heads retrained each round at `--l2`), one
lead, and a project whose taxonomy is human-v1 cut down to the 14 categories
`server.demo.synthetic` draws (`server.demo.simulate.demo_taxonomy_yaml`), so every field has a
ground truth.

Each round: B new people are drawn and ingested through a folder source (analyse, embed,
pre-label with the active labeler, route); in round 1 an evaluation set (`--eval-size`) is
reserved from them (each member labelled twice, disagreements adjudicated), and round 1 is the
cold start (no evaluated labeler: everything to people).
A simulated person then works the real queue (eval, review, audit and adjudicate assignments, through
`server.assignments.service`) until it is empty, answering from the ground truth, wrong on
`--error-rate` of the fields. Then a flywheel round trains a candidate on verified labels,
evaluates it on the evaluation set, promotes or rejects it, re-labels and re-routes.

What is counted:
- a *human action* is one field a person decided: a field of an assignment served to them
  whose category applies to the person drawn (accepting a pre-filled value counts; a field the
  review screen hides because it does not apply does not). Eval (both passes), review, audit and
  adjudicate work all count.
- fully manual labeling: every applicable field of every image is an action.
- "pre-label then review every field" (Label Studio's ML backend): every applicable field is
  shown pre-filled and confirmed or corrected, so it is an action too; its corrections (fields
  the pre-label got wrong) are printed beside it.
- labeler accuracy: the routed pre-labels of the round's new images (the labeler active when
  they arrived) against ground truth, over applicable fields (a missing answer is wrong).
- human share: fields people decided (as above) / (those + fields auto-accepted) in the round's
  window (from the previous round's start, its re-labelling and re-routing included).
- dataset accuracy: every image so far, current label values against ground truth.
- audit interval: Wilson 95% interval of the reviewers' agreement with auto-accepted values
  (a disagreement counts the adjudicated value);
  auto-accepted true accuracy: the same population (labels auto-accepted and still standing, or
  audited) against ground truth.

    .venv/bin/python bench/flywheel.py --seed 0 --rounds 5 --batch 200 --error-rate 0.02 \
        --eval-size 100 --audit-share 0.1 --features person --l2 2e-6

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


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--error-rate", type=float, default=0.02)
    parser.add_argument("--eval-size", type=int, default=100)
    parser.add_argument("--audit-share", type=float, default=0.1)
    parser.add_argument("--promotion-margin", type=float, default=None, help="default: the project default")
    parser.add_argument(
        "--features",
        choices=("grid", "person", "shapes"),
        default="person",
        help="the stats backbone's features (workers/inference/labelers/stats.py; shapes adds edges)",
    )
    parser.add_argument(
        "--l2",
        type=float,
        default=2e-6,
        help="the heads' L2 penalty (train option l2); the person features need a light one",
    )
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="aa-flywheel-") as tmp:
            run(args, Path(tmp))


def run(args: argparse.Namespace, workdir: Path) -> None:
    sources_root = workdir / "sources"
    sources_root.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AA_DATA_DIR": str(workdir / "data"),
            "AA_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "AA_SOURCE_ROOTS": json.dumps([str(sources_root)]),
            "AA_JOBS_EAGER": "true",
            "AA_ADMIN_PASSWORD": "",
            "AA_LOG_LEVEL": "WARNING",
        }
    )
    import logging

    logging.disable(logging.INFO)
    from sqlalchemy import select

    from server.cli import _prepare
    from server.core import runtime
    from server.core.config import get_settings
    from server.demo import simulate
    from server.flywheel import service as flywheel
    from server.orm import Category, Label, LabelEvent, Project, Round, Subject, User
    from server.projects import service as projects
    from server.projects.schemas import ProjectSettings
    from server.taxonomy import service as taxonomy
    from server.worker import install_job_sender
    from workers.contracts import ModelSpec

    runtime.reset()
    settings = get_settings()
    admin_email, _ = _prepare(settings)
    install_job_sender()
    rng = random.Random(args.seed)
    with runtime.database().session_scope() as session:
        lead = session.scalar(select(User).where(User.email == admin_email))
        assert lead is not None
        project_settings = ProjectSettings()
        project_settings.review.gold_share = 0
        project_settings.audit_share = args.audit_share
        project_settings.flywheel.eval_set_size = args.eval_size
        if args.features != "grid":
            project_settings.pipeline.backbone = ModelSpec(
                family="stats",
                source="builtin",
                name=f"{args.features}-stats",
                version="2",
                options={"features": args.features},
            )
        project_settings.flywheel.train_options = {"l2": args.l2}
        if args.promotion_margin is not None:
            project_settings.flywheel.promotion_margin = args.promotion_margin
        project = projects.create_project(session, lead, "Flywheel bench", settings=project_settings)
        taxonomy.add_version(session, project, simulate.demo_taxonomy_yaml(), user_id=lead.id)
        project_id, lead_id = project.id, lead.id
    # Two people: an evaluation subject's second pass goes to someone other than its first.
    team = [lead_id, simulate.add_second_person(project_id)]

    truth: dict[int, simulate.Truth] = {}
    results: list[dict[str, Any]] = []
    applicable_total = 0
    review_all_corrections = 0
    # Each round's window runs from the previous round's start (its re-labelling and re-routing
    # included) through the new batch's routing and the people's work.
    window_start = _now()
    for number in range(1, args.rounds + 1):
        started = time.monotonic()
        batch = simulate.add_batch(
            project_id, lead_id, sources_root, f"round-{number}", args.batch, args.seed * 1000 + number
        )
        truth.update(batch)
        with runtime.database().session_scope() as session:
            keys = {c.id: c.key for c in session.scalars(select(Category))}
            routed = _labels(session, Label, Subject, list(batch))
        labeler_right, labeler_total = _accuracy(routed, batch, keys)
        applicable = sum(1 for t in batch.values() for v in t.values() if v is not None)
        applicable_total += applicable
        review_all_corrections += labeler_total - labeler_right
        if number == 1:
            with runtime.database().session_scope() as session:
                project_row = session.get(Project, project_id)
                assert project_row is not None
                flywheel.grow_eval_set(session, project_row, min(args.eval_size, len(batch)))
        log = simulate.work_queue(project_id, team, truth, args.error_rate, rng)
        with runtime.database().session_scope() as session:
            project_row = session.get(Project, project_id)
            assert project_row is not None
            activity = flywheel.activity(session, project_row, window_start, None)
            window_start = _now()
            round_ = flywheel.start_round(session, project_row, "bench")
            round_id = round_.id
        with runtime.database().session_scope() as session:
            round_row = session.get(Round, round_id)
            assert round_row is not None
            decision, reasons = round_row.status, [r.get("code") for r in round_row.reasons]
            candidate_macro = round_row.metrics.get("candidate", {}).get("macro_accuracy")
            per_category = round_row.metrics.get("candidate", {}).get("categories", {})
            keys = {c.id: c.key for c in session.scalars(select(Category))}
            current = _labels(session, Label, Subject, list(truth))
            dataset_right, dataset_total = _accuracy(current, truth, keys, decided_only=False)
            auto_right, auto_total = _auto_accepted(session, Label, LabelEvent, Subject, truth, keys)
            audit = flywheel.audit(session, project_row)
        row = {
            "round": number,
            "labeler_accuracy": _ratio(labeler_right, labeler_total),
            "human_share": _ratio(
                log.total_decisions, log.total_decisions + activity["fields_auto_accepted"]
            ),
            "human_actions_per_image": round(log.total_decisions / len(batch), 4),
            "dataset_accuracy": _ratio(dataset_right, dataset_total),
            "audit_interval": [audit.low, audit.high] if audit.audited else None,
            "auto_accepted_true_accuracy": _ratio(auto_right, auto_total),
        }
        results.append(row)
        _say(
            f"round {number}: labeler accuracy {row['labeler_accuracy']}, human share {row['human_share']}, "
            f"actions/image {row['human_actions_per_image']} (manual {applicable / len(batch):.2f}; "
            f"by kind {dict(log.decisions)}), dataset accuracy {row['dataset_accuracy']}, "
            f"audit {audit.correct}/{audit.audited} -> {row['audit_interval']}, auto-accepted true accuracy "
            f"{row['auto_accepted_true_accuracy']} (n={auto_total}); round {decision} {reasons} "
            f"candidate macro {candidate_macro}; {time.monotonic() - started:.0f}s"
        )
        _say(
            "  candidate on the evaluation set (accuracy / Wilson low / cut / trusted): "
            + ", ".join(
                f"{k} {v['accuracy']:.2f}/{v['low']:.2f}/{v['cut']}/{'T' if v['trusted'] else '-'}"
                for k, v in sorted(per_category.items())
                if v.get("accuracy") is not None
            )
        )
    manual = applicable_total / len(truth)
    _say(
        f"fully manual: {manual:.2f} actions/image; review every field: {manual:.2f} actions/image "
        f"of which {review_all_corrections / len(truth):.2f} corrections/image"
    )
    print(
        json.dumps(
            {
                "seed": args.seed,
                "rounds": results,
                "manual_actions_per_image": round(manual, 4),
                "review_all_actions_per_image": round(manual, 4),
            }
        )
    )


def _now() -> Any:
    from server.core.time import utcnow

    return utcnow()


def _ratio(right: int, total: int) -> float | None:
    return round(right / total, 4) if total else None


def _labels(session: Any, Label: Any, Subject: Any, image_ids: list[int]) -> dict[int, dict[int, Any]]:
    from sqlalchemy import select

    out: dict[int, dict[int, Any]] = {}
    rows = session.execute(
        select(Subject.image_id, Label.category_id, Label.value, Label.state)
        .join(Label, Label.subject_id == Subject.id)
        .where(Subject.image_id.in_(image_ids))
    )
    for image_id, category_id, value, state in rows:
        out.setdefault(int(image_id), {})[int(category_id)] = (value, state)
    return out


def _accuracy(
    labels: dict[int, dict[int, Any]], truth: dict[int, Any], keys: dict[int, str], decided_only: bool = False
) -> tuple[int, int]:
    by_key = {v: k for k, v in keys.items()}
    right = total = 0
    for image_id, attributes in truth.items():
        for key, value in attributes.items():
            if value is None or key not in by_key:
                continue
            total += 1
            got = labels.get(image_id, {}).get(by_key[key])
            right += int(got is not None and got[0] == value)
    return right, total


def _auto_accepted(
    session: Any, Label: Any, LabelEvent: Any, Subject: Any, truth: dict[int, Any], keys: dict[int, str]
) -> tuple[int, int]:
    """Labels auto-accepted and standing, plus audited ones (their accepted value)."""
    from sqlalchemy import select

    right = total = 0
    standing = session.execute(
        select(Subject.image_id, Label.category_id, Label.value)
        .join(Subject, Subject.id == Label.subject_id)
        .where(Label.state == "auto_accepted")
    )
    audited = session.execute(
        select(Subject.image_id, LabelEvent.category_id, LabelEvent.from_value)
        .join(Subject, Subject.id == LabelEvent.subject_id)
        .where(LabelEvent.reason == "audit", LabelEvent.from_state == "auto_accepted")
    )
    for image_id, category_id, value in [*standing, *audited]:
        expected = truth.get(int(image_id), {}).get(keys.get(int(category_id), ""))
        total += 1
        right += int(expected == value)
    return right, total


if __name__ == "__main__":
    main()
