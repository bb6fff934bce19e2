"""PostHog's HogQL query API as Arrow pages: the tables we read, how queries are written and paged, and how
each answer is converted by the column types PostHog sends with it.

Rules this module is built on (docs/posthog-api.md):
- at most 50,000 rows per query and no OFFSET with a personal key, so we page by keyset on an ordered
  (cursor, tie-breaker) pair, which neither skips nor repeats rows that tie on the cursor;
- HogQL renders instants in the project's time zone and reads bare string literals in it too, so every
  literal we send names 'UTC' and every instant we get back is converted to UTC;
- the answer's `types` (ClickHouse type names) decide each conversion: booleans arrive as `Int8` 0/1,
  instants as `DateTime64` strings with or without fractions; a type we cannot read is one clear error that
  names the table and column, never an Arrow traceback;
- answers are cached by PostHog unless `refresh` is `force_blocking`, and every query is named, so it shows
  in PostHog's query log;
- a page is bounded in bytes as well as rows: the next LIMIT follows the bytes per row seen so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import orjson
import pendulum
import pyarrow as pa
import pyarrow.compute as pc

from posthog_source import settings
from posthog_source.answers import Answer, decode_answer
from posthog_source.client import PostHogClient
from posthog_source.errors import BadRequestError, PostHogSourceError
from posthog_source.projects import Project

logger = logging.getLogger("posthog_source")

TIMESTAMP = pa.timestamp("us", tz="UTC")


class Kind(Enum):
    """What a column is in the destination; the answer's ClickHouse type says how to get there."""

    STRING = "string"
    JSON = "json"  # JSON text (dlt column hint `json`)
    INSTANT = "instant"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self]


_ARROW_TYPES = {Kind.STRING: pa.string(), Kind.JSON: pa.string(), Kind.INSTANT: TIMESTAMP, Kind.BOOL: pa.bool_(),
                Kind.INT: pa.int64(), Kind.FLOAT: pa.float64()}


@dataclass(frozen=True)
class Column:
    expression: str  # HogQL select expression
    name: str  # column name in the destination
    kind: Kind
    # ClickHouse has no NULL in materialised String columns: a missing `$session_id` is ''. Stored as NULL.
    empty_is_null: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return self.kind.arrow_type


@dataclass(frozen=True)
class HogQLTable:
    """What we read from one HogQL table and how we page through it."""

    table: str
    columns: tuple[Column, ...]
    cursor: str  # name of the ordered column pages are keyed on (an instant or a string)
    tie_breaker: str  # name of a unique column that orders rows with equal cursors

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field("project_id", pa.int64(), nullable=False)]
                         + [pa.field(c.name, c.arrow_type) for c in self.columns])

    def with_cursor(self, cursor: str) -> HogQLTable:
        return HogQLTable(self.table, self.columns, cursor, self.tie_breaker)


EVENT_COLUMNS = (
    Column("toString(uuid)", "uuid", Kind.STRING),
    Column("event", "event", Kind.STRING),
    Column("distinct_id", "distinct_id", Kind.STRING),
    Column("toString(person_id)", "person_id", Kind.STRING),
    Column("timestamp", "timestamp", Kind.INSTANT),
    Column("created_at", "created_at", Kind.INSTANT),
    Column("properties", "properties", Kind.JSON),
    Column("elements_chain", "elements_chain", Kind.STRING),
    Column("`$session_id`", "session_id", Kind.STRING, empty_is_null=True),
)
# Incremental runs page on ingestion time; windows of first runs and backfills on `timestamp`, PostHog's
# partition key.
EVENTS_BY_CREATED_AT = HogQLTable("events", EVENT_COLUMNS, cursor="created_at", tie_breaker="uuid")
EVENTS_BY_TIMESTAMP = EVENTS_BY_CREATED_AT.with_cursor("timestamp")

PERSONS = HogQLTable(
    table="persons",
    columns=(
        Column("toString(id)", "id", Kind.STRING),
        Column("created_at", "created_at", Kind.INSTANT),
        Column("properties", "properties", Kind.JSON),
        Column("is_identified", "is_identified", Kind.BOOL),
    ),
    cursor="created_at",
    tie_breaker="id",
)
PERSONS_BY_ID = PERSONS.with_cursor("id")
# Deleted persons: `raw_persons` keeps every version, `is_deleted` set on the last one (docs/posthog-api.md).
DELETED_PERSONS = HogQLTable(
    table="raw_persons",
    columns=(Column("toString(id)", "id", Kind.STRING),),
    cursor="id",
    tie_breaker="id",
)

PERSON_DISTINCT_IDS = HogQLTable(
    table="person_distinct_ids",
    columns=(
        Column("distinct_id", "distinct_id", Kind.STRING),
        Column("toString(person_id)", "person_id", Kind.STRING),
    ),
    cursor="distinct_id",
    tie_breaker="distinct_id",
)

SESSIONS = HogQLTable(
    table="sessions",
    columns=(
        Column("toString(session_id)", "session_id", Kind.STRING),
        Column("distinct_id", "distinct_id", Kind.STRING),
        Column("`$start_timestamp`", "start_timestamp", Kind.INSTANT),
        Column("`$end_timestamp`", "end_timestamp", Kind.INSTANT),
        Column("`$session_duration`", "duration_seconds", Kind.INT),
        Column("`$entry_current_url`", "entry_current_url", Kind.STRING),
        Column("`$end_current_url`", "end_current_url", Kind.STRING),
        Column("`$pageview_count`", "pageview_count", Kind.INT),
        Column("`$autocapture_count`", "autocapture_count", Kind.INT),
        Column("`$is_bounce`", "is_bounce", Kind.BOOL),
        Column("`$channel_type`", "channel_type", Kind.STRING),
    ),
    cursor="session_id",
    tie_breaker="session_id",
)

COHORT_PEOPLE = HogQLTable(
    table="cohort_people",
    columns=(
        Column("cohort_id", "cohort_id", Kind.INT),
        Column("toString(person_id)", "person_id", Kind.STRING),
    ),
    cursor="cohort_id",
    tie_breaker="person_id",
)
STATIC_COHORT_PEOPLE = HogQLTable("static_cohort_people", COHORT_PEOPLE.columns, "cohort_id", "person_id")

# What each HogQL resource reads, for `check`'s probe: one LIMIT 0 query per table (it reads no rows, but PostHog
# parses and resolves it, so a table or field this PostHog lacks is refused as it would be in a run).
TABLES_OF_RESOURCE: dict[str, tuple[HogQLTable, ...]] = {
    "events": (EVENTS_BY_CREATED_AT,),
    "persons": (PERSONS, DELETED_PERSONS),
    "person_distinct_ids": (PERSON_DISTINCT_IDS,),
    "sessions": (SESSIONS,),
    "cohort_people": (COHORT_PEOPLE, STATIC_COHORT_PEOPLE),
}

# -- writing queries ----------------------------------------------------------------------------------
def utc_literal(instant: pendulum.DateTime) -> str:
    """A HogQL DateTime64 literal that means the same instant whatever the project's time zone."""
    text = instant.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss.SSSSSS")
    return f"toDateTime64('{text}', 6, 'UTC')"


def string_literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _literal(column: Column, value: Any) -> str:
    if column.kind is Kind.INSTANT:
        return utc_literal(pendulum.instance(value))
    if column.kind is Kind.INT:
        return str(int(value))
    return string_literal(str(value))


def range_condition(expression: str, lo: pendulum.DateTime | None, hi: pendulum.DateTime | None) -> list[str]:
    """Half-open [lo, hi) bounds on an instant column, as UTC literals."""
    conditions = []
    if lo is not None:
        conditions.append(f"{expression} >= {utc_literal(lo)}")
    if hi is not None:
        conditions.append(f"{expression} < {utc_literal(hi)}")
    return conditions


def build_query(
    table: HogQLTable, conditions: Sequence[str], after: tuple[Any, Any] | None, limit: int
) -> str:
    """SELECT ... WHERE <conditions> AND (cursor, tie) > after ORDER BY cursor, tie LIMIT n.

    The keyset condition is spelt with OR/AND rather than a tuple comparison, which HogQL may not accept.
    Ordering uses the select expressions (`toString(uuid)`), so the order is the one our literals compare in
    (ClickHouse orders a UUID by its integer halves, not by its text).
    """
    where = list(conditions)
    cursor = table.column(table.cursor)
    tie = table.column(table.tie_breaker)
    if after is not None:
        cursor_value, tie_value = after
        cursor_lit = _literal(cursor, cursor_value)
        if cursor is tie:
            where.append(f"{cursor.expression} > {cursor_lit}")
        else:
            tie_lit = _literal(tie, tie_value)
            where.append(f"({cursor.expression} > {cursor_lit} OR "
                         f"({cursor.expression} = {cursor_lit} AND {tie.expression} > {tie_lit}))")
    select = ", ".join(c.expression for c in table.columns)
    order = cursor.expression if cursor is tie else f"{cursor.expression} ASC, {tie.expression} ASC"
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {select} FROM {table.table}{where_sql} ORDER BY {order} LIMIT {limit}"


def query_body(query: str, name: str) -> dict[str, Any]:
    """The body of every query we send: named (PostHog's query log shows it) and never answered from the
    cache (a re-sent query must not get the rows of an earlier answer)."""
    return {"query": {"kind": "HogQLQuery", "query": query}, "name": f"posthog-dlt {name}".strip(),
            "refresh": "force_blocking"}


def query_path(project: Project) -> str:
    return f"/api/projects/{project.id}/query/"


def count_by_day(
    client: PostHogClient, project: Project, conditions: Sequence[str], name: str = "events per day",
    table: str = "events", instant: str = "timestamp",
) -> list[tuple[pendulum.DateTime, int]]:
    """Rows per UTC day of `instant` (events: `timestamp`) matching `conditions`: one query that reads two
    columns and lets windows follow the data (and lets `verify` compare days)."""
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = (
        f"SELECT toString(toDate(toTimeZone({instant}, 'UTC'))) AS day, count() AS n FROM {table}"
        f"{where} GROUP BY day ORDER BY day LIMIT {settings.HOGQL_MAX_ROWS}"
    )
    response = client.post(query_path(project), query_body(query, name),
                           what=f"{table} counts of project {project.id}")
    return [(pendulum.parse(str(day), tz="UTC"), int(n)) for day, n in response.get("results") or []]



def refusal(client: PostHogClient, project: Project, resource: str) -> str | None:
    """PostHog's message when it refuses what `resource` reads in `project` (None when every query of it is
    accepted): a LIMIT 0 query per table, which PostHog parses and resolves but which reads no rows."""
    for table in TABLES_OF_RESOURCE[resource]:
        try:
            client.post(query_path(project), query_body(build_query(table, (), None, 0), f"probe {table.table}"),
                        what=f"{table.table} of project {project.id}")
        except BadRequestError as exc:
            return str(exc)
    return None

# -- paging ---------------------------------------------------------------------------------------------
class RowWidth:
    """Bytes per row seen so far (of one table), shared by the walks of a run: the next LIMIT keeps a page
    near `page_bytes` whatever the width of the events (a 50,000-row page of 20 KB events is 1 GB)."""

    def __init__(self, page_bytes: int = settings.DEFAULT_PAGE_BYTES) -> None:
        self.page_bytes = page_bytes
        self._lock = threading.Lock()
        self._bytes_per_row: float | None = None

    def limit(self, page_size: int) -> int:
        with self._lock:
            if self._bytes_per_row is None:  # nothing seen yet: a first page small enough for any width
                return min(page_size, max(settings.MIN_PAGE_ROWS, self.page_bytes // 50_000))
            rows = int(self.page_bytes / max(self._bytes_per_row, 1.0))
        return min(page_size, max(settings.MIN_PAGE_ROWS, rows))

    def observe(self, body_bytes: int, rows: int) -> None:
        if rows <= 0:
            return
        width = body_bytes / rows
        with self._lock:  # the widest recent page wins quickly; narrower pages pull it down slowly
            previous = self._bytes_per_row
            self._bytes_per_row = width if previous is None or width > previous else 0.8 * previous + 0.2 * width


@dataclass(frozen=True)
class Page:
    """A slice of one answer's rows (an answer is read a few megabytes at a time, `answers.py`)."""

    table: pa.Table | None  # None when the slice holds no row (or only copies of the previous one)
    more: bool  # PostHog may hold more rows after this slice
    last_key: tuple[Any, Any] | None  # (cursor, tie-breaker) of the last row, for the next query
    answered: int = 0  # rows PostHog sent in this slice, copies included


# Decoded JSON is several times the size of its Arrow slice, and decoding holds the GIL anyway: slices are
# decoded and converted one at a time, so memory stays flat however many walks run in parallel.
_PARSE_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A page is hundreds of thousands of new lists and strings, none in a cycle; Python's cyclic collector,
    triggered every 700 allocations, would walk that growing heap again and again (a third of the parse's
    CPU, measured in benchmarks/RESULTS.md). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: its allocator returns memory its own way
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _return_freed_memory() -> None:
    """The decoded JSON of a page is freed as its slices become Arrow, but glibc keeps freed heap in its
    arenas: a run's resident memory would ratchet up page by page to the worst moment of every thread.
    Handing it back after each page keeps the footprint one page deep (measured in benchmarks/RESULTS.md);
    it costs about a millisecond."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def decode(content: bytes | bytearray) -> Answer:
    """The client's parse step for a HogQL answer: the keys before its rows; `answer_pages` decodes the rows
    slice by slice. An answer of another shape is decoded whole here (a cut one raises: the client retries)."""
    with _PARSE_LOCK, _no_cyclic_gc():
        return decode_answer(content)


def answer_pages(answer: Answer, table: HogQLTable, project: Project, limit: int) -> Iterator[Page]:
    """The rows of one answer as Arrow slices, in order; only the last says whether PostHog holds more.
    Nothing for an empty answer. Each slice's Python rows are freed as it becomes Arrow, and copies of a
    row are dropped within and across slices (`drop_adjacent_duplicates`). A body found broken partway
    raises `orjson.JSONDecodeError` after the slices before the break."""
    key = list(dict.fromkeys((table.cursor, table.tie_breaker)))
    slices = answer.rows()
    held: Page | None = None
    answered = 0
    while True:
        with _PARSE_LOCK, _no_cyclic_gc():
            rows = next(slices, None)
            if rows is None:
                break
            count = len(rows)
            # `types` follows the rows in PostHog's answers: the last slice may be the first to have it.
            arrow = _rows_to_arrow_releasing(rows, table, project, answer.fields.get("types"))
            del rows
        last_key = (arrow.column(table.cursor)[-1].as_py(), arrow.column(table.tie_breaker)[-1].as_py())
        arrow = drop_adjacent_duplicates(arrow, key)
        if held is not None and held.last_key is not None and _first_key(arrow, table) == held.last_key:
            arrow = arrow.slice(1)  # a copy of the previous slice's last row
        answered += count
        if held is not None:
            yield held
        held = Page(arrow if arrow.num_rows else None, True, last_key, count)
    if held is not None:
        # The effective limit may be lower than asked (self-hosted settings): only a page shorter than both
        # ends the walk, never a short page alone.
        effective = min(limit, int(answer.fields.get("limit") or limit))
        yield replace(held, more=answered >= effective or bool(answer.fields.get("hasMore")))


def _first_key(arrow: pa.Table, table: HogQLTable) -> tuple[Any, Any] | None:
    if arrow.num_rows == 0:
        return None
    return arrow.column(table.cursor)[0].as_py(), arrow.column(table.tie_breaker)[0].as_py()


# Rows converted at a time: each part's Python objects are freed as soon as it is in Arrow.
_CONVERT_ROWS = 8192


def _rows_to_arrow_releasing(rows: list[list[Any]], table: HogQLTable, project: Project, types: Any) -> pa.Table:
    """rows_to_arrow by parts from the end, emptying `rows` as it goes, so a slice never exists twice in
    full (as Python objects and as Arrow) at the same moment. Same columns, types and errors."""
    parts: list[pa.Table] = []
    while rows:
        start = max(0, len(rows) - _CONVERT_ROWS)
        parts.append(rows_to_arrow(rows[start:], table, project, types))
        del rows[start:]
    parts.reverse()
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def drop_adjacent_duplicates(page: pa.Table, key: Sequence[str]) -> pa.Table:
    """ClickHouse keeps copies of a row until it merges them (docs/posthog-api.md); copies share the whole
    key, so in our key order they are neighbours. The first copy stays."""
    if page.num_rows < 2:
        return page
    same_as_previous = None
    for name in key:
        column = page.column(name).combine_chunks()
        same = pc.fill_null(pc.equal(column.slice(1), column.slice(0, len(column) - 1)), False)
        same_as_previous = same if same_as_previous is None else pc.and_(same_as_previous, same)
    if same_as_previous is None or not pc.any(same_as_previous).as_py():
        return page
    return page.filter(pa.concat_arrays([pa.array([True]), pc.invert(same_as_previous)]))


def keyset_pages(
    client: PostHogClient,
    project: Project,
    table: HogQLTable,
    conditions: Sequence[str],
    page_size: int = settings.HOGQL_MAX_ROWS,
    label: str = "",
    after: tuple[Any, Any] | None = None,
    width: RowWidth | None = None,
) -> Iterator[Page]:
    """Every row matching `conditions` after the key `after`, one query per page of rows, in (cursor,
    tie-breaker) order, as slices of each answer. Each slice says its last key, so a caller that must split
    the walk knows where it stood."""
    page_size = min(page_size, settings.HOGQL_MAX_ROWS)
    width = width or RowWidth()
    what = f"{table.table} of project {project.id}"
    broken = 0  # answers in a row found cut short
    while True:
        limit = width.limit(page_size)
        body = query_body(build_query(table, conditions, after, limit), f"{table.table} {label}")
        answer = client.post(query_path(project), body, what=what, parse=decode)
        last: Page | None = None
        answered = 0
        try:
            for page in answer_pages(answer, table, project, limit):
                last = page
                answered += page.answered
                yield page
        except orjson.JSONDecodeError:
            broken += 1  # cut short after `last`: ask again from there, as the client retries a cut body
            client.retry_broken_answer(what, broken)
            after = last.last_key if last is not None and last.last_key is not None else after
            continue
        finally:
            size = answer.size
            del answer
            _return_freed_memory()
        broken = 0
        if last is None:
            return
        width.observe(size, answered)
        if not last.more:
            return
        if after is not None and last.last_key is not None and last.last_key <= after:
            raise PostHogSourceError(f"HogQL paging of {what} made no progress at {last.last_key}; stopped")
        after = last.last_key


def table_pages(
    client: PostHogClient,
    project: Project,
    table: HogQLTable,
    conditions: Sequence[str],
    page_size: int,
    label: str,
    width: RowWidth | None = None,
) -> Iterator[pa.Table]:
    """The Arrow tables of `keyset_pages`, for walks that need no key to continue from."""
    for page in keyset_pages(client, project, table, conditions, page_size, label, width=width):
        if page.table is not None:
            yield page.table


# -- converting answers ----------------------------------------------------------------------------------
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")


def clickhouse_base_type(name: Any) -> str:
    """`Nullable(DateTime64(6, 'UTC'))` -> `DateTime64(6, 'UTC')`; a missing type -> ''."""
    text = str(name or "").strip()
    while True:
        match = _WRAPPERS.match(text)
        if not match:
            return text
        text = match.group(1).strip()


def _types_by_position(types: Any, count: int) -> list[str]:
    """HogQL sends `types` as [name, type] pairs (or, in older versions, bare type names)."""
    if not isinstance(types, list) or len(types) != count:
        return [""] * count
    return [clickhouse_base_type(t[1] if isinstance(t, list | tuple) and len(t) == 2 else t) for t in types]


def rows_to_arrow(rows: list[list[Any]], table: HogQLTable, project: Project, types: Any = None) -> pa.Table:
    """Rows as HogQL returns them -> one Arrow table with `project_id` first, each column converted by the
    type PostHog says it has."""
    columns_data = list(zip(*rows, strict=True))
    if len(columns_data) != len(table.columns):
        raise PostHogSourceError(
            f"PostHog answered {len(columns_data)} columns for {table.table} where {len(table.columns)} were "
            "asked for; this PostHog version answers differently: please report it"
        )
    arrays: list[pa.Array] = [pa.array([project.id] * len(rows), pa.int64())]
    for column, values, clickhouse_type in zip(table.columns, columns_data,
                                               _types_by_position(types, len(table.columns)), strict=True):
        try:
            array = convert_column(values, column.kind, clickhouse_type, project.timezone)
            if column.empty_is_null:
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
            arrays.append(array)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, TypeError) as exc:
            sample = next((v for v in values if v is not None), None)
            raise PostHogSourceError(
                f"PostHog answered {table.table}.{column.name} as {clickhouse_type or 'an untyped column'} "
                f"(for example {str(sample)[:60]!r}), which cannot be read as {column.kind.name.lower()}; "
                "please report it with your PostHog version"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=table.schema)


def convert_column(values: Sequence[Any], kind: Kind, clickhouse_type: str, project_timezone: str) -> pa.Array:
    """One column of an answer -> Arrow, by its ClickHouse type (`''` when PostHog sent none)."""
    if kind is Kind.INSTANT:
        return to_utc_timestamps(values, project_timezone)
    if kind is Kind.BOOL:
        return _to_bool(values)
    if kind in (Kind.STRING, Kind.JSON):
        return _as_string_array(values)
    if kind is Kind.INT:
        return _to_number(values, pa.int64())
    return _to_number(values, pa.float64())


def _to_bool(values: Sequence[Any]) -> pa.Array:
    """ClickHouse booleans are `Int8`/`UInt8` 0/1 (recorded from PostHog Cloud), `Bool` true/false in newer
    columns, and text where an expression was stringified."""
    try:
        return pa.array(values, pa.bool_())  # true/false (and None)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        numbers = pa.array(values, pa.int64())  # 0/1
        return pc.not_equal(numbers, 0)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([_bool_value(v) for v in values], pa.bool_())


_TRUE_TEXT = frozenset({"true", "1", "t", "yes"})
_FALSE_TEXT = frozenset({"false", "0", "f", "no", ""})


def _bool_value(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_number(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """Numbers arrive as JSON numbers, and as strings for 64-bit integers in some ClickHouse settings;
    a float that is a whole number is accepted as an integer, any other is an error."""
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([None if v is None else float(v) for v in values], pa.float64()).cast(arrow_type)


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
    """HogQL instants -> UTC. Values with an offset (the normal case, `Z` or `+05:30`, with or without a
    fraction) are converted by Arrow in C; values without one are wall-clock times in the project's zone (an
    ambiguous or skipped wall-clock time is read as the earliest instant it can mean). A page mixing both
    forms is converted value by value, by the same rules."""
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
                raise ValueError(f"'{value}' is not an instant") from exc
    return pa.array(converted, TIMESTAMP)


def _wall_clock_to_utc(strings: pa.Array, project_timezone: str) -> pa.Array:
    wall_clock = strings.cast(pa.timestamp("us"))
    local = pc.assume_timezone(wall_clock, project_timezone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(TIMESTAMP)
