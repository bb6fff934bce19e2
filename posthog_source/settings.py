"""Constants of the PostHog source: hosts, page sizes, PostHog's published budgets, and every default.

Each default lives here once; `config.SourceSettings` and the command line's --help read them from here, and
tests/unit/test_settings_in_step.py holds README's settings table and .dlt/config.toml to them.
"""

from __future__ import annotations

HOST_SHORTCUTS: dict[str, str] = {
    "us": "https://us.posthog.com",
    "eu": "https://eu.posthog.com",
}
DEFAULT_HOST = "us"

# Hosts that may be reached over plain http (the key is sent in a header).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

# HogQL answers at most this many rows per query (docs/posthog-api.md); larger LIMITs are clamped silently.
HOGQL_MAX_ROWS = 50_000
# A page is also bounded in bytes: a 50,000-row page of 20 KB events would be a 1 GB response. The next
# LIMIT is picked from the bytes per row seen so far, so memory and PostHog's execution time stay bounded.
# 64 MB (about 44k rows of 1.5 KB events, 3,000 of 20 KB): an answer is decoded a few MB at a time
# (answers.py), so a page in flight costs about its body, not the 2.5x of decoding it whole. On 300k 1.5 KB
# events a run peaks at 409-420 MiB with 64 MB pages against 401-413 MiB with 32 MB, in 12 HogQL queries
# instead of 19 (before slices: 606-620 against 444-455 MiB). Larger pages would buy little budget (rows per
# query are capped at 50,000) for longer queries against PostHog's execution-time cap.
DEFAULT_PAGE_BYTES = 64 * 1024 * 1024
MIN_PAGE_ROWS = 100
# Default page of the REST list endpoints; PostHog's default is 100 and most have no maximum.

# Events still being ingested are left for the next run: the upper bound on created_at is now - lag.
DEFAULT_INGESTION_LAG_SECONDS = 5 * 60
# Every run re-reads `timestamp` back to the watermark minus this (late events; partition-pruned, cheap).
DEFAULT_MAX_LATENESS_SECONDS = 7 * 86_400
# Every incremental run re-reads `created_at` back to the watermark minus this: a row can become queryable
# after its `created_at` (ingestion delays). Merged on the key, so the re-read costs no duplicates.
DEFAULT_INGESTION_OVERLAP_SECONDS = 3_600
# At most this often a run also looks for events ingested since the last sweep whose `timestamp` is older
# than the bounded re-read reaches (imports, offline devices), and loads their days. 0: every run.
DEFAULT_LATE_SWEEP_SECONDS = 86_400
# Clients' clocks run ahead; PostHog clamps timestamps more than 23 h in the future.
FUTURE_TIMESTAMP_SKEW_HOURS = 24
# Granularity of a backfill's windows (its unit of resumable work) and of an incremental run's windows: they
# start and end on these boundaries. In an incremental run a per-day count decides how many buckets one window
# takes (about WINDOW_TARGET_ROWS rows), so sparse ranges cost a few queries, not one per day. First runs and
# backfill windows are read in slices of PostHog's sort key instead (slices.py).
DEFAULT_WINDOW_SECONDS = 86_400
WINDOW_TARGET_ROWS = 500_000
# First runs and backfills read slices of the events sort key (slices.py) of about this share of a page's
# rows: one query each, scanning about what it returns. A page's rows follow the width (RowWidth), learnt
# first from WIDTH_PROBE_ROWS rows of the range's smallest day; the margin absorbs rows arriving after the
# count and pages a little narrower than the probe.
SLICE_PAGE_SHARE = 0.8
WIDTH_PROBE_ROWS = 200
# Event slices being read, converted or waiting for dlt's writer at once (events.py), and as many walks: at most
# DEFAULT_QUERY_CONCURRENCY of them wait on PostHog, the others decode, convert or hand a slice to dlt's
# writer, so PostHog always has a query to answer. 1M 1.5 KB events against raw's 13.2-14.7 s (benchmarks/
# profile.md, alternated): 2 walks 21.9-23.1 s, 383-411 MiB; 3: 20.2-21.2 s, 424-440 MiB; 4: 17.5-18.1 s,
# 410-429 MiB; 5M: 85 s, 507 MiB. 20 KB events: no faster, 387 -> 505 MiB (each holds its answer's body).
EVENT_PAGES_IN_FLIGHT = 4
# Parallel HogQL walks: as many as slices in flight (a further walk would only wait, holding its answer).
DEFAULT_WORKERS = EVENT_PAGES_IN_FLIGHT

# PostHog's rate limits per personal API key (docs/posthog-api.md): (requests, seconds) pairs.
DEFAULT_RATE_LIMITS: dict[str, list[tuple[int, float]]] = {
    "query": [(240, 60.0), (2400, 3600.0)],
    "analytics": [(240, 60.0), (1200, 3600.0)],
    "crud": [(480, 60.0), (4800, 3600.0)],
}
# PostHog's read budget (PostHog#95375, posthog/api_queries_budget.py): the free refill per team. The pacer
# assumes it until it has learnt the team's own rate from the answers (paying teams get 10x).
READ_BUDGET_FREE_BYTES_PER_HOUR = 20_000_000_000
# PostHog runs at most 3 HogQL queries of a team at once; a 4th is queued, then refused.
DEFAULT_QUERY_CONCURRENCY = 3
# Paths served by ClickHouse-backed views share the "analytics" budget.
ANALYTICS_PATH_PARTS = ("/events", "/insights", "/persons")

# HTTP behaviour.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 120.0  # a HogQL page of 50,000 events can take PostHog a while
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A 429 asking to wait longer than this (in total, per request) stops the run cleanly; the next continues.
DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS = 3600.0

USER_AGENT = "posthog-dlt/0.1 (+dlt)"


def duration_text(seconds: float) -> str:
    """A default duration as users write it (`5m`, `1h`, `7d`): `--help`, README and .dlt/config.toml state the
    defaults above in this form, and a test holds them to it."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"
