"""Rounds: the evaluation set stays out of training, the gate judges the candidate, a rejected
round writes no label, a promotion re-labels what people have not decided."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.core import jobs, runtime, tasknames
from server.flywheel import service
from server.orm import Assignment, EvalSetMember, Label, LabelEvent, ModelVersion, Prediction, Round
from tests.server.conftest import Api
from tests.server.flywheel.conftest import label_snapshot, set_settings, upload_people, work_queue
from tests.server.prelabel.test_pipeline import Recorder
from workers import contracts


def _eval_members() -> list[EvalSetMember]:
    with runtime.database().session_scope() as session:
        members = list(session.scalars(select(EvalSetMember)))
        session.expunge_all()
    return members


def _reserved_and_worked(team: list[Api], project_id: int, size: int = 4) -> None:
    admin = team[0]
    response = admin.post(f"/projects/{project_id}/eval-set", json={"size": size})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == size
    assert work_queue(team, project_id) == 12 + size  # every eval (two passes) and review assignment
    assert admin.get(f"/projects/{project_id}/eval-set").json()["labeled"] == size


def _started(admin: Api, project_id: int) -> tuple[Recorder, dict[str, Any]]:
    recorder = Recorder()
    jobs.configure(recorder)
    response = admin.post(f"/projects/{project_id}/rounds")
    assert response.status_code == 202, response.text
    (build,) = recorder.take(tasknames.FLYWHEEL_ROUND)
    with runtime.database().session_scope() as session:
        service.build_training(session, runtime.storage(), build.kwargs["round_id"])
    (train,) = recorder.take(contracts.TRAIN)
    return recorder, train.kwargs["payload"]


def _eval_truth() -> dict[int, dict[str, Any]]:
    """image id -> category key -> what people answered, on the evaluation set."""
    with runtime.database().session_scope() as session:
        from server.orm import Category, Subject

        rows = session.execute(
            select(Subject.image_id, Category.key, Label.value)
            .join(Label, Label.subject_id == Subject.id)
            .join(Category, Category.id == Label.category_id)
            .join(EvalSetMember, EvalSetMember.subject_id == Subject.id)
        )
        out: dict[int, dict[str, Any]] = {}
        for image_id, key, value in rows:
            out.setdefault(int(image_id), {})[key] = value
    return out


def _result(job: dict[str, Any], *, right: bool) -> contracts.TrainResult:
    """The candidate's answers on the evaluation images: people's answers, or wrong ones."""
    spec = contracts.TrainJob.model_validate(job)
    truth = _eval_truth()
    categories = {c.key: c for c in spec.categories}
    items = []
    for image in spec.evaluate:
        predictions = {}
        for key, value in truth[image.image_id].items():
            category = categories.get(key)
            if category is None or value is None or category.kind != "single":
                continue
            if not right:
                value = next(k for k in category.value_keys if k != value)
            predictions[key] = contracts.CategoryPrediction(value=value, confidence=0.9)
        items.append(contracts.PrelabelItem(image_id=image.image_id, predictions=predictions))
    return contracts.TrainResult(
        round_id=spec.round_id,
        project_id=spec.project_id,
        model_version_id=spec.model_version_id,
        trainer="heads",
        model=contracts.ModelSpec(family="heads", source=spec.output_dir, name="h", version=spec.version),
        examples=len(spec.examples),
        predictions=items,
    )


def test_the_evaluation_set_is_reserved_stratified_and_queued_whole_as_eval_work(
    admin: Api, people: dict[str, Any]
) -> None:
    project_id = people["id"]
    response = admin.post(f"/projects/{project_id}/eval-set", json={"size": 5})
    assert response.status_code == 200, response.text
    members = _eval_members()
    assert len(members) == 5 and all(m.stratum for m in members)
    with runtime.database().session_scope() as session:
        assignments = list(session.scalars(select(Assignment).where(Assignment.status == "queued")))
        by_kind: dict[str, set[int]] = {}
        for a in assignments:
            by_kind.setdefault(a.kind, set()).add(a.subject_id)
        review_categories = max(len(a.category_ids) for a in assignments if a.kind == "review")
        eval_categories = {len(a.category_ids) for a in assignments if a.kind == "eval"}
    assert by_kind["eval"] == {m.subject_id for m in members}
    assert not by_kind["review"] & by_kind["eval"] and len(by_kind["review"]) == 7
    assert eval_categories == {review_categories}  # every category
    # It never shrinks, and a lead chooses its size (an annotator may not).
    assert admin.post(f"/projects/{project_id}/eval-set", json={"size": 3}).status_code == 409
    assert admin.get(f"/projects/{project_id}/eval-set").json()["size"] == 5


def test_the_evaluation_set_never_appears_in_a_training_job(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    _reserved_and_worked([admin, second_person], project_id)
    _, payload = _started(admin, project_id)
    job = contracts.TrainJob.model_validate(payload)
    with runtime.database().session_scope() as session:
        from server.orm import Subject

        eval_images = {
            int(i)
            for i in session.scalars(
                select(Subject.image_id).join(EvalSetMember, EvalSetMember.subject_id == Subject.id)
            )
        }
        verified_eval = session.scalar(
            select(Label.id)
            .join(EvalSetMember, EvalSetMember.subject_id == Label.subject_id)
            .where(Label.state == "verified")
            .limit(1)
        )
    assert verified_eval is not None  # people did answer the evaluation set...
    trained_on = {e.image.image_id for e in job.examples}
    assert len(trained_on) == 8 and not trained_on & eval_images  # ...and training never reads it
    assert {i.image_id for i in job.evaluate} == eval_images
    assert all(e.answers for e in job.examples) and job.trainer == "heads"


def test_a_worse_candidate_is_rejected_with_its_reasons_and_changes_no_label(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    _reserved_and_worked([admin, second_person], project_id)
    recorder, payload = _started(admin, project_id)
    before = label_snapshot()
    with runtime.database().session_scope() as session:
        status = service.persist_training(session, _result(payload, right=False))
    assert status == "rejected"
    assert label_snapshot() == before
    assert not recorder.sent  # nothing re-labelled
    rounds = admin.get(f"/projects/{project_id}/rounds").json()
    (round_,) = rounds
    assert round_["decision"] == "rejected"
    codes = {r["code"] for r in round_["reasons"]}
    # Against the cold-start labeler only the macro accuracy counts (test_measures: the margin).
    assert codes == {"macro_not_better"}
    assert round_["metrics"]["candidate"]["macro_accuracy"] < round_["metrics"]["baseline"]["macro_accuracy"]
    with runtime.database().session_scope() as session:
        statuses = {v.status for v in session.scalars(select(ModelVersion))}
    assert statuses == {"active", "rejected"}


def test_a_better_candidate_is_promoted_and_every_undecided_subject_is_relabelled(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, flywheel={"min_support": 1}, default_trust_threshold=0.5)
    _reserved_and_worked([admin, second_person], project_id)
    # The baseline is made worse than the candidate: its evaluation answers are all wrong now.
    with runtime.database().session_scope() as session:
        baseline = session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
        assert baseline is not None
        for prediction in session.scalars(
            select(Prediction).where(Prediction.model_version_id == baseline.id)
        ):
            prediction.value = "not-a-value"
    upload_people(admin, project_id, 2, seed=900)  # undecided subjects a promotion re-labels
    recorder, payload = _started(admin, project_id)
    with runtime.database().session_scope() as session:
        status = service.persist_training(session, _result(payload, right=True))
        round_ = session.scalar(select(Round))
        assert round_ is not None and round_.reasons[0]["code"] == "promoted"
        versions = {v.id: v.status for v in session.scalars(select(ModelVersion))}
    assert status == "promoted"
    assert versions[payload["model_version_id"]] == "active" and versions[baseline.id] == "retired"
    relabel = recorder.take(tasknames.FLYWHEEL_RELABEL)
    assert sorted(i for job in relabel for i in job.kwargs["image_ids"]) == _two_newest_images()
    overview = admin.get(f"/projects/{project_id}/flywheel").json()
    (round_out,) = admin.get(f"/projects/{project_id}/rounds").json()
    assert overview["cold_start"] is False
    assert overview["macro_accuracy"] == round_out["metrics"]["candidate"]["macro_accuracy"]
    scores = {c["key"]: c for c in overview["categories"]}
    assert scores["shot.type"]["accuracy"] == 1.0 and "shot.type" in overview["trusted"]
    # A lead can roll back to the version the round replaced.
    rolled = admin.post(f"/projects/{project_id}/rollback", json={"model_version_id": baseline.id})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["active_model_version_id"] == baseline.id
    assert recorder.take(tasknames.FLYWHEEL_RELABEL)
    refused = admin.post(f"/projects/{project_id}/rollback", json={"model_version_id": 10_000})
    assert refused.status_code == 404


def _two_newest_images() -> list[int]:
    with runtime.database().session_scope() as session:
        from server.orm import Image

        return sorted(int(i) for i in session.scalars(select(Image.id).order_by(Image.id.desc()).limit(2)))


def test_a_round_needs_verified_labels_and_only_one_runs_at_a_time(
    admin: Api, people: dict[str, Any]
) -> None:
    project_id = people["id"]
    recorder = Recorder()
    jobs.configure(recorder)
    assert admin.post(f"/projects/{project_id}/rounds").status_code == 202
    assert admin.post(f"/projects/{project_id}/rounds").json()["error"] == "round_running"
    (build,) = recorder.take(tasknames.FLYWHEEL_ROUND)
    with runtime.database().session_scope() as session:
        assert service.build_training(session, runtime.storage(), build.kwargs["round_id"]) is None
    (round_,) = admin.get(f"/projects/{project_id}/rounds").json()
    assert round_["status"] == "failed" and "no verified labels" in round_["error"]


def test_enough_newly_verified_subjects_start_a_round_on_their_own(
    admin: Api, people: dict[str, Any]
) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, flywheel={"auto_round_after": 3})
    jobs.configure(Recorder())
    for submitted, due in ((0, False), (2, False), (3, True)):
        _submit_some(admin, project_id, submitted)
        with runtime.database().session_scope() as session:
            assert bool(service.due_rounds(session)) == due
    with runtime.database().session_scope() as session:
        (round_,) = session.scalars(select(Round))
        assert round_.trigger == "auto" and round_.status == "queued"
        # Counted from the last round's start: nothing new yet, nothing due.
        assert service.due_rounds(session) == []


def _submit_some(admin: Api, project_id: int, total: int) -> None:
    """Submit review assignments until `total` are submitted."""
    import uuid

    with runtime.database().session_scope() as session:
        submitted = len(list(session.scalars(select(Assignment.id).where(Assignment.status == "submitted"))))
    for _ in range(total - submitted):
        assignment = admin.post(f"/projects/{project_id}/assignments/next").json()
        answers = [
            {"category_id": c["id"], "value": c["label"]["value"], "label_version": c["label"]["version"]}
            for c in assignment["categories"]
            if c["label"] is not None
        ]
        body = {"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": 500}
        assert admin.post(f"/assignments/{assignment['id']}/submit", json=body).status_code == 200


def test_a_lead_can_promote_a_rejected_candidate_with_a_reason_kept(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    _reserved_and_worked([admin, second_person], project_id)
    upload_people(admin, project_id, 2, seed=901)  # undecided subjects the promotion re-labels
    recorder, payload = _started(admin, project_id)
    with runtime.database().session_scope() as session:
        assert service.persist_training(session, _result(payload, right=False)) == "rejected"
    candidate = payload["model_version_id"]
    unexplained = {"model_version_id": candidate, "reason": ""}
    too_short = admin.post(f"/projects/{project_id}/promote", json=unexplained)
    assert too_short.status_code == 422
    body = {"model_version_id": candidate, "reason": "the eval set is mislabelled; checked by hand"}
    promoted = admin.post(f"/projects/{project_id}/promote", json=body)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["active_model_version_id"] == candidate
    relabel = recorder.take(tasknames.FLYWHEEL_RELABEL)
    assert sorted(i for job in relabel for i in job.kwargs["image_ids"]) == _two_newest_images()
    with runtime.database().session_scope() as session:
        version = session.get(ModelVersion, candidate)
        assert version is not None and version.status == "active"
        assert version.metrics["promoted_by_lead"]["reason"] == body["reason"]
    # Only a rejected candidate: the active one (or an earlier one) is refused with a reason.
    again = admin.post(f"/projects/{project_id}/promote", json=body)
    assert (again.status_code, again.json()["error"]) == (409, "not_rejected")
    unknown = admin.post(f"/projects/{project_id}/promote", json={**body, "model_version_id": 10_000})
    assert unknown.status_code == 404


def _fields_decided_by_people() -> int:
    with runtime.database().session_scope() as session:
        events = session.scalars(
            select(LabelEvent).where(
                LabelEvent.actor_user_id.is_not(None), LabelEvent.to_state.in_(["verified", "gold"])
            )
        )
        return sum(1 for event in events if event.reason not in ("auto_accept", "reroute"))


def test_a_large_projects_activity_is_the_beats_count_while_fresh_and_a_rounds_stays_exact(
    admin: Api, second_person: Api, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.dashboard import service as dashboard
    from server.dashboard.tasks import store_funnels

    project_id = people["id"]
    path = f"/projects/{project_id}/flywheel"
    live = admin.get(path).json()
    assert live["activity"]["fields_by_people"] == 0  # a small project: counted now
    monkeypatch.setattr(dashboard, "STORED_FROM_SUBJECTS", 1)
    store_funnels()
    stored = admin.get(path).json()
    assert stored["activity"] == live["activity"]
    assert stored["activity_computed_at"] > live["activity_computed_at"]
    _reserved_and_worked([admin, second_person], project_id)
    decided = _fields_decided_by_people()
    assert decided > 12
    fresh = admin.get(path).json()  # fresh enough: the stored row, not a count
    assert (fresh["activity"], fresh["activity_computed_at"]) == (
        stored["activity"],
        stored["activity_computed_at"],
    )
    _started(admin, project_id)
    (round_,) = admin.get(f"/projects/{project_id}/rounds").json()
    assert round_["activity"]["fields_by_people"] == decided  # a round's window is counted exactly
    monkeypatch.setattr(dashboard, "RECOUNT_AFTER", timedelta(0))
    store_funnels()
    recounted = admin.get(path).json()
    assert recounted["activity"]["fields_by_people"] == decided
    assert recounted["activity"]["human_share"] == 1.0
    assert recounted["activity_computed_at"] > stored["activity_computed_at"]
    monkeypatch.setattr(dashboard, "STORED_FRESH_FOR", timedelta(0))
    assert admin.get(path).json()["activity"] == recounted["activity"]  # stale: counted now, the same
