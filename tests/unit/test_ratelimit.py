"""The client-side limiter with a fake clock: budgets per sliding window, concurrency, pauses after a 429."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from posthog_source.errors import ConfigurationError
from posthog_source.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_allows_n_requests_per_window_counted_until_they_complete() -> None:
    clock = Clock()
    limiter = RateLimiter({"crud": [(3, 60.0)]}, clock=clock)
    for _ in range(3):
        with limiter.slot("crud"):
            clock.now += 1  # each request takes a second; it stays in the window from its completion
    assert limiter.delay("crud") == pytest.approx(60 - 2)  # the first completed at 1001, now is 1003
    clock.now += 58
    assert limiter.delay("crud") == 0.0


def test_the_tightest_of_several_windows_decides() -> None:
    clock = Clock()
    limiter = RateLimiter({"query": [(2, 10.0), (3, 100.0)]}, clock=clock)
    for _ in range(2):
        with limiter.slot("query"):
            pass
    assert limiter.delay("query") == pytest.approx(10.0)
    clock.now += 10
    with limiter.slot("query"):
        pass
    clock.now += 10
    assert limiter.delay("query") == pytest.approx(80.0)  # the hourly-style window is now the one that binds


def test_time_scale_shortens_every_window() -> None:
    clock = Clock()
    limiter = RateLimiter({"crud": [(1, 60.0)]}, time_scale=20.0, clock=clock)
    with limiter.slot("crud"):
        pass
    assert limiter.delay("crud") == pytest.approx(3.0)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan")])
def test_a_time_scale_that_is_not_positive_is_a_configuration_error(scale: float) -> None:
    with pytest.raises(ConfigurationError, match="rate_limit_time_scale must be a positive number"):
        RateLimiter({}, time_scale=scale)


def test_concurrency_waits_for_a_request_in_flight() -> None:
    limiter = RateLimiter({"query": [(100, 60.0)]}, {"query": 3}, clock=Clock())
    with ExitStack() as in_flight:
        for _ in range(3):
            in_flight.enter_context(limiter.slot("query"))
        assert limiter.delay("query") is None
    assert limiter.delay("query") == 0.0


def test_no_budgets_keep_the_concurrency_limit() -> None:
    """`rate_limits = {}` turns budgeting off; PostHog still runs at most 3 queries of a team at once."""
    limiter = RateLimiter({}, {"query": 3}, clock=Clock())
    with ExitStack() as in_flight:
        for _ in range(3):
            in_flight.enter_context(limiter.slot("query"))
        assert limiter.delay("query") is None
    for _ in range(1000):  # and no budget at all
        with limiter.slot("query"):
            pass
    assert limiter.delay("query") == 0.0
    assert limiter.delay("crud") == 0.0


def test_a_fourth_query_blocks_until_one_of_three_finishes() -> None:
    limiter = RateLimiter({}, {"query": 3})
    release = threading.Event()
    started: list[float] = []

    def query() -> None:
        with limiter.slot("query"):
            started.append(time.monotonic())
            release.wait(5)

    threads = [threading.Thread(target=query) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(started) == 3
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(started) == 4


def test_pause_holds_the_class_back_and_end_pause_frees_it() -> None:
    clock = Clock()
    limiter = RateLimiter({"query": [(100, 60.0)], "crud": [(100, 60.0)]}, clock=clock)
    until = limiter.pause("query", 30)
    assert limiter.delay("query") == pytest.approx(30.0) and limiter.delay("crud") == 0.0
    clock.now += 10
    assert limiter.delay("query") == pytest.approx(20.0)
    longer = limiter.pause("query", 60)  # a second 429 meanwhile asks for longer
    limiter.end_pause("query", until)  # the first waiter's end does not cut the longer pause
    assert limiter.delay("query") == pytest.approx(60.0)
    limiter.end_pause("query", longer)
    assert limiter.delay("query") == 0.0


def test_unknown_classes_are_not_limited() -> None:
    limiter = RateLimiter({"query": [(1, 60.0)]}, clock=Clock())
    assert limiter.pause("analytics", 100) == 0.0
    with limiter.slot("analytics"):
        assert limiter.delay("analytics") == 0.0
