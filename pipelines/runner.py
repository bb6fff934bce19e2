"""Build and run the dlt pipeline: one place that the CLI, the demo, backfills and the tests share."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import dlt
from dlt.common.destination import Destination
from dlt.common.pipeline import LoadInfo, get_dlt_pipelines_dir
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.extract.resource import DltResource

from pipelines.destinations import duckdb as duckdb_files
from pipelines.destinations import lake
from pipelines.destinations.duckdb import DUCKDB_EVENTS_DESCRIPTION, DUCKDB_EVENTS_DISPOSITION, duckdb_file
from posthog_source import ALL_TABLES, ControlRows, TableFailures, build_client, source_from_settings
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings, load_settings
from posthog_source.errors import ConfigurationError
from posthog_source.incremental import Clock, run_clock, utc_now

DEFAULT_PIPELINE_NAME = "posthog_pipeline"

log = logging.getLogger("pipelines")
DEFAULT_DATASET = "posthog"


ClientFactory = Callable[[SourceSettings], PostHogClient]


@dataclass
class RunOptions:
    """Everything a run needs: where it loads, and the source's settings, parsed once by whoever made the
    options (the CLI, a backfill, a test). A backfill or a repair derives the settings of each of its runs with
    `dataclasses.replace`, so instants travel as instants. `settings=None` reads them from dlt config (toml or
    env) when the run starts, for callers with nothing to override."""

    resources: Sequence[str] | None = None
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    destination: str = "duckdb"
    dataset_name: str = DEFAULT_DATASET
    duckdb_path: str | None = None
    pipelines_dir: str | None = None
    settings: SourceSettings | None = None
    # How a run reaches PostHog, and what time it is: injected (tests run "tomorrow", or count retries)
    # rather than patched.
    client_factory: ClientFactory = build_client
    clock: Clock = utc_now
    progress: Collector = field(default_factory=NullCollector)
    # Loaded in the same package as the source's tables (backfill bookkeeping rides with its events).
    extra_resources: Sequence[DltResource] = ()
    # Filesystem destination only: "delta" (or "iceberg") tables instead of plain parquet files, which are
    # append-only (merges become appends there).
    table_format: str | None = None
    # A table that fails is set aside and the others load (exit 5, posthog_source/failures.py). Backfills turn
    # it off: their window markers ride with the events, so a failing events table must stop the batch.
    isolate_failures: bool = True

    def source_settings(self) -> SourceSettings:
        """The settings of this run: as given, else read once from dlt config."""
        return self.settings if self.settings is not None else load_settings()


# Where a run found the pipeline state it continued from (see `prepare` and `state_origin`):
# "local": the pipeline's working folder (pipelines_dir / DLT_DATA_DIR) held it;
# "destination": the folder held none (a fresh worker) or an older one, and it was restored from the state dlt
#     stores in the destination with every load (`_dlt_pipeline_state`), schemas included;
# "none": neither had any, so this is a first run (it reads from `start_date`).
StateOrigin = Literal["local", "destination", "none"]


@dataclass
class RunResult:
    load_info: LoadInfo | None
    rows_extracted: dict[str, int]
    state_origin: StateOrigin = "none"
    # Rows of a killed run's package, loaded first (control rows included: their source is gone).
    rows_of_interrupted_run: dict[str, int] = field(default_factory=dict)
    # Tables that failed and kept what the destination had: table -> one line for the user.
    failed_tables: dict[str, str] = field(default_factory=dict)


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
    """The pipeline for `options`. Credentials, paths (`bucket_url`) and other destination settings come the
    dlt way (DESTINATION__<NAME>__..., .dlt/secrets.toml); only DuckDB gets our default file."""
    try:
        return dlt.pipeline(
            pipeline_name=options.pipeline_name,
            pipelines_dir=options.pipelines_dir,
            destination=_destination(options),
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


def _destination(options: RunOptions) -> Any:
    """DuckDB: our default file. Warehouses: a staging dataset per pipeline, so the processes of a fanned-out
    backfill (one pipeline name each) never truncate each other's staging tables mid-merge."""
    if options.destination == "duckdb":
        return duckdb_files.destination(duckdb_file(options.duckdb_path))
    if options.destination == "filesystem":
        # Parquet for every table (dlt's default for rows that are not Arrow pages is JSON lines).
        return Destination.from_reference("filesystem", preferred_loader_file_format="parquet")
    if "." in options.destination:
        return options.destination  # a custom destination reference: as configured
    if dlt.config.get(f"destination.{options.destination}.staging_dataset_name_layout"):
        return options.destination
    layout = f"%s_staging_{options.pipeline_name}"
    extra: dict[str, Any] = {}
    if options.destination == "postgres":
        # dlt loads Arrow pages into PostgreSQL as CSV with FORCE_NULL, which turns every empty string into
        # NULL: INSERT statements (or parquet through ADBC when adbc-driver-postgresql is installed) keep them.
        extra["supported_loader_file_formats"] = ["insert_values", "parquet", "model"]
    return Destination.from_reference(options.destination, staging_dataset_name_layout=layout, **extra)


def run(options: RunOptions) -> RunResult:
    """Restore the state (from the destination when the local folder has none), finish what a killed run
    left behind, then extract, normalize and load one source run."""
    resources = validate_resources(options.resources)
    pipeline = make_pipeline(options)
    with single_run(pipeline), _defaults_in_env(writer_settings()):
        if options.destination == "duckdb":
            with _duckdb_file_lock(options):
                duckdb_files.create_file(duckdb_file(options.duckdb_path))
        origin, finished = prepare(pipeline, options)
        control = ControlRows()
        failures = TableFailures() if options.isolate_failures else None
        config = options.source_settings()
        source = source_from_settings(config, options.client_factory(config), control=control, failures=failures)
        if resources:
            source = source.with_resources(*resources)
        for extra in options.extra_resources:
            source.resources.add(extra)
        apply_destination_hints(source, options)
        with _plain_files_rules(options):
            try:
                with run_clock(options.clock):  # the cursors read the run's clock (posthog_source/incremental.py)
                    pipeline.extract(source, table_format=options.table_format)  # type: ignore[arg-type]
            finally:
                drop_abandoned_extracts(pipeline)
            failed = failures.failed if failures is not None else {}
            withdraw_tables(pipeline, failed)
            pipeline.normalize()
            load_info = load_packages(pipeline, options)
            if _plain_files(options):
                where = lake.write_views(pipeline)
                log.info("parquet files are append-only: each table's current rows are the views in %s "
                         "(latest load per project for snapshots, latest row per key; docs/destinations.md)", where)
    return RunResult(load_info, _rows_stored(pipeline, control), origin, finished, failed)


# dlt extracts into a folder of its own under <working dir>/normalize/ (named by 16 hex digits) and moves the
# package to `extracted/` once the extract completes; an extract that failed or was killed leaves its folder
# behind, one per failure (issue: four failures left four). Nothing in them is ever loaded.
_EXTRACT_FOLDER = re.compile(r"[0-9a-f]{16}")


def drop_abandoned_extracts(pipeline: dlt.Pipeline) -> None:
    """Remove the folders of extracts that never completed (after every extract, failed or not)."""
    normalize = Path(pipeline.working_dir) / "normalize"
    if not normalize.is_dir():
        return
    for folder in normalize.iterdir():
        if folder.is_dir() and _EXTRACT_FOLDER.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            log.debug("removed the folder of an extract that did not complete: %s", folder)


def withdraw_tables(pipeline: dlt.Pipeline, tables: Iterable[str]) -> None:
    """Take the files of `tables` out of the extracted (not yet normalized) packages, so those tables keep
    what the destination holds: a snapshot that failed on its second page neither wipes nor half-replaces
    its rows (posthog_source/failures.py). The package's state, written at the end of the extract, carries
    none of their marks: a failed resource never committed them."""
    names = set(tables)
    if not names:
        return
    for load_id in pipeline.list_extracted_load_packages():
        for job in pipeline.get_load_package_info(load_id).jobs.get("new_jobs", []):
            if job.job_file_info.table_name in names:
                os.remove(job.file_path)
                log.debug("withdrew %s from package %s", job.file_path, load_id)


def _rows_stored(pipeline: dlt.Pipeline, control: ControlRows | None) -> dict[str, int]:
    """Rows per table of the last normalized package, without dlt's own tables and our control rows."""
    info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = {t: n for t, n in dict(info.row_counts if info else {}).items() if not t.startswith("_dlt")}
    return control.rows_stored(counts) if control is not None else counts


def prepare(pipeline: dlt.Pipeline, options: RunOptions) -> tuple[StateOrigin, dict[str, int]]:
    """Make the pipeline's state current before a run reads anything; returns where it was found and the rows
    of a killed run's package that had to be loaded first.

    dlt restores state from the destination only inside `pipeline.run()`, which we do not call (we run the
    steps ourselves, to finish killed runs and to take the destination lock), so the sync is done here:
    - pending packages (a killed run) are loaded first and the sync is skipped: they carry a newer state than
      the destination's, and dlt's sync may wipe the working folder (packages included) when the destination
      dataset does not exist yet, which is the case after a first run killed before its load;
    - otherwise `sync_destination()` takes the destination's state and schemas when they are newer than the
      local ones (a fresh worker, or a stale copy of the folder), and wipes a local state whose dataset is gone
      from the destination, so such a run starts over instead of continuing from a watermark over no data.
    """
    local = _has_local_state(pipeline)
    if finish_pending(pipeline, options):
        return "local", _rows_stored(pipeline, None)
    if local and _syncs_state(options) and destination_state(options) != _state_id(pipeline.state):
        pipeline.drop()  # the local state is not the state of this destination: it must not be continued
    before = pipeline.state.get("_version_hash")
    with _duckdb_file_lock(options):
        pipeline.sync_destination()
    where = describe_destination(options)
    if pipeline.state.get("_version_hash") != before and pipeline.state.get("_state_version", 0) > 0:
        if local:
            log.info("the local pipeline state is not the one %s holds: continuing from the destination's", where)
        else:
            log.info("pipeline state restored from %s", where)
        return "destination", {}
    if local and _has_local_state(pipeline):
        return "local", {}
    if local:
        log.info("%s holds no state of this pipeline (a new or emptied destination): starting over from start_date",
                 where)
    return "none", {}


StateId = tuple[int, str]


def _syncs_state(options: RunOptions) -> bool:
    """Whether the destination keeps dlt's state with the data (every SQL destination and the filesystem do; a
    custom destination, `module.function`, does not: its local state is the only one, and is kept)."""
    return "." not in options.destination


def _state_id(state: Any) -> StateId | None:
    """A state's version and hash (None for a pipeline that never ran)."""
    version = int(state.get("_state_version", 0))
    return (version, str(state.get("_version_hash"))) if version > 0 else None


def destination_pipeline_state(options: RunOptions) -> dict[str, Any] | None:
    """This pipeline's state as the destination holds it (dlt stores it with every load, so it is what that
    data was committed with), read through a throw-away working folder so the real one is left as it is;
    None when it holds none. A DuckDB file that does not exist is not created."""
    if options.destination == "duckdb" and not os.path.exists(duckdb_file(options.duckdb_path)):
        return None
    with tempfile.TemporaryDirectory(prefix="posthog-dlt-state-") as scratch:
        fresh = make_pipeline(replace(options, pipelines_dir=scratch, progress=NullCollector()))
        with _duckdb_file_lock(options):
            fresh.sync_destination()
        return copy.deepcopy(dict(fresh.state)) if _state_id(fresh.state) is not None else None


def destination_state(options: RunOptions) -> StateId | None:
    """The version of this pipeline's state the destination holds; None when it holds none."""
    held = destination_pipeline_state(options)
    return _state_id(held) if held is not None else None


def committed_resources_state(options: RunOptions) -> dict[str, Any]:
    """Every resource's state (its marks), by resource name, as committed with the data the destination
    holds."""
    held = destination_pipeline_state(options) or {}
    sources = held.get("sources") or {}
    return dict((sources.get("posthog") or {}).get("resources") or {})


def describe_destination(options: RunOptions) -> str:
    """Where a run writes, for the lines that say where its state came from."""
    if options.destination == "duckdb":
        return f"the DuckDB file {duckdb_file(options.duckdb_path)} (dataset " \
               f"{options.dataset_name})"
    return f"the {options.destination} destination's dataset {options.dataset_name}"


def _has_local_state(pipeline: dlt.Pipeline) -> bool:
    """A run of this pipeline has committed state into its working folder (a fresh pipeline has version 0)."""
    return int(pipeline.state.get("_state_version", 0)) > 0 or not pipeline.first_run


def state_origin(options: RunOptions) -> StateOrigin:
    """Where the next run of `options` would find its state, without changing anything (for `check`).

    "local" when the working folder holds the state the destination holds (or a killed run's package, which
    the next run loads first); "destination" when the destination holds a state the local folder does not
    have (a fresh worker, or a local state of another destination); "none" when the destination holds none:
    the next run is a first run, whatever the local folder holds.
    """
    remote = destination_state(options)
    working_dir = Path(options.pipelines_dir or get_dlt_pipelines_dir()) / options.pipeline_name
    if working_dir.is_dir():  # only then: dlt.pipeline() would create the folder and an empty state
        probe = make_pipeline(options)
        if probe.has_pending_data or (_has_local_state(probe) and _state_id(probe.state) == remote):
            return "local"
    return "destination" if remote is not None else "none"


# Delta and Iceberg tables (the filesystem destination's table formats) have no delete-insert, which the source
# declares for `events` (posthog_source/events.py says why: bounded memory at any size); there they upsert.
TABLE_FORMAT_EVENTS_DISPOSITION: dict[str, Any] = {"disposition": "merge", "strategy": "upsert"}


def apply_destination_hints(source: Any, options: RunOptions) -> None:
    """What the destination changes in the source's hints: events upsert in Delta/Iceberg tables, and are
    appended into DuckDB, then their old copies deleted by the loader (destinations/duckdb.py
    DUCKDB_EVENTS_DISPOSITION); the
    table's description says so, so dlt's own tools (`dlt pipeline ... schema`) do not read as plain appends."""
    if "events" not in source.resources:
        return
    if options.table_format:
        source.resources["events"].apply_hints(write_disposition=TABLE_FORMAT_EVENTS_DISPOSITION)  # type: ignore
    elif options.destination == "duckdb":
        source.resources["events"].apply_hints(  # type: ignore
            write_disposition=DUCKDB_EVENTS_DISPOSITION,
            additional_table_hints={"description": DUCKDB_EVENTS_DESCRIPTION})


def load_packages(pipeline: dlt.Pipeline, options: RunOptions, interrupted: bool = False) -> LoadInfo | None:
    """dlt's load step under the destination's lock; into DuckDB, events are merged around it
    (destinations/duckdb.py `load`; `interrupted`: the packages are a killed run's)."""
    with destination_lock(pipeline, options):
        if options.destination != "duckdb":
            return pipeline.load()
        return duckdb_files.load(pipeline, duckdb_file(options.duckdb_path), interrupted)


def finish_pending(pipeline: dlt.Pipeline, options: RunOptions) -> bool:
    """A run killed after extracting left a package on disk: load it before anything new (dlt would
    otherwise ignore the new data), so a re-run after any crash ends exact. True when there was one."""
    _drop_extracted_copies_already_normalized(pipeline)
    if pipeline.has_pending_data:
        log.info("finishing the load of a previous run that was interrupted")
        with _plain_files_rules(options):
            pipeline.normalize()
            load_packages(pipeline, options, interrupted=True)
        return True
    return False


def _drop_extracted_copies_already_normalized(pipeline: dlt.Pipeline) -> None:
    """A kill inside dlt's normalize step can leave a package both normalized and still extracted; dlt would
    then fail on every later run ("Directory not empty"). The normalized copy is complete, so the extracted
    one is dropped. dlt lists both kinds of package (public calls) but has no call to drop one extracted
    package: its folder, `<working dir>/normalize/extracted/<load id>`, is removed."""
    normalized = set(pipeline.list_normalized_load_packages())
    for load_id in pipeline.list_extracted_load_packages():
        folder = Path(pipeline.working_dir) / "normalize" / "extracted" / load_id
        if load_id in normalized and folder.is_dir():
            log.info("dropping the extracted copy of package %s, which was already normalized", load_id)
            shutil.rmtree(folder)


@contextlib.contextmanager
def single_run(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Two runs of one pipeline at once would race on its state: the second one refuses. The lock file lives
    beside the pipeline's working folder, not in it: a run may drop that folder (a local state its destination
    does not hold, `prepare`), and the lock must outlive it."""
    os.makedirs(pipeline.pipelines_dir, exist_ok=True)
    with open(os.path.join(pipeline.pipelines_dir, f".{pipeline.pipeline_name}.run.lock"), "a") as handle:
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


def _plain_files(options: RunOptions) -> bool:
    return options.destination == "filesystem" and not options.table_format


# dlt writes Arrow pages into parquet row groups of up to 5,000 rows by default: 5,000 events of 20 KB are a
# 100 MB row group, which DuckDB must hold whole while it loads the file (it failed at the loader's limit).
# Row groups of at most 1,000 rows, and in the extract (the `sources` section: our parquet files are written
# there, normalize only moves them) every yielded slice written as it comes instead of buffered up to 1,000
# rows: a slice is ~4 MB of HogQL's JSON whatever the width (answers.SLICE_BYTES), so row groups are sized
# by bytes too. 58k 20 KB events: peak 533 -> 389 MiB, 34.6 -> 25.2 s (the loader reads 4 MB row groups
# instead of 22 MB ones under a pool raised to 264 MB); 300k 1.5 KB events: the same (slices of ~2,700 such
# rows were written one by one already). Normalize's writer (metadata rows) keeps 1,000 rows a write.
# A user's own settings win (their DATA_WRITER__BUFFER_MAX_ITEMS also in the extract: `writer_settings`).
# dlt keeps every loaded file in the pipeline's folder unless told (a 5M-event run left its 1 GB parquet file
# there, and every later run its own): a file is deleted once its package loaded without a failed job.
WRITER_SETTINGS = {"DATA_WRITER__ROW_GROUP_SIZE": "1000", "DATA_WRITER__BUFFER_MAX_ITEMS": "1000",
                   "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS": "1", "LOAD__DELETE_COMPLETED_JOBS": "true"}


def writer_settings() -> dict[str, str]:
    """WRITER_SETTINGS without the extract's buffer when the user set dlt's buffer for every step."""
    if "DATA_WRITER__BUFFER_MAX_ITEMS" in os.environ:
        return {k: v for k, v in WRITER_SETTINGS.items() if k != "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS"}
    return dict(WRITER_SETTINGS)


@contextlib.contextmanager
def _defaults_in_env(defaults: dict[str, str]) -> Iterator[None]:
    """dlt settings for the length of a run, each only where the user has not set it (their value wins)."""
    added = [name for name in defaults if name not in os.environ]
    for name in added:
        os.environ[name] = defaults[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


_LOAD_ID_SETTING = lake.LOAD_ID_SETTING
# What dlt says about every merged table of a plain-files run, once per table and run (merges become appends,
# sentinel rows are not deletions there), and once per Arrow page about the `_dlt_load_id` column it adds (the
# column's hints differ from the page's until the normalizer writes it): the rule replacing all of it is logged
# once by `run` instead.
_APPEND_ONLY_NOISE = ("Falling back to `append`", "hard_delete", "when merging arrow schema with dlt schema")


class _AppendOnlyNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _APPEND_ONLY_NOISE)


@contextlib.contextmanager
def _plain_files_rules(options: RunOptions) -> Iterator[None]:
    """Plain parquet files (filesystem destination without a table format): every Arrow page carries its
    `_dlt_load_id` (dlt adds it to JSON rows only, unless told), which the reading rule in lake.py needs; and
    dlt's per-table warnings that merges become appends are silenced (the run says it once). The setting is
    scoped to the run (a user's own NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID wins)."""
    if not _plain_files(options):
        yield
        return
    noise = _AppendOnlyNoise()
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addFilter(noise)
    try:
        with _defaults_in_env({_LOAD_ID_SETTING: "true"}):
            yield
    finally:
        dlt_logger.removeFilter(noise)


@contextlib.contextmanager
def _duckdb_file_lock(options: RunOptions) -> Iterator[None]:
    """The DuckDB file's lock (destinations/duckdb.py `file_lock`) for a DuckDB run; other destinations: none."""
    if options.destination != "duckdb":
        yield
        return
    with duckdb_files.file_lock(duckdb_file(options.duckdb_path)):
        yield


@contextlib.contextmanager
def destination_lock(pipeline: dlt.Pipeline, options: RunOptions) -> Iterator[None]:
    """Lets the processes of a fanned-out backfill load into one destination. DuckDB allows one writing
    process per file: loads take turns (extraction still runs in parallel). PostgreSQL takes concurrent
    loads, but two processes creating or altering the same tables at once collide: the schema is migrated
    under an advisory lock per dataset, then the data loads concurrently. Others load as they are."""
    if options.destination == "duckdb":
        with _duckdb_file_lock(options):
            yield
        return
    if options.destination == "postgres" and pipeline.default_schema_name:
        with pipeline.sql_client() as client:
            key = f"posthog-dlt:{options.dataset_name}"
            client.execute_sql("SELECT pg_advisory_lock(hashtext(%s))", key)
            try:
                pipeline.sync_schema()
            finally:
                client.execute_sql("SELECT pg_advisory_unlock(hashtext(%s))", key)
    yield
