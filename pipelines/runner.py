"""Build and run the dlt pipeline: one place that the CLI, the demo, backfills and the tests share."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.extract.resource import DltResource

from posthog_source import ALL_TABLES, posthog_source
from posthog_source.errors import ConfigurationError

DEFAULT_PIPELINE_NAME = "posthog_pipeline"
# One file for run, backfill and report alike (not named like the dataset: DuckDB would confuse the two).
DEFAULT_DUCKDB_FILE = "posthog_pipeline.duckdb"

log = logging.getLogger("pipelines")
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
    # Loaded in the same package as the source's tables (backfill bookkeeping rides with its events).
    extra_resources: Sequence[DltResource] = ()


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


def default_duckdb_file() -> str:
    """DESTINATION__DUCKDB__CREDENTIALS (or its toml key) when set, else DEFAULT_DUCKDB_FILE in the cwd."""
    configured = dlt.config.get("destination.duckdb.credentials")
    return str(configured) if configured else DEFAULT_DUCKDB_FILE


def make_pipeline(options: RunOptions) -> dlt.Pipeline:
    destination: Any = options.destination
    if options.destination == "duckdb":
        destination = dlt.destinations.duckdb(options.duckdb_path or default_duckdb_file())
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
    with single_run(pipeline):
        finish_pending(pipeline, options)
        source = posthog_source(**{k: v for k, v in options.source_args.items() if v is not None})
        if resources:
            source = source.with_resources(*resources)
        for extra in options.extra_resources:
            source.resources.add(extra)
        pipeline.extract(source)
        pipeline.normalize()
        with destination_lock(pipeline, options):
            load_info = pipeline.load()
    counts = dict(pipeline.last_trace.last_normalize_info.row_counts) if pipeline.last_trace else {}
    counts = {t: n for t, n in counts.items() if not t.startswith("_dlt")}
    return RunResult(load_info, counts)


def finish_pending(pipeline: dlt.Pipeline, options: RunOptions) -> None:
    """A run killed after extracting left a package on disk: load it before anything new (dlt would
    otherwise ignore the new data), so a re-run after any crash ends exact."""
    if pipeline.has_pending_data:
        log.info("finishing the load of a previous run that was interrupted")
        pipeline.normalize()
        with destination_lock(pipeline, options):
            pipeline.load()


@contextlib.contextmanager
def single_run(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Two runs of one pipeline at once would race on its state: the second one refuses."""
    os.makedirs(pipeline.working_dir, exist_ok=True)
    with open(os.path.join(pipeline.working_dir, ".run.lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"pipeline '{pipeline.pipeline_name}' is already running in another process; wait for it "
                "to finish (or use a different --pipeline-name for a separate run)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def destination_lock(pipeline: dlt.Pipeline, options: RunOptions) -> Iterator[None]:
    """DuckDB allows one writing process per file: processes of a fanned-out backfill take turns loading
    (their extraction still runs in parallel). Other destinations handle concurrent writers themselves."""
    if options.destination != "duckdb":
        yield
        return
    lock_path = Path(os.path.abspath(options.duckdb_path or default_duckdb_file()) + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
