"""A dlt source for PostHog: events, persons and distinct ids through HogQL, and every metadata endpoint.

    import dlt
    from posthog_source import posthog_source

    pipeline = dlt.pipeline("posthog", destination="duckdb", dataset_name="posthog")
    pipeline.run(posthog_source())   # config from .dlt/*.toml or SOURCES__POSTHOG__* env vars
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dlt
import pendulum
from dlt.extract.resource import DltResource

from posthog_source import settings
from posthog_source.catalogue import ALL_TABLES, ENDPOINTS
from posthog_source.client import PostHogClient
from posthog_source.config import check_range, parse_duration, parse_instant, parse_project_ids, resolve_host
from posthog_source.errors import ConfigurationError
from posthog_source.events import (
    EventsConfig,
    events_resource,
    parse_promoted,
    person_distinct_ids_resource,
    persons_resource,
)
from posthog_source.metadata import metadata_resource, projects_resource
from posthog_source.projects import discover_projects
from posthog_source.ratelimit import RateLimiter

__all__ = ["posthog_source", "ALL_TABLES", "build_client"]


def build_client(
    api_key: str,
    host: str | None = None,
    rate_limits: dict[str, Sequence[Sequence[float]]] | None = None,
    rate_limit_time_scale: float = 1.0,
    query_concurrency: int = settings.DEFAULT_QUERY_CONCURRENCY,
    max_rate_limit_wait: float = settings.DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS,
    request_timeout: float = settings.READ_TIMEOUT_SECONDS,
) -> PostHogClient:
    """The shared HTTP client with PostHog's budgets. `rate_limits={}` turns budgeting off (self-hosted
    instances without rate limits)."""
    if not api_key or not str(api_key).strip():
        raise ConfigurationError(
            "no PostHog API key; set SOURCES__POSTHOG__API_KEY or api_key in .dlt/secrets.toml "
            "(a personal API key, phx_...)"
        )
    budgets = settings.DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits
    limiter = RateLimiter(
        {name: [(int(n), float(s)) for n, s in pairs] for name, pairs in budgets.items()},
        {"query": query_concurrency},
        time_scale=rate_limit_time_scale,
    )
    return PostHogClient(resolve_host(host), str(api_key).strip(), limiter=limiter,
                         max_rate_limit_wait=max_rate_limit_wait,
                         timeout=(settings.CONNECT_TIMEOUT_SECONDS, request_timeout))


@dlt.source(name="posthog", section="posthog", max_table_nesting=0)
def posthog_source(
    api_key: str = dlt.secrets.value,
    host: str = settings.DEFAULT_HOST,
    project_ids: Any = None,
    start_date: Any = None,
    end_date: Any = None,
    ingestion_lag: str = settings.DEFAULT_INGESTION_LAG,
    max_lateness: str = settings.DEFAULT_MAX_LATENESS,
    window: str = settings.DEFAULT_WINDOW,
    page_size: int = settings.HOGQL_MAX_ROWS,
    promoted_properties: Sequence[str] | None = None,
    persons_full_refresh: bool = False,
    full_refresh: bool = False,
    handover_watermark: Any = None,
    workers: int = 4,
    max_rate_limit_wait: str = settings.DEFAULT_MAX_RATE_LIMIT_WAIT,
    rate_limits: dict[str, Any] | None = None,
    rate_limit_time_scale: float = 1.0,
    query_concurrency: int = settings.DEFAULT_QUERY_CONCURRENCY,
    request_timeout: str = settings.DEFAULT_REQUEST_TIMEOUT,
) -> list[DltResource]:
    """Every PostHog table of the contract, for every project the key can read (or `project_ids`).

    Events: the first run reads `start_date` (default: 30 days ago) to now on `timestamp`, in windows cut on
    `window` boundaries and sized by a per-day count; later runs read what was ingested since (cursor on
    `created_at`, up to now minus `ingestion_lag`), looking back `max_lateness` on `timestamp` for late
    events. An `end_date` makes the run a stateless window (backfills). See events.py.
    """
    start = parse_instant(start_date, "start_date") or pendulum.now("UTC").subtract(
        days=settings.DEFAULT_START_DAYS_AGO
    ).start_of("day")
    end = parse_instant(end_date, "end_date")
    check_range(start, end)
    if isinstance(promoted_properties, str):
        promoted_properties = [p for p in promoted_properties.split(",") if p.strip()]
    config = EventsConfig(
        start_date=start,
        end_date=end,
        ingestion_lag_seconds=parse_duration(ingestion_lag, "ingestion_lag", allow_zero=True),
        max_lateness_seconds=parse_duration(max_lateness, "max_lateness"),
        window_seconds=parse_duration(window, "window"),
        page_size=_positive_int(page_size, "page_size"),
        promoted=parse_promoted(promoted_properties or ()),
        workers=_positive_int(workers, "workers"),
        reset_watermarks=bool(full_refresh),
        handover_watermark=parse_instant(handover_watermark, "handover_watermark"),
    )
    client = build_client(
        api_key,
        host,
        rate_limits=rate_limits,
        rate_limit_time_scale=float(rate_limit_time_scale),
        query_concurrency=_positive_int(query_concurrency, "query_concurrency"),
        max_rate_limit_wait=parse_duration(max_rate_limit_wait, "max_rate_limit_wait"),
        request_timeout=parse_duration(request_timeout, "request_timeout"),
    )
    discovered = discover_projects(client, parse_project_ids(project_ids))
    projects = [project for project, _ in discovered]
    resources = [projects_resource(discovered)]
    resources += [metadata_resource(client, endpoint, projects) for endpoint in ENDPOINTS]
    resources += [
        events_resource(client, projects, config),
        persons_resource(client, projects, config.workers, config.page_size, persons_full_refresh or full_refresh,
                         config.ingestion_lag_seconds),
        person_distinct_ids_resource(client, projects, config.workers, config.page_size),
    ]
    return resources


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise ConfigurationError(f"{name} must be a positive whole number, got '{value}'")
    return number
