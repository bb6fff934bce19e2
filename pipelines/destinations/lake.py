"""The reading rule for plain parquet files (`--destination filesystem`), and DuckDB views written with the data.

dlt cannot merge or delete in plain files: every load appends its rows, marked with the load that wrote them
(`_dlt_load_id`; the runner turns the column on for Arrow pages too). A table's current rows are therefore:

1. snapshot tables (a per-project sentinel row, `_posthog_sentinel = true` with a blank key, says "this load
   replaced the project's rows"): only rows of the project's latest load that holds its sentinel, or of later
   loads;
2. of those, the latest row per primary key (events and persons are merged on their key elsewhere: a key seen
   in several loads keeps the row of the newest load);
3. without flagged rows: the sentinels themselves, and keys whose latest row is a deletion (a person PostHog
   deleted is sent as a flagged row with its key);
4. counting only loads dlt completed (listed under `_dlt_loads/`): a run killed mid-load leaves files that the
   next run loads again, and a half-written snapshot must not replace a whole one.

Tables loaded with `replace` (projects, organizations) are rewritten whole by dlt, so the rule keeps them as
they are. `current_rows_sql` spells the rule for one table; `write_views` stores a `CREATE VIEW` per table in
`<bucket_url>/<dataset>/_posthog_views.sql` after each load, so any DuckDB reads the current rows with
`.read _posthog_views.sql` (or by running its text), whatever the number of runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dlt

from posthog_source.snapshot import BLANK_KEY_VALUES, SENTINEL_COLUMN

VIEWS_FILE = "_posthog_views.sql"
LOAD_ID_SETTING = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"
BLANK_KEYS_SQL = "(" + ", ".join(f"'{v}'" for v in BLANK_KEY_VALUES) + ")"
LOAD_ID = "_dlt_load_id"
# Files written before load ids were added to Arrow pages: dlt's default layout names each file
# `<load_id>.<file_id>.parquet`, so the load is read from the name.
_LOAD_ID_FROM_NAME = r"regexp_extract(filename, '([0-9]+\.[0-9]+)\.[^/.]+\.[^/]+$', 1)"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def finished_loads_sql(base_url: str) -> str:
    """The ids of the loads dlt completed: one file per load under `_dlt_loads/`, named `<schema>__<load_id>.*`.
    Files of a load that was killed before it completed are left out, so a partial snapshot never shows."""
    return (f"SELECT regexp_extract(file, '__([0-9]+\\.[0-9]+)\\.[^/]+$', 1) "
            f"FROM glob('{base_url.rstrip('/')}/_dlt_loads/*')")


def current_rows_sql(source: str, primary_key: Sequence[str], has_sentinel: bool, project_scoped: bool,
                     finished_loads: str | None = None) -> str:
    """A SELECT returning the current rows of one table whose files `source` reads (a DuckDB table function
    such as `read_parquet('…/events/*.parquet', union_by_name = true, filename = true)`), counting only the
    loads `finished_loads` (a SELECT of load ids) lists, when given."""
    load = f"coalesce(CAST({LOAD_ID} AS VARCHAR), {_LOAD_ID_FROM_NAME})"
    steps = [f"files AS (SELECT *, {load} AS _load FROM {source})"]
    where = f" WHERE _load IN ({finished_loads})" if finished_loads else ""
    steps.append(f"landed AS (SELECT * FROM files{where})")
    kept = "landed"
    if has_sentinel:
        scope = "project_id" if project_scoped else "NULL"
        # A sentinel (this load replaced the project's rows) carries a blank key; a deletion carries a real one.
        blank = " AND ".join(f"CAST({_quote(c)} AS VARCHAR) IN {BLANK_KEYS_SQL}" for c in primary_key
                             if c != "project_id") or "TRUE"
        steps.append(
            f"replaced AS (SELECT {scope} AS _scope, max(_load) AS _since FROM landed "
            f"WHERE {SENTINEL_COLUMN} AND {blank} GROUP BY 1)"
        )
        join = "ON replaced._scope = landed.project_id" if project_scoped else "ON TRUE"
        steps.append(
            "live AS (SELECT landed.* FROM landed LEFT JOIN replaced " + join + " "
            "WHERE landed._load >= coalesce(replaced._since, ''))"
        )
        kept = "live"
    if primary_key:
        partition = ", ".join(_quote(c) for c in primary_key)
        steps.append(
            f"ranked AS (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY _load DESC) AS _rank "
            f"FROM {kept})"
        )
        kept = "ranked WHERE _rank = 1"
        excluded = "_load, _rank, filename"
    else:
        excluded = "_load, filename"
    if has_sentinel:  # the flag decides after the ranking: a deletion must hide the key's older rows
        kept += (" AND " if " WHERE " in kept else " WHERE ") + f"{SENTINEL_COLUMN} IS NOT TRUE"
    return "WITH " + ",\n".join(steps) + f"\nSELECT * EXCLUDE ({excluded}) FROM {kept}"


def views_sql(pipeline: dlt.Pipeline, base_url: str) -> str:
    """`CREATE OR REPLACE VIEW` statements, one per data table of the pipeline's schema, over the files under
    `base_url` (the dataset's folder: `<bucket_url>/<dataset>`)."""
    statements = []
    tables = pipeline.default_schema.data_tables(seen_data_only=True)
    for table in sorted(tables, key=lambda t: t["name"]):
        name = table["name"]
        columns = table.get("columns", {})
        primary_key = [c for c, column in columns.items() if column.get("primary_key")]
        source = (f"read_parquet('{base_url.rstrip('/')}/{name}/*.parquet', union_by_name = true, "
                  "filename = true)")
        sql = current_rows_sql(source, primary_key, SENTINEL_COLUMN in columns, "project_id" in columns,
                               finished_loads_sql(base_url))
        statements.append(f"CREATE OR REPLACE VIEW {_quote(name)} AS\n{sql};")
    return "\n\n".join(statements) + "\n"


def load_files(pipeline: dlt.Pipeline, source: Any, **run_args: Any) -> Any:
    """What `posthog-pipeline run --destination filesystem` does, for a library user's own dlt pipeline:
    `pipeline.run(source)` into parquet files with every Arrow page carrying its `_dlt_load_id` (the reading
    rule needs it; dlt adds it to JSON rows only unless told), then the views written next to the tables.
    Returns dlt's LoadInfo. Read the tables through `<bucket_url>/<dataset>/_posthog_views.sql`, never the raw
    files: they hold every load's rows and each project's sentinel rows."""
    added = LOAD_ID_SETTING not in os.environ
    if added:
        os.environ[LOAD_ID_SETTING] = "true"
    try:
        info = pipeline.run(source, loader_file_format="parquet", **run_args)
    finally:
        if added:
            os.environ.pop(LOAD_ID_SETTING, None)
    write_views(pipeline)
    return info


def write_views(pipeline: dlt.Pipeline) -> str | None:
    """Store the views next to the tables (`<bucket_url>/<dataset>/_posthog_views.sql`); returns its location.
    Local buckets get plain paths (what DuckDB reads); remote ones their URL (DuckDB's httpfs reads those)."""
    if not pipeline.default_schema_name:
        return None
    with pipeline.destination_client() as client:
        fs_client, pathlib = client.fs_client, client.pathlib  # type: ignore[attr-defined]
        dataset_path = client.dataset_path.rstrip("/")  # type: ignore[attr-defined]
        base = dataset_path if client.is_local_filesystem else client.make_remote_url(dataset_path)  # type: ignore
        target = pathlib.join(dataset_path, VIEWS_FILE)
        fs_client.write_text(target, views_sql(pipeline, base))
    return target if client.is_local_filesystem else client.make_remote_url(target)  # type: ignore[attr-defined]
