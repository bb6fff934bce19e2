"""Constants of the PostHog source: hosts, page sizes, PostHog's published budgets, defaults."""

from __future__ import annotations

HOST_SHORTCUTS: dict[str, str] = {
    "us": "https://us.posthog.com",
    "eu": "https://eu.posthog.com",
}
DEFAULT_HOST = "us"

# Hosts that may be reached over plain http (the key is sent in a header).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

# How far back the first run reads events when no start_date is configured.
DEFAULT_START_DAYS_AGO = 30

# HogQL answers at most this many rows per query (posthog-api.md §3.2); larger LIMITs are clamped silently.
HOGQL_MAX_ROWS = 50_000
# Default page of the REST list endpoints; PostHog's default is 100 and most have no maximum.
REST_PAGE_SIZE = 100
SESSION_RECORDINGS_PAGE_SIZE = 50

# Events still being ingested are left for the next run: the upper bound on created_at is now - lag.
DEFAULT_INGESTION_LAG = "5m"
# How much older than its ingestion time an event's timestamp may be and still be picked up by an
# incremental run. Bounds every query on `timestamp`, the column PostHog partitions by.
DEFAULT_MAX_LATENESS = "7d"
# Clients' clocks run ahead; PostHog clamps timestamps more than 23 h in the future.
FUTURE_TIMESTAMP_SKEW_HOURS = 24
# Granularity of the timestamp windows of a first run and of a backfill: windows start and end on these
# boundaries. A per-day count decides how many buckets one window takes (about WINDOW_TARGET_ROWS rows), so
# sparse ranges cost a few queries, not one per day.
DEFAULT_WINDOW = "1d"
WINDOW_TARGET_ROWS = 500_000

# PostHog's rate limits per personal API key (posthog-api.md §4): (requests, seconds) pairs.
DEFAULT_RATE_LIMITS: dict[str, list[tuple[int, float]]] = {
    "query": [(240, 60.0), (2400, 3600.0)],
    "analytics": [(240, 60.0), (1200, 3600.0)],
    "crud": [(480, 60.0), (4800, 3600.0)],
}
# PostHog runs at most 3 HogQL queries of a team at once; a 4th is queued, then refused.
DEFAULT_QUERY_CONCURRENCY = 3
# Paths served by ClickHouse-backed views share the "analytics" budget.
ANALYTICS_PATH_PARTS = ("/events", "/insights", "/persons")

# HTTP behaviour.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 120.0
DEFAULT_REQUEST_TIMEOUT = "120s"  # a HogQL page of 50,000 events can take PostHog a while
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A 429 asking to wait longer than this stops the run cleanly (the next run continues).
DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS = 3600.0
DEFAULT_MAX_RATE_LIMIT_WAIT = "1h"

USER_AGENT = "posthog-dlt/0.1 (+dlt)"
