from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from server.core import jobs, runtime
from server.core.config import get_settings
from server.demo.synthetic import render_person
from server.orm import Embedding, Label, LabelEvent, Prediction, Subject
from server.orm import Image as ImageRow
from server.prelabel import service
from server.sources import service as sources
from tests.server.conftest import Api
from tests.workers import tiny_models
from workers import contracts
from workers.inference.pipeline import run_analyze, run_embed, run_prelabel


def _people(n: int, seed: int = 0) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = []
    for i in range(n):
        image, _ = render_person(seed + i)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        files.append(("files", (f"person_{i}.jpg", buffer.getvalue(), "image/jpeg")))
    return files


def _count(model: Any) -> int:
    with runtime.database().session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class Recorder:
    """Catches jobs instead of running them, so a test can step the pipeline by hand."""

    def __init__(self) -> None:
        self.sent: list[jobs.Job] = []

    def __call__(self, job: jobs.Job) -> None:
        self.sent.append(job)

    def take(self, name: str) -> list[jobs.Job]:
        taken = [j for j in self.sent if j.name == name]
        self.sent = [j for j in self.sent if j.name != name]
        return taken


def _uploaded_and_stopped(admin: Api, project_id: int, n: int) -> Recorder:
    """Upload n people and ingest them, catching the jobs after ingestion instead of running them."""
    recorder = Recorder()
    jobs.configure(recorder)
    assert admin.post(f"/projects/{project_id}/uploads", files=_people(n)).status_code == 202
    settings = get_settings()
    for job in recorder.take("cpu.ingest.batch"):
        with runtime.database().session_scope() as session:
            sources.process_batch(
                session,
                runtime.storage(),
                job.kwargs["run_id"],
                job.kwargs["batch"],
                settings.source_roots,
                settings.ingest,
            )
    return recorder


def test_every_image_gets_a_subject_and_a_prediction_for_each_category_it_is_asked(
    admin: Api, project: dict[str, Any]
) -> None:
    response = admin.post(f"/projects/{project['id']}/uploads", files=_people(4))
    assert response.status_code == 202, response.text
    progress = admin.get(f"/projects/{project['id']}/pipeline").json()
    assert progress["stages"] == {"prelabeled": 4}
    assert progress["subjects"] == 4 and progress["embeddings"] == 4
    with runtime.database().session_scope() as session:
        predictions = list(session.scalars(select(Prediction)))
        keys = {p.category_id for p in predictions}
        labels = list(session.scalars(select(Label)))
    assert progress["predictions"] == len(predictions) > 4 * 40
    assert len(labels) == len(predictions) and {label.state for label in labels} == {"predicted"}
    assert _count(LabelEvent) == len(labels)
    for prediction in predictions:
        assert 0.0 <= prediction.confidence <= 1.0
        if prediction.distribution:
            assert abs(sum(prediction.distribution.values()) - 1.0) < 1e-3
    tree = admin.get(f"/projects/{project['id']}/taxonomy").json()
    sensitive = {c["id"] for r in tree["regions"] for c in r["categories"] if c["sensitive"]}
    assert sensitive and not keys & sensitive


def test_redelivered_gpu_results_write_nothing_twice(admin: Api, project: dict[str, Any]) -> None:
    recorder = _uploaded_and_stopped(admin, project["id"], 3)
    storage = runtime.storage()
    (dispatch,) = recorder.take("cpu.pipeline.analyze")
    with runtime.database().session_scope() as session:
        service.dispatch_analysis(session, storage, dispatch.kwargs["image_ids"])
    (analyze,) = recorder.take(contracts.ANALYZE)
    analysis = run_analyze(contracts.AnalyzeBatch.model_validate(analyze.kwargs["payload"]))
    for _ in range(2):
        with runtime.database().session_scope() as session:
            service.persist_analysis(session, storage, analysis)
    assert _count(Subject) == 3
    assert len(recorder.take("cpu.pipeline.embed")) == 1  # the second delivery moved nothing

    with runtime.database().session_scope() as session:
        ids = [i.id for i in session.scalars(select(ImageRow))]
        service.dispatch_embedding(session, storage, ids)
    (embed,) = recorder.take(contracts.EMBED)
    embedded = run_embed(contracts.EmbedBatch.model_validate(embed.kwargs["payload"]))
    for _ in range(2):
        with runtime.database().session_scope() as session:
            service.persist_embeddings(session, embedded)
    assert _count(Embedding) == 3

    with runtime.database().session_scope() as session:
        service.dispatch_prelabel(session, storage, ids)
    (prelabel,) = recorder.take(contracts.PRELABEL)
    result = run_prelabel(contracts.PrelabelBatch.model_validate(prelabel.kwargs["payload"]))
    with runtime.database().session_scope() as session:
        service.persist_predictions(session, result)
    first = (_count(Prediction), _count(Label), _count(LabelEvent))
    with runtime.database().session_scope() as session:
        service.persist_predictions(session, result)
    assert (_count(Prediction), _count(Label), _count(LabelEvent)) == first
    assert first[0] == sum(len(item.predictions) for item in result.items)


def test_cached_embeddings_are_never_recomputed(admin: Api, project: dict[str, Any]) -> None:
    assert admin.post(f"/projects/{project['id']}/uploads", files=_people(2)).status_code == 202
    recorder = Recorder()
    jobs.configure(recorder)
    with runtime.database().session_scope() as session:
        images = list(session.scalars(select(ImageRow)))
        for image in images:
            image.stage = "ready"
    with runtime.database().session_scope() as session:
        service.dispatch_embedding(session, runtime.storage(), [i.id for i in images])
    assert recorder.take(contracts.EMBED) == []
    assert len(recorder.take("cpu.pipeline.prelabel")) == 1
    assert admin.get(f"/projects/{project['id']}/images/stats").json()["stages"] == {"embedded": 2}


def test_an_unreadable_stored_image_is_filtered_with_its_reason_and_the_batch_goes_on(
    admin: Api, project: dict[str, Any]
) -> None:
    recorder = _uploaded_and_stopped(admin, project["id"], 3)
    storage = runtime.storage()
    with runtime.database().session_scope() as session:
        victim = session.scalars(select(ImageRow).order_by(ImageRow.id)).first()
        assert victim is not None
        storage.put(victim.storage_key, b"\xff\xd8\xff garbage")
        service.dispatch_analysis(session, storage, [victim.id, victim.id + 1, victim.id + 2])
    (analyze,) = recorder.take(contracts.ANALYZE)
    with runtime.database().session_scope() as session:
        service.persist_analysis(
            session, storage, run_analyze(contracts.AnalyzeBatch.model_validate(analyze.kwargs["payload"]))
        )
    stats = admin.get(f"/projects/{project['id']}/images/stats").json()
    assert stats["stages"] == {"filtered": 1, "ready": 2}
    assert stats["filtered_by_reason"] == {"unreadable_checksum_mismatch": 1}


@pytest.fixture(scope="module")
def tiny_models_folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "open_clip": tiny_models.open_clip_folder(root / "open_clip"),
        "detector": tiny_models.detr_folder(root / "detr"),
        "parser": tiny_models.segformer_folder(root / "segformer"),
    }


def test_real_model_families_prelabel_through_the_server_pipeline(
    admin: Api, project: dict[str, Any], tiny_models_folder: dict[str, Path]
) -> None:
    clip = {
        "family": "open_clip",
        "source": str(tiny_models_folder["open_clip"]),
        "name": "tiny",
        "version": "1",
    }
    settings = {
        "pipeline": {
            "backbone": clip,
            "labeler": clip,
            "detector": {
                "family": "detector",
                "source": str(tiny_models_folder["detector"]),
                "name": "tiny-detr",
                "version": "1",
                "options": {"min_score": 0.0},
            },
            "parser": {
                "family": "parser",
                "source": str(tiny_models_folder["parser"]),
                "name": "tiny-seg",
                "version": "1",
            },
        }
    }
    assert admin.put(f"/projects/{project['id']}/settings", json=settings).status_code == 200
    assert admin.post(f"/projects/{project['id']}/uploads", files=_people(2, seed=10)).status_code == 202
    progress = admin.get(f"/projects/{project['id']}/pipeline").json()
    assert progress["stages"] == {"prelabeled": 2}
    assert progress["active_model_version"]["version"].startswith("open_clip/")
    with runtime.database().session_scope() as session:
        subjects = list(session.scalars(select(Subject)))
        dims = set(session.scalars(select(Embedding.dim)))
        confidences = list(session.scalars(select(Prediction.confidence)))
    assert all(s.analyzer_version and s.analyzer_version != "whole_image" for s in subjects)
    assert all(s.parsing_mask_key for s in subjects)
    mask = Image.open(io.BytesIO(runtime.storage().get(subjects[0].parsing_mask_key or "")))
    assert mask.mode in {"L", "P"} and mask.getextrema()[1] <= 17
    assert dims == {32}  # the tiny open_clip embedding (embed_dim 32), not the grid statistics
    assert len(confidences) > 0 and len(set(confidences)) > 1


def test_analysis_filters_keep_images_out_with_the_rule_they_failed(
    admin: Api, project: dict[str, Any]
) -> None:
    settings = {"filters": {"min_brightness": 0.99}}
    assert admin.put(f"/projects/{project['id']}/settings", json=settings).status_code == 200
    assert admin.post(f"/projects/{project['id']}/uploads", files=_people(2)).status_code == 202
    stats = admin.get(f"/projects/{project['id']}/images/stats").json()
    assert stats["stages"] == {"filtered": 2}
    assert stats["filtered_by_reason"] == {"too_dark": 2}
    assert _count(Subject) == 2  # what the analysers saw is kept
    assert _count(Prediction) == 0


def test_settings_refuse_an_unknown_filter_or_shot_type(admin: Api, project: dict[str, Any]) -> None:
    bad = admin.put(f"/projects/{project['id']}/settings", json={"filters": {"shot_types": ["selfie"]}})
    assert bad.status_code == 422
    assert any("shot_types" in e["path"] for e in bad.json()["errors"])


def test_a_large_projects_prediction_count_is_the_beats_while_fresh_and_of_the_active_labeler(
    admin: Api, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from server.dashboard import service as dashboard
    from server.dashboard.tasks import store_funnels
    from server.labelers import service as labelers
    from server.orm import Project
    from server.orm.enums import ModelStatus
    from workers.contracts import ModelSpec

    pid = project["id"]
    path = f"/projects/{pid}/pipeline"
    assert admin.post(f"/projects/{pid}/uploads", files=_people(2)).status_code == 202
    live = admin.get(path).json()
    assert live["predictions"] == _count(Prediction) > 0  # a small project: counted now
    monkeypatch.setattr(dashboard, "STORED_FROM_SUBJECTS", 1)
    store_funnels()
    stored = admin.get(path).json()
    assert stored["predictions"] == live["predictions"]
    assert stored["predictions_counted_at"] > live["predictions_counted_at"]
    assert admin.post(f"/projects/{pid}/uploads", files=_people(2, seed=20)).status_code == 202
    after = admin.get(path).json()
    assert after["subjects"] == 4 and _count(Prediction) > after["predictions"] == stored["predictions"]
    assert after["predictions_counted_at"] == stored["predictions_counted_at"]  # fresh: the stored row
    with runtime.database().session_scope() as session:
        spec = ModelSpec(family="stats", source="builtin", name="another", version="2")
        other = labelers.register(session, pid, spec, status=ModelStatus.candidate)
        project_row = session.get(Project, pid)
        assert project_row is not None
        labelers.promote(session, project_row, other)
    assert admin.get(path).json()["predictions"] == 0  # another labeler: its own count, now
    with runtime.database().session_scope() as session:
        assert service.store_prediction_counts(session) == [pid]  # recounted at once, not in 3 minutes
        assert service.store_prediction_counts(session) == []
    monkeypatch.setattr(dashboard, "STORED_FRESH_FOR", timedelta(0))
    assert admin.get(path).json()["predictions"] == 0
