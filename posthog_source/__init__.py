"""A dlt source for PostHog: events, persons, distinct ids, sessions and cohort membership through HogQL,
and every metadata endpoint.

    import dlt
    from posthog_source import posthog_source

    pipeline = dlt.pipeline("posthog", destination="duckdb", dataset_name="posthog")
    pipeline.run(posthog_source())   # config from .dlt/*.toml or SOURCES__POSTHOG__* env vars

The source is built without any HTTP: projects are discovered when the first resource runs, so dlt's own
tools (`dlt pipeline ... info`, `with_resources`, schema inspection) and Dagster's `@dlt_assets` work on it
offline. The path of a run: docs/architecture.md.
"""

from __future__ import annotations

import logging
from typing import Any

import dlt
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from posthog_source import settings
from posthog_source.catalogue import ALL_TABLES, ENDPOINTS
from posthog_source.client import PostHogClient
from posthog_source.config import SETTING_NAMES, SourceSettings
from posthog_source.events import events_resource
from posthog_source.failures import TableFailures
from posthog_source.metadata import metadata_resource, projects_resource
from posthog_source.persons import person_distinct_ids_resource, persons_resource
from posthog_source.projects import ProjectCatalog
from posthog_source.ratelimit import RateLimiter, ReadBudgetPacer
from posthog_source.sessions import cohort_people_resource, sessions_resource
from posthog_source.snapshot import ControlRows

__all__ = ["ALL_TABLES", "SETTING_NAMES", "ControlRows", "SourceSettings", "build_client", "posthog_source",
           "TableFailures", "source_from_settings"]


def build_client(config: SourceSettings) -> PostHogClient:
    """The shared HTTP client with PostHog's budgets. `rate_limits={}` turns budgeting off (self-hosted
    instances without rate limits) but keeps the limit of concurrent queries, which PostHog enforces
    whatever the budget."""
    chosen = settings.DEFAULT_RATE_LIMITS if config.rate_limits is None else config.rate_limits
    budgets: dict[str, Any] = {name: list(pairs) for name, pairs in chosen.items()}
    budgets.setdefault("query", [])
    limiter = RateLimiter(budgets, {"query": config.query_concurrency}, time_scale=config.rate_limit_time_scale)
    return PostHogClient(config.host, config.api_key, limiter=limiter, pacer=ReadBudgetPacer.of(config.host),
                         max_rate_limit_wait=config.max_rate_limit_wait.total_seconds(),
                         timeout=(settings.CONNECT_TIMEOUT_SECONDS, config.request_timeout.total_seconds()))


class _ArrowHintNoise(logging.Filter):
    """dlt warns, for every Arrow page, that the resource's column hints win over the page's Arrow types: for
    our tables that is by design (a `properties` column is JSON text in Arrow, which has no JSON type dlt
    reads, and keys are declared not null), so the warning says nothing a user can act on (48 lines a run
    before). Only that warning, and only for this source's tables, is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("when merging arrow schema with dlt schema" in message
                    and any(f"resource: {table}," in message for table in ALL_TABLES))


_ARROW_HINT_NOISE = _ArrowHintNoise()


def build_resources(
    config: SourceSettings, client: PostHogClient | None = None, control: ControlRows | None = None,
    failures: TableFailures | None = None,
) -> list[DltResource]:
    """Every table of the contract as a dlt resource; nothing is sent to PostHog until one runs. `control`
    counts the sentinel and deletion rows each table sends (so a run's summary shows stored rows only);
    `failures` collects the tables that failed instead of letting one stop the run (failures.py)."""
    client = client or build_client(config)
    logging.getLogger("dlt").addFilter(_ARROW_HINT_NOISE)  # once: a filter is added to a logger at most once
    catalog = ProjectCatalog(client, config.project_ids)
    resources = [projects_resource(catalog)]
    resources += [metadata_resource(client, endpoint, catalog, failures) for endpoint in ENDPOINTS]
    resources += [
        events_resource(client, catalog, config, failures),
        persons_resource(client, catalog, config, failures),
        person_distinct_ids_resource(client, catalog, config, failures),
        sessions_resource(client, catalog, config, failures),
        cohort_people_resource(client, catalog, config, failures),
    ]
    if control is not None:
        for resource in resources:
            resource.add_map(control.counter(resource.name))
    return resources


def source_from_settings(
    config: SourceSettings, client: PostHogClient | None = None, control: ControlRows | None = None,
    failures: TableFailures | None = None,
) -> DltSource:
    """The source for settings built elsewhere (the CLI, backfills, tests that pass their own client)."""

    @dlt.source(name="posthog", max_table_nesting=0)
    def posthog() -> list[DltResource]:
        return build_resources(config, client, control, failures)

    return posthog()


@dlt.source(name="posthog", section="posthog", max_table_nesting=0)
def posthog_source(
    api_key: str = dlt.secrets.value,
    host: Any = None,
    project_ids: Any = None,
    start_date: Any = None,
    end_date: Any = None,
    ingestion_lag: Any = None,
    max_lateness: Any = None,
    ingestion_overlap: Any = None,
    late_sweep: Any = None,
    window: Any = None,
    page_size: Any = None,
    page_bytes: Any = None,
    promoted_properties: Any = None,
    workers: Any = None,
    persons_full_refresh: Any = None,
    full_refresh: Any = None,
    handover_watermark: Any = None,
    max_rate_limit_wait: Any = None,
    rate_limits: Any = None,
    rate_limit_time_scale: Any = None,
    query_concurrency: Any = None,
    request_timeout: Any = None,
) -> list[DltResource]:
    """Every PostHog table of the contract, for every project the key can read (or `project_ids`).

    Settings come the dlt way (`[sources.posthog]` in .dlt/config.toml, SOURCES__POSTHOG__* env vars) or as
    arguments; they are parsed once into `SourceSettings` (config.py). Events: the first run reads the whole
    history (or from `start_date`); later runs read what was ingested since (events.py).
    """
    values = dict(locals())
    return build_resources(SourceSettings.parse(**values))
