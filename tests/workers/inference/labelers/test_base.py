from __future__ import annotations

import pytest

from workers.contracts import CategoryPrediction, CategorySpec
from workers.inference.labelers.base import apply_conditions, decide, dependency_order


def _category(key: str, kind: str = "single", when: dict[str, object] | None = None) -> CategorySpec:
    values = [] if kind in ("boolean", "text") else [{"key": "a"}, {"key": "b"}, {"key": "c"}]
    return CategorySpec.model_validate(
        {"key": key, "kind": kind, "question": "q", "values": values, "when": when}
    )


def test_single_takes_the_argmax_and_its_probability() -> None:
    prediction = decide(_category("x.y"), [0.2, 0.5, 0.3])
    assert (prediction.value, prediction.confidence) == ("b", 0.5)
    assert prediction.distribution == {"a": 0.2, "b": 0.5, "c": 0.3}


def test_boolean_is_a_bool_with_the_surer_side_as_confidence() -> None:
    prediction = decide(_category("x.y", "boolean"), [0.3, 0.7])
    assert (prediction.value, prediction.confidence) == (False, 0.7)


def test_multi_keeps_values_near_the_top_and_reports_their_mass() -> None:
    prediction = decide(_category("x.y", "multi"), [0.45, 0.4, 0.15])
    assert prediction.value == ["a", "b"]
    assert prediction.confidence == pytest.approx(0.85)


def test_text_categories_have_no_distribution_to_decide() -> None:
    with pytest.raises(ValueError):
        decide(_category("x.y", "text"), [1.0])


def _predicted(value: object) -> CategoryPrediction:
    return CategoryPrediction(value=value, confidence=0.9)  # type: ignore[arg-type]


def test_dependants_of_a_false_condition_are_dropped_transitively() -> None:
    categories = [
        _category("coat.pattern", when={"category": "coat.color", "in": ["a", "b"]}),
        _category("coat.color", when={"category": "coat.worn", "equals": True}),
        _category("coat.worn", "boolean"),
    ]
    worn = {"coat.worn": _predicted(True), "coat.color": _predicted("a"), "coat.pattern": _predicted("c")}
    not_worn = dict(worn, **{"coat.worn": _predicted(False)})
    assert set(apply_conditions(categories, worn)) == {"coat.worn", "coat.color", "coat.pattern"}
    assert set(apply_conditions(categories, not_worn)) == {"coat.worn"}


def test_a_condition_on_a_category_the_labeler_did_not_answer_keeps_the_prediction() -> None:
    categories = [
        _category("coat.color", when={"category": "coat.worn", "equals": True}),
        _category("coat.worn", "boolean"),
    ]
    assert set(apply_conditions(categories, {"coat.color": _predicted("a")})) == {"coat.color"}


def test_dependency_order_puts_conditions_first_and_rejects_cycles() -> None:
    ordered = dependency_order([_category("b.b", when={"category": "a.a", "equals": "a"}), _category("a.a")])
    assert [c.key for c in ordered] == ["a.a", "b.b"]
    with pytest.raises(ValueError, match="cycle"):
        dependency_order(
            [
                _category("a.a", when={"category": "b.b", "equals": "a"}),
                _category("b.b", when={"category": "a.a", "equals": "a"}),
            ]
        )
