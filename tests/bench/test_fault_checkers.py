"""The fault drills' checkers (bench/faults) must see the failures they exist to find: a drill
whose checker cannot fail proves nothing. Pure functions over recorded data; no servers."""

from __future__ import annotations

from typing import Any

from bench.faults import _pipeline as pipeline
from bench.faults._review import silent_overwrites

LABEL, CATEGORY = 7, 3


def _submit(user: int, assignment: int, value: str, version: int) -> dict[str, Any]:
    answers = [{"category_id": CATEGORY, "value": value, "label_version": version}]
    return {"user": user, "assignment": assignment, "answers": answers}


def test_writes_on_the_version_each_writer_saw_are_not_silent_overwrites() -> None:
    # Ann writes on version 1; Bob got a 409, saw version 2 and decided again on top of it.
    events = [(LABEL, CATEGORY, 10, 1, "a", "b"), (LABEL, CATEGORY, 11, 2, "b", "c")]
    acked = [_submit(1, 10, "b", 1), _submit(2, 11, "c", 2)]
    assert silent_overwrites(events, acked) == (0, 0, [])


def test_a_write_on_a_version_its_writer_never_saw_is_a_silent_overwrite() -> None:
    # Both loaded version 1; the server accepted Bob's stale write after Ann's.
    events = [(LABEL, CATEGORY, 10, 1, "a", "b"), (LABEL, CATEGORY, 11, 2, "b", "c")]
    acked = [_submit(1, 10, "b", 1), _submit(2, 11, "c", 1)]
    silent, unexplained, samples = silent_overwrites(events, acked)
    assert (silent, unexplained) == (1, 0)
    assert "version 2" in samples[0]


def test_a_stored_value_other_than_the_acknowledged_one_is_caught() -> None:
    events = [(LABEL, CATEGORY, 10, 1, "a", "z")]
    assert silent_overwrites(events, [_submit(1, 10, "b", 1)])[0] == 1


def test_a_person_write_without_an_acknowledged_submit_is_counted_apart() -> None:
    model_event = (LABEL, CATEGORY, None, None, None, "a")  # a model's write: no person, no submit
    events = [model_event, (LABEL, CATEGORY, 12, 3, "a", "b")]
    assert silent_overwrites(events, []) == (0, 1, [])


def _figures(**changes: Any) -> dict[str, Any]:
    figures = {
        "images": 4,
        "images_stored": 4,
        "duplicated": 0,
        "missing": 0,
        "predictions": 8,
        "labels": 8,
        "labels_without_one_event": 0,
        "per_subject": [2],
        "ingest_run": [["succeeded", 4]],
    }
    return {**figures, **changes}


def test_pipeline_checks_pass_only_with_exactly_one_prediction_each() -> None:
    assert pipeline.passed(_figures())
    assert not pipeline.passed(_figures(duplicated=1))
    assert not pipeline.passed(_figures(missing=1))
    assert not pipeline.passed(_figures(per_subject=[1, 2]))
    assert not pipeline.passed(_figures(predictions=0, labels=0))
    assert not pipeline.passed(_figures(ingest_run=[["running", 4]]))
