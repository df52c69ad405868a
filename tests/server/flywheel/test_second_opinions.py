"""Second opinions: every evaluation subject is labelled twice and disagreements adjudicated; an
audit answer that disagrees with the auto-accepted value is adjudicated, and the audit counts the
ruling."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from server.core import runtime
from server.orm import Assignment, Category, EvalSetMember, Label, LabelEvent
from tests.server.conftest import Api
from tests.server.flywheel.conftest import set_settings, work_queue
from tests.server.flywheel.test_routing import _labels, _route_all, _trust

KEY = "hair.length"


def _take(api: Api, project_id: int) -> dict[str, Any] | None:
    response = api.post(f"/projects/{project_id}/assignments/next")
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _submit(api: Api, assignment: dict[str, Any], change: dict[str, Any]) -> None:
    answers = []
    for category in assignment["categories"]:
        label = category["label"]
        value = label["value"] if label is not None else None
        if category["key"] in change:
            value = change[category["key"]](category, value)
        answers.append(
            {
                "category_id": category["id"],
                "value": value,
                "label_version": label["version"] if label is not None else None,
            }
        )
    body = {"client_id": str(uuid.uuid4()), "answers": answers, "lead_time_ms": 1000}
    response = api.post(f"/assignments/{assignment['id']}/submit", json=body)
    assert response.status_code == 200, response.text


def _other(category: dict[str, Any], value: Any) -> Any:
    return next(v["key"] for v in category["values"] if v["key"] != value)


def _assignments(kind: str) -> list[Assignment]:
    with runtime.database().session_scope() as session:
        rows = list(
            session.scalars(select(Assignment).where(Assignment.kind == kind).order_by(Assignment.id))
        )
        session.expunge_all()
    return rows


def _category_id(key: str) -> int:
    with runtime.database().session_scope() as session:
        return int(next(c.id for c in session.scalars(select(Category)) if c.key == key))


def test_each_evaluation_subject_is_labelled_twice_blind_by_two_people_and_a_disagreement_is_adjudicated(
    admin: Api, people: dict[str, Any], second_person: Api
) -> None:
    project_id = people["id"]
    assert admin.post(f"/projects/{project_id}/eval-set", json={"size": 2}).status_code == 200
    first: dict[int, Any] = {}  # subject -> (the value the first pass was shown, its answer)
    second: dict[int, Any] = {}
    assignment = None
    for api, passes in ((admin, first), (second_person, second)):
        while (assignment := _take(api, project_id)) is not None and assignment["kind"] == "eval":
            subject_id = assignment["subject"]["id"]
            shown = next(c for c in assignment["categories"] if c["key"] == KEY)["label"]["value"]
            # The first person changes one field; the second accepts what it is shown.
            changed = _other(next(c for c in assignment["categories"] if c["key"] == KEY), shown)
            passes[subject_id] = (shown, changed if api is admin else shown)
            _submit(api, assignment, {KEY: _other} if api is admin else {})
        if assignment is not None:
            api.post(f"/assignments/{assignment['id']}/release")
    with runtime.database().session_scope() as session:
        members = {int(m.subject_id) for m in session.scalars(select(EvalSetMember))}
    # Each subject once per person: the admin is never served a subject's second pass.
    assert set(first) == set(second) == members
    # The second pass starts where the first did (the model's value), not at the first answer.
    assert all(second[s][0] == first[s][0] != first[s][1] for s in members)
    adjudications = _assignments("adjudicate")
    assert {a.subject_id for a in adjudications} == members
    assert all(list(a.category_ids) == [_category_id(KEY)] for a in adjudications)

    # The reviewer's ruling is the value that stands on the evaluation set.
    work_queue(admin, project_id, change={KEY: "above_chest"})
    with runtime.database().session_scope() as session:
        standing = {
            (label.subject_id, label.value, label.state)
            for label in session.scalars(
                select(Label).where(Label.subject_id.in_(members), Label.category_id == _category_id(KEY))
            )
        }
        rulings = session.scalars(
            select(LabelEvent).where(LabelEvent.reason == "adjudicate", LabelEvent.subject_id.in_(members))
        ).all()
    assert standing == {(s, "above_chest", "verified") for s in members}
    assert len(rulings) == 2


@pytest.mark.parametrize("passes", [1, 2])
def test_evaluation_passes_in_agreement_need_no_adjudication(
    admin: Api, people: dict[str, Any], second_person: Api, passes: int
) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, flywheel={"eval_passes": passes})
    assert admin.post(f"/projects/{project_id}/eval-set", json={"size": 2}).status_code == 200
    # eval passes, then 10 reviews
    assert work_queue([admin, second_person], project_id) == 2 * passes + 10
    assert len(_assignments("eval")) == 2 * passes and not _assignments("adjudicate")


def test_an_audit_disagreement_is_adjudicated_and_the_audit_counts_the_ruling(
    admin: Api, people: dict[str, Any]
) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, audit_share=1.0)
    _trust(project_id, {KEY: 0.0})
    _route_all(project_id)
    accepted = [label.value for label in _labels(KEY)]
    # Each auditor slips on this field (says another value); the adjudicator confirms what the
    # labeler accepted, so every audited field counts as right.
    while (assignment := _take(admin, project_id)) is not None:
        if assignment["kind"] == "audit":
            _submit(admin, assignment, {KEY: _other})
        elif assignment["kind"] == "adjudicate":
            subject_id = assignment["subject"]["id"]
            with runtime.database().session_scope() as session:
                first = session.scalars(
                    select(LabelEvent.from_value).where(
                        LabelEvent.subject_id == subject_id, LabelEvent.reason == "audit"
                    )
                ).one()
            _submit(admin, assignment, {KEY: lambda _c, _v, first=first: first})
        else:
            _submit(admin, assignment, {})
    assert len(_assignments("adjudicate")) == len(accepted) == 12
    audit = admin.get(f"/projects/{project_id}/flywheel").json()["activity"]["audit"]
    assert (audit["audited"], audit["correct"]) == (12, 12)
    assert sorted(label.value for label in _labels(KEY)) == sorted(accepted)


def test_without_audit_adjudication_the_auditors_answer_stands(admin: Api, people: dict[str, Any]) -> None:
    project_id = people["id"]
    set_settings(admin, project_id, audit_share=1.0, flywheel={"adjudicate_audits": False})
    _trust(project_id, {KEY: 0.0})
    _route_all(project_id)
    while (assignment := _take(admin, project_id)) is not None:
        _submit(admin, assignment, {KEY: _other} if assignment["kind"] == "audit" else {})
    assert not _assignments("adjudicate")
    audit = admin.get(f"/projects/{project_id}/flywheel").json()["activity"]["audit"]
    assert (audit["audited"], audit["correct"]) == (12, 0)


def test_an_audit_that_changes_a_parent_asks_the_child_it_makes_apply(
    admin: Api, people: dict[str, Any]
) -> None:
    from server.orm import Prediction

    project_id = people["id"]
    set_settings(admin, project_id, audit_share=1.0)
    with runtime.database().session_scope() as session:
        # The labeler says everyone is bald: hair colour (asked `when` hair is not bald) is not asked.
        for prediction in session.scalars(
            select(Prediction).where(Prediction.category_id == _category_id(KEY))
        ):
            prediction.value = "bald"
    _trust(project_id, {KEY: 0.0})
    _route_all(project_id)
    colour = _category_id("hair.color")
    queued = [a for a in _assignments("review") if a.status == "queued"]
    assert queued and all(colour not in a.category_ids for a in queued)

    asked: set[int] = set()
    while (assignment := _take(admin, project_id)) is not None:
        if assignment["kind"] == "review" and any(c["key"] == "hair.color" for c in assignment["categories"]):
            asked.add(assignment["subject"]["id"])
        # The auditor (and then the adjudicator) sees hair down to the chest.
        _submit(admin, assignment, {KEY: lambda _c, _v: "above_chest"})
    assert asked == {a.subject_id for a in queued}  # each subject's hair colour was asked after all
    assert {label.state for label in _labels("hair.color")} == {"verified"}
