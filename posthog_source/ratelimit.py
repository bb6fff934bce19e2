"""A client-side limiter that keeps every thread inside PostHog's budgets, so 429s stay rare.

PostHog counts requests per personal API key in sliding windows (docs/posthog-api.md, "Limits and errors").
We count the same way, but a request stays in our windows until it *completes* (PostHog counts it on
arrival), which keeps us a little on the safe side whatever the latency. HogQL queries are also limited in concurrency.
When PostHog answers 429 anyway, `pause()` holds back every thread of that class until the given time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from posthog_source.errors import ConfigurationError

Budget = Sequence[tuple[int, float]]


class _Slot:
    __slots__ = ("done_at",)

    def __init__(self) -> None:
        self.done_at = math.inf  # in flight


class _RequestClass:
    def __init__(self, budgets: Budget, concurrency: int | None, time_scale: float) -> None:
        self.windows = [(int(n), float(seconds) / time_scale) for n, seconds in budgets]
        self.longest = max((w for _, w in self.windows), default=0.0)
        self.concurrency = concurrency
        self.slots: list[_Slot] = []
        self.in_flight = 0
        self.paused_until = 0.0

    def wait_needed(self, now: float) -> float | None:
        """0 when a request may start now, seconds to wait, or None to wait for a completion."""
        if now < self.paused_until:
            return self.paused_until - now
        self.slots = [s for s in self.slots if s.done_at > now - self.longest]
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            return None
        wait = 0.0
        for limit, window in self.windows:
            recent = [s.done_at for s in self.slots if s.done_at > now - window]
            if len(recent) < limit:
                continue
            finished = sorted(t for t in recent if t != math.inf)
            excess = len(recent) - limit  # this many must leave the window first
            if excess >= len(finished):
                return None
            wait = max(wait, finished[excess] + window - now)
        return wait


class RateLimiter:
    """Budgets per request class ("query", "analytics", "crud"), shared by all threads of a run."""

    def __init__(
        self,
        budgets: Mapping[str, Budget],
        concurrency: Mapping[str, int] | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not time_scale > 0:
            raise ConfigurationError(f"rate_limit_time_scale must be a positive number, got '{time_scale}'")
        concurrency = concurrency or {}
        # A class with a concurrency limit is limited even without budgets: `rate_limits = {}` turns off
        # budgeting only, PostHog still runs at most 3 queries of a team at once (docs/posthog-api.md, "Limits
        # and errors").
        names = list(budgets) + [name for name in concurrency if name not in budgets]
        self._classes = {
            name: _RequestClass(budgets.get(name, ()), concurrency.get(name), time_scale) for name in names
        }
        self._clock = clock
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, request_class: str) -> Iterator[None]:
        """Hold a place in `request_class`'s budget for the duration of one request."""
        cls = self._classes.get(request_class)
        if cls is None:
            yield
            return
        entry = _Slot()
        with self._cond:
            while True:
                wait = cls.wait_needed(self._clock())
                if wait is not None and wait <= 0:
                    break
                self._cond.wait(timeout=None if wait is None else min(wait, 5.0))
            cls.slots.append(entry)
            cls.in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                entry.done_at = self._clock()
                cls.in_flight -= 1
                self._cond.notify_all()

    def delay(self, request_class: str) -> float | None:
        """How long a request of this class would wait now: 0 (it may start), seconds, or None (it waits
        for a request in flight to finish). For logs and tests; `slot` does the waiting."""
        cls = self._classes.get(request_class)
        if cls is None:
            return 0.0
        with self._cond:
            wait = cls.wait_needed(self._clock())
        return None if wait is None else max(0.0, wait)

    def pause(self, request_class: str, seconds: float) -> float:
        """Hold back every request of this class for `seconds` (after a 429); returns the pause's end, for
        `end_pause`."""
        cls = self._classes.get(request_class)
        if cls is None:
            return 0.0
        with self._cond:
            until = self._clock() + seconds
            cls.paused_until = max(cls.paused_until, until)
            self._cond.notify_all()
            return cls.paused_until

    def end_pause(self, request_class: str, until: float) -> None:
        """The thread that waited out a 429 ends the pause it set (unless a longer one was set since), so the
        pause follows the client's own sleep, also when that sleep is shortened (tests, a signal)."""
        cls = self._classes.get(request_class)
        if cls is None:
            return
        with self._cond:
            if cls.paused_until == until:
                cls.paused_until = 0.0
                self._cond.notify_all()
