"""Dagster assets for PostHog through dagster-dlt's `@dlt_assets`: one asset per table, `posthog/<table>`.

- `posthog/events` is partitioned by UTC day. Each partition (or a backfill's range of partitions, which
  Dagster runs as one run) is a stateless window on event `timestamp`, the source's start_date/end_date,
  merged on (project_id, uuid): re-materialising a day re-reads it and leaves no duplicates. Each window
  runs under its own dlt pipeline name, so windows can run at once into a warehouse.
- Every other table (metadata snapshots, persons, distinct ids, sessions, cohort membership) is an
  unpartitioned asset of one multi-asset; selecting some runs only those, incrementally where the table is.

The source is built without any HTTP (projects are discovered when a table is read), so the code location
loads offline; it needs only the API key in its environment. Load with `dagster dev -m
orchestration.dagster_defs`; configure the key, host and other settings the dlt way (SOURCES__POSTHOG__API_KEY,
SOURCES__POSTHOG__HOST, `[sources.posthog]` in .dlt/config.toml) and the destination with
POSTHOG_DAGSTER_DESTINATION (default duckdb) plus dlt's DESTINATION__... settings. DuckDB takes one writing
process at a time: set the `posthog_dlt` pool's limit to 1 (`dagster instance concurrency set posthog_dlt
1`) when several runs may load into one DuckDB file.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations at run time.
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import dlt
import pendulum
from dagster import AssetExecutionContext
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from pipelines.runner import DEFAULT_DATASET, RunOptions, make_pipeline
from posthog_source import ALL_TABLES, posthog_source
from posthog_source.errors import ConfigurationError

GROUP = "posthog"
POOL = "posthog_dlt"
EVENTS_START = os.environ.get("POSTHOG_EVENTS_PARTITIONS_START", "2025-01-01")
OTHER_TABLES = [t for t in ALL_TABLES if t != "events"]

daily = dg.DailyPartitionsDefinition(start_date=EVENTS_START, timezone="UTC")


class PostHogTranslator(DagsterDltTranslator):
    """Asset keys `posthog/<table>` in group `posthog`, with no made-up upstream assets (dagster-dlt's
    default adds a dependency on a `<source>_<resource>` asset that nothing produces)."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        kinds = {"dlt", "posthog"} | ({data.destination.destination_name} if data.destination else set())
        return spec.replace_attributes(key=dg.AssetKey([GROUP, data.resource.name]), deps=[], group_name=GROUP,
                                       kinds=kinds)


def _require_api_key(source_args: Mapping[str, Any]) -> None:
    """One clear line when the code location is loaded without a key (dlt's own error is a page long)."""
    if not source_args.get("api_key") and not dlt.secrets.get("sources.posthog.api_key"):
        raise ConfigurationError(
            "no PostHog API key for the Dagster code location; set SOURCES__POSTHOG__API_KEY in its environment "
            "(or api_key in .dlt/secrets.toml)"
        )


def build_definitions(
    source_args: Mapping[str, Any] | None = None,
    destination: str | None = None,
    dataset_name: str = DEFAULT_DATASET,
    pipeline_name: str = "posthog_dagster",
    duckdb_path: str | None = None,
    pipelines_dir: str | None = None,
    partitions_def: dg.PartitionsDefinition = daily,
) -> dg.Definitions:
    """The PostHog assets and the `dlt` resource they run with.

    `source_args` are `posthog_source` settings (api_key, host, project_ids, promoted_properties...);
    settings left out come from dlt config. The destination is `destination` (else
    POSTHOG_DAGSTER_DESTINATION, else duckdb), configured the dlt way; `duckdb_path` and `pipelines_dir` as in
    the runner. Nothing is sent to PostHog here.
    """
    args = {k: v for k, v in (source_args or {}).items() if v is not None}
    _require_api_key(args)
    options = RunOptions(
        pipeline_name=pipeline_name,
        destination=destination or os.environ.get("POSTHOG_DAGSTER_DESTINATION", "duckdb"),
        dataset_name=dataset_name,
        duckdb_path=duckdb_path,
        pipelines_dir=pipelines_dir,
    )
    source = posthog_source(**args)
    translator = PostHogTranslator()

    @dlt_assets(
        dlt_source=source.with_resources("events"),
        dlt_pipeline=make_pipeline(dataclasses.replace(options, pipeline_name=f"{pipeline_name}_events")),
        name="posthog_events",
        dagster_dlt_translator=translator,
        partitions_def=partitions_def,
        pool=POOL,
    )
    def posthog_events(context: AssetExecutionContext, dlt: DagsterDltResource) -> Iterator[Any]:
        """The events whose `timestamp` falls in the partitions' UTC days: a stateless window."""
        window = context.partition_time_window
        # instants, as the source takes them (Dagster's partition bounds are aware datetimes in UTC)
        start, end = pendulum.instance(window.start), pendulum.instance(window.end)
        context.log.info(f"reading events with timestamp in [{start.isoformat()}, {end.isoformat()})")
        window_source = posthog_source(**{**args, "start_date": start, "end_date": end}).with_resources("events")
        # A pipeline per window: windows run at once without sharing a working folder.
        name = f"{pipeline_name}_events_{window.start:%Y%m%d}_{window.end:%Y%m%d}"
        yield from dlt.run(context=context, dlt_source=window_source,
                           dlt_pipeline=make_pipeline(dataclasses.replace(options, pipeline_name=name)))

    @dlt_assets(
        dlt_source=source.with_resources(*OTHER_TABLES),
        dlt_pipeline=make_pipeline(options),
        name="posthog_tables",
        dagster_dlt_translator=translator,
        pool=POOL,
    )
    def posthog_tables(context: AssetExecutionContext, dlt: DagsterDltResource) -> Iterator[Any]:
        """The selected tables in one run (snapshots replaced, persons and sessions incremental)."""
        yield from dlt.run(context=context)

    return dg.Definitions(assets=[posthog_events, posthog_tables], resources={"dlt": DagsterDltResource()})


@dg.definitions
def defs() -> dg.Definitions:
    """Built when Dagster loads the code location (not at import), from the environment's configuration."""
    return build_definitions()
