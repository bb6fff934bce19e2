"""The text of our HogQL queries: UTC literals, keyset conditions, the request body, the per-day count, the
probe of a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pendulum

from posthog_source import settings
from posthog_source.client import PostHogClient
from posthog_source.errors import BadRequestError, PostHogSourceError
from posthog_source.hogql.tables import TABLES_OF_RESOURCE, Column, HogQLTable, Kind
from posthog_source.projects import Project


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
    return [(pendulum.parse(str(day), tz="UTC"), int(n))
            for day, n in _count_rows(client, project, conditions, name, (), table, instant)]


def _count_rows(client: PostHogClient, project: Project, conditions: Sequence[str], name: str,
                keys: Sequence[str] = (), table: str = "events", instant: str = "timestamp") -> list[list[Any]]:
    """Rows per UTC day of `instant` and per `keys` (each answered as k0, k1, ...), in key order."""
    columns = "".join(f"{key} AS k{i}, " for i, key in enumerate(keys))
    group = "".join(f", k{i}" for i in range(len(keys)))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = (f"SELECT toString(toDate(toTimeZone({instant}, 'UTC'))) AS day, {columns}count() AS n FROM {table}"
             f"{where} GROUP BY day{group} ORDER BY day{group} LIMIT {settings.HOGQL_MAX_ROWS}")
    response = client.post(query_path(project), query_body(query, name),
                           what=f"{table} counts of project {project.id}")
    return list(response.get("results") or [])


def count_by_day_and_event(client: PostHogClient, project: Project,
                           conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, str, int]]:
    """Events per UTC day and event name: reads `timestamp` and `event` only (the sort key's second and
    third columns), so cutting a big day into ranges of event names costs a few bytes per row."""
    return [(pendulum.parse(str(day), tz="UTC"), str(event), int(n)) for day, event, n in _grouped(
        client, project, conditions, ("event",), "events per day and event")]


def count_by_hash_bucket(client: PostHogClient, project: Project,
                         conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, str, int, int]]:
    """Events per UTC day, event name and top 8 bits of cityHash64(distinct_id) (the sort key's fourth
    column): where to cut an event too big for one slice of its day."""
    return [(pendulum.parse(str(day), tz="UTC"), str(event), int(bucket), int(n)) for day, event, bucket, n
            in _grouped(client, project, conditions, ("event", "bitShiftRight(cityHash64(distinct_id), 56)"),
                        "events per day, event and distinct_id hash")]


def _grouped(client: PostHogClient, project: Project, conditions: Sequence[str], keys: Sequence[str],
             name: str) -> list[list[Any]]:
    rows = _count_rows(client, project, conditions, name, keys)
    if len(rows) >= settings.HOGQL_MAX_ROWS:
        raise CountTooLargeError(f"{name} of project {project.id}: {len(rows):,} groups, more than one answer holds")
    return rows


class CountTooLargeError(PostHogSourceError):
    """A grouped count has more groups than PostHog answers at once: ask for fewer days."""


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
