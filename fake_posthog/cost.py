"""What a HogQL query would cost ClickHouse: rows scanned and bytes read (posthog-api.md §3.2, §9).

PostHog meters API queries by ClickHouse's `read_bytes` (PostHog#95375) and kills queries that run too long.
Both grow with what a query *scans*, not with what it returns, so this module estimates the scan from the
query text alone (its own sqlglot parse, independent of fake_posthog.hogql) and the world's DuckDB tables:

- rows scanned: every row of the team in each table the query reads, except for `events`, pruned by its
  sort key. PostHog's `sharded_events` is `PARTITION BY toYYYYMM(timestamp) ORDER BY (team_id,
  toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))` (`EVENTS_TABLE_SQL` in
  posthog/models/event/sql.py, PostHog/posthog@cfd68dbcdf60e15eaa45052287b3117687399dff), so its primary
  index prunes by: `timestamp` bounds in the WHERE, widened to the whole UTC days they touch (never to a time of day);
  then conditions ANDed to them on the next key columns: `event` (=, IN, <, <=, >, >=, BETWEEN), then
  `cityHash64(distinct_id)` and `cityHash64(uuid)` compared with numbers, each only where the key columns
  before it are pinned to values (= or IN). A filter on `created_at`, on
  `distinct_id` itself or inside an OR prunes nothing. The meter counts rows, not ClickHouse's 8,192-row
  granules: a real scan also reads the partly matching granule at each end of every key range it selects.
- bytes read: rows scanned × the average stored width of the columns the query mentions for that table
  (ClickHouse reads whole columns: `properties.$browser` reads all of `properties`). Strings count their
  average UTF-8 length, UUIDs 16 bytes, DateTimes and 64-bit numbers 8, booleans 1. A query that names no
  column of a table (`count()`) still reads its narrowest column.

Tables without a DuckDB counterpart in the world (e.g. metadata kept in Python) cost nothing here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .world import World

# HogQL table -> (DuckDB table, partition column or None). Unknown names fall back to a DuckDB table or view
# of the same name (dots as underscores) that has a team_id column.
TABLES: dict[str, tuple[str, str | None]] = {
    "events": ("events", "timestamp"),
    "persons": ("persons", None),
    "raw_persons": ("persons", None),
    "person_distinct_ids": ("person_distinct_ids", None),
    "raw_person_distinct_ids": ("person_distinct_ids", None),
}
# HogQL column names stored under another name.
COLUMN_ALIASES = {"session_id": "$session_id"}
# Lazy joins from events (person.properties.x, pdi.distinct_id ...) read the person id of each event.
LAZY_JOINS = {"person", "pdi", "poe", "session"}
UUID_COLUMNS = {"uuid", "id", "person_id"}
FIXED_WIDTHS = {"TIMESTAMP WITH TIME ZONE": 8, "TIMESTAMP": 8, "BIGINT": 8, "DOUBLE": 8, "UBIGINT": 8,
                "HUGEINT": 16, "UUID": 16, "INTEGER": 4, "FLOAT": 4, "UINTEGER": 4, "DATE": 2, "SMALLINT": 2,
                "BOOLEAN": 1, "TINYINT": 1}
_DATETIME_FUNCS = {"todatetime", "todatetime64", "parsedatetimebesteffort", "parsedatetime64besteffort",
                   "parsedatetimebesteffortornull", "todatetimeornull", "todatetime64ornull", "todate",
                   "timestamp"}
_UNWRAP_FUNCS = {"todate", "tostartofday", "totimezone", "todatetime", "todatetime64"}
_DATETIME_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                          r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$")
_DOLLAR_RE = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|\$[A-Za-z_][A-Za-z0-9_$]*")
_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 7 * 86400,
                     "MONTH": 30 * 86400, "QUARTER": 91 * 86400, "YEAR": 365 * 86400}
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)

Bounds = tuple[datetime | None, datetime | None]  # [lo, hi): None = unbounded
_OPEN: Bounds = (None, None)


@dataclass(frozen=True)
class TableScan:
    """One table read by a query."""

    table: str  # HogQL name
    rows: int
    columns: tuple[str, ...]
    row_width: float  # bytes per row over the columns read
    pruned_to: Bounds  # the day-aligned timestamp range scanned; (None, None) = every row of the team

    @property
    def read_bytes(self) -> int:
        return round(self.rows * self.row_width)


@dataclass(frozen=True)
class QueryCost:
    """The estimate for one query: what ClickHouse would scan and read."""

    scans: tuple[TableScan, ...] = ()

    @property
    def rows_scanned(self) -> int:
        return sum(s.rows for s in self.scans)

    @property
    def read_bytes(self) -> int:
        return sum(s.read_bytes for s in self.scans)


@dataclass
class _Widths:
    rows: int
    widths: dict[str, float]


class CostEstimator:
    """Estimates QueryCost for HogQL text over a World. Thread-safe; column widths are cached per (table,
    team) and recomputed when the team's row count in that table changes."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._widths: dict[tuple[str, int], _Widths] = {}

    def estimate(self, team_id: int, project_tz: str, text: str) -> QueryCost:
        """The cost of `text` for `team_id`; an empty cost if the text does not parse (the query engine
        answers those with an error before anything is read)."""
        try:
            tree = sqlglot.parse_one(_quote_dollars(text), read="clickhouse")
        except (SqlglotError, ValueError, RecursionError):
            return QueryCost()
        if tree is None:
            return QueryCost()
        cur = self.world.cursor()
        cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        scans = []
        try:
            catalogue = _catalogue(cur)
            for select in tree.find_all(exp.Select):
                scans.extend(self._scan_select(cur, catalogue, select, cte_names, team_id, project_tz))
        except duckdb.Error:  # a table or view the estimate cannot count must not fail the query itself
            return QueryCost()
        return QueryCost(tuple(scans))

    def column_bytes(self, team_id: int, table: str = "events") -> dict[str, float]:
        """The bytes each stored column of `table` reads per row on average (what a loaded row is worth when
        bytes read are compared with bytes loaded)."""
        cur = self.world.cursor()
        duck = TABLES.get(table, (table, None))[0]
        widths = self._column_widths(cur, _catalogue(cur), duck, team_id)
        return {c: w for c, w in widths.items() if c != "team_id"}

    # ------------------------------------------------------------------ one SELECT scope
    def _scan_select(self, cur: Any, catalogue: dict[str, dict[str, str]], select: exp.Select,
                     cte_names: set[str], team_id: int, project_tz: str) -> list[TableScan]:
        sources: list[tuple[str, str, str, str | None]] = []  # (alias, hogql name, duck table, partition col)
        from_ = select.args.get("from_") or select.args.get("from")
        nodes = [from_.this] if from_ is not None else []
        nodes += [j.this for j in select.args.get("joins") or []]
        for node in nodes:
            if not isinstance(node, exp.Table) or not node.name:
                continue
            name = ".".join(p.name for p in node.parts)
            if name in cte_names:
                continue
            duck, partition = TABLES.get(name, (name.replace(".", "_"), None))
            if duck not in catalogue or "team_id" not in catalogue[duck]:
                continue
            sources.append((node.alias_or_name, name, duck, partition))
        if not sources:
            return []
        aliases = {alias for alias, *_ in sources} | {name for _, name, *_ in sources}
        wanted: dict[int, set[str]] = {i: set() for i in range(len(sources))}
        for i, (alias, name, duck, _p) in enumerate(sources):
            if any(_is_star(e, alias, name) for e in select.expressions):
                wanted[i] |= {c for c in catalogue[duck] if c != "team_id"}
        for col in select.find_all(exp.Column):
            if col.find_ancestor(exp.Select) is not select:
                continue
            parts = [p.name for p in col.parts]
            owner = None
            if len(parts) > 1 and parts[0] in aliases:
                owner, parts = parts[0], parts[1:]
            column = _stored_column(parts)
            for i, (alias, name, duck, _p) in enumerate(sources):
                if owner is not None and owner not in (alias, name):
                    continue
                if column in catalogue[duck]:
                    wanted[i].add(column)
        where = select.args.get("where")
        scans = []
        for i, (alias, name, duck, partition) in enumerate(sources):
            bounds = _OPEN
            if partition is not None and where is not None:
                bounds = _day_aligned(_bounds(where.this, partition, {alias, name}, project_tz))
            key_filters = _sort_key_filters(where.this, {alias, name}) if duck == "events" and where else []
            rows = self._count(cur, duck, team_id, partition, bounds, key_filters)
            widths = self._column_widths(cur, catalogue, duck, team_id)
            columns = tuple(sorted(wanted[i] - {"team_id"}))
            if columns:
                width = sum(widths.get(c, 8.0) for c in columns)
            else:
                width = min((w for c, w in widths.items() if c != "team_id"), default=8.0)
            scans.append(TableScan(name, rows, columns, width, bounds))
        return scans

    def _count(self, cur: Any, duck: str, team_id: int, partition: str | None, bounds: Bounds,
               key_filters: Sequence[str] = ()) -> int:
        sql = f'SELECT count(*) FROM "{duck}" WHERE team_id = $team' + "".join(f" AND {f}" for f in key_filters)
        args: dict[str, Any] = {"team": team_id}
        lo, hi = bounds
        if lo is not None and hi is not None and lo >= hi:
            return 0
        if partition is not None and lo is not None:
            sql += f' AND "{partition}" >= $lo'
            args["lo"] = lo
        if partition is not None and hi is not None:
            sql += f' AND "{partition}" < $hi'
            args["hi"] = hi
        row = cur.execute(sql, args).fetchone()
        return int(row[0]) if row else 0

    def _column_widths(self, cur: Any, catalogue: dict[str, dict[str, str]], duck: str,
                       team_id: int) -> dict[str, float]:
        """Average stored bytes per column for the team's rows (cached until the row count changes)."""
        row = cur.execute(f'SELECT count(*) FROM "{duck}" WHERE team_id = ?', [team_id]).fetchone()
        rows = int(row[0]) if row else 0
        with self._lock:
            cached = self._widths.get((duck, team_id))
        if cached is not None and cached.rows == rows:
            return cached.widths
        widths: dict[str, float] = {}
        measured: list[str] = []
        for column, duck_type in catalogue[duck].items():
            if column in UUID_COLUMNS and duck_type in ("VARCHAR", "UUID"):
                widths[column] = 16.0
            elif duck_type in FIXED_WIDTHS:
                widths[column] = float(FIXED_WIDTHS[duck_type])
            else:
                measured.append(column)
        if measured and rows:
            parts = ", ".join(f'avg(coalesce(strlen(CAST("{c}" AS VARCHAR)), 0))' for c in measured)
            values = cur.execute(f'SELECT {parts} FROM "{duck}" WHERE team_id = ?', [team_id]).fetchone() or ()
            widths.update({c: float(v or 0.0) for c, v in zip(measured, values, strict=False)})
        else:
            widths.update({c: 0.0 for c in measured})
        with self._lock:
            self._widths[(duck, team_id)] = _Widths(rows, widths)
        return widths


# ---------------------------------------------------------------------------------------------- helpers
def _quote_dollars(query: str) -> str:
    """HogQL allows bare `$name` identifiers; sqlglot needs them backticked."""
    return _DOLLAR_RE.sub(lambda m: f"`{m.group(0)}`" if m.group(0).startswith("$") else m.group(0), query)


def _catalogue(cur: Any) -> dict[str, dict[str, str]]:
    """DuckDB tables and views of the main schema -> {column: type}."""
    out: dict[str, dict[str, str]] = {}
    for table, column, data_type in cur.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        out.setdefault(table, {})[column] = data_type
    return out


def _is_star(node: exp.Expression, alias: str, name: str) -> bool:
    if isinstance(node, exp.Star):
        return True
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return not node.table or node.table in (alias, name)
    return False


def _stored_column(parts: list[str]) -> str:
    """The stored column a HogQL column path reads: `properties.$x` reads `properties`, `person.x` the
    event's person_id, `session_id` is stored as `$session_id`."""
    head = parts[0] if parts else ""
    if head in LAZY_JOINS and len(parts) > 1:
        return "person_id"
    return COLUMN_ALIASES.get(head, head)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_instant(text: str, zone_name: str) -> datetime | None:
    """A DateTime literal as ClickHouse reads it: wall clock in `zone_name` unless it carries an offset."""
    m = _DATETIME_RE.match(text)
    if not m:
        return None
    year, month, day, hh, mi, ss, frac, off = m.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hh or 0), int(mi or 0), int(ss or 0),
                         int((frac or "0")[:6].ljust(6, "0")))
    except ValueError:
        return None
    if off is None:
        zone = _zone(zone_name) or UTC
        return naive.replace(tzinfo=zone).astimezone(UTC)
    if off == "Z":
        return naive.replace(tzinfo=UTC)
    digits = off[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return naive.replace(tzinfo=timezone(-delta if off[0] == "-" else delta)).astimezone(UTC)


def _instant(node: exp.Expression, project_tz: str) -> datetime | None:
    """The instant a constant expression stands for, or None if it is not one we can read."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return _parse_instant(node.this, project_tz)
    if isinstance(node, exp.Cast):
        return _instant(node.this, project_tz)
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval):
        base, step = _instant(node.this, project_tz), _interval(node.expression)
        if base is None or step is None:
            return None
        return base + step if isinstance(node, exp.Add) else base - step
    if isinstance(node, (exp.CurrentTimestamp,)) or (isinstance(node, exp.Anonymous)
                                                     and str(node.this).lower() == "now"):
        return datetime.now(UTC)
    if isinstance(node, exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        args = [a for a in node.iter_expressions()]
        if name in _DATETIME_FUNCS and args and isinstance(args[0], exp.Literal) and args[0].is_string:
            zone = project_tz
            last = args[-1]
            if len(args) > 1 and isinstance(last, exp.Literal) and last.is_string and _zone(last.this):
                zone = last.this
            return _parse_instant(args[0].this, zone)
    return None


def _interval(node: exp.Interval) -> timedelta | None:
    unit = str(node.args.get("unit") or "").upper().rstrip("S")
    seconds = _INTERVAL_SECONDS.get(unit)
    try:
        count = float(node.this.this) if node.this is not None else None
    except (TypeError, ValueError):
        return None
    return None if seconds is None or count is None else timedelta(seconds=count * seconds)


def _is_partition_column(node: exp.Expression, column: str, owners: set[str]) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        args = list(node.iter_expressions())
        return name in _UNWRAP_FUNCS and bool(args) and _is_partition_column(args[0], column, owners)
    if not isinstance(node, exp.Column):
        return False
    parts = [p.name for p in node.parts]
    if len(parts) == 2:
        return parts[0] in owners and parts[1] == column
    return parts == [column]


def _bounds(node: exp.Expression, column: str, owners: set[str], project_tz: str) -> Bounds:
    """Interval analysis of a WHERE condition on one DateTime column: the [lo, hi) it must lie in."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        a = _bounds(node.this, column, owners, project_tz)
        b = _bounds(node.expression, column, owners, project_tz)
        return (_max(a[0], b[0]), _min(a[1], b[1]))
    if isinstance(node, exp.Or):
        a = _bounds(node.this, column, owners, project_tz)
        b = _bounds(node.expression, column, owners, project_tz)
        lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
        hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
        return (lo, hi)
    if isinstance(node, exp.Between) and _is_partition_column(node.this, column, owners):
        lo, hi = _instant(node.args["low"], project_tz), _instant(node.args["high"], project_tz)
        return (lo, hi + _ONE_US if hi is not None else None)
    if isinstance(node, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ)):
        left, right = node.this, node.expression
        kind = type(node)
        if not _is_partition_column(left, column, owners):
            if not _is_partition_column(right, column, owners):
                return _OPEN
            left, right = right, left
            kind = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}.get(kind, kind)
        value = _instant(right, project_tz)
        if value is None:
            return _OPEN
        if kind in (exp.GT, exp.GTE):
            return (value, None)
        if kind is exp.LT:
            return (None, value)
        if kind is exp.LTE:
            return (None, value + _ONE_US)
        return (value, value + _ONE_US)
    return _OPEN


# The events sort key after toDate(timestamp): HogQL expression -> the same expression over the world's table
# (cityHash64 is DuckDB's `hash` of the text, as fake_posthog/hogql.py evaluates it).
_KEY_COLUMNS = {"event": '"event"'}
_HASHED_KEY_COLUMNS = {"distinct_id": 'hash(CAST("distinct_id" AS VARCHAR))',
                       "uuid": 'hash(CAST("uuid" AS VARCHAR))'}
_KEY_OPERATORS = {exp.EQ: "=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_FLIPPED = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _key_expression(node: exp.Expression, owners: set[str]) -> tuple[str, bool] | None:
    """(SQL over the world's events, wants a number) when `node` is a sort-key column after the date."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.CityHash64) and len(node.expressions) == 1:
        inner = node.expressions[0]
        if isinstance(inner, exp.Column) and (not inner.table or inner.table in owners):
            sql = _HASHED_KEY_COLUMNS.get(inner.name)
            return (sql, True) if sql else None
        return None
    if isinstance(node, exp.Column) and (not node.table or node.table in owners) and node.name in _KEY_COLUMNS:
        return _KEY_COLUMNS[node.name], False
    return None


def _key_literal(node: exp.Expression, number: bool) -> str | None:
    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.Literal) or node.is_string == number:
        return None
    if number:
        return str(int(node.this)) if node.this.lstrip("-").isdigit() else None
    return "'" + node.this.replace("'", "''") + "'"


def _sort_key_filters(where: exp.Expression, owners: set[str]) -> list[str]:
    """The WHERE's ANDed conditions on the sort-key columns after the date, as filters over the world's rows:
    what the primary index prunes on top of the days. A key column narrows the scan only where the columns
    before it are pinned to values (`=` or `IN`): a range of events does not make a distinct_id hash prune."""
    by_key: dict[str, list[str]] = {}
    pinned: set[str] = set()
    for key, condition, exact in _key_conditions(where, owners):
        by_key.setdefault(key, []).append(condition)
        if exact:
            pinned.add(key)
    filters: list[str] = []
    for key in _KEY_ORDER:
        filters += by_key.get(key, [])
        if key not in pinned:
            break
    return filters


_KEY_ORDER = ('"event"', _HASHED_KEY_COLUMNS["distinct_id"], _HASHED_KEY_COLUMNS["uuid"])


def _key_conditions(where: exp.Expression, owners: set[str]) -> list[tuple[str, str, bool]]:
    """(key expression, filter, pins the key to values) for each ANDed condition on a sort-key column."""
    filters: list[tuple[str, str, bool]] = []
    for node in _conjuncts(where):
        if isinstance(node, exp.In) and not node.args.get("query"):
            key = _key_expression(node.this, owners)
            values = [_key_literal(v, key[1]) for v in node.expressions] if key else []
            if key and values and all(v is not None for v in values):
                filters.append((key[0], f"{key[0]} IN ({', '.join(values)})", True))  # type: ignore[arg-type]
        elif isinstance(node, exp.Between):
            key = _key_expression(node.this, owners)
            low = _key_literal(node.args["low"], key[1]) if key else None
            high = _key_literal(node.args["high"], key[1]) if key else None
            if key and low is not None and high is not None:
                filters.append((key[0], f"{key[0]} BETWEEN {low} AND {high}", False))
        elif type(node) in _KEY_OPERATORS:
            kind, left, right = type(node), node.this, node.expression
            if _key_expression(left, owners) is None:
                kind, left, right = _FLIPPED[kind], right, left
            key = _key_expression(left, owners)
            value = _key_literal(right, key[1]) if key else None
            if key and value is not None:
                filters.append((key[0], f"{key[0]} {_KEY_OPERATORS[kind]} {value}", kind is exp.EQ))
    return filters


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _day_aligned(bounds: Bounds) -> Bounds:
    """Widen [lo, hi) to whole UTC days, the granularity the events primary index prunes at."""
    lo, hi = bounds
    if lo is not None:
        lo = lo.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if hi is not None:
        hi = hi.astimezone(UTC)
        floor = hi.replace(hour=0, minute=0, second=0, microsecond=0)
        hi = floor if floor == hi else floor + _DAY
    return (lo, hi)
