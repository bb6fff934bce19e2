"""PostHog's query result cache (posthog-api.md §3.2, §9): an identical query for the same team inside the
cache's target age answers the rows computed earlier, stale or not, unless the request asks to refresh.

The cache key covers what PostHog's covers for a HogQLQuery (team, project time zone, query text) and
nothing else: neither the key that asked nor `name`/`client_query_id`. A fresh calculation (also one forced
by `refresh: force_blocking`) is written to the cache, as PostHog does. Like PostHog's Redis, entries expire
after their target age whether or not they are read again, and the cache holds a bounded amount: past
`max_rows` cached result rows the oldest entries are evicted (a 5M-event run would otherwise keep every page
it was sent, as Python objects, until the server ran out of memory).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# PostHog's base insight refresh interval (posthog/caching/insights_api.py BASE_MINIMUM_INSIGHT_REFRESH_INTERVAL).
DEFAULT_TARGET_AGE_SECONDS = 15 * 60.0
REFRESH_MODES = ("async", "async_except_on_cache_miss", "blocking", "force_async", "force_blocking",
                 "force_cache", "lazy_async")
# Result rows the cache holds at most (all entries together); older entries are evicted first.
DEFAULT_MAX_ROWS = 500_000
# Modes that recalculate whatever the cache holds; every other mode answers from a live cache entry.
FORCING_MODES = frozenset({"force_blocking", "force_async"})


def cache_key(team_id: int, project_tz: str, text: str) -> str:
    """A stable key like PostHog's `cache_<md5>`."""
    digest = hashlib.md5(f"query_HogQLQuery_{text}_{team_id}_{project_tz}".encode(), usedforsecurity=False)
    return "cache_" + digest.hexdigest()


@dataclass
class _Entry:
    result: dict[str, Any]
    computed_at: float  # monotonic seconds
    last_refresh: datetime
    rows: int = 0


@dataclass
class QueryCache:
    """Thread-safe result cache. `target_age_seconds` is nominal; `time_scale` divides it (60 -> 15 minutes
    last 15 real seconds)."""

    target_age_seconds: float = DEFAULT_TARGET_AGE_SECONDS
    time_scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    max_rows: int = DEFAULT_MAX_ROWS
    _entries: dict[str, _Entry] = field(default_factory=dict)  # oldest first
    _rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def real_age(self) -> timedelta:
        return timedelta(seconds=self.target_age_seconds / self.time_scale)

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached body for `key` with the cache fields set, or None if missing or older than the age."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry.computed_at >= self.real_age.total_seconds():
                self._drop(key)
                return None
        return self._decorate(entry.result, key, entry.last_refresh, cached=True)

    def put(self, key: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store a fresh result; returns it with the cache fields of a fresh calculation."""
        now = datetime.now(UTC)
        rows = len(result.get("results") or [])
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(result, self.clock(), now, rows)
            self._rows += rows
            self._evict()
        return self._decorate(result, key, now, cached=False)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        self._rows -= self._entries.pop(key).rows

    def _evict(self) -> None:
        """Expired entries go, then the oldest ones while the cache holds more than `max_rows` rows (the
        newest entry always stays)."""
        horizon = self.clock() - self.real_age.total_seconds()
        for key in [k for k, e in self._entries.items() if e.computed_at <= horizon]:
            self._drop(key)
        while self._rows > self.max_rows and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))

    def _decorate(self, result: dict[str, Any], key: str, last_refresh: datetime, cached: bool) -> dict[str, Any]:
        return {**result, "is_cached": cached, "cache_key": key, "last_refresh": _iso(last_refresh),
                "cache_target_age": _iso(last_refresh + self.real_age)}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
