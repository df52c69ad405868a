"""A round through the real task chain (eager Celery): the API starts it, the heads trainer
(gpu.train) trains on verified labels, cpu.persist_training judges the candidate."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from server.core import runtime
from server.flywheel import repository, service
from server.orm import ModelVersion, Prediction, Project, Round
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


def test_a_finished_round_keeps_the_counts_of_the_work_that_fed_it(
    admin: Api, people: dict[str, Any], second_person: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = people["id"]
    assert admin.post(f"/projects/{project_id}/eval-set", json={"size": 4}).status_code == 200
    work_queue([admin, second_person], project_id, change={"background.type": "studio"})
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        counted_live = service.activity(session, project, None, None)
    response = admin.post(f"/projects/{project_id}/rounds")
    assert response.status_code == 202, response.text
    with runtime.database().session_scope() as session:
        stored = session.get(Round, response.json()["id"])
        assert stored is not None and stored.finished_at is not None
        assert stored.activity is not None and stored.activity["fields_by_people"] > 12 * 10
    assert stored.activity == counted_live  # the round's window: all the work before it started

    # Listing rounds reads the stored counts: it no longer counts the window's label events.
    def no_count(*_: Any) -> Any:
        raise AssertionError("a finished round's activity was counted again")

    monkeypatch.setattr(repository, "field_decisions", no_count)
    (listed,) = admin.get(f"/projects/{project_id}/rounds").json()
    assert listed["activity"] == stored.activity
