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

from posthog_source import settings
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


# PostHog's read-budget headers on query answers (PostHog#102260: `X-PostHog-Query-Bytes-Read`, and
# `X-PostHog-Query-Budget-Remaining-Bytes` when the budget is on; posthog/api_queries_budget.py returns no
# remaining figure when the budget is off). Absent headers: nothing to pace by, 429s are still waited out.
BYTES_READ_HEADER = "X-PostHog-Query-Bytes-Read"
REMAINING_HEADER = "X-PostHog-Query-Budget-Remaining-Bytes"
# A refill estimate needs this much time between two answers (shorter spans are mostly noise).
_RATE_SPAN_SECONDS = 1.0
_MIN_PACING_WAIT = 0.01
# With queries in flight at once (3 per team), answers arrive out of the order PostHog debited them: a newer
# answer can carry an older balance, and a refill estimate can count a read debited before its span. So the
# balance is the lowest of the last _BALANCES_KEPT answers' (each refilled since), a refill estimate moves at
# most _RATE_STEP times the current one per sample (a paid team's 10x the assumed rate is learnt in four),
# and what stays after the queries in flight is a whole query (_MARGIN_QUERIES). A discrete-event test of 3
# queries in flight with answers out of order (tests/unit/test_read_pacing.py): with a quarter of a query as
# margin and the newest answer's balance, 4 of 20 runs were refused a query; now none of 1,000.
_MARGIN_QUERIES = 1.0
_BALANCES_KEPT = 4
_RATE_STEP = 2.0


class _TeamBudget:
    """What the pacer knows of one team's bucket: the last balances, the learnt refill, the recent reads."""

    def __init__(self) -> None:
        # (balance, when) of the last few answers: with queries in flight at once an answer can arrive after one
        # PostHog debited later, so the newest answer is not always the newest balance (`_delay`)
        self.seen: list[tuple[float, float]] = []
        self.base: tuple[float, float] | None = None  # the balance the next refill estimate starts from
        self.debited = 0.0  # bytes read by answers since the base
        self.highest = 0.0  # the highest balance seen: near it the bucket may be full and hide its refill
        self.rate: float | None = None  # bytes per second
        self.recent: list[int] = []
        self.in_flight = 0


class ReadBudgetPacer:
    """Keeps HogQL queries inside PostHog's read budget (PostHog#95375) instead of running into its 429.

    PostHog keeps one bucket of read bytes per team; it refills at a rate it does not publish (20 GB/h free,
    ×10 paid, both changeable), and a query is admitted while the balance is positive. From each answer's
    bytes read and remaining balance the pacer learns each team's refill rate, and before a query it waits
    until the team's balance projected to now stays positive after its queries in flight, each costed at the
    largest recent read. So a backfill bigger than the reserve reads at the refill rate without a 429. One
    pacer per host is shared by every client of the process (`of`): a backfill's runs keep what was learnt."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 assumed_rate: float = settings.READ_BUDGET_FREE_BYTES_PER_HOUR / 3600) -> None:
        """`assumed_rate` (bytes per second) paces until a team's rate is learnt: PostHog's free refill, the
        lowest a team has, so a first query that overdraws the bucket is not followed by a 429. A rate is
        never learnt below a tenth of it (a sleep of hours on a noisy estimate would look like a hang)."""
        self._clock = clock
        self._assumed_rate = assumed_rate
        self._lock = threading.Lock()
        self._teams: dict[str, _TeamBudget] = {}

    @classmethod
    def of(cls, host: str) -> ReadBudgetPacer:
        with _PACERS_LOCK:
            pacer = _PACERS.get(host)
            if pacer is None:
                pacer = _PACERS[host] = cls()
            return pacer

    def rate(self, team: str) -> float | None:
        """The refill rate learnt so far for `team`, in bytes per second."""
        with self._lock:
            budget = self._teams.get(team)
            return budget.rate if budget else None

    def observe(self, team: str, read: int | None, remaining: int | None) -> None:
        """An answer's `X-PostHog-Query-Bytes-Read` and remaining balance (None when not sent)."""
        now = self._clock()
        with self._lock:
            budget = self._teams.setdefault(team, _TeamBudget())
            if read is not None:
                budget.recent = [*budget.recent[-7:], read]
                budget.debited += read
            if remaining is None:
                return
            balance = float(remaining)
            budget.seen = [*budget.seen[-(_BALANCES_KEPT - 1):], (balance, now)]
            budget.highest = max(budget.highest, balance)
            if budget.base is None:
                budget.base, budget.debited = (balance, now), 0.0
                return
            start, since = budget.base
            if now - since < _RATE_SPAN_SECONDS:
                return
            gained = balance - start + budget.debited
            # a bucket that stayed below full all along refilled visibly (a full one hides its refill)
            if balance + budget.debited < 0.95 * budget.highest and gained > 0:
                sample = min(max(gained / (now - since), self._assumed_rate / 10), _RATE_STEP * self._rate(budget))
                budget.rate = sample if budget.rate is None else 0.7 * budget.rate + 0.3 * sample
            budget.base, budget.debited = (balance, now), 0.0

    def delay(self, team: str) -> float:
        """Seconds to wait before one more query of `team` may start (0: now)."""
        with self._lock:
            return self._delay(self._teams.get(team))

    def _rate(self, budget: _TeamBudget) -> float:
        """The refill rate to pace by: the team's learnt one, else the assumed one."""
        return budget.rate or self._assumed_rate

    def _delay(self, budget: _TeamBudget | None) -> float:
        if budget is None or not budget.seen or not budget.recent:
            return 0.0
        # PostHog admits a query while the balance is positive (the one that crosses zero still runs): what
        # must stay positive is the balance after the queries in flight, with one more as margin
        needed = float(max(budget.recent)) * (budget.in_flight + _MARGIN_QUERIES)
        rate = self._rate(budget)
        now = self._clock()
        # each answer's balance, refilled since: none of them can be below the balance now but for debits after
        # it, so the lowest is the one that has seen the most of them
        projected = min(balance + rate * (now - at) for balance, at in budget.seen)
        wait = (needed - projected) / rate if rate > 0 else 0.0
        return wait if wait >= _MIN_PACING_WAIT else 0.0  # shorter waits are rounding, not budget

    @contextmanager
    def query(self, team: str, sleep: Callable[[float], None]) -> Iterator[None]:
        """Wait for `team`'s budget, then hold a place among its queries in flight while one runs (the check
        and the place are taken together, so two threads cannot both spend the same balance). `sleep` may
        raise to give up (the client bounds the wait by `max_rate_limit_wait`)."""
        while True:
            with self._lock:
                budget = self._teams.setdefault(team, _TeamBudget())
                wait = self._delay(budget)
                if wait <= 0:
                    budget.in_flight += 1
                    break
            sleep(min(wait, 30.0))
        try:
            yield
        finally:
            with self._lock:
                budget.in_flight -= 1


_PACERS: dict[str, ReadBudgetPacer] = {}
_PACERS_LOCK = threading.Lock()
