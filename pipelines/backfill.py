"""`posthog-pipeline backfill`: years of events in windows, resumable, then handed over to the incremental.

- The range is cut into windows of `--window` on event `timestamp` (aligned to UTC day boundaries).
- Windows are loaded a batch at a time; inside a batch they are fetched in parallel (`--workers`) within
  PostHog's budgets. Each batch is one pipeline run: its events and a row per finished window in the table
  `backfill_windows` are loaded in one package, so a window is recorded finished only with its events.
- A re-run skips the windows recorded as finished for the same projects (after loading whatever a killed run
  had left pending), so a crash costs at most one batch.
- Several processes may run disjoint ranges with their own `--pipeline-name` into one destination (the
  orchestrator fan-out pattern); DuckDB loads take turns, other destinations load concurrently.
- A backfill that reaches the present hands over: one last incremental run under the main pipeline stores a
  watermark from before the backfill started, so events ingested meanwhile are read by the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import dlt
import pendulum
from dlt.extract.resource import DltResource

from pipelines.runner import RunOptions, make_pipeline, prepare, run, single_run
from posthog_source.config import check_range
from posthog_source.incremental import Clock
from posthog_source.windows import split_windows

log = logging.getLogger("pipelines")

MARKER_TABLE = "backfill_windows"
Window = tuple[pendulum.DateTime, pendulum.DateTime]


def window_marker(windows: Sequence[Window], scope: str, pipeline_name: str, clock: Clock) -> DltResource:
    """One row per finished window; merged, so re-runs and overlapping processes never duplicate it."""

    @dlt.resource(name=MARKER_TABLE, primary_key=("scope", "window_start", "window_end"), write_disposition="merge",
                  columns={"window_start": {"data_type": "timestamp", "timezone": True},
                           "window_end": {"data_type": "timestamp", "timezone": True},
                           "finished_at": {"data_type": "timestamp", "timezone": True}})
    def markers() -> Iterator[list[dict[str, Any]]]:
        now = clock()
        yield [{"scope": scope, "window_start": lo, "window_end": hi, "pipeline_name": pipeline_name,
                "finished_at": now} for lo, hi in windows]

    return markers


def finished_windows(pipeline: dlt.Pipeline, scope: str) -> set[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """Windows recorded as loaded in the destination (empty when the table does not exist yet)."""
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(MARKER_TABLE)
            rows = client.execute_sql(f"SELECT window_start, window_end FROM {table} WHERE scope = %s", scope)
    except Exception as exc:  # noqa: BLE001 - a missing table or dataset means nothing is finished yet
        log.debug("no finished backfill windows found: %s", exc)
        return set()
    return {(pendulum.instance(lo).in_timezone("UTC"), pendulum.instance(hi).in_timezone("UTC")) for lo, hi in rows}


def backfill(
    options: RunOptions, start: pendulum.DateTime, end: pendulum.DateTime | None, window: timedelta,
    handover_pipeline: str | None = None,
) -> dict[str, int]:
    """Load events of [start, end or now) window by window, the `workers` setting's number at once; returns
    rows loaded per table. Each batch runs with the options' settings, its range set by `dataclasses.replace`
    (the instants stay instants), so every other setting is the configured one."""
    config = options.source_settings()
    started_at = options.clock()
    reaches_present = end is None or end >= started_at
    if reaches_present:
        end = started_at - config.ingestion_lag
    check_range(start, end)
    windows = split_windows(start, end, window.total_seconds())
    # The scope names the projects the windows were loaded for, wherever they were configured: finished windows
    # of another project set are not this backfill's.
    scope = "projects:" + (",".join(str(p) for p in config.project_ids) if config.project_ids else "all")

    pipeline = make_pipeline(options)
    with single_run(pipeline):
        prepare(pipeline, options)  # on a fresh worker: the schema (and state) come back, so the markers are read
    done = finished_windows(pipeline, scope)
    todo = [w for w in windows if w not in done]
    log.info("backfill %s to %s: %d windows, %d already finished, %d to load", start, end, len(windows),
             len(windows) - len(todo), len(todo))
    totals: dict[str, int] = {}
    empty = 0
    for batch in _contiguous_batches(todo, config.workers):
        batch_settings = replace(config, start_date=batch[0][0], end_date=batch[-1][1])
        result = run(replace(options, resources=["events"], settings=batch_settings, isolate_failures=False,
                             extra_resources=[window_marker(batch, scope, options.pipeline_name, options.clock)]))
        _add(totals, result.rows_extracted)
        if result.rows_extracted.get("events", 0) == 0:
            empty += len(batch)
            log.debug("backfill: windows up to %s finished, no events in them", batch[-1][1])
        else:
            log.info("backfill: windows up to %s finished", batch[-1][1])
    if empty:
        log.info("backfill: %d of %d windows held no events", empty, len(todo))
    if reaches_present and handover_pipeline:
        # the incremental cursor starts where the windows end, storing a watermark from before the backfill
        handover = replace(config, start_date=end, end_date=None,
                           handover_watermark=started_at - config.ingestion_lag)
        result = run(replace(options, pipeline_name=handover_pipeline, resources=["events"], settings=handover))
        _add(totals, result.rows_extracted)
        log.info("backfill handed over to pipeline '%s': its next run continues incrementally", handover_pipeline)
    return totals


def _add(totals: dict[str, int], rows: dict[str, int]) -> None:
    for table, count in rows.items():
        totals[table] = totals.get(table, 0) + count


def _contiguous_batches(windows: Sequence[Window], size: int) -> Iterator[list[Window]]:
    """Batches of up to `size` windows that touch each other (so one start/end pair covers each batch)."""
    batch: list[Window] = []
    for window in windows:
        if batch and (len(batch) == size or batch[-1][1] != window[0]):
            yield batch
            batch = []
        batch.append(window)
    if batch:
        yield batch
