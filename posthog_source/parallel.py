"""Run several page producers at once and hand their pages to one consumer (the dlt resource).

The number of pages waiting for the consumer is bounded, so memory stays flat however fast PostHog answers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def interleave(producers: list[Callable[[], Iterator[T]]], workers: int, buffered: int | None = None) -> Iterator[T]:
    """Items of every producer, in the order they become ready. At most `buffered` (default 2 × workers)
    items are in production or waiting, so that many producers run at once. The first error stops all
    producers and is raised to the consumer."""
    if not producers:
        return
    workers = max(1, min(workers, len(producers)))
    if workers == 1:
        for produce in producers:
            yield from produce()
        return
    items: queue.Queue[Any] = queue.Queue()
    room = threading.Semaphore(buffered or 2 * workers)
    stop = threading.Event()

    def run(produce: Callable[[], Iterator[T]]) -> None:
        """A slot is taken *before* the next item is produced, so an item waiting for room is never held:
        at most `buffered` items exist between the producers and the consumer, in production included."""
        try:
            iterator = produce()
            while True:
                while not room.acquire(timeout=0.2):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(iterator)
                except StopIteration:
                    room.release()
                    return
                items.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer thread
            items.put(_Failure(error))
        finally:
            items.put(_DONE)

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="posthog")
    try:
        for produce in producers:
            executor.submit(run, produce)
        remaining = len(producers)
        while remaining:
            item = items.get()
            if item is _DONE:
                remaining -= 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                room.release()
                yield item
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
