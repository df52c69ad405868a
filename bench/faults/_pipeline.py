"""Pre-labelling under faults: a folder of synthetic people ingested through the real pipeline
(scan -> batches -> analyze -> embed -> prelabel), and the checks every pipeline drill ends with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.faults._stack import rows, scalar


def prelabel_task_names() -> set[str]:
    from workers import contracts

    return {contracts.PRELABEL, contracts.PERSIST_PREDICTIONS}


def start_ingestion(sources: Path, images: int, batch_size: int, seed: int = 20240611) -> int:
    """Generate `images` people, create a project and a folder source, start its ingest run."""
    from server.auth import service as auth
    from server.core import runtime
    from server.core.config import get_settings
    from server.demo.synthetic import generate_dataset
    from server.projects import service as projects
    from server.projects.schemas import PipelineSettings, ProjectSettings
    from server.sources import service as sources_service
    from server.worker import install_job_sender

    install_job_sender()
    generate_dataset(sources / "people", images, seed=seed)
    settings = ProjectSettings(pipeline=PipelineSettings(batch_size=batch_size))
    with runtime.database().session_scope() as session:
        admin = auth.create_user(session, "lead@example.com", "a long password", is_admin=True)
        project = projects.create_project(session, admin, "Fault drill", settings=settings)
        source = sources_service.create_folder_source(
            session, project, "people", "people/images", get_settings().source_roots
        )
        sources_service.start_run(session, source)
        return int(project.id)


def stages(project_id: int) -> dict[str, int]:
    found = rows("SELECT stage, count(*) FROM images WHERE project_id = :p GROUP BY stage", p=project_id)
    return {str(stage): int(n) for stage, n in found}


def predictions() -> int:
    return int(scalar("SELECT count(*) FROM predictions") or 0)


def remaining(project_id: int, images: int) -> int:
    done = stages(project_id)
    return images - done.get("prelabeled", 0) - done.get("filtered", 0)


def finished(project_id: int, images: int) -> bool:
    return remaining(project_id, images) == 0


def progress(project_id: int) -> tuple[Any, ...]:
    done = scalar("SELECT coalesce(sum(items_done), 0) FROM ingest_runs")
    return (predictions(), tuple(sorted(stages(project_id).items())), done)


def check(project_id: int, images: int) -> dict[str, Any]:
    """Every claim by SQL: exactly one prediction per (subject, category, model version), every
    image prelabeled, one label per prediction and one prelabel event per label."""
    by_stage = stages(project_id)
    prelabeled = by_stage.get("prelabeled", 0)
    duplicated = int(
        scalar(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM predictions"
            " GROUP BY subject_id, category_id, model_version_id HAVING count(*) > 1) d"
        )
    )
    # Expected: every subject of the project times every category some subject was predicted
    # for, per model version; what is absent is missing (plus images that never got a subject).
    missing_pairs = int(
        scalar(
            "SELECT count(*) FROM subjects s"
            " CROSS JOIN (SELECT DISTINCT category_id, model_version_id FROM predictions) c"
            " WHERE s.project_id = :p AND NOT EXISTS (SELECT 1 FROM predictions x"
            "  WHERE x.subject_id = s.id AND x.category_id = c.category_id"
            "  AND x.model_version_id = c.model_version_id)",
            p=project_id,
        )
    )
    subjects = int(scalar("SELECT count(*) FROM subjects WHERE project_id = :p", p=project_id))
    images_stored = int(scalar("SELECT count(*) FROM images WHERE project_id = :p", p=project_id))
    missing_images = images - prelabeled
    total = predictions()
    labels = int(scalar("SELECT count(*) FROM labels"))
    events_off = int(
        scalar(
            "SELECT count(*) FROM (SELECT l.id FROM labels l LEFT JOIN label_events e"
            " ON e.label_id = l.id AND e.reason = 'prelabel' GROUP BY l.id HAVING count(e.id) <> 1) x"
        )
    )
    run = rows("SELECT status, added FROM ingest_runs")
    return {
        "images": images,
        "images_stored": images_stored,
        "prelabeled": prelabeled,
        "stages": by_stage,
        "subjects": subjects,
        "predictions": total,
        "per_subject": sorted(
            {int(r[0]) for r in rows("SELECT count(*) FROM predictions GROUP BY subject_id")}
        ),
        "model_versions": int(scalar("SELECT count(DISTINCT model_version_id) FROM predictions")),
        "duplicated": duplicated,
        "missing": missing_pairs + missing_images + max(0, images - subjects),
        "missing_images": missing_images,
        "labels": labels,
        "labels_without_one_event": events_off,
        "ingest_run": [list(r) for r in run],
    }


def passed(figures: dict[str, Any]) -> bool:
    return (
        figures["duplicated"] == 0
        and figures["missing"] == 0
        and figures["images_stored"] == figures["images"]
        and figures["predictions"] == figures["labels"] > 0
        and figures["labels_without_one_event"] == 0
        and len(figures["per_subject"]) == 1
        and figures["ingest_run"] == [["succeeded", figures["images"]]]
    )
