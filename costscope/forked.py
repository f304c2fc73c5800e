"""`pool_map`: a function mapped in order over items on forked processes, with a bounded number in flight."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def pool_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, initializer: Callable[[], None] | None = None
) -> Iterator[R]:
    """`map(fn, items)` in order on `workers` forked processes (each started with `initializer`), at most
    2 × workers tasks in flight: the results not yet taken are never more than that. In this process where there
    is one worker or one item, or no `fork`."""
    items = list(items)
    if workers <= 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=initializer) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
