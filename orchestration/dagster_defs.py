"""Dagster assets for PostHog: daily-partitioned `events` and the metadata/person tables.

Plain `@asset`s calling our runner, not dagster-dlt's `@dlt_assets`: that decorator needs the dlt source
object when the definitions load, and `posthog_source()` discovers the key's projects over HTTP when called
(so the code location would need PostHog and its key just to load); the runner also brings the guarantees
the CLI has (a killed run's package finished first, one run per pipeline, destination locks).

Each events partition is a stateless window on event `timestamp` (the source's start_date/end_date), run
under its own pipeline name, so partitions can run at once and re-running one re-merges the same rows.
Load with `dagster dev -m orchestration.dagster_defs`; configure the destination and key the dlt way
(DESTINATION__..., SOURCES__POSTHOG__API_KEY) or through the resource.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations at run time.
import os
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.runner import DEFAULT_DATASET, RunOptions, run
from posthog_source import ALL_TABLES

EVENTS_START = os.environ.get("POSTHOG_EVENTS_PARTITIONS_START", "2025-01-01")
OTHER_TABLES = [t for t in ALL_TABLES if t != "events"]
GROUP = "posthog"


class PostHogPipeline(dg.ConfigurableResource):  # type: ignore[misc, type-arg]
    """Where and how runs load. Unset fields come from dlt config (env vars or .dlt/ files)."""

    destination: str = "duckdb"
    dataset_name: str = DEFAULT_DATASET
    pipeline_prefix: str = "posthog_dagster"
    duckdb_path: str | None = None
    pipelines_dir: str | None = None
    api_key: str | None = None
    host: str | None = None
    extra_source_args: dict[str, Any] = {}

    def load(self, resources: list[str], pipeline_name: str, **source_args: Any) -> dict[str, int]:
        """One runner run; returns rows loaded per table."""
        args = {"api_key": self.api_key, "host": self.host, **self.extra_source_args, **source_args}
        result = run(RunOptions(
            resources=resources,
            pipeline_name=f"{self.pipeline_prefix}_{pipeline_name}",
            destination=self.destination,
            dataset_name=self.dataset_name,
            duckdb_path=self.duckdb_path,
            pipelines_dir=self.pipelines_dir,
            source_args={k: v for k, v in args.items() if v is not None},
        ))
        return result.rows_extracted


daily = dg.DailyPartitionsDefinition(start_date=EVENTS_START, timezone="UTC")


@dg.asset(name="events", key_prefix=GROUP, group_name=GROUP, partitions_def=daily,
          kinds={"dlt", "posthog"})
def posthog_events(context: AssetExecutionContext, posthog: PostHogPipeline) -> dg.MaterializeResult:
    """Events whose `timestamp` falls in the partition's UTC day, merged on (project_id, uuid)."""
    window = context.partition_time_window
    rows = posthog.load(["events"], f"events_{context.partition_key.replace('-', '')}",
                        start_date=window.start.isoformat(), end_date=window.end.isoformat())
    return dg.MaterializeResult(metadata={"rows_loaded": rows.get("events", 0)})


@dg.multi_asset(specs=[dg.AssetSpec([GROUP, table], group_name=GROUP, kinds={"dlt", "posthog"})
                       for table in OTHER_TABLES], can_subset=True)
def posthog_tables(context: AssetExecutionContext, posthog: PostHogPipeline) -> Any:
    """Metadata snapshots, persons and distinct ids (the selected ones) in one run."""
    tables = [key.path[-1] for key in context.selected_asset_keys]
    rows = posthog.load(tables, "tables")
    for table in tables:
        yield dg.MaterializeResult(asset_key=[GROUP, table], metadata={"rows_loaded": rows.get(table, 0)})


defs = dg.Definitions(assets=[posthog_events, posthog_tables], resources={"posthog": PostHogPipeline()})
