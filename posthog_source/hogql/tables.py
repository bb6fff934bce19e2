"""The HogQL tables we read: their columns, how each becomes a destination column, and the keys pages follow."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

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
