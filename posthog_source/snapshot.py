"""How a table is replaced project by project, in one place for REST and HogQL resources alike.

A snapshot table is loaded with dlt's merge `delete-insert` on the merge key `project_id`: the rows of every
project that appears in the load replace that project's old rows, and projects not in the load are left
alone. A project whose table became empty would not appear at all, so each project that answered also sends
one *sentinel* row, flagged in `_posthog_sentinel` (a `hard_delete` column): it makes dlt clear the project's
old rows and is itself never stored. The sentinel is sent only once PostHog has answered for the project,
so a project the key cannot read (or a failing one) keeps its old rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
from dlt.common.schema.typing import TTableSchemaColumns

logger = logging.getLogger("posthog_source")

# Rows with this column set are deleted by dlt (hard_delete) instead of inserted.
SENTINEL_COLUMN = "_posthog_sentinel"
# The key values of a sentinel (as text): no real row has them (ids start at 1, uuids and names are never empty,
# group type indexes at 0). A flagged row with a real key is a deletion of that key.
BLANK_KEY_VALUES = ("", "0", "-1")
SENTINEL_HINTS: TTableSchemaColumns = {SENTINEL_COLUMN: {"data_type": "bool", "hard_delete": True}}
# Rows of a snapshot are unique within a run (REST rows are de-duplicated on the key, HogQL tables have one
# row per key), so dlt may skip its deduplication, a window over every staged column whose memory grows
# with the load.
SNAPSHOT_DISPOSITION: dict[str, Any] = {"disposition": "merge", "strategy": "delete-insert", "deduplicated": True}
# Tables merged on their primary key (rows replaced key by key; a flagged row deletes its key).
UPSERT_DISPOSITION: dict[str, Any] = {"disposition": "merge", "strategy": "upsert"}


class ControlRows:
    """How many sentinel and deletion rows each table sent this run: dlt counts them as rows, but they are
    instructions, never stored, so the run's summary subtracts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, table: str, n: int) -> None:
        with self._lock:
            self.counts[table] = self.counts.get(table, 0) + n

    def counter(self, table: str) -> Callable[[Any], Any]:
        """A dlt map step that counts the flagged rows of each item of `table` and passes the item on."""

        def count(item: Any) -> Any:
            data = getattr(item, "data", item)  # an item carrying hints (dlt.mark.with_hints) wraps its data
            if isinstance(data, pa.Table) and SENTINEL_COLUMN in data.column_names:
                flagged = pa.compute.sum(data.column(SENTINEL_COLUMN).cast(pa.int64())).as_py() or 0
            elif isinstance(data, list):
                flagged = sum(1 for row in data if isinstance(row, dict) and row.get(SENTINEL_COLUMN))
            elif isinstance(data, dict):  # dlt maps the rows of a yielded list one by one
                flagged = 1 if data.get(SENTINEL_COLUMN) else 0
            else:
                flagged = 0
            if flagged:
                self.add(table, int(flagged))
            return item

        return count

    def rows_stored(self, counted: dict[str, int]) -> dict[str, int]:
        """dlt's per-table row counts without our control rows."""
        return {table: max(0, n - self.counts.get(table, 0)) for table, n in counted.items()}


def sentinel_row(project_id: int, key: dict[str, Any]) -> dict[str, Any]:
    """The sentinel of a REST table: `key` is a key no real row has, typed like the real ones."""
    return {"project_id": project_id, **key, SENTINEL_COLUMN: True}


def sentinel_table(schema: pa.Schema, project_ids: Sequence[int], key_columns: Sequence[str]) -> pa.Table:
    """The sentinels of an Arrow table with `schema` (project_id first): key columns get an empty string or
    -1 (keys may not be null), every other column null."""
    n = len(project_ids)
    arrays: list[pa.Array] = []
    for column in schema:
        if column.name == "project_id":
            arrays.append(pa.array(list(project_ids), column.type))
        elif column.name == SENTINEL_COLUMN:
            arrays.append(pa.array([True] * n, pa.bool_()))
        elif column.name in key_columns:
            blank: Any = "" if pa.types.is_string(column.type) else -1
            arrays.append(pa.array([blank] * n, column.type))
        else:
            arrays.append(pa.nulls(n, column.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def with_sentinel_column(page: pa.Table, deleted: bool = False) -> pa.Table:
    """A page of real rows (null flag), or of rows to delete by key (`deleted=True`)."""
    values = pa.array([True] * page.num_rows, pa.bool_()) if deleted else pa.nulls(page.num_rows, pa.bool_())
    return page.append_column(pa.field(SENTINEL_COLUMN, pa.bool_()), values)


def replacing_projects(item: Any, whole_projects: bool) -> Any:
    """Tag a resource's first item with how this run replaces rows: whole projects (the merge key
    `project_id`: a full snapshot) or key by key (an incremental read). The hint is written either way: a
    merge key left in the schema by an earlier full snapshot would make the next incremental load delete
    every row of the project it did not re-read."""
    hint = dlt.mark.make_hints(columns=[{"name": "project_id", "merge_key": whole_projects}])
    return dlt.mark.with_hints(item, hint)


def arrow_snapshot(
    pages: Iterator[pa.Table], project_id: int, schema: pa.Schema, key_columns: Sequence[str]
) -> Iterator[pa.Table]:
    """A project's pages for a snapshot table (`schema` without the sentinel column): its sentinel as soon
    as PostHog answered the first query, an empty answer too, then every page with the null flag."""
    first = next(pages, None)  # the first query: a refusal raises here, before any sentinel
    yield sentinel_table(schema.append(pa.field(SENTINEL_COLUMN, pa.bool_())), [project_id], key_columns)
    if first is not None:
        yield with_sentinel_column(first)
    for page in pages:
        yield with_sentinel_column(page)


def deletions(keys: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows that delete `keys` (project_id + key columns) from a table with `schema`: every other column
    null, the sentinel flag set."""
    arrays = []
    for column in schema:
        if column.name in keys.column_names:
            arrays.append(keys.column(column.name).cast(column.type))
        elif column.name == SENTINEL_COLUMN:
            arrays.append(pa.array([True] * keys.num_rows, pa.bool_()))
        else:
            arrays.append(pa.nulls(keys.num_rows, column.type))
    return pa.Table.from_arrays(arrays, schema=schema)
