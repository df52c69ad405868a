"""The flywheel's arithmetic: accuracy with a Wilson interval, trust, and confidence cuts.

Pure functions over plain numbers, so routing, rounds, the API and the bench agree on one
definition of each figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054
Z_ONE_SIDED_95 = 1.6448536269514722


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class CategoryScore:
    """One labeler version on one category of the evaluation set."""

    support: int
    correct: int
    low: float
    high: float
    cut: float | None  # auto-accept predictions at or above this confidence; None: no cut reaches it
    trusted: bool

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.support if self.support else None

    def as_dict(self) -> dict[str, float | int | bool | None]:
        return {
            "support": self.support,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "low": round(self.low, 6),
            "high": round(self.high, 6),
            "cut": self.cut,
            "trusted": self.trusted,
        }


def calibrate_cut(
    outcomes: Sequence[tuple[float, bool]], target_precision: float, min_support: int
) -> float | None:
    """The lowest confidence whose accepted share (predictions at or above it) is precise enough.

    The accepted share must hold at least `min_support` answers, so a cut is never set on a
    handful of lucky predictions; how sure the platform then is of what it accepted is what the
    audit measures.
    """
    ranked = sorted(outcomes, key=lambda o: -o[0])
    correct = 0
    best: float | None = None
    for index, (confidence, ok) in enumerate(ranked, start=1):
        correct += int(ok)
        # Only where the next answer has a lower confidence: ties are accepted together.
        if index < len(ranked) and ranked[index][0] == confidence:
            continue
        if index >= min_support and correct / index >= target_precision:
            best = confidence
    return best


def score(
    outcomes: Sequence[tuple[float, bool]], threshold: float, min_support: int, target_precision: float
) -> CategoryScore:
    """Accuracy and its interval; trusted when the bound reaches `threshold` on enough support."""
    n = len(outcomes)
    correct = sum(1 for _, ok in outcomes if ok)
    low, high = wilson(correct, n)
    return CategoryScore(
        support=n,
        correct=correct,
        low=low,
        high=high,
        cut=calibrate_cut(outcomes, target_precision, min_support),
        trusted=n >= min_support and low >= threshold,
    )


def macro_accuracy(accuracies: Iterable[float | None]) -> float | None:
    known = [a for a in accuracies if a is not None]
    return sum(known) / len(known) if known else None


def fell_beyond(
    before: tuple[int, int], after: tuple[int, int], margin: float, z: float = Z_ONE_SIDED_95
) -> bool:
    """Whether accuracy fell by more than `margin`, beyond sampling noise: the one-sided 95%
    lower bound of the drop (difference of two proportions, each `(correct, support)`) exceeds it.

    On an evaluation set of a hundred answers a category's accuracy moves by several points from
    one version to the next by chance alone; a point comparison would reject nearly every
    candidate of a many-category taxonomy. The two versions answer the same subjects, whose
    outcomes are positively correlated, so the unpaired variance used here is the larger one.
    """
    (right_before, n_before), (right_after, n_after) = before, after
    if n_before <= 0 or n_after <= 0:
        return False
    p_before, p_after = right_before / n_before, right_after / n_after
    spread = math.sqrt(p_before * (1 - p_before) / n_before + p_after * (1 - p_after) / n_after)
    return p_before - p_after - z * spread > margin
