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

The package, one module per trade: `tables` (what we read), `queries` (the text we send), `pages` (keyset walks
and answers decoded slice by slice), `convert` (answers to Arrow by PostHog's types). Its names are exported
here, so `from posthog_source import hogql; hogql.EVENTS_BY_TIMESTAMP` reads as before.
"""

from __future__ import annotations

from posthog_source.hogql.convert import (
    clickhouse_base_type,
    convert_column,
    rows_to_arrow,
    to_utc_timestamps,
)
from posthog_source.hogql.pages import (
    Page,
    RowWidth,
    answer_pages,
    decode,
    drop_adjacent_duplicates,
    keyset_pages,
    measure_width,
    table_pages,
)
from posthog_source.hogql.queries import (
    CountTooLargeError,
    build_query,
    count_by_day,
    count_by_day_and_event,
    count_by_hash_bucket,
    query_body,
    query_path,
    range_condition,
    refusal,
    string_literal,
    utc_literal,
)
from posthog_source.hogql.tables import (
    COHORT_PEOPLE,
    DELETED_PERSONS,
    EVENT_COLUMNS,
    EVENTS_BY_CREATED_AT,
    EVENTS_BY_TIMESTAMP,
    PERSON_DISTINCT_IDS,
    PERSONS,
    PERSONS_BY_ID,
    SESSIONS,
    STATIC_COHORT_PEOPLE,
    TABLES_OF_RESOURCE,
    TIMESTAMP,
    Column,
    HogQLTable,
    Kind,
)

__all__ = [
    "COHORT_PEOPLE",
    "Column",
    "DELETED_PERSONS",
    "EVENTS_BY_CREATED_AT",
    "EVENTS_BY_TIMESTAMP",
    "EVENT_COLUMNS",
    "HogQLTable",
    "Kind",
    "PERSONS",
    "PERSONS_BY_ID",
    "PERSON_DISTINCT_IDS",
    "Page",
    "RowWidth",
    "SESSIONS",
    "STATIC_COHORT_PEOPLE",
    "TABLES_OF_RESOURCE",
    "TIMESTAMP",
    "answer_pages",
    "build_query",
    "clickhouse_base_type",
    "convert_column",
    "CountTooLargeError",
    "count_by_day",
    "count_by_day_and_event",
    "count_by_hash_bucket",
    "decode",
    "drop_adjacent_duplicates",
    "keyset_pages",
    "measure_width",
    "query_body",
    "query_path",
    "range_condition",
    "refusal",
    "rows_to_arrow",
    "string_literal",
    "table_pages",
    "to_utc_timestamps",
    "utc_literal",
]
