"""Build and run the dlt pipeline: one place that the CLI, the demo, backfills and the tests share."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import Collector, NullCollector

from posthog_source import ALL_TABLES, posthog_source
from posthog_source.errors import ConfigurationError

DEFAULT_PIPELINE_NAME = "posthog_pipeline"
DEFAULT_DATASET = "posthog"


@dataclass
class RunOptions:
    """Everything a run needs. `source_args` left out are read from dlt config (toml or env)."""

    resources: Sequence[str] | None = None
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    destination: str = "duckdb"
    dataset_name: str = DEFAULT_DATASET
    duckdb_path: str | None = None
    pipelines_dir: str | None = None
    source_args: dict[str, Any] = field(default_factory=dict)
    progress: Collector = field(default_factory=NullCollector)


@dataclass
class RunResult:
    load_info: LoadInfo | None
    rows_extracted: dict[str, int]


def validate_resources(names: Sequence[str] | None) -> list[str] | None:
    if not names:
        return None
    unknown = sorted(set(names) - set(ALL_TABLES))
    if unknown:
        raise ConfigurationError(
            f"unknown resource {', '.join(unknown)}; choose from: {', '.join(ALL_TABLES)}"
        )
    return list(dict.fromkeys(names))


def make_pipeline(options: RunOptions) -> dlt.Pipeline:
    destination: Any = options.destination
    if options.destination == "duckdb":
        destination = dlt.destinations.duckdb(options.duckdb_path) if options.duckdb_path else "duckdb"
    try:
        return dlt.pipeline(
            pipeline_name=options.pipeline_name,
            pipelines_dir=options.pipelines_dir,
            destination=destination,
            dataset_name=options.dataset_name,
            progress=options.progress,
        )
    except Exception as exc:
        if "destination" in type(exc).__name__.lower() or "Destination" in str(exc):
            raise ConfigurationError(
                f"unknown destination '{options.destination}'; use a dlt destination such as duckdb, "
                "postgres, bigquery, snowflake or filesystem (and install its extra)"
            ) from exc
        raise


def run(options: RunOptions) -> RunResult:
    """Finish what a killed run left behind, then extract, normalize and load one source run."""
    resources = validate_resources(options.resources)
    pipeline = make_pipeline(options)
    if pipeline.has_pending_data:  # a previous run died after extracting: load that first, then go on
        pipeline.normalize()
        with destination_lock(pipeline, options):
            pipeline.load()
    source = posthog_source(**{k: v for k, v in options.source_args.items() if v is not None})
    if resources:
        source = source.with_resources(*resources)
    pipeline.extract(source)
    pipeline.normalize()
    with destination_lock(pipeline, options):
        load_info = pipeline.load()
    counts = dict(pipeline.last_trace.last_normalize_info.row_counts) if pipeline.last_trace else {}
    counts = {t: n for t, n in counts.items() if not t.startswith("_dlt")}
    return RunResult(load_info, counts)


@contextlib.contextmanager
def destination_lock(pipeline: dlt.Pipeline, options: RunOptions) -> Iterator[None]:
    """DuckDB allows one writing process per file: processes of a fanned-out backfill take turns loading
    (their extraction still runs in parallel). Other destinations handle concurrent writers themselves."""
    if options.destination != "duckdb":
        yield
        return
    path = options.duckdb_path or _duckdb_file(pipeline)
    lock_path = Path(str(path) + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _duckdb_file(pipeline: dlt.Pipeline) -> str:
    credentials = getattr(pipeline.destination_client().config, "credentials", None)
    database = getattr(credentials, "database", None) or f"{pipeline.pipeline_name}.duckdb"
    return os.path.abspath(str(database))
