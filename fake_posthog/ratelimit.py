"""PostHog's throttles (posthog-api.md §4): per-key sliding windows and the per-team query concurrency cap.

DRF's SimpleRateThrottle keeps the request history per cache key and answers with the exact time until
the oldest request leaves the window; that is what the "Expected available in N seconds" detail says.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class RateLimitConfig:
    """Limits per bucket as (requests, window seconds) pairs; windows are PostHog's nominal seconds."""

    crud: tuple[tuple[int, float], ...] = ((480, MINUTE), (4800, HOUR))
    analytics: tuple[tuple[int, float], ...] = ((240, MINUTE), (1200, HOUR))
    query: tuple[tuple[int, float], ...] = ((240, MINUTE), (2400, HOUR))
    query_concurrency: int = 3
    query_queue_seconds: float = 30.0

    def windows(self, bucket: str) -> tuple[tuple[int, float], ...]:
        return getattr(self, bucket)


@dataclass
class RateLimiter:
    """Thread-safe sliding-window limiter. `time_scale` divides every window (60 -> a minute lasts 1 s)."""

    config: RateLimitConfig = field(default_factory=RateLimitConfig)
    time_scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _history: dict[tuple[str, str, int], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: dict[int, int] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def check(self, key: str, bucket: str) -> int | None:
        """Record a request; None if allowed, else the wait in whole real seconds (ceil, at least 1).

        Like DRF, every throttle is consulted and records the request when it allows it."""
        now = self.clock()
        waits: list[float] = []
        with self._lock:
            for i, (limit, window) in enumerate(self.config.windows(bucket)):
                span = window / self.time_scale
                history = self._history.setdefault((key, bucket, i), deque())
                while history and history[0] <= now - span:
                    history.popleft()
                if len(history) >= limit:
                    waits.append(span - (now - history[0]))
                else:
                    history.append(now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    @contextmanager
    def query_slot(self, team_id: int) -> Iterator[bool]:
        """Hold one of the team's concurrent query slots; yields False if none freed within the queue time."""
        deadline = self.clock() + self.config.query_queue_seconds / self.time_scale
        with self._cond:
            while self._running.get(team_id, 0) >= self.config.query_concurrency:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            acquired = self._running.get(team_id, 0) < self.config.query_concurrency
            if acquired:
                self._running[team_id] = self._running.get(team_id, 0) + 1
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._running[team_id] -= 1
                    self._cond.notify_all()


def throttled_detail(wait_seconds: int) -> str:
    return f"Request was throttled. Expected available in {wait_seconds} seconds."


def concurrency_detail(team_id: int, limit: int, task_id: str) -> str:
    """The concurrency limiter's message, which PostHog passes through as the 429 detail."""
    return f"Exceeded maximum concurrency limit: {limit} for key: api_per_team:{team_id} and task: {task_id}"


GB = 1_000_000_000


@dataclass
class ReadBudget:
    """PostHog's hourly read budget for API queries (PostHog#95375, posthog/api_queries_budget.py): a token
    bucket of bytes per scope (PostHog: per team) that starts full, refills `bytes_per_hour` up to
    `capacity_hours` of refill, and floors at one hour of refill below zero. A query is admitted while the
    balance is positive; the one that takes it below zero still runs in full. `time_scale` speeds the refill
    up (60 -> an hour's refill per real minute)."""

    bytes_per_hour: float = 20 * GB
    capacity_hours: float = 24.0
    time_scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # scope -> (tokens, refilled at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def capacity(self) -> float:
        return self.bytes_per_hour * self.capacity_hours

    def _refilled(self, scope: str, now: float) -> float:
        tokens, at = self._buckets.get(scope, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self._rate())
        return max(tokens, -self.bytes_per_hour)

    def _rate(self) -> float:
        """Bytes refilled per real second."""
        return self.bytes_per_hour / HOUR * self.time_scale

    def balance(self, scope: str) -> float:
        now = self.clock()
        with self._lock:
            tokens = self._refilled(scope, now)
            self._buckets[scope] = (tokens, now)
            return tokens

    def wait(self, scope: str) -> int | None:
        """None if a query may run now, else the real seconds until the balance is positive again."""
        tokens = self.balance(scope)
        if tokens > 0:
            return None
        rate = self._rate()
        return 1 if rate <= 0 else max(1, math.ceil(-tokens / rate))

    def debit(self, scope: str, read_bytes: int) -> float:
        """Take a finished query's bytes off the bucket; returns the balance left."""
        now = self.clock()
        with self._lock:
            tokens = max(self._refilled(scope, now) - read_bytes, -self.bytes_per_hour)
            self._buckets[scope] = (tokens, now)
            return tokens
