"""Decoding the next micro-batch in a thread pool while the current one is on the model.

PIL releases the GIL while it decodes, so a few threads keep a GPU fed without extra processes.
At most one micro-batch is decoded ahead, which bounds memory to two micro-batches of pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from workers.inference.images import ImageLoadError

R = TypeVar("R")
T = TypeVar("T")
Loaded = tuple[R, T | ImageLoadError]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def prefetched(
    refs: Sequence[R], size: int, load: Callable[[R], T], *, workers: int | None = None
) -> Iterator[list[tuple[R, T | ImageLoadError]]]:
    """Micro-batches of (ref, loaded or the image's load error), in input order.

    Only `ImageLoadError` is caught: any other exception in `load` is a bug and is raised here.
    """
    if size < 1:
        raise ValueError("micro-batch size must be at least 1")
    chunks = [refs[i : i + size] for i in range(0, len(refs), size)]
    pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="decode")

    def submit(index: int) -> list[Future[T | ImageLoadError]]:
        if index >= len(chunks):
            return []
        return [pool.submit(_guarded, load, ref) for ref in chunks[index]]

    try:
        pending = submit(0)
        for index, chunk in enumerate(chunks):
            current, pending = pending, submit(index + 1)
            yield [(ref, future.result()) for ref, future in zip(chunk, current, strict=True)]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _guarded(load: Callable[[R], T], ref: R) -> T | ImageLoadError:
    try:
        return load(ref)
    except ImageLoadError as error:
        return error
