"""Events, persons and distinct ids through PostHog's HogQL query API, as Arrow pages.

Rules this module is built on (posthog-api.md §3):
- at most 50,000 rows per query and no OFFSET with a personal key, so we page by keyset on an ordered
  (cursor, tie-breaker) pair, which neither skips nor repeats rows that tie on the cursor;
- HogQL renders instants in the project's time zone and reads bare string literals in it too, so every
  literal we send names 'UTC' and every instant we get back is converted to UTC;
- events are partitioned by `timestamp`, so every events query is bounded on `timestamp`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pendulum
import pyarrow as pa
import pyarrow.compute as pc

from posthog_source import settings
from posthog_source.client import PostHogClient
from posthog_source.errors import PostHogSourceError

logger = logging.getLogger("posthog_source")

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    expression: str  # HogQL select expression
    name: str  # column name in the destination
    arrow_type: pa.DataType


@dataclass(frozen=True)
class HogQLTable:
    """What we read from one HogQL table and how we page through it."""

    table: str
    columns: tuple[Column, ...]
    cursor: str  # name of the ordered column pages are keyed on (an instant or a string)
    tie_breaker: str  # name of a unique column that orders rows with equal cursors

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


EVENTS_BY_CREATED_AT = HogQLTable(
    table="events",
    columns=(
        Column("toString(uuid)", "uuid", pa.string()),
        Column("event", "event", pa.string()),
        Column("distinct_id", "distinct_id", pa.string()),
        Column("toString(person_id)", "person_id", pa.string()),
        Column("timestamp", "timestamp", TIMESTAMP),
        Column("created_at", "created_at", TIMESTAMP),
        Column("properties", "properties", pa.string()),
        Column("elements_chain", "elements_chain", pa.string()),
        Column("`$session_id`", "session_id", pa.string()),
    ),
    cursor="created_at",
    tie_breaker="uuid",
)
# Windows of a first run or a backfill are cut on `timestamp`, PostHog's partition key.
EVENTS_BY_TIMESTAMP = HogQLTable(EVENTS_BY_CREATED_AT.table, EVENTS_BY_CREATED_AT.columns, "timestamp", "uuid")

PERSONS = HogQLTable(
    table="persons",
    columns=(
        Column("toString(id)", "id", pa.string()),
        Column("created_at", "created_at", TIMESTAMP),
        Column("properties", "properties", pa.string()),
        Column("is_identified", "is_identified", pa.bool_()),
    ),
    cursor="created_at",
    tie_breaker="id",
)

PERSON_DISTINCT_IDS = HogQLTable(
    table="person_distinct_ids",
    columns=(
        Column("distinct_id", "distinct_id", pa.string()),
        Column("toString(person_id)", "person_id", pa.string()),
    ),
    cursor="distinct_id",
    tie_breaker="distinct_id",
)


def utc_literal(instant: pendulum.DateTime) -> str:
    """A HogQL DateTime64 literal that means the same instant whatever the project's time zone."""
    text = instant.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss.SSSSSS")
    return f"toDateTime64('{text}', 6, 'UTC')"


def string_literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _literal(table: HogQLTable, column: str, value: Any) -> str:
    if table.column(column).arrow_type == TIMESTAMP:
        return utc_literal(pendulum.instance(value))
    return string_literal(value)


def _order_expression(table: HogQLTable, column: str) -> str:
    return table.column(column).expression


def build_query(
    table: HogQLTable, conditions: Sequence[str], after: tuple[Any, Any] | None, limit: int
) -> str:
    """SELECT ... WHERE <conditions> AND (cursor, tie) > after ORDER BY cursor, tie LIMIT n.

    The keyset condition is spelt with OR/AND rather than a tuple comparison, which HogQL may not accept.
    """
    where = list(conditions)
    cursor_expr = _order_expression(table, table.cursor)
    tie_expr = _order_expression(table, table.tie_breaker)
    if after is not None:
        cursor_value, tie_value = after
        cursor_lit = _literal(table, table.cursor, cursor_value)
        if table.cursor == table.tie_breaker:
            where.append(f"{cursor_expr} > {cursor_lit}")
        else:
            tie_lit = _literal(table, table.tie_breaker, tie_value)
            where.append(
                f"({cursor_expr} > {cursor_lit} OR ({cursor_expr} = {cursor_lit} AND {tie_expr} > {tie_lit}))"
            )
    select = ", ".join(c.expression for c in table.columns)
    order = cursor_expr if table.cursor == table.tie_breaker else f"{cursor_expr} ASC, {tie_expr} ASC"
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {select} FROM {table.table}{where_sql} ORDER BY {order} LIMIT {limit}"


def range_condition(expression: str, lo: pendulum.DateTime | None, hi: pendulum.DateTime | None) -> list[str]:
    """Half-open [lo, hi) bounds on an instant column, as UTC literals."""
    conditions = []
    if lo is not None:
        conditions.append(f"{expression} >= {utc_literal(lo)}")
    if hi is not None:
        conditions.append(f"{expression} < {utc_literal(hi)}")
    return conditions


def count_events_by_day(
    client: PostHogClient, project: Project, conditions: Sequence[str]
) -> list[tuple[pendulum.DateTime, int]]:
    """Rows per UTC day matching `conditions`: one cheap query that lets windows follow the data."""
    query = (
        "SELECT toString(toDate(toTimeZone(timestamp, 'UTC'))) AS day, count() AS n FROM events"
        f" WHERE {' AND '.join(conditions)} GROUP BY day ORDER BY day LIMIT {settings.HOGQL_MAX_ROWS}"
    )
    body = {"query": {"kind": "HogQLQuery", "query": query}, "name": "posthog-dlt events per day",
            "refresh": "force_blocking"}
    response = client.post(f"/api/projects/{project.id}/query/", body, what=f"event counts of project {project.id}")
    return [(pendulum.parse(day, tz="UTC"), int(n)) for day, n in response.get("results") or []]


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    timezone: str
    organization_id: str | None


@dataclass(frozen=True)
class _Page:
    table: pa.Table | None  # None when the page is empty
    more: bool  # PostHog may hold more rows after this page
    last_key: tuple[Any, Any] | None  # (cursor, tie-breaker) of the last row, for the next query


# Parsed JSON is several times the size of its Arrow page, and parsing holds the GIL anyway: pages are
# parsed and converted one at a time, so memory stays flat however many walks run in parallel.
_PARSE_LOCK = threading.Lock()


def _parse_page(content: bytes, table: HogQLTable, project: Project, page_size: int) -> _Page:
    with _PARSE_LOCK:
        response = orjson.loads(content)
        rows = response.get("results") or []
        if not rows:
            return _Page(None, False, None)
        arrow = rows_to_arrow(rows, table, project)
        # The effective limit may be lower than asked (self-hosted settings): only a page shorter than both
        # ends the walk, never a short page alone.
        effective = min(page_size, int(response.get("limit") or page_size))
        more = len(rows) >= effective or bool(response.get("hasMore"))
        names = [c.name for c in table.columns]
        last = rows[-1]
        if table.column(table.cursor).arrow_type == TIMESTAMP:
            cursor_value = arrow.column(table.cursor)[-1].as_py()
        else:
            cursor_value = last[names.index(table.cursor)]
        return _Page(drop_adjacent_duplicates(arrow, table.tie_breaker), more,
                     (cursor_value, last[names.index(table.tie_breaker)]))


def drop_adjacent_duplicates(page: pa.Table, key: str) -> pa.Table:
    """ClickHouse keeps copies of an event until it merges them (posthog-api.md §3.3); copies share
    timestamp, ingestion time and uuid, so in our key order they are neighbours. The first copy stays."""
    if page.num_rows < 2:
        return page
    column = page.column(key).combine_chunks()
    same_as_previous = pc.fill_null(pc.equal(column.slice(1), column.slice(0, len(column) - 1)), False)
    if not pc.any(same_as_previous).as_py():
        return page
    return page.filter(pa.concat_arrays([pa.array([True]), pc.invert(same_as_previous)]))


def keyset_pages(
    client: PostHogClient,
    project: Project,
    table: HogQLTable,
    conditions: Sequence[str],
    page_size: int = settings.HOGQL_MAX_ROWS,
    label: str = "",
) -> Iterator[pa.Table]:
    """Every row matching `conditions`, one Arrow table per HogQL page, in (cursor, tie-breaker) order."""
    page_size = min(page_size, settings.HOGQL_MAX_ROWS)
    after: tuple[Any, Any] | None = None
    path = f"/api/projects/{project.id}/query/"
    what = f"{table.table} of project {project.id}"

    def parse(content: bytes) -> _Page:
        return _parse_page(content, table, project, page_size)

    while True:
        body = {
            "query": {"kind": "HogQLQuery", "query": build_query(table, conditions, after, page_size)},
            "name": f"posthog-dlt {table.table} {label}".strip(),
            "refresh": "force_blocking",  # a cached answer could be stale
        }
        page: _Page = client.post(path, body, what=what, parse=parse)
        if page.table is None:
            return
        yield page.table
        if not page.more:
            return
        if after is not None and page.last_key is not None and page.last_key <= after:
            raise PostHogSourceError(f"HogQL paging of {what} made no progress at {page.last_key}; stopped")
        after = page.last_key


def rows_to_arrow(rows: list[list[Any]], table: HogQLTable, project: Project) -> pa.Table:
    """Rows as HogQL returns them -> one Arrow table with an explicit schema and `project_id` first."""
    columns_data = list(zip(*rows, strict=True))
    arrays: list[pa.Array] = [pa.array([project.id] * len(rows), pa.int64())]
    fields = [pa.field("project_id", pa.int64(), nullable=False)]
    for column, values in zip(table.columns, columns_data, strict=True):
        if column.arrow_type == TIMESTAMP:
            array = to_utc_timestamps(values, project.timezone)
        elif column.arrow_type == pa.string():
            array = _as_string_array(values)
        else:
            array = pa.array(values, column.arrow_type)
        arrays.append(array)
        fields.append(pa.field(column.name, column.arrow_type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _as_string_array(values: Sequence[Any]) -> pa.Array:
    """HogQL sends properties as a JSON string, but a parsed object or a number must not break the page:
    those are serialised to JSON text (only then is each value looked at in Python)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_as_text(v) for v in values], pa.string())


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def to_utc_timestamps(values: Sequence[str | None], project_timezone: str) -> pa.Array:
    """HogQL instants -> UTC. Values with an offset (the normal case) are converted by Arrow in C; values
    without one are wall-clock times in the project's zone (an ambiguous or skipped wall-clock time is read
    as the earliest instant it can mean). A page mixing both forms is converted value by value, by the same
    rules."""
    strings = pa.array(values, pa.string())
    try:
        return strings.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return _wall_clock_to_utc(strings, project_timezone)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    converted = []  # a mix of forms: slow but exact
    for value in values:
        single = pa.array([value], pa.string())
        try:
            converted.append(single.cast(TIMESTAMP)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            try:
                converted.append(_wall_clock_to_utc(single, project_timezone)[0].as_py())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise PostHogSourceError(f"HogQL returned '{value}' where an instant was expected") from exc
    return pa.array(converted, TIMESTAMP)


def _wall_clock_to_utc(strings: pa.Array, project_timezone: str) -> pa.Array:
    wall_clock = strings.cast(pa.timestamp("us"))
    local = pc.assume_timezone(wall_clock, project_timezone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(TIMESTAMP)
