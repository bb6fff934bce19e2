"""dlt resources for events, persons and person_distinct_ids, read through HogQL (see hogql.py).

Events are loaded in two modes:
- *range*: the first run, an explicit --end-date, and every backfill window. Windows are cut on
  `timestamp` (PostHog's partition key, so each query scans one window) and paged by (timestamp, uuid).
  With an explicit end date the run is stateless, like dlt's incremental with `end_value`.
- *incremental*: later runs read `created_at` (ingestion time) from the last watermark to now - lag, paged
  by (created_at, uuid), so late events (old timestamp, new created_at) are loaded. The scan is bounded on
  `timestamp` too: from the watermark minus `max_lateness`, cut into windows by a per-day count so every
  data query scans only the days that hold new rows.
Rows are merged on (project_id, uuid), so overlaps between runs are harmless.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import dlt
import duckdb
import pendulum
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from posthog_source import hogql, settings
from posthog_source.client import PostHogClient
from posthog_source.errors import ConfigurationError
from posthog_source.hogql import HogQLTable, Project, keyset_pages, range_condition
from posthog_source.metadata import skip_when_denied
from posthog_source.parallel import interleave
from posthog_source.rest import SENTINEL_COLUMN, SNAPSHOT_DISPOSITION
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


@dataclass(frozen=True)
class EventsConfig:
    start_date: pendulum.DateTime
    end_date: pendulum.DateTime | None
    ingestion_lag_seconds: float
    max_lateness_seconds: float
    window_seconds: float
    page_size: int
    promoted: tuple[PromotedProperty, ...]
    workers: int
    reset_watermarks: bool = False  # --full-refresh: read from start_date again (merged, nothing dropped)
    # A backfill's hand-over: the first incremental run stores at most this watermark, so events ingested
    # while the backfill ran (late arrivals into windows already done) are read by the next run.
    handover_watermark: pendulum.DateTime | None = None


@dataclass(frozen=True)
class QueryPlan:
    """One keyset walk: a table, its bounds, and a label that names the range it scans in the log."""

    project: Project
    table: HogQLTable
    conditions: tuple[str, ...]
    label: str


CountByDay = Callable[[Project, Sequence[str]], list[tuple[pendulum.DateTime, int]]]


def plan_events(
    project: Project,
    watermark: pendulum.DateTime | None,
    config: EventsConfig,
    now: pendulum.DateTime,
    count_by_day: CountByDay,
) -> tuple[list[QueryPlan], pendulum.DateTime | None]:
    """The queries one run sends for one project, and the watermark to store after it (None: stateless).

    Both modes first count the wanted rows per UTC day of `timestamp` (one query that reads two columns),
    then walk windows of about WINDOW_TARGET_ROWS rows, so each data query scans only its own days.
    """
    created_hi = now - timedelta(seconds=config.ingestion_lag_seconds)
    skew = timedelta(hours=settings.FUTURE_TIMESTAMP_SKEW_HOURS)
    if config.end_date is not None or watermark is None:  # range mode
        table, created_lo = hogql.EVENTS_BY_TIMESTAMP, None
        scan_lo, scan_hi = config.start_date, config.end_date or created_hi + skew
        mark = None if config.end_date is not None else created_hi
    else:  # incremental mode
        if watermark >= created_hi:
            return [], watermark
        table, created_lo = hogql.EVENTS_BY_CREATED_AT, watermark
        scan_lo = max(config.start_date, watermark - timedelta(seconds=config.max_lateness_seconds))
        scan_hi, mark = created_hi + skew, created_hi
    if scan_hi <= scan_lo:
        return [], mark
    created = range_condition("created_at", created_lo, created_hi)
    counts = count_by_day(project, range_condition("timestamp", scan_lo, scan_hi) + created)
    if not counts:
        return [], mark
    buckets = split_windows(scan_lo, scan_hi, config.window_seconds)
    created_label = f"created_at [{created_lo.isoformat() if created_lo else '-inf'}, {created_hi.isoformat()})"
    plans = [
        QueryPlan(project, table, tuple(range_condition("timestamp", lo, hi) + created),
                  f"project {project.id} timestamp [{lo.isoformat()}, {hi.isoformat()}) {created_label}")
        for lo, hi in group_windows(buckets, counts, settings.WINDOW_TARGET_ROWS)
    ]
    return plans, mark


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


def _page_producers(
    client: PostHogClient,
    plans: Sequence[QueryPlan],
    page_size: int,
    shape: Callable[[pa.Table], pa.Table],
    snapshot: bool = False,
) -> list[Callable[[], Iterator[pa.Table]]]:
    """One producer per plan. For snapshot tables each producer first yields its project's sentinel, but only
    once PostHog has answered its first query: a refused or failing project keeps its old rows."""

    def producer(plan: QueryPlan) -> Callable[[], Iterator[pa.Table]]:
        def run() -> Iterator[pa.Table]:
            logger.info("reading %s: %s", plan.table.table, plan.label)
            pages = keyset_pages(client, plan.project, plan.table, plan.conditions, page_size, plan.label)
            first = next(pages, None)
            if snapshot:
                yield _sentinel_table(plan.table, [plan.project.id])
            if first is not None:
                yield shape(first)
                for page in pages:
                    yield shape(page)

        return run

    return [producer(plan) for plan in plans]


def _instant(value: str | None) -> pendulum.DateTime | None:
    return pendulum.parse(value).in_timezone("UTC") if value else None  # type: ignore[union-attr]


EVENT_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "uuid": {"data_type": "text", "nullable": False},
    "timestamp": {"data_type": "timestamp", "timezone": True},
    "created_at": {"data_type": "timestamp", "timezone": True},
    "properties": {"data_type": "json"},
}


def events_resource(client: PostHogClient, projects: Sequence[Project], config: EventsConfig) -> DltResource:
    # Upsert: a MERGE on the key, which DuckDB runs in bounded memory (dlt's default delete-insert
    # deduplicates the staged rows with a window over every column, which grows with the run).
    @dlt.resource(name="events", primary_key=("project_id", "uuid"), columns=EVENT_COLUMNS,
                  write_disposition={"disposition": "merge", "strategy": "upsert"})
    def events() -> Iterator[pa.Table]:
        yield from skip_when_denied("events", read_events)

    def read_events() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        watermarks: dict[str, str] = state.setdefault("created_at_watermark", {})
        now = pendulum.now("UTC")

        def count_by_day(project: Project, conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]:
            return hogql.count_events_by_day(client, project, conditions)

        plans: list[QueryPlan] = []
        new_marks: dict[str, str] = {}
        for project in projects:
            watermark = None if config.reset_watermarks else _instant(watermarks.get(str(project.id)))
            project_plans, mark = plan_events(project, watermark, config, now, count_by_day)
            plans.extend(project_plans)
            if mark is not None:
                if config.handover_watermark is not None and watermark is None:
                    mark = min(mark, config.handover_watermark)
                new_marks[str(project.id)] = mark.isoformat()
        logger.info("events: %d queries planned for %d projects", len(plans), len(projects))
        yield from interleave(
            _page_producers(client, plans, config.page_size, lambda t: promote_properties(t, config.promoted)),
            config.workers,
            buffered=2,  # pages waiting for dlt's writer: enough to keep the walks busy
        )
        watermarks.update(new_marks)  # committed by dlt only together with the loaded data

    return events


def _sentinel_table(table: HogQLTable, project_ids: Sequence[int]) -> pa.Table:
    """Rows that make delete-insert clear each project's old rows (see rest.snapshot_sentinel), typed
    like real pages so dlt sees one schema. Key columns get an empty string (keys may not be null)."""
    n = len(project_ids)
    arrays = [pa.array(list(project_ids), pa.int64())]
    fields = [pa.field("project_id", pa.int64(), nullable=False)]
    for column in table.columns:
        value = "" if column.name == table.tie_breaker else None
        arrays.append(pa.array([value] * n, column.arrow_type))
        fields.append(pa.field(column.name, column.arrow_type))
    arrays.append(pa.array([True] * n, pa.bool_()))
    fields.append(pa.field(SENTINEL_COLUMN, pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _with_sentinel_column(page: pa.Table) -> pa.Table:
    return page.append_column(pa.field(SENTINEL_COLUMN, pa.bool_()), pa.nulls(page.num_rows, pa.bool_()))


SNAPSHOT_HINTS: TTableSchemaColumns = {SENTINEL_COLUMN: {"data_type": "bool", "hard_delete": True}}


def persons_resource(
    client: PostHogClient,
    projects: Sequence[Project],
    workers: int,
    page_size: int,
    full_refresh: bool,
    ingestion_lag_seconds: float,
) -> DltResource:
    """Persons, incremental on created_at. A full refresh re-reads everyone (changed properties, deletions)
    and replaces each project's rows."""
    columns: TTableSchemaColumns = {
        "project_id": {"data_type": "bigint", "nullable": False},
        "id": {"data_type": "text", "nullable": False},
        "created_at": {"data_type": "timestamp", "timezone": True},
        "properties": {"data_type": "json"},
        **SNAPSHOT_HINTS,
    }

    @dlt.resource(name="persons", primary_key=("project_id", "id"), columns=columns,
                  write_disposition=SNAPSHOT_DISPOSITION,
                  merge_key="project_id" if full_refresh else None)
    def persons() -> Iterator[pa.Table]:
        yield from skip_when_denied("persons", read_persons)

    def read_persons() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        watermarks: dict[str, str] = state.setdefault("created_at_watermark", {})
        created_hi = pendulum.now("UTC") - timedelta(seconds=ingestion_lag_seconds)
        plans = []
        for project in projects:
            mark = None if full_refresh else _instant(watermarks.get(str(project.id)))
            conditions = tuple(range_condition("created_at", mark, created_hi))
            label = f"project {project.id} created_at [{mark.isoformat() if mark else '-inf'}, {created_hi})"
            plans.append(QueryPlan(project, hogql.PERSONS, conditions, label))
        yield from interleave(
            _page_producers(client, plans, page_size, _with_sentinel_column, snapshot=full_refresh), workers
        )
        watermarks.update({str(p.id): created_hi.isoformat() for p in projects})

    return persons


def person_distinct_ids_resource(
    client: PostHogClient, projects: Sequence[Project], workers: int, page_size: int
) -> DltResource:
    """Every distinct id and its person, re-read each run (HogQL offers no change time for this table)."""

    @dlt.resource(name="person_distinct_ids", primary_key=("project_id", "distinct_id"),
                  write_disposition=SNAPSHOT_DISPOSITION,
                  merge_key="project_id", columns=SNAPSHOT_HINTS)
    def person_distinct_ids() -> Iterator[pa.Table]:
        yield from skip_when_denied("person_distinct_ids", read_distinct_ids)

    def read_distinct_ids() -> Iterator[pa.Table]:
        plans = [QueryPlan(p, hogql.PERSON_DISTINCT_IDS, (), f"project {p.id} (all)") for p in projects]
        yield from interleave(
            _page_producers(client, plans, page_size, _with_sentinel_column, snapshot=True), workers
        )

    return person_distinct_ids
