from __future__ import annotations

import threading

import pytest

from workers.inference.images import ImageLoadError
from workers.inference.prefetch import prefetched


def test_micro_batches_keep_input_order_and_carry_load_errors() -> None:
    def load(n: int) -> int:
        if n == 3:
            raise ImageLoadError("unreadable", "three")
        return n * 10

    chunks = list(prefetched(list(range(5)), 2, load, workers=2))
    assert [[ref for ref, _ in chunk] for chunk in chunks] == [[0, 1], [2, 3], [4]]
    flat = [loaded for chunk in chunks for _, loaded in chunk]
    assert flat[:3] == [0, 10, 20] and isinstance(flat[3], ImageLoadError) and flat[4] == 40


def test_the_next_micro_batch_decodes_while_the_current_one_is_processed() -> None:
    next_batch_started = threading.Event()

    def load(n: int) -> int:
        if n == 2:
            next_batch_started.set()
        return n

    batches = prefetched([0, 1, 2, 3], 2, load, workers=2)
    first = next(batches)
    # The consumer still holds the first micro-batch; the second must already be loading.
    assert next_batch_started.wait(timeout=5)
    assert [ref for ref, _ in first] == [0, 1]
    assert [ref for ref, _ in next(batches)] == [2, 3]


def test_a_bug_in_loading_is_raised_not_reported_as_an_image_error() -> None:
    def load(n: int) -> int:
        raise KeyError(n)

    with pytest.raises(KeyError):
        list(prefetched([1], 1, load))
