"""The `events` resource: which HogQL queries a run sends (the plan), and the walks that answer them.

Events are read in two modes:
- *range*: the first run, an explicit end date, and every backfill window. The range is read in slices of
  PostHog's events sort key, each about one page (slices.py), so each query scans about what it returns,
  and paged by (timestamp, uuid). With an end date the run is stateless, like dlt's incremental with
  `end_value`. Without a start date the first run reads the project's whole history: the per-day count
  finds where it begins.
- *incremental*: later runs read `created_at` (ingestion time) from the watermark minus `ingestion_overlap`
  (rows can become queryable after their `created_at`) to now minus `ingestion_lag`, paged by
  (created_at, uuid), so late events (old timestamp, new ingestion) are loaded. The scan is bounded on
  `timestamp` too, from the watermark minus `max_lateness`, so each query scans only recent partitions.
- *late sweep*: at most every `late_sweep`, one count of the events ingested since the last sweep whose
  `timestamp` is older than that bound, grouped by day, and a read of exactly those days.
Every mode first counts the wanted rows per UTC day (one query that reads two columns), then walks slices
(range) or windows of about WINDOW_TARGET_ROWS rows (incremental, sweep). Rows are merged on (project_id,
uuid), so overlaps cost no duplicates. A window PostHog refuses as too large (a timeout) is split in two
and continued where it stood.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import dlt
import duckdb
import pendulum
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from posthog_source import hogql, settings
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings
from posthog_source.errors import ConfigurationError, PostHogSourceError, QueryTooLargeError
from posthog_source.failures import TableFailures, guarded
from posthog_source.hogql import HogQLTable, RowWidth, keyset_pages, range_condition
from posthog_source.incremental import EVENTS_KEYS, IngestionCursor, Position
from posthog_source.parallel import interleave
from posthog_source.progress import Progress
from posthog_source.projects import Project, ProjectCatalog
from posthog_source.slices import HASH_BUCKETS, cut_slices
from posthog_source.windows import group_windows, split_windows

logger = logging.getLogger("posthog_source")

_PROMOTED_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}
# Merged by dlt's delete-insert: a DELETE whose join reads only the two key columns, then a plain INSERT of
# the staged rows. An upsert MERGE joins every column of both sides (3.2 GB peak merging 300k events into a
# table of 1.1M in DuckDB, against 1.4 GB; benchmarks/RESULTS.md). The staged rows of one load package are
# unique on the key: windows and their halves are disjoint in `timestamp`, keyset pages continue strictly
# after the last key, copies inside a page are dropped (hogql.drop_adjacent_duplicates). So dlt may skip its
# de-duplication (a window over every staged column).
# The same uniqueness lets the DuckDB loader append instead, once it deleted the old copies of the package's
# keys (pipelines/destinations/duckdb.py DUCKDB_EVENTS_DISPOSITION).
EVENTS_DISPOSITION: dict[str, Any] = {"disposition": "merge", "strategy": "delete-insert", "deduplicated": True}
# A window is not split below this: PostHog refusing one minute of events is not a size problem.
MIN_SPLIT_SECONDS = 60


@dataclass(frozen=True)
class PromotedProperty:
    """An event property copied into its own typed column (`prop_<name>`)."""

    key: str
    column: str
    sql_type: str

    @classmethod
    def parse(cls, spec: str) -> PromotedProperty:
        """`$browser` or `plan_seats:int` -> a property, its column name and its type."""
        key, _, kind = spec.rpartition(":") if ":" in spec else (spec, "", "string")
        kind = kind.strip().lower() or "string"
        if kind not in _PROMOTED_TYPES or not key.strip():
            raise ConfigurationError(
                f"promoted property '{spec}' is not 'key' or 'key:type' with type one of "
                f"{', '.join(sorted(_PROMOTED_TYPES))}"
            )
        column = "prop_" + (re.sub(r"[^0-9a-zA-Z]+", "_", key.strip()).strip("_").lower() or "value")
        return cls(key.strip(), column, _PROMOTED_TYPES[kind])


def parse_promoted(specs: Sequence[str]) -> tuple[PromotedProperty, ...]:
    """Parse `promoted_properties`; two keys that would share a column (`Plan`, `plan`) are refused."""
    promoted = tuple(PromotedProperty.parse(spec) for spec in specs)
    columns: dict[str, str] = {}
    for prop in promoted:
        if prop.column in columns:
            raise ConfigurationError(
                f"promoted properties '{columns[prop.column]}' and '{prop.key}' would both become column "
                f"{prop.column}; promote only one of them (both stay in the properties JSON)"
            )
        columns[prop.column] = prop.key
    return promoted


# -- the plan ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryPlan:
    """One keyset walk: a table, its bounds on `timestamp` and `created_at`, and where it continues."""

    project: Project
    table: HogQLTable
    ts_lo: pendulum.DateTime | None
    ts_hi: pendulum.DateTime | None
    created_lo: pendulum.DateTime | None
    created_hi: pendulum.DateTime | None
    purpose: str  # "slice", "incremental" or "sweep": named in the log and in PostHog's query log
    after: tuple[Any, Any] | None = None
    keys: tuple[str, ...] = ()  # a slice's range of `event` and cityHash64(distinct_id) (slices.py)

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(range_condition("timestamp", self.ts_lo, self.ts_hi)
                     + range_condition("created_at", self.created_lo, self.created_hi)) + self.keys

    @property
    def label(self) -> str:
        def show(lo: pendulum.DateTime | None, hi: pendulum.DateTime | None) -> str:
            return f"[{lo.isoformat() if lo else '-inf'}, {hi.isoformat() if hi else '+inf'})"

        created = f" created_at {show(self.created_lo, self.created_hi)}" if self.created_lo or self.created_hi else ""
        keys = f" {' and '.join(self.keys)}" if self.keys else ""
        return f"{self.purpose} project {self.project.id} timestamp {show(self.ts_lo, self.ts_hi)}{created}{keys}"

    def split(self, after: tuple[Any, Any] | None) -> list[QueryPlan]:
        """Two halves of the timestamp window, both continuing after the last key already read: the walk
        was in key order over the whole window, so no row at or before that key is left in either half."""
        if self.ts_lo is None or self.ts_hi is None:
            return []
        if (self.ts_hi - self.ts_lo).total_seconds() < 2 * MIN_SPLIT_SECONDS:
            return []
        middle = self.ts_lo + (self.ts_hi - self.ts_lo) / 2
        return [replace(self, ts_hi=middle, after=after), replace(self, ts_lo=middle, after=after)]


@dataclass(frozen=True)
class ProjectPlan:
    plans: list[QueryPlan]
    marks: Position | None  # to store after the run; None: stateless (an explicit end date)
    expected_rows: int  # what the count queries found
    summary: str  # one line for the log


class EventCounts(Protocol):
    """What the planner asks PostHog before it reads: cheap grouped counts over the sort key's columns, and
    how many rows one slice should hold."""

    def by_day(self, project: Project, conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]: ...

    def by_day_and_event(self, project: Project,
                         conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int]]: ...

    def by_hash_bucket(self, project: Project,
                       conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int, int]]: ...

    def slice_rows(self, project: Project, sample: Sequence[str], rows: int) -> int:
        """Rows of one slice of a range of `rows`; `sample` selects a small range to learn the rows' width
        from if it is not known."""
        ...


class HogQLCounts:
    """EventCounts answered by PostHog, the slice sized to one page at the width the run has seen."""

    def __init__(self, client: PostHogClient, width: RowWidth, page_size: int) -> None:
        self.client, self.width, self.page_size = client, width, page_size

    def by_day(self, project: Project, conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]:
        return hogql.count_by_day(self.client, project, conditions)

    def by_day_and_event(self, project: Project,
                         conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int]]:
        return hogql.count_by_day_and_event(self.client, project, conditions)

    def by_hash_bucket(self, project: Project,
                       conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int, int]]:
        return hogql.count_by_hash_bucket(self.client, project, conditions)

    def slice_rows(self, project: Project, sample: Sequence[str], rows: int) -> int:
        if not self.width.known:
            if rows <= self.width.limit(self.page_size):  # one first page holds them all: no probe needed
                return max(1, rows)
            hogql.measure_width(self.client, project, hogql.EVENTS_BY_TIMESTAMP, sample, self.width)
        return max(1, int(settings.SLICE_PAGE_SHARE * self.width.limit(self.page_size)))


def plan_events(
    project: Project,
    marks: Position,
    config: SourceSettings,
    now: pendulum.DateTime,
    counts: EventCounts,
) -> ProjectPlan:
    """The queries one run sends for one project, and the marks to store after it."""
    created_hi = now - config.ingestion_lag
    skew = timedelta(hours=settings.FUTURE_TIMESTAMP_SKEW_HOURS)
    if config.end_date is not None or marks.watermark is None or config.full_refresh:
        return _plan_range(project, config, now, created_hi, skew, counts)
    watermark = marks.watermark
    if watermark >= created_hi:
        return ProjectPlan([], marks, 0, f"project {project.id}: nothing ingested since {watermark.isoformat()}")
    created_lo = watermark - config.ingestion_overlap
    scan_lo = watermark - config.max_lateness
    if config.start_date is not None:
        scan_lo = max(scan_lo, config.start_date)
    scan_hi = created_hi + skew
    plans: list[QueryPlan] = []
    per_day = count_days(counts, project, scan_lo, scan_hi, range_condition("created_at", created_lo, created_hi))
    rows = sum(n for _, n in per_day)
    if per_day:
        buckets = split_windows(scan_lo, scan_hi, config.window.total_seconds())
        plans += [QueryPlan(project, hogql.EVENTS_BY_CREATED_AT, lo, hi, created_lo, created_hi, "incremental")
                  for lo, hi in group_windows(buckets, per_day, settings.WINDOW_TARGET_ROWS)]
    summary = f"project {project.id}: {rows:,} events ingested since {created_lo.isoformat()}"
    new_marks = Position(created_hi, marks.swept_to, marks.swept_at)
    sweep_due = marks.swept_at is None or now - marks.swept_at >= config.late_sweep
    if sweep_due:
        swept_from = (marks.swept_to or watermark) - config.ingestion_overlap
        late = count_days(counts, project, config.start_date, scan_lo,
                          range_condition("created_at", swept_from, created_hi))
        late_rows = sum(n for _, n in late)
        for lo, hi in _contiguous_days(late, settings.WINDOW_TARGET_ROWS):
            plans.append(QueryPlan(project, hogql.EVENTS_BY_CREATED_AT, lo, min(hi, scan_lo), swept_from,
                                   created_hi, "sweep"))
        rows += late_rows
        summary += (f"; late sweep: {late_rows:,} events ingested since {swept_from.isoformat()} with a timestamp "
                    f"before {scan_lo.isoformat()}, on {len(late)} days")
        new_marks = Position(created_hi, created_hi, now)
    return ProjectPlan(plans, new_marks, rows, summary)


def _plan_range(
    project: Project,
    config: SourceSettings,
    now: pendulum.DateTime,
    created_hi: pendulum.DateTime,
    skew: timedelta,
    counts: EventCounts,
) -> ProjectPlan:
    """A range read in slices of the sort key, each about one page (slices.py): it reads what it loads."""
    stateless = config.end_date is not None
    scan_hi = config.end_date or created_hi + skew
    created = (None, None) if stateless else (None, created_hi)
    created_conditions = range_condition("created_at", *created)
    per_day = count_days(counts, project, config.start_date, scan_hi, created_conditions)
    marks = None if stateless else Position(created_hi, created_hi, now)
    rows = sum(n for _, n in per_day)
    scan_lo = config.start_date or (per_day[0][0] if per_day else None)
    if not per_day or scan_lo is None or scan_hi <= scan_lo:
        return ProjectPlan([], marks, 0, f"project {project.id}: no events in range")
    sample = _width_sample_day(per_day)
    target = counts.slice_rows(project, range_condition("timestamp", max(sample, scan_lo),
                                                        min(sample.add(days=1), scan_hi)) + created_conditions,
                              rows)
    slices = cut_slices(scan_lo, scan_hi, per_day, target,
                        lambda days: _events_per_day(counts, project, days, created_conditions, scan_lo, scan_hi),
                        lambda pairs: _buckets_per_day(counts, project, pairs, created_conditions, scan_lo, scan_hi))
    plans = [QueryPlan(project, hogql.EVENTS_BY_TIMESTAMP, s.lo, s.hi, *created, "slice", keys=s.keys)
             for s in slices]
    summary = (f"project {project.id} ({project.name}): {rows:,} events from {scan_lo.to_date_string()} to "
               f"{scan_hi.to_date_string()} in {len(plans)} slice{'' if len(plans) == 1 else 's'} of up to "
               f"{target:,} events")
    return ProjectPlan(plans, marks, rows, summary)


# Where an open start is taken to begin when a count over it is halved (the earlier half stays open, so
# timestamps before it are still counted): halving towards it, a PostHog that refuses every count is given up
# on after ~15 refusals rather than one per year back.
OPEN_START = pendulum.datetime(1970, 1, 1, tz="UTC")


def count_days(counts: EventCounts, project: Project, lo: pendulum.DateTime | None, hi: pendulum.DateTime,
               conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]:
    """Events per UTC day with a timestamp in [lo, hi) (lo None: from the first) and `conditions`. The count
    reads two narrow columns of every row in range, which over years of a large project can outrun PostHog's
    execution time (504/512, QueryTooLargeError): the range is then halved at a UTC day (an open start as if
    it began at OPEN_START) and each part counted, again halved if need be, so the days add up to the same
    answer. A single day PostHog still refuses ends the count (a one-line error)."""
    try:
        return counts.by_day(project, range_condition("timestamp", lo, hi) + list(conditions))
    except QueryTooLargeError as exc:
        mid = _split_day(lo, hi)
        if mid is None:
            when = f"on {lo.to_date_string()}" if lo else f"before {hi.to_date_string()}"
            raise PostHogSourceError(f"PostHog gave up counting the events of project {project.id} {when} "
                                     f"({exc}); try again later") from exc
        logger.info("PostHog gave up counting the events of project %s from %s to %s; counting in two parts",
                    project.id, lo.isoformat() if lo else "the first", hi.isoformat())
        return (count_days(counts, project, lo, mid, conditions)
                + count_days(counts, project, mid, hi, conditions))


def _split_day(lo: pendulum.DateTime | None, hi: pendulum.DateTime) -> pendulum.DateTime | None:
    """A UTC midnight strictly inside (lo, hi) near its middle, an open start taken as OPEN_START; None when
    the range is within one day."""
    start = OPEN_START if lo is None else lo
    mid = (start + (hi - start) / 2).start_of("day")
    if mid <= start:
        mid = start.start_of("day").add(days=1)
    return mid if start < mid < hi else None


def _width_sample_day(per_day: Sequence[tuple[pendulum.DateTime, int]]) -> pendulum.DateTime:
    """The day the width probe reads: the smallest that holds a whole probe (cheap, and not two thin rows
    that would size every page for thin events), else the biggest."""
    enough = [d for d in per_day if d[1] >= settings.WIDTH_PROBE_ROWS]
    return (min(enough, key=lambda d: d[1]) if enough else max(per_day, key=lambda d: d[1]))[0]


# Days one grouped count covers at most (fewer when its groups would not fit one answer).
COUNT_DAYS = 31


def _events_per_day(counts: EventCounts, project: Project, days: Sequence[pendulum.DateTime],
                    created: Sequence[str], lo: pendulum.DateTime,
                    hi: pendulum.DateTime) -> list[tuple[pendulum.DateTime, str, int]]:
    def ask(run: Sequence[pendulum.DateTime]) -> Sequence[tuple[pendulum.DateTime, str, int]]:
        return counts.by_day_and_event(project, _days_condition(run, lo, hi) + list(created))

    return _in_runs(days, COUNT_DAYS, ask)


def _buckets_per_day(counts: EventCounts, project: Project, pairs: Sequence[tuple[pendulum.DateTime, str]],
                     created: Sequence[str], lo: pendulum.DateTime,
                     hi: pendulum.DateTime) -> list[tuple[pendulum.DateTime, str, int, int]]:
    """Bucket counts of the (day, event) pairs, days grouped while their names' groups fit one answer."""
    names_of: dict[pendulum.DateTime, set[str]] = {}
    for day, event in pairs:
        names_of.setdefault(day, set()).add(event)
    wanted = set(pairs)

    def ask(run: Sequence[pendulum.DateTime]) -> Sequence[tuple[pendulum.DateTime, str, int, int]]:
        names = sorted(set().union(*(names_of[day] for day in run)))
        events = f"event IN ({', '.join(hogql.string_literal(e) for e in names)})"
        answer = counts.by_hash_bucket(project, [*_days_condition(run, lo, hi), events, *created])
        return [row for row in answer if (row[0], row[1]) in wanted]

    widest = max(len(names) for names in names_of.values())
    return _in_runs(sorted(names_of), max(1, min(COUNT_DAYS, settings.HOGQL_MAX_ROWS // (HASH_BUCKETS * widest))),
                    ask)


def _days_condition(run: Sequence[pendulum.DateTime], lo: pendulum.DateTime, hi: pendulum.DateTime) -> list[str]:
    return range_condition("timestamp", max(run[0], lo), min(run[-1].add(days=1), hi))


T = TypeVar("T")


def _in_runs(days: Sequence[pendulum.DateTime], most: int,
             ask: Callable[[Sequence[pendulum.DateTime]], Sequence[T]]) -> list[T]:
    """`ask` over runs of consecutive days (at most `most` each), halving a run whose answer would not fit. A
    single day whose groups still do not fit gets no finer counts: its slices are cut coarser and paged (the
    keyset pages read all of it either way)."""
    runs: list[list[pendulum.DateTime]] = []
    for day in sorted(days):
        if runs and runs[-1][-1].add(days=1) == day and len(runs[-1]) < most:
            runs[-1].append(day)
        else:
            runs.append([day])
    out: list[T] = []
    while runs:
        run = runs.pop(0)
        try:
            out += ask(run)
        except hogql.CountTooLargeError as exc:
            if len(run) == 1:
                logger.info("%s: %s is read without finer slices", exc, run[0].to_date_string())
                continue
            runs[:0] = [run[: len(run) // 2], run[len(run) // 2:]]
    return out


def _contiguous_days(
    counts: Sequence[tuple[pendulum.DateTime, int]], target_rows: int
) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """Days with rows -> windows of consecutive days, each of at most about `target_rows` rows."""
    windows: list[tuple[pendulum.DateTime, pendulum.DateTime]] = []
    rows_in_window = 0
    for day, n in sorted(counts):
        if n <= 0:
            continue
        end = day.add(days=1)
        if windows and windows[-1][1] == day and rows_in_window + n <= target_rows:
            windows[-1] = (windows[-1][0], end)
            rows_in_window += n
        else:
            windows.append((day, end))
            rows_in_window = n
    return windows


def estimate_line(expected_rows: int, page_size: int, windows: int) -> str:
    """What a first run will cost, said up front: queries and the least time PostHog's budget allows. A slice
    is about one page; an incremental window is paged."""
    queries = max(windows, math.ceil(expected_rows / max(page_size, 1)))
    per_hour = settings.DEFAULT_RATE_LIMITS["query"][-1][0]
    minutes = queries / per_hour * 60
    pace = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
    return (f"{expected_rows:,} events to read in about {queries:,} queries: {pace} at PostHog's budget of "
            f"{per_hour:,} queries/hour, usually longer (PostHog's execution time)")


# -- the walks ---------------------------------------------------------------------------------------
def walk_plan(
    client: PostHogClient, plan: QueryPlan, page_size: int, width: RowWidth
) -> Iterator[pa.Table]:
    """Every row of one plan. A window PostHog refuses as too large is split in halves that continue
    after the last key read, recursively, down to MIN_SPLIT_SECONDS."""
    todo = [plan]
    while todo:
        current = todo.pop(0)
        after = current.after
        try:
            for page in keyset_pages(client, current.project, current.table, current.conditions, page_size,
                                     current.label, after=after, width=width):
                after = page.last_key
                if page.table is not None:
                    yield page.table
        except QueryTooLargeError as exc:
            halves = current.split(after)
            if not halves:
                raise PostHogSourceError(
                    f"PostHog refused {current.label} as too large even after splitting it ({exc}); lower "
                    "page_size or page_bytes and run again"
                ) from exc
            logger.info("PostHog found %s too large; splitting it in two", current.label)
            todo[:0] = halves


def promote_properties(table: pa.Table, promoted: Sequence[PromotedProperty]) -> pa.Table:
    """Add one typed column per promoted property, extracted from the properties JSON by DuckDB (vectorised,
    exact key match, so `Plan` and `plan` stay distinct)."""
    if not promoted or table.num_rows == 0:
        return table
    expressions = ", ".join(
        f"TRY_CAST(json_extract_string(properties, {_json_path(p.key)}) AS {p.sql_type}) AS \"{p.column}\""
        for p in promoted
    )
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("page", table.select(["properties"]))
        extracted = con.execute(f"SELECT {expressions} FROM page").arrow()
    if isinstance(extracted, pa.RecordBatchReader):
        extracted = extracted.read_all()
    for name in extracted.column_names:
        table = table.append_column(name, extracted.column(name))
    return table


def _json_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''")
    return f"'$.\"{escaped}\"'"


EVENT_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "uuid": {"data_type": "text", "nullable": False},
    "timestamp": {"data_type": "timestamp", "timezone": True},
    "created_at": {"data_type": "timestamp", "timezone": True},
    "properties": {"data_type": "json"},
}


def events_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings,
                    failures: TableFailures | None = None) -> DltResource:
    """Events of every project, merged on (project_id, uuid): the staged keys are deleted from the table,
    then the staged rows appended (EVENTS_DISPOSITION)."""
    promoted = parse_promoted(config.promoted_properties)

    @dlt.resource(name="events", primary_key=("project_id", "uuid"), columns=EVENT_COLUMNS,
                  write_disposition=EVENTS_DISPOSITION)
    def events() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from guarded("events", lambda: read_events(projects), failures)

    def read_events(projects: Sequence[Project]) -> Iterator[pa.Table]:
        cursor = IngestionCursor(EVENTS_KEYS, config)
        now = cursor.now

        width = RowWidth.of(config.host, "events", config.page_bytes)
        counts = HogQLCounts(client, width, config.page_size)
        plans: list[QueryPlan] = []
        expected = 0
        for project in projects:
            marks = cursor.position(project.id)
            planned = plan_events(project, marks, config, now, counts)
            # an empty range is said once by whoever asked for it (a backfill of a mostly empty history has
            # hundreds): at debug level here
            logger.log(logging.INFO if planned.plans else logging.DEBUG, "events %s", planned.summary)
            plans += planned.plans
            expected += planned.expected_rows
            if planned.marks is not None and planned.marks.watermark is not None:
                mark = planned.marks.watermark
                if config.handover_watermark is not None and marks.watermark is None:
                    mark = min(mark, config.handover_watermark)
                swept = planned.marks.swept_to is not None and planned.marks.swept_at is not None
                cursor.stage(project.id, Position(mark, min(planned.marks.swept_to, mark) if swept else None,
                                                  planned.marks.swept_at if swept else None))
        if plans:
            logger.info("events: %s", estimate_line(expected, config.page_size, len(plans)))
        progress = Progress("events", expected, len(plans))

        def producer(plan: QueryPlan) -> Callable[[], Iterator[pa.Table]]:
            def run() -> Iterator[pa.Table]:
                logger.info("reading events: %s", plan.label)
                for page in walk_plan(client, plan, config.page_size, width):
                    progress.rows(page.num_rows)
                    yield promote_properties(page, promoted)
                progress.window_done()

            return run

        yield from interleave([producer(plan) for plan in plans], config.workers,
                              buffered=settings.EVENT_PAGES_IN_FLIGHT)
        progress.finish()
        cursor.commit()  # committed by dlt only with the loaded data

    return events
