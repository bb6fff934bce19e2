"""Loading into DuckDB, all in one place: the file a run writes and its lock, the connection dlt loads it
through (sized by the rows it is about to load), and the statements around dlt's load of events that merge them
(`load`: their old copies noted before the append and deleted after it, in row-group batches when they are
many; keys an interrupted load appended twice removed; a staged copy left by earlier versions dropped).
`pipelines/runner.py` calls `load` for a DuckDB run, and takes `file_lock` wherever it opens the file."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

log = logging.getLogger("pipelines")

# One file for run, backfill and report alike (not named like the dataset: DuckDB would confuse the two).
DEFAULT_DUCKDB_FILE = "posthog_pipeline.duckdb"

# The loader's DuckDB spills to disk past this limit, so a large load keeps the process small (DuckDB's default
# is 80 % of the machine). The limit is not what makes a load pass: every statement we send streams or spills
# (deletes by key, appends, joins; see posthog_source/events.py EVENTS_DISPOSITION), so a load of any size fits
# it; benchmarks/resume.py checks that with 300k 1 KB events killed and resumed at every point, and the suite
# with a 64 MB limit. 128 MB rather than 256 MB: with row groups sized by bytes (below) the first load of 300k
# 1.5 KB events takes the same 3.3 s and peaks 100 MiB lower (benchmarks/RESULTS.md).
# Two threads: the load runs after the extract, when the walks and PostHog are idle, and DuckDB's write
# (compression) is most of its time. Each thread fills a row group of its own, so with two the row groups are
# half the size (LOADER_ROW_GROUP_BYTES). 1.44M 1.5 KB events: the first load 12.0 -> 7.8 s at 436 -> 453 MiB;
# a merge into those 1.44M 25.2 -> 17.8 s at 616 -> 463 MiB (the smaller row groups); file +3 %. (With 122,880-
# row groups and no byte sizing, one thread had been better: 9.6 -> 5.9 CPU s, 1,143 -> 745 MiB.)
# A file a run creates is written in DuckDB's v1.2 storage format (`create_file`; readable by DuckDB 1.2 and
# later, the package needs 1.4), the first format with ZSTD for strings (STRING_COMPRESSION); a file in an older
# format keeps it (DuckDB never upgrades a file it opens) and its default compression (`string_compression`).
DUCKDB_LOADER_CONFIG = {"memory_limit": "128MB", "preserve_insertion_order": False, "threads": 2,
                        "storage_compatibility_version": "v1.2.0"}
# DuckDB's default compression for strings (dictionary, FSST, else none) tries each method on every segment and
# is most of a load's CPU; JSON properties, which are most of an event's bytes, compress little under FSST (its
# symbols are 8 bytes) and often not at all (stored uncompressed). ZSTD, forced, needs no trial and compresses
# what repeats across a whole segment (keys, URLs, user agents). Inserting 300k events, by the kind of
# properties (benchmarks/profile.md): the fake's ~270 B JSON 1.40 -> 0.71 CPU s, file 62 -> 35 MB; random hex
# padding (1.2 KB, the worst case) 3.21 -> 3.14 CPU s, 256 -> 190 MB; the bench's repeated padding 2.96 -> 1.14
# CPU s, 349 -> 45 MB.
STRING_COMPRESSION = "zstd"
STRING_STORAGE_VERSION = (1, 2)
# DuckDB fills a table's row groups of 122,880 rows in memory before it compresses and writes them: with
# 1.5 KB events a row group is ~180 MB of strings, which is most of a load's memory whatever the pool's limit,
# and with 20 KB events more than the limit itself. The size is an option of ATTACH, not of the file (a file
# opened by path gets 122,880 again), so the loader attaches the file with row groups of about
# LOADER_ROW_GROUP_BYTES (`loader_credentials`), from the width of the rows it is about to load. Inserting
# 300k 1.5 KB events (16,384-row groups, one thread): peak 417 -> 238 MiB, 3.7 -> 3.3 s, file 291 -> 304 MB.
LOADER_ROW_GROUP_BYTES = 12 * 1024 * 1024
MIN_ROW_GROUP_ROWS, MAX_ROW_GROUP_ROWS = 2_048, 122_880  # DuckDB's vector size and its default
# The loader's memory limit is at least this many of the largest parquet row group it is about to read.
LOADER_PARQUET_GROUPS_HELD = 12
_LOADER_CATALOG = "posthog_loader"
# DuckDB (1.5.6, also 2.0.1) keeps a 256 KiB block that it cannot spill for every row group a DELETE removes
# rows from, until the next CHECKPOINT; COMMIT does not free it, and a CHECKPOINT cannot run inside a
# transaction. Deleting the old copies of 4.8M re-read events in one statement (dlt's delete-insert did)
# touched 587 row groups of 8,192 rows (~150 MB) and failed under the 128 MB pool: whatever the pool, a table
# of some size fails (`--full-refresh`, a backfill over loaded days). So `delete_old_copies` deletes at most
# DELETE_BATCH_ROW_GROUPS row groups per statement, with a CHECKPOINT after each. Synthetic 4.8M-row table,
# 4.3M keys re-merged: the one DELETE fails at 128 MB; in 9 batches it takes 2.6 s.
DELETE_BATCH_ROW_GROUPS = 64


def has_events_table(connection: Any, dataset: str) -> bool:
    """Whether the connection's current database has `<dataset>.events`."""
    row = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = 'events'", [dataset]).fetchone()
    return bool(row and row[0])


@contextlib.contextmanager
def loader_credentials(pipeline: dlt.Pipeline, path: str) -> Iterator[tuple[Any, DuckDbCredentials]]:
    """A DuckDB connection that has the run's file attached with byte-sized row groups, as dlt credentials,
    for one load step. dlt's later connections (state sync, `check`, `verify`) open the file by path as usual;
    a file opened by path reads row groups of any size. Closed (and the file released) after the load."""
    import duckdb

    path = os.path.abspath(path)
    connection = duckdb.connect(":memory:", config=dict(DUCKDB_LOADER_CONFIG))
    try:
        quoted = path.replace("'", "''")
        shape = pending_shape(pipeline)
        connection.execute(f"SET memory_limit = '{loader_memory_limit(shape)}'")
        connection.execute(f"SET threads = {loader_threads(shape.row_bytes)}")
        # where DuckDB spills; an in-memory database would spill into `.tmp` of the working directory
        connection.execute(f"SET temp_directory = '{quoted}.tmp'")
        rows = row_group_rows(shape.row_bytes)
        connection.execute(f"ATTACH '{quoted}' AS {_LOADER_CATALOG} (ROW_GROUP_SIZE {rows})")
        connection.execute(f"USE {_LOADER_CATALOG}")
        compression = string_compression(connection, _LOADER_CATALOG)
        if compression:
            connection.execute(f"SET force_compression = '{compression}'")
        else:
            log.info("%s is in a DuckDB storage format older than v1.2: its strings are compressed the slower "
                     "default way (a new file gets ZSTD: faster loads, a smaller file)", path)
        # dlt's workers use copies of the connection, which start in the in-memory catalog again
        yield connection, DuckDbCredentials(connection, local_config={"schema": f"{_LOADER_CATALOG}.main"})
    finally:
        connection.close()


def string_compression(connection: Any, catalog: str) -> str | None:
    """STRING_COMPRESSION when the attached file's storage format has it (v1.2 and later), else None (DuckDB's
    default: forcing ZSTD on an older file leaves strings uncompressed)."""
    row = connection.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = ?", [catalog]).fetchone()
    version = re.match(r"v(\d+)\.(\d+)", str(row[0]) if row and row[0] else "")
    if version and (int(version.group(1)), int(version.group(2))) >= STRING_STORAGE_VERSION:
        return STRING_COMPRESSION
    return None


def row_group_rows(row_bytes: float | None) -> int:
    """Rows per DuckDB row group for rows of `row_bytes` (uncompressed): about LOADER_ROW_GROUP_BYTES, a
    multiple of DuckDB's vector size, within DuckDB's bounds. Unknown width: 8,192 (1.5 KB events)."""
    if not row_bytes or row_bytes <= 0:
        row_bytes = LOADER_ROW_GROUP_BYTES / 8_192
    rows = int(LOADER_ROW_GROUP_BYTES / row_bytes) // MIN_ROW_GROUP_ROWS * MIN_ROW_GROUP_ROWS
    return max(MIN_ROW_GROUP_ROWS, min(MAX_ROW_GROUP_ROWS, rows))


def loader_threads(row_bytes: float | None) -> int:
    """DUCKDB_LOADER_CONFIG's threads while row groups are cut by bytes; one for rows so wide that even
    DuckDB's smallest row group is larger than LOADER_ROW_GROUP_BYTES: every thread fills a row group of its
    own, so a second would double what the load holds instead of halving it (~22 KB events: 2,048 rows are
    45 MB each, and two of them no longer fit the loader's limit)."""
    if row_bytes and row_bytes * MIN_ROW_GROUP_ROWS > LOADER_ROW_GROUP_BYTES:
        return 1
    return int(DUCKDB_LOADER_CONFIG["threads"])


@dataclass(frozen=True)
class PendingShape:
    """The rows of the packages waiting to load, decoded (what DuckDB holds of them)."""

    row_bytes: float | None = None  # the widest average row of any file
    row_group_bytes: int = 0  # the largest parquet row group of any file


def pending_shape(pipeline: dlt.Pipeline) -> PendingShape:
    import pyarrow.parquet as pq

    widest: float | None = None
    largest = 0
    for load_id in pipeline.list_normalized_load_packages():
        for jobs in pipeline.get_load_package_info(load_id).jobs.values():
            for job in jobs:
                if not job.file_path.endswith(".parquet"):
                    continue
                try:
                    file = pq.ParquetFile(job.file_path)
                    meta = file.metadata
                    if not meta.num_rows:
                        continue
                    # the footer's sizes are of encoded data (a repeated value is stored once); what DuckDB
                    # holds is decoded, so the largest row group is read and measured in Arrow
                    sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
                    biggest = max(range(meta.num_row_groups), key=sizes.__getitem__)
                    group = file.read_row_group(biggest)
                except (OSError, ValueError):
                    continue
                if group.num_rows:
                    widest = max(widest or 0.0, group.nbytes / group.num_rows)
                    largest = max(largest, group.nbytes)
    return PendingShape(widest, largest)


def loader_memory_limit(shape: PendingShape) -> str:
    """DUCKDB_LOADER_CONFIG's limit, raised for files whose parquet row groups are large: DuckDB reads a few
    of them at once next to the row group it builds (20 KB events in 1,000-row groups: 22 MB each, which
    failed under 128 MB with `failed to allocate data of size 32.0 MiB`)."""
    base = str(DUCKDB_LOADER_CONFIG["memory_limit"])
    needed_mb = math.ceil(LOADER_PARQUET_GROUPS_HELD * shape.row_group_bytes / 2**20)
    base_mb = _megabytes(base)
    return base if base_mb is None or needed_mb <= base_mb else f"{needed_mb}MB"


def _megabytes(limit: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*(MB|MiB|GB|GiB)\s*", limit, re.IGNORECASE)
    if not match:
        return None
    return int(match.group(1)) * (1024 if match.group(2).lower().startswith("g") else 1)


def remove_repeated_events(connection: Any, dataset: str) -> int:
    """Delete all but the last row (the one appended last) of every (project_id, uuid) that is in the DuckDB
    events table more than once; the rows removed. The keys are found by a grouping (it spills to disk, so
    any table size fits the loader's memory)."""
    table = f'"{dataset}"."events"'
    if not has_events_table(connection, dataset):
        return 0
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE posthog_repeated_events AS SELECT project_id, uuid, max(rowid) AS keep "
        f"FROM {table} GROUP BY project_id, uuid HAVING count(*) > 1"
    )
    removed = 0
    if connection.execute("SELECT count(*) FROM posthog_repeated_events").fetchone()[0]:
        row = connection.execute(
            f"DELETE FROM {table} AS e USING posthog_repeated_events AS r WHERE e.project_id = r.project_id "
            "AND e.uuid = r.uuid AND e.rowid <> r.keep"
        ).fetchone()
        removed = int(row[0]) if row else 0
    connection.execute("DROP TABLE posthog_repeated_events")
    if removed:
        log.info("removed %d events that were in the table twice (an interrupted load)", removed)
    return removed


def drop_staged_events(connection: Any, dataset: str) -> bool:
    """Drop dlt's staged copy of events (`<dataset>_staging.events`, dlt's default name) that a merge of events
    by dlt left behind, up to this version: appended events do not stage, and it held a copy of every event a
    merge had re-read (5 GB after a full refresh of 4.8M events). True when there was one."""
    staging = f"{dataset}_staging"
    if not has_events_table(connection, staging):
        return False
    connection.execute(f'DROP TABLE "{staging}"."events"')
    log.info("dropped %s.events, the copy of re-read events an earlier version left in dlt's staging dataset",
             staging)
    return True


def find_old_copies(connection: Any, dataset: str, files: Sequence[str]) -> int:
    """Note (in the connection's temporary table posthog_old_copies) the rows of `<dataset>.events` whose
    (project_id, uuid) is in the parquet `files`, the events about to be appended, with their row numbers;
    how many. `delete_old_copies` deletes exactly those once the new copies are in: at no instant is an event
    missing from the table (between the append and the delete it is there twice)."""
    connection.execute("DROP TABLE IF EXISTS posthog_old_copies")
    if not files or not has_events_table(connection, dataset):
        return 0
    table = f'"{dataset}"."events"'
    sources = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
    connection.execute(
        f"CREATE TEMP TABLE posthog_old_copies AS SELECT e.rowid AS rid, e.project_id, e.uuid "
        f"FROM {table} AS e SEMI JOIN (SELECT project_id, uuid FROM read_parquet([{sources}])) AS s "
        "ON e.project_id = s.project_id AND e.uuid = s.uuid"
    )
    return int(connection.execute("SELECT count(*) FROM posthog_old_copies").fetchone()[0])


def delete_old_copies(connection: Any, dataset: str) -> int:
    """Delete the rows `find_old_copies` noted; the rows deleted. When they are in more than
    DELETE_BATCH_ROW_GROUPS row groups, in batches of that many with a CHECKPOINT after each.

    Appending does not renumber the rows already there. The CHECKPOINTs between batches do not compact row
    groups (`max_vacuum_tasks` 0: compacting renumbers rows, which lost rows in
    tests/unit/test_duckdb_deletes.py), and every statement matches the key as well as the number, so a row
    whose number moved anyway would be left (a copy too many, which `remove_repeated_events` removes), never
    another deleted. The next CHECKPOINT compacts."""
    table = f'"{dataset}"."events"'
    try:
        found = connection.execute("SELECT count(*), min(rid), max(rid) FROM posthog_old_copies").fetchone()
        if not found or not found[0]:
            return 0
        starts, ends = _row_groups(connection, table)
        touched = _groups_holding(connection, starts, ends)
        if len(touched) <= DELETE_BATCH_ROW_GROUPS:
            return delete_batch(connection, table, int(found[1]), int(found[2]) + 1, checkpoint=False)
        deleted = 0
        vacuum_tasks = connection.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0]
        connection.execute("SET max_vacuum_tasks = 0")
        try:
            while touched:
                batch, touched = touched[-DELETE_BATCH_ROW_GROUPS:], touched[:-DELETE_BATCH_ROW_GROUPS]
                deleted += delete_batch(connection, table, starts[batch[0]], ends[batch[-1]])
        finally:
            connection.execute(f"SET max_vacuum_tasks = {int(vacuum_tasks)}")
        log.info("deleted the %d old copies of the events to load, in batches of %d of the table's row groups "
                 "(DuckDB holds memory for every row group one DELETE touches)", deleted, DELETE_BATCH_ROW_GROUPS)
        return deleted
    finally:
        connection.execute("DROP TABLE IF EXISTS posthog_old_copies")


def delete_batch(connection: Any, table: str, low: int, high: int, checkpoint: bool = True) -> int:
    """Delete the rows of posthog_old_copies numbered from `low` to before `high`, then CHECKPOINT (which frees
    what DuckDB holds for the row groups touched); the rows deleted."""
    row = connection.execute(
        f"DELETE FROM {table} AS e USING posthog_old_copies AS d WHERE e.rowid >= {low} AND e.rowid < {high} "
        f"AND d.rid >= {low} AND d.rid < {high} AND e.rowid = d.rid AND e.project_id = d.project_id "
        "AND e.uuid = d.uuid").fetchone()
    if checkpoint:
        connection.execute("CHECKPOINT")
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class StagedEvents:
    """The events files of the packages waiting to load that are not loaded yet."""

    parquet: list[str]
    other: bool  # a file in another format (its keys are not read before the load)
    packages: int  # packages with such files


def staged_event_files(pipeline: dlt.Pipeline) -> StagedEvents:
    """The events files not yet loaded (new, or started by a run that was stopped) of every package waiting
    to load. Completed files are left out: their rows in the table are the new copies."""
    parquet: list[str] = []
    other, packages = False, 0
    for load_id in pipeline.list_normalized_load_packages():
        jobs = pipeline.get_load_package_info(load_id).jobs
        files = [job for state in ("new_jobs", "started_jobs") for job in jobs.get(state, [])
                 if job.job_file_info.table_name == "events"]
        packages += bool(files)
        parquet += [job.file_path for job in files if job.job_file_info.file_format == "parquet"]
        other = other or any(job.job_file_info.file_format != "parquet" for job in files)
    return StagedEvents(parquet, other, packages)


def _row_groups(connection: Any, table: str) -> tuple[list[int], list[int]]:
    """The first and past-the-last row number of each of the table's row groups, in order."""
    quoted = table.replace("'", "''")
    sizes = connection.execute(
        f"SELECT row_group_id, max(start + count) FROM pragma_storage_info('{quoted}') WHERE column_id = 0 "
        "GROUP BY row_group_id ORDER BY row_group_id").fetchall()
    starts, ends, row = [], [], 0
    for _, size in sizes:
        starts.append(row)
        row += int(size)
        ends.append(row)
    return starts, ends


def _groups_holding(connection: Any, starts: list[int], ends: list[int]) -> list[int]:
    """Indexes (ascending) of the row groups that hold a row of posthog_old_copies."""
    if not starts:
        return []
    bounds = ", ".join(f"({index}, {low}, {high})" for index, (low, high) in enumerate(zip(starts, ends, strict=True)))
    rows = connection.execute(
        f"SELECT DISTINCT g.i FROM posthog_old_copies AS d JOIN (VALUES {bounds}) AS g(i, low, high) "
        "ON d.rid >= g.low AND d.rid < g.high ORDER BY g.i").fetchall()
    return [int(index) for (index,) in rows]


# -- the file and its lock ---------------------------------------------------------------------------------
def default_duckdb_file() -> str:
    """DESTINATION__DUCKDB__CREDENTIALS (or its toml key) when set, else DEFAULT_DUCKDB_FILE in the cwd, as an
    absolute path: dlt would otherwise resolve a relative one against the folder of the pipeline's last run."""
    configured = dlt.config.get("destination.duckdb.credentials")
    return os.path.abspath(str(configured) if configured else DEFAULT_DUCKDB_FILE)


def duckdb_file(path: str | None) -> str:
    """The absolute path of the file a run writes: `path` when given, else the default."""
    return os.path.abspath(path or default_duckdb_file())


def create_file(path: str) -> None:
    """Create the DuckDB file in the loader's storage format (DUCKDB_LOADER_CONFIG) when it does not exist yet:
    dlt opens it with DuckDB's defaults (v1.0 storage, no ZSTD) and sets its config only once it is open. The
    caller holds `file_lock`."""
    import duckdb

    if os.path.exists(path):
        return
    version = DUCKDB_LOADER_CONFIG["storage_compatibility_version"]
    duckdb.connect(path, config={"storage_compatibility_version": version}).close()


def destination(path: str) -> Any:
    """dlt's DuckDB destination for the file, with the loader's settings (DUCKDB_LOADER_CONFIG)."""
    return dlt.destinations.duckdb(DuckDbCredentials(path, global_config=DUCKDB_LOADER_CONFIG))


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """DuckDB admits one process per file while it writes: every process of ours that opens the file (to
    load, or to read the state) takes turns on `<file>.lock`."""
    with open(Path(path + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- merging events ----------------------------------------------------------------------------------------
# Into DuckDB, events are merged by the loader rather than by dlt: before dlt's load the rows whose keys the
# package holds are noted (`find_old_copies`), dlt appends the package, then the
# noted old copies are deleted (`delete_old_copies`, in row-group batches when they are many). dlt's
# delete-insert would stage every row and copy it again into the final table, writing each event twice and
# keeping a second copy of them all in the staging dataset (a full refresh of 4.8M events: 5 GB more file),
# and deletes in one statement, which at millions of rows does not fit DuckDB's memory
# (DELETE_BATCH_ROW_GROUPS). Appending is exact because the rows of one package are unique on the key
# (posthog_source/events.py EVENTS_DISPOSITION).
# Appends and deletes are not one transaction, so they come in the order that never hides an event: a reader
# of the file sees every event at every instant, old copy or new (before: deleting first, a re-merge killed
# in its load left 0 of 300,000 events until the next run). A run stopped between the append and the
# deletes leaves keys in the table twice and the marker `<file>.merging`: the next load first keeps the
# newest copy of each such key (`remove_repeated_events`), whether or not a package is still pending. Only
# DuckDB: every process that writes the file holds its lock (`file_lock`), so no other load runs
# between the appends and the deletes.
DUCKDB_EVENTS_DISPOSITION = "append"
DUCKDB_EVENTS_DESCRIPTION = ("PostHog events, merged on (project_id, uuid): appended by dlt, then the old copies "
                             "of the keys deleted by posthog-dlt's loader (pipelines/destinations/duckdb.py)")


def load(pipeline: dlt.Pipeline, path: str, interrupted: bool = False) -> LoadInfo:
    """dlt's load step into the DuckDB file `path` through `loader_credentials`, the old copies of the events
    appended deleted after them (DUCKDB_EVENTS_DISPOSITION). The caller holds `file_lock`. `interrupted`: the
    packages are a killed run's; after them, as after several packages or events not in parquet files (which
    `find_old_copies` cannot read), any key in the table twice keeps only its last copy."""
    marker = Path(path + ".merging")  # the datasets whose merge noted old copies and did not finish deleting
    dataset = pipeline.dataset_name
    with loader_credentials(pipeline, path) as (connection, credentials):
        if marker.exists():
            for stopped in sorted(set(marker.read_text().split())):
                remove_repeated_events(connection, stopped)
            marker.unlink()
        appended, staged = appends_events(pipeline), staged_event_files(pipeline)
        found = find_old_copies(connection, dataset, staged.parquet) if appended else 0
        if found:
            marker.write_text(dataset + "\n")
            # no row group is compacted (and its rows renumbered) until the noted copies are deleted
            vacuum = connection.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0]
            connection.execute("SET max_vacuum_tasks = 0")
        info = pipeline.load(credentials=credentials)
        repeated = appended and (interrupted or staged.packages > 1 or staged.other)
        if found:
            # a row renumbered anyway is left (never another deleted): it is then a copy too many
            repeated = repeated or delete_old_copies(connection, dataset) < found
            connection.execute(f"SET max_vacuum_tasks = {int(vacuum)}")
        if repeated:
            remove_repeated_events(connection, dataset)
        marker.unlink(missing_ok=True)
        if appended and not pipeline.list_normalized_load_packages():
            drop_staged_events(connection, pipeline.dataset_name)
    return info


def appends_events(pipeline: dlt.Pipeline) -> bool:
    """Whether the pipeline's schema has events appended by dlt and merged here (DUCKDB_EVENTS_DISPOSITION)."""
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    table = schema.tables.get("events") if schema is not None else None
    return bool(table) and table.get("write_disposition") == DUCKDB_EVENTS_DISPOSITION  # type: ignore[union-attr]
