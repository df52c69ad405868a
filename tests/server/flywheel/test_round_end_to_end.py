"""A round through the real task chain (eager Celery): the API starts it, the heads trainer
(gpu.train) trains on verified labels, cpu.persist_training judges the candidate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.core import runtime
from server.orm import ModelVersion, Prediction
from tests.server.conftest import Api
from tests.server.flywheel.conftest import work_queue


def test_a_round_started_from_the_api_trains_evaluates_and_records_its_decision(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    assert admin.post(f"/projects/{project_id}/eval-set", json={"size": 4}).status_code == 200
    # People change the background on every subject, so the candidate learns something the
    # initial (weight-free) labeler never answers, and is promoted.
    work_queue([admin, second_person], project_id, change={"background.type": "studio"})
    response = admin.post(f"/projects/{project_id}/rounds")
    assert response.status_code == 202, response.text
    round_ = admin.get(f"/projects/{project_id}/rounds/{response.json()['id']}").json()
    assert round_["status"] == "promoted", round_
    assert round_["reasons"] and round_["metrics"]["examples"] == 8
    candidate = round_["metrics"]["candidate"]["categories"]["background.type"]
    assert candidate["support"] == 4 and candidate["accuracy"] == 1.0
    assert round_["metrics"]["baseline"]["categories"]["background.type"]["accuracy"] < 1.0
    assert round_["activity"]["fields_by_people"] > 12 * 10
    with runtime.database().session_scope() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Prediction)
            .where(Prediction.model_version_id == round_["candidate_id"])
        )
        candidate_row = session.get(ModelVersion, round_["candidate_id"])
        assert candidate_row is not None
        assert candidate_row.spec["family"] == "heads" and candidate_row.metrics["categories"]
    assert stored and stored >= 4
    overview = admin.get(f"/projects/{project_id}/flywheel").json()
    assert overview["active_model_version_id"] == round_["candidate_id"]
    # Nothing is left undecided here (every subject was reviewed), so nothing was re-labelled.
    assert overview["activity"]["fields_auto_accepted"] == 0
