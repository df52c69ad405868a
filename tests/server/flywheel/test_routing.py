"""Routing per field: trusted and confident fields are auto-accepted, the rest go to people,
`when` conditions read the values known at routing time, a seeded share is audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.assignments import routing
from server.core import runtime
from server.labelers import service as labelers
from server.orm import Assignment, Category, Label, LabelEvent, Project, Subject
from tests.server.conftest import Api
from tests.server.flywheel.conftest import set_settings


def _trust(project_id: int, cuts: dict[str, float | None]) -> None:
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        active = labelers.active_labeler(session, project)
        active.metrics = {
            "categories": {
                key: {
                    "support": 100,
                    "correct": 99,
                    "accuracy": 0.99,
                    "low": 0.95,
                    "high": 1.0,
                    "cut": cut,
                    "trusted": cut is not None,
                }
                for key, cut in cuts.items()
            }
        }


def _route_all(project_id: int) -> None:
    with runtime.database().session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        subjects = [int(s) for s in session.scalars(select(Subject.id).order_by(Subject.id))]
        routing.route(session, project, subjects)


def _queued() -> dict[tuple[int, str], set[str]]:
    with runtime.database().session_scope() as session:
        keys = {c.id: c.key for c in session.scalars(select(Category))}
        return {
            (a.subject_id, a.kind): {keys[int(c)] for c in a.category_ids}
            for a in session.scalars(select(Assignment).where(Assignment.status == "queued"))
        }


def _labels(key: str) -> list[Label]:
    with runtime.database().session_scope() as session:
        labels = list(
            session.scalars(
                select(Label).join(Category, Category.id == Label.category_id).where(Category.key == key)
            )
        )
        session.expunge_all()
    return labels


def test_cold_start_sends_every_category_to_people(admin: Api, people: dict[str, Any]) -> None:
    queued = _queued()
    assert {kind for _, kind in queued} == {"review"} and len(queued) == 12
    assert all({"shot.type", "hair.length", "hair.color"} <= keys for keys in queued.values())
    assert {label.state for label in _labels("shot.type")} == {"predicted"}


def test_trusted_confident_fields_are_auto_accepted_and_only_the_rest_go_to_people(
    admin: Api, people: dict[str, Any]
) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, audit_share=1.0)
    predicted = {label.subject_id: label.value for label in _labels("hair.length")}
    # hair.length trusted at any confidence; shot.type trusted, but the cut is above every
    # prediction's confidence; top.color untrusted.
    _trust(project_id, {"hair.length": 0.0, "shot.type": 0.999, "top.color": None})
    _route_all(project_id)
    queued = _queued()
    for subject_id, value in predicted.items():
        review = queued[(subject_id, "review")]
        assert "hair.length" not in review and {"shot.type", "top.color"} <= review
        # hair.color applies unless the accepted hair length is bald (its `when`).
        assert ("hair.color" in review) == (value != "bald")
        assert queued[(subject_id, "audit")] == {"hair.length"}  # audit share 1: every subject
    assert {label.state for label in _labels("hair.length")} == {"auto_accepted"}
    assert {label.state for label in _labels("shot.type")} == {"predicted"}
    with runtime.database().session_scope() as session:
        reasons = [
            e.reason for e in session.scalars(select(LabelEvent).where(LabelEvent.reason == "auto_accept"))
        ]
        cancelled = len(list(session.scalars(select(Assignment.id).where(Assignment.status == "cancelled"))))
    assert len(reasons) == 12 and cancelled == 12  # the cold-start reviews were replaced

    # Routing again changes nothing; distrusting the category sends it back to people.
    _route_all(project_id)
    assert _queued() == queued
    _trust(project_id, {})
    _route_all(project_id)
    assert {label.state for label in _labels("hair.length")} == {"predicted"}
    assert all(
        {"hair.length", "hair.color"} <= keys for (_, kind), keys in _queued().items() if kind == "review"
    )


def test_conditions_read_known_values_and_treat_fields_left_to_people_as_unknown() -> None:
    when = {"category": "hair.length", "not_in": ["bald"]}
    assert routing.applies(when, {"hair.length": "bald"}) is False
    assert routing.applies(when, {"hair.length": "above_chin"}) is True
    assert routing.applies(when, {}) is None  # a person decides hair.length: ask hair.color too
    assert routing.applies(when, {"hair.length": None}) is False  # hair.length does not apply
    both = {"all": [when, {"category": "hat.worn", "equals": True}]}
    assert routing.applies(both, {"hair.length": "above_chin", "hat.worn": True}) is True
    assert routing.applies(both, {"hair.length": "above_chin", "hat.worn": False}) is False
    assert routing.applies({"any": [when, {"category": "x", "in": ["a"]}]}, {"hair.length": "bald"}) is None
    assert routing.audited(1, 7, 1.0) and not routing.audited(1, 7, 0.0)
    share = sum(routing.audited(1, s, 0.2) for s in range(2000)) / 2000
    assert 0.17 < share < 0.23


def test_audits_measure_the_accuracy_of_auto_accepted_labels_with_an_interval(
    admin: Api, people: dict[str, Any]
) -> None:
    from tests.server.flywheel.conftest import work_queue

    project_id = people["id"]
    set_settings(admin, project_id, audit_share=1.0)
    _trust(project_id, {"hair.length": 0.0})
    _route_all(project_id)
    accepted = [label.value for label in _labels("hair.length")]
    assert len(accepted) == 12
    # The reviewer says every hair length is "above_chest": an accepted label is right when it was.
    work_queue(admin, project_id, change={"hair.length": "above_chest"})
    right = sum(1 for value in accepted if value == "above_chest")
    overview = admin.get(f"/projects/{project_id}/flywheel").json()
    audit = overview["activity"]["audit"]
    assert (audit["audited"], audit["correct"]) == (12, right)
    from server.flywheel.measures import wilson

    assert (audit["low"], audit["high"]) == pytest.approx(wilson(right, 12))
    assert overview["activity"]["fields_auto_accepted"] == 12
    assert overview["activity"]["fields_per_person_hour"] > 0
    assert {label.state for label in _labels("hair.length")} == {"verified"}  # audited: a person's now
