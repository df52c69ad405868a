from __future__ import annotations

import pytest

from server.flywheel.measures import calibrate_cut, fell_beyond, macro_accuracy, score, wilson
from server.flywheel.service import gate


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson(85, 100)
    assert low == pytest.approx(0.7672, abs=1e-4) and high == pytest.approx(0.9069, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)


def test_the_cut_is_the_lowest_confidence_whose_accepted_share_is_precise_enough() -> None:
    confident = [(0.9, True)] * 200
    unsure = [(0.4, True), (0.4, False)] * 50
    cut = calibrate_cut(confident + unsure, target_precision=0.95, min_support=30)
    assert cut == 0.9
    assert calibrate_cut(unsure, target_precision=0.95, min_support=30) is None
    # Too few accepted answers never set a cut, however right they are.
    assert calibrate_cut([(0.99, True)] * 5, target_precision=0.5, min_support=30) is None


def test_a_category_is_trusted_only_when_its_bound_reaches_the_threshold_on_enough_support() -> None:
    assert score([(0.9, True)] * 100, 0.85, 30, 0.95).trusted
    assert not score([(0.9, True)] * 10, 0.85, 30, 0.95).trusted  # too little support
    assert not score([(0.9, True)] * 86 + [(0.9, False)] * 14, 0.85, 30, 0.95).trusted  # bound < 0.85
    assert macro_accuracy([1.0, 0.5, None]) == 0.75


def _scores(**accuracies: float) -> dict[str, object]:
    return {
        "categories": {k: {"accuracy": a} for k, a in accuracies.items()},
        "macro_accuracy": sum(accuracies.values()) / len(accuracies),
    }


def test_the_gate_promotes_only_a_better_macro_with_no_category_falling_past_the_margin() -> None:
    baseline = _scores(a=0.9, b=0.9)
    promoted, reasons = gate(_scores(a=0.95, b=0.89), baseline, 0.02)
    assert promoted and reasons[0]["code"] == "promoted"
    promoted, reasons = gate(_scores(a=1.0, b=0.85), baseline, 0.02)
    assert not promoted and [r["code"] for r in reasons] == ["category_fell"]
    assert reasons[0]["category"] == "b"
    promoted, reasons = gate(_scores(a=0.9, b=0.9), baseline, 0.02)
    assert not promoted and [r["code"] for r in reasons] == ["macro_not_better"]
    # The cold-start labeler decides nothing: only the macro accuracy must rise.
    assert gate(_scores(a=1.0, b=0.85), baseline, 0.02, cold_start=True)[0]
    assert not gate({"categories": {}, "macro_accuracy": None}, baseline, 0.02)[0]


def test_a_fall_counts_only_beyond_the_margin_and_sampling_noise() -> None:
    # 0.60 -> 0.53 on 100 answers each: 7 points, within what chance moves such a share.
    assert not fell_beyond((60, 100), (53, 100), 0.02)
    # 0.95 -> 0.70 is a real fall; so is a smaller one measured on many answers.
    assert fell_beyond((95, 100), (70, 100), 0.02)
    assert fell_beyond((9000, 10000), (8700, 10000), 0.02)
    assert not fell_beyond((9000, 10000), (8900, 10000), 0.02)  # 1 point: inside the margin
    assert not fell_beyond((0, 0), (0, 10), 0.02)


def _counted(**correct: int) -> dict[str, object]:
    return {
        "categories": {k: {"accuracy": c / 100, "correct": c, "support": 100} for k, c in correct.items()},
        "macro_accuracy": sum(correct.values()) / 100 / len(correct),
    }


def test_the_gate_judges_falls_on_counts_when_scores_carry_them() -> None:
    baseline = _counted(a=60, b=90)
    promoted, reasons = gate(_counted(a=75, b=84), baseline, 0.02)
    assert promoted, reasons  # b fell 6 points on 100 answers: noise
    promoted, reasons = gate(_counted(a=99, b=70), baseline, 0.02)
    assert not promoted and [(r["code"], r["category"]) for r in reasons] == [("category_fell", "b")]
