"""Pins the HogQL rules of the fake PostHog (shared/posthog-api.md §3.2, §3.3), traps included."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fake_posthog.hogql import MAX_ROWS, OFFSET_ERROR, HogQLError, execute_hogql
from fake_posthog.world import create_schema, refresh_sessions

NY = "America/New_York"
KOLKATA = "Asia/Kolkata"

# (team, uuid, event, distinct_id, timestamp UTC, created_at UTC)
EVENTS = [
    (
        1,
        "00000000-0000-0000-0000-000000000001",
        "$pageview",
        "d1",
        "2024-01-01 00:00:00+00",
        "2024-01-01 00:00:01+00",
    ),
    (
        1,
        "00000000-0000-0000-0000-000000000002",
        "$pageview",
        "d1",
        "2024-01-01 05:00:00+00",
        "2024-01-01 05:00:01+00",
    ),
    (
        1,
        "00000000-0000-0000-0000-000000000003",
        "click",
        "d2",
        "2024-03-10 06:59:59.123456+00",
        "2024-03-10 06:59:59.123456+00",
    ),
    (
        1,
        "00000000-0000-0000-0000-000000000004",
        "click",
        "d2",
        "2024-03-10 07:00:00+00",
        "2024-03-10 07:00:00+00",
    ),
    (
        1,
        "00000000-0000-0000-0000-000000000005",
        "$identify",
        "d3",
        "2024-07-01 12:30:00.5+00",
        "2024-07-01 12:30:00.5+00",
    ),
    (
        2,
        "00000000-0000-0000-0000-000000000101",
        "$pageview",
        "x1",
        "2024-01-01 00:00:00+00",
        "2024-01-01 00:00:01+00",
    ),
    (
        2,
        "00000000-0000-0000-0000-000000000102",
        "secret",
        "x2",
        "2024-01-02 00:00:00+00",
        "2024-01-02 00:00:01+00",
    ),
]
PERSONS = [
    # team, id, created_at, properties, is_identified, is_deleted, version
    (
        1,
        "10000000-0000-0000-0000-000000000001",
        "2024-01-01 00:00:00+00",
        '{"email": "a@x.io"}',
        True,
        False,
        0,
    ),
    (1, "10000000-0000-0000-0000-000000000002", "2024-01-02 00:00:00+00", "{}", False, False, 0),
    (1, "10000000-0000-0000-0000-000000000003", "2024-01-03 00:00:00+00", "{}", False, True, 1),
    (2, "10000000-0000-0000-0000-000000000101", "2024-01-01 00:00:00+00", "{}", False, False, 0),
]
PDIS = [
    # team, distinct_id, person_id, is_deleted, version
    (1, "d1", "10000000-0000-0000-0000-000000000001", False, 0),
    (1, "d2", "10000000-0000-0000-0000-000000000001", False, 0),
    (1, "d2", "10000000-0000-0000-0000-000000000002", False, 1),  # re-pointed: latest version wins
    (1, "d3", "10000000-0000-0000-0000-000000000003", False, 0),
    (1, "d3", "10000000-0000-0000-0000-000000000003", True, 1),  # deleted in its latest version
    (2, "x1", "10000000-0000-0000-0000-000000000101", False, 0),
]


def _new_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    create_schema(con)
    return con


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = _new_con()
    for team, uuid, event, distinct_id, ts, created in EVENTS:
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?::TIMESTAMPTZ, ?::TIMESTAMPTZ, NULL, NULL)",
            [
                team,
                uuid,
                event,
                distinct_id,
                "10000000-0000-0000-0000-000000000001",
                '{"$browser": "Chrome", "plan": 3}',
                f"s-{uuid[-3:]}",
                "w",
                ts,
                created,
            ],
        )
    con.executemany("INSERT INTO persons VALUES (?, ?, ?::TIMESTAMPTZ, ?, ?, ?, ?, NULL)", PERSONS)
    con.executemany("INSERT INTO person_versions VALUES (?, ?, ?::TIMESTAMPTZ, ?, ?, ?, ?)", PERSONS)
    con.executemany("INSERT INTO person_distinct_ids VALUES (?, ?, ?, ?, ?)", PDIS)
    refresh_sessions(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def bulk() -> Iterator[duckdb.DuckDBPyConnection]:
    """50,010 events for team 7, one per second, plus a few for team 8."""
    con = _new_con()
    con.execute(
        """INSERT INTO events SELECT CASE WHEN i < 50010 THEN 7 ELSE 8 END, printf('%032d', i), 'e',
           'd' || (i % 97), NULL, '{}', '', NULL, NULL, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i),
           TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i), NULL, NULL FROM range(50020) t(i)"""
    )
    yield con
    con.close()


def run(con: duckdb.DuckDBPyConnection, query: str, team: int = 1, tz: str = "UTC") -> dict:
    return execute_hogql(con, team, tz, query)


def col(result: dict, index: int = 0) -> list:
    return [row[index] for row in result["results"]]


# --- response shape -------------------------------------------------------------------------------


def test_response_shape_and_types(con: duckdb.DuckDBPyConnection) -> None:
    query = "SELECT * FROM events ORDER BY timestamp LIMIT 1"
    result = run(con, query)
    assert set(result) == {
        "results",
        "columns",
        "types",
        "hasMore",
        "limit",
        "offset",
        "hogql",
        "clickhouse",
        "timings",
        "modifiers",
        "query",
        "error",
        "is_cached",
    }
    # Recorded (estuary source-posthog snapshot, 2026): SELECT * FROM events answers these 23 columns and
    # no team_id, e.g. "$session_id": "", "$group_0": "", "elements_chain_ids": [], "person_mode": "full".
    assert result["columns"] == [
        "uuid",
        "event",
        "properties",
        "timestamp",
        "distinct_id",
        "elements_chain",
        "created_at",
        "$session_id",
        "$window_id",
        "person_mode",
        "person_id",
        "event_person_id",
        "$group_0",
        "$group_1",
        "$group_2",
        "$group_3",
        "$group_4",
        "elements_chain_href",
        "elements_chain_texts",
        "elements_chain_ids",
        "elements_chain_elements",
        "issue_id",
        "event_issue_id",
    ]
    assert "team_id" not in result["columns"]
    types = dict(result["types"])
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in result["types"])
    assert types["uuid"] == "UUID" and types["person_id"] == "UUID" and types["event_person_id"] == "UUID"
    assert types["timestamp"] == types["created_at"] == "DateTime64(6, 'UTC')"
    assert types["elements_chain_texts"] == "Array(String)" and types["issue_id"] == "Nullable(UUID)"
    row = dict(zip(result["columns"], result["results"][0], strict=True))
    assert row["uuid"] == "00000000-0000-0000-0000-000000000001" and row["event"] == "$pageview"
    assert row["properties"] == '{"$browser": "Chrome", "plan": 3}'
    # A zero fraction is dropped, as Python's isoformat() does (recorded: "2026-03-06T14:24:34.632000Z").
    assert row["timestamp"] == "2024-01-01T00:00:00Z" and row["created_at"] == "2024-01-01T00:00:01Z"
    assert row["$session_id"] == "s-001" and row["person_mode"] == "full"
    assert row["person_id"] == row["event_person_id"] == "10000000-0000-0000-0000-000000000001"
    assert [row[f"$group_{i}"] for i in range(5)] == [""] * 5
    assert row["elements_chain_href"] == "" and row["elements_chain_texts"] == [] == row["elements_chain_ids"]
    assert row["issue_id"] is None and row["event_issue_id"] is None
    explicit = run(con, "SELECT team_id FROM events ORDER BY timestamp LIMIT 1")
    assert explicit["results"] == [[1]] and explicit["types"] == [["team_id", "Int64"]]
    assert (result["hasMore"], result["limit"], result["offset"]) == (False, 1, 0)
    assert result["hogql"] == result["query"] == query
    assert result["error"] is None and result["is_cached"] is False
    assert result["timings"] == [] and result["modifiers"] == {}


def test_column_names_aliases_and_session_id(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "SELECT `$session_id`, session_id, $window_id, uuid AS u, count() FROM events "
        "WHERE event = 'click' GROUP BY `$session_id`, session_id, $window_id, uuid ORDER BY u",
    )
    assert result["columns"] == ["$session_id", "session_id", "$window_id", "u", "count()"]
    assert result["types"][-1] == ["count()", "UInt64"]
    assert result["results"] == [
        ["s-003", "s-003", "w", "00000000-0000-0000-0000-000000000003", 1],
        ["s-004", "s-004", "w", "00000000-0000-0000-0000-000000000004", 1],
    ]


def test_persons_booleans_and_properties(con: duckdb.DuckDBPyConnection) -> None:
    # Recorded: SELECT * FROM persons answers "is_identified": 0 (ClickHouse Int8), never false.
    result = run(con, "SELECT id, is_identified, properties FROM persons ORDER BY id")
    assert result["types"] == [["id", "UUID"], ["is_identified", "Int8"], ["properties", "String"]]
    assert result["results"] == [
        ["10000000-0000-0000-0000-000000000001", 1, '{"email": "a@x.io"}'],
        ["10000000-0000-0000-0000-000000000002", 0, "{}"],
    ]
    assert all(type(row[1]) is int for row in result["results"])
    assert col(run(con, "SELECT id FROM persons WHERE is_identified = 1")) == [PERSONS[0][1]]
    assert col(run(con, "SELECT id FROM persons WHERE is_identified = true")) == [PERSONS[0][1]]


def test_property_access(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "SELECT properties.$browser, properties.plan, properties.missing, "
        "JSONExtractString(properties, '$browser'), JSONExtractString(properties, 'plan') "
        "FROM events WHERE uuid = '00000000-0000-0000-0000-000000000001'",
    )
    assert result["results"] == [["Chrome", "3", None, "Chrome", ""]]
    assert result["columns"][:2] == ["$browser", "plan"]
    assert result["types"][0] == ["$browser", "Nullable(String)"]


def test_aggregates_group_by_order_by(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "SELECT event, count() AS c, uniq(distinct_id) AS u, min(timestamp), max(timestamp) "
        "FROM events GROUP BY event ORDER BY c DESC, event ASC",
        tz=NY,
    )
    assert result["results"] == [
        ["$pageview", 2, 1, "2023-12-31T19:00:00-05:00", "2024-01-01T00:00:00-05:00"],
        ["click", 2, 1, "2024-03-10T01:59:59.123456-05:00", "2024-03-10T03:00:00-04:00"],
        ["$identify", 1, 1, "2024-07-01T08:30:00.500000-04:00", "2024-07-01T08:30:00.500000-04:00"],
    ]
    assert result["types"][3] == ["min(timestamp)", f"DateTime64(6, '{NY}')"]


def test_misc_functions(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "SELECT toString(timestamp), toDate(timestamp), toString(uuid), now() > timestamp "
        "FROM events WHERE toString(uuid) = '00000000-0000-0000-0000-000000000001' "
        "AND event IN ('$pageview', 'nope') AND NOT (event = 'click' OR event != event)",
        tz=NY,
    )
    assert result["results"] == [
        ["2023-12-31 19:00:00.000000", "2023-12-31", "00000000-0000-0000-0000-000000000001", 1]
    ]
    assert result["types"][3] == ["now() > timestamp", "UInt8"]  # ClickHouse comparisons are UInt8


def test_ctes_and_subqueries(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "WITH c AS (SELECT event, timestamp FROM events WHERE event = 'click') "
        "SELECT e.event, e.timestamp FROM (SELECT * FROM c) AS e ORDER BY timestamp",
        tz=NY,
    )
    assert col(result, 1) == ["2024-03-10T01:59:59.123456-05:00", "2024-03-10T03:00:00-04:00"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT uuid, event FROM events ORDER BY 2 DESC, 1 LIMIT 2", ["click", "click"]),
        ("SELECT event AS e FROM events ORDER BY e LIMIT 2", ["$identify", "$pageview"]),
        (
            "SELECT toString(timestamp) AS timestamp FROM events ORDER BY timestamp DESC LIMIT 2",
            ["2024-07-01 12:30:00.500000", "2024-03-10 07:00:00.000000"],
        ),
        ("SELECT event FROM events ORDER BY timestamp DESC LIMIT 1", ["$identify"]),
        ("SELECT toString(id) FROM persons ORDER BY created_at DESC LIMIT 1", [PERSONS[1][1]]),
    ],
)
def test_order_by_with_limit_keeps_its_meaning(
    con: duckdb.DuckDBPyConnection, query: str, expected: list[str]
) -> None:
    result = run(con, query)
    assert col(result, len(result["columns"]) - 1) == expected


# --- isolation ------------------------------------------------------------------------------------


def test_team_isolation(con: duckdb.DuckDBPyConnection) -> None:
    assert sorted(col(run(con, "SELECT uuid FROM events"))) == [e[1] for e in EVENTS if e[0] == 1]
    assert col(run(con, "SELECT uuid FROM events", team=2)) == [e[1] for e in EVENTS if e[0] == 2]
    assert run(con, "SELECT uuid FROM events WHERE team_id = 2")["results"] == []
    assert run(con, "SELECT count() FROM events e JOIN persons p ON e.person_id = p.id")["results"] == [[5]]
    assert col(run(con, "SELECT distinct_id FROM person_distinct_ids", team=2)) == ["x1"]
    assert run(con, "SELECT count() FROM events", team=3)["results"] == [[0]]


def test_deleted_persons_hidden(con: duckdb.DuckDBPyConnection) -> None:
    ids = col(run(con, "SELECT id FROM persons ORDER BY id"))
    assert ids == ["10000000-0000-0000-0000-000000000001", "10000000-0000-0000-0000-000000000002"]


def test_person_distinct_ids_latest_version_not_deleted(con: duckdb.DuckDBPyConnection) -> None:
    result = run(con, "SELECT distinct_id, person_id FROM person_distinct_ids ORDER BY distinct_id")
    assert result["results"] == [
        ["d1", "10000000-0000-0000-0000-000000000001"],
        ["d2", "10000000-0000-0000-0000-000000000002"],
    ]
    assert result["types"] == [["distinct_id", "String"], ["person_id", "UUID"]]


# --- OFFSET and LIMIT -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SELECT uuid FROM events LIMIT 10 OFFSET 5",
        "select uuid from events limit 10 offset 0",
        "SELECT uuid FROM events LIMIT 5, 10",
        "SELECT uuid FROM events OFFSET 5",
        "SELECT uuid FROM events ORDER BY timestamp LIMIT 1 BY event OFFSET 1",
        "SELECT uuid FROM (SELECT uuid FROM events LIMIT 2 OFFSET 1)",
        "WITH x AS (SELECT uuid FROM events OFFSET 1) SELECT * FROM x",
        "SELECT uuid FROM events WHERE uuid IN (SELECT uuid FROM events LIMIT 1 OFFSET 1)",
        "SELECT uuid FROM nope LIMIT 1 OFFSET 1",
    ],
)
def test_offset_refused(con: duckdb.DuckDBPyConnection, query: str) -> None:
    with pytest.raises(HogQLError) as info:
        run(con, query)
    assert str(info.value) == OFFSET_ERROR


def test_offset_as_a_name_is_fine(con: duckdb.DuckDBPyConnection) -> None:
    assert run(con, "SELECT 'OFFSET 5' AS `offset` FROM events LIMIT 1")["results"] == [["OFFSET 5"]]


def test_default_limit_is_100_with_has_more(bulk: duckdb.DuckDBPyConnection) -> None:
    result = run(bulk, "SELECT uuid FROM events ORDER BY timestamp", team=7)
    assert len(result["results"]) == 100 and result["hasMore"] is True and result["limit"] == 100
    assert col(result) == [f"{i:032d}" for i in range(100)]
    exact = run(bulk, "SELECT uuid FROM events WHERE uuid < '00000000000000000000000000000100'", team=7)
    assert len(exact["results"]) == 100 and exact["hasMore"] is False
    few = run(bulk, "SELECT uuid FROM events", team=8)
    assert len(few["results"]) == 10 and few["hasMore"] is False and few["limit"] == 100


@pytest.mark.parametrize(
    ("asked", "rows"), [(0, 0), (7, 7), (50_000, 50_000), (50_001, 50_000), (10**9, 50_000)]
)
def test_explicit_limit_and_silent_clamp(bulk: duckdb.DuckDBPyConnection, asked: int, rows: int) -> None:
    result = run(bulk, f"SELECT uuid, timestamp FROM events ORDER BY timestamp DESC LIMIT {asked}", team=7)
    assert len(result["results"]) == rows
    assert result["hasMore"] is False
    assert result["limit"] == min(asked, MAX_ROWS)
    if rows:
        assert result["results"][0][0] == f"{50_009:032d}"


def test_limit_inside_subquery_is_not_the_page_limit(bulk: duckdb.DuckDBPyConnection) -> None:
    result = run(bulk, "SELECT count() FROM (SELECT uuid FROM events LIMIT 60000)", team=7)
    assert result["results"] == [[50_010]] and result["limit"] == 100


# --- time zones: rendering ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        # UTC reads like the recorded "2026-03-06T14:24:34.632000Z"; a zero fraction is dropped.
        ("UTC", ["2024-03-10T06:59:59.123456Z", "2024-03-10T07:00:00Z"]),
        (NY, ["2024-03-10T01:59:59.123456-05:00", "2024-03-10T03:00:00-04:00"]),  # DST starts
        (KOLKATA, ["2024-03-10T12:29:59.123456+05:30", "2024-03-10T12:30:00+05:30"]),
        ("America/St_Johns", ["2024-03-10T04:29:59.123456-02:30", "2024-03-10T04:30:00-02:30"]),
        ("Pacific/Chatham", ["2024-03-10T20:44:59.123456+13:45", "2024-03-10T20:45:00+13:45"]),
    ],
)
def test_datetimes_rendered_in_project_zone(
    con: duckdb.DuckDBPyConnection, tz: str, expected: list[str]
) -> None:
    result = run(
        con, "SELECT timestamp, created_at FROM events WHERE event = 'click' ORDER BY timestamp", tz=tz
    )
    assert col(result) == expected
    assert col(result, 1) == expected
    assert result["types"][0] == ["timestamp", f"DateTime64(6, '{tz}')"]


def test_to_time_zone_overrides_render_zone(con: duckdb.DuckDBPyConnection) -> None:
    result = run(
        con,
        "SELECT toTimeZone(timestamp, 'UTC') AS utc, toTimeZone(timestamp, 'Asia/Kolkata'), "
        "timestamp FROM events WHERE event = 'click' ORDER BY utc LIMIT 1",
        tz=NY,
    )
    assert result["results"] == [
        [
            "2024-03-10T06:59:59.123456Z",
            "2024-03-10T12:29:59.123456+05:30",
            "2024-03-10T01:59:59.123456-05:00",
        ]
    ]
    assert result["types"][0] == ["utc", "DateTime64(6, 'UTC')"]
    assert result["types"][1][1] == "DateTime64(6, 'Asia/Kolkata')"
    with pytest.raises(HogQLError, match="time zone"):
        run(con, "SELECT toTimeZone(timestamp, 'Mars/Olympus') FROM events", tz=NY)


ZONES = [
    "UTC",
    NY,
    KOLKATA,
    "America/St_Johns",
    "Pacific/Chatham",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=instants, tz=st.sampled_from(ZONES))
def test_rendering_round_trips(moment: datetime, tz: str) -> None:
    con = _new_con()
    con.execute("INSERT INTO events (team_id, uuid, timestamp) VALUES (1, 'u', ?)", [moment])
    rendered = run(con, "SELECT timestamp FROM events", tz=tz)["results"][0][0]
    parsed = datetime.fromisoformat(rendered.replace("Z", "+00:00"))
    assert parsed == moment
    assert parsed.utcoffset() == moment.astimezone(ZoneInfo(tz)).utcoffset()
    # isoformat(): six fractional digits unless the fraction is zero; Z for UTC, else ±HH:MM
    local = moment.astimezone(ZoneInfo(tz))
    assert rendered == (local.isoformat().replace("+00:00", "Z") if tz == "UTC" else local.isoformat())
    con.close()


# --- time zones: literals -------------------------------------------------------------------------

JAN1_UTC = "00000000-0000-0000-0000-000000000001"  # 2024-01-01 00:00:00 UTC
JAN1_NY = "00000000-0000-0000-0000-000000000002"  # 2024-01-01 05:00:00 UTC = midnight in New York


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("timestamp >= '2024-01-01 00:00:00'", [JAN1_NY]),
        ("timestamp >= '2024-01-01'", [JAN1_NY]),
        ("timestamp < '2024-01-01 00:00:00'", [JAN1_UTC]),
        ("'2024-01-01 00:00:00' > timestamp", [JAN1_UTC]),
        ("timestamp = '2024-01-01 00:00:00'", [JAN1_NY]),
        ("timestamp = '2024-01-01T00:00:00'", [JAN1_NY]),
        ("timestamp = '2024-01-01 00:00:00Z'", [JAN1_UTC]),
        ("timestamp = '2024-01-01T05:00:00+05:00'", [JAN1_UTC]),
        ("timestamp = '2023-12-31T19:00:00.000000-05:00'", [JAN1_UTC]),
        ("timestamp != '2024-01-01 00:00:00'", [JAN1_UTC]),
        ("timestamp <= '2023-12-31 19:00:00'", [JAN1_UTC]),
        ("timestamp > '2023-12-31 19:00:00'", [JAN1_NY]),
        ("timestamp BETWEEN '2023-12-31 19:00:00' AND '2023-12-31 23:59:59.999999'", [JAN1_UTC]),
        ("timestamp IN ('2024-01-01 00:00:00', '2020-01-01 00:00:00')", [JAN1_NY]),
        ("timestamp >= toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC')", [JAN1_UTC, JAN1_NY]),
        ("timestamp < toDateTime64('2024-01-01 05:00:00.000000', 6, 'UTC')", [JAN1_UTC]),
        ("timestamp = toDateTime('2024-01-01 00:00:00', 'UTC')", [JAN1_UTC]),
        ("timestamp = toDateTime64('2024-01-01 00:00:00.000000', 6)", [JAN1_NY]),
        ("timestamp = toDateTime('2024-01-01 00:00:00')", [JAN1_NY]),
        ("timestamp = toDateTime64('2024-01-01 10:30:00', 6, 'Asia/Kolkata')", [JAN1_NY]),
        ("created_at > '2024-01-01 00:00:00' AND created_at < '2024-01-01 00:00:01.000001'", [JAN1_NY]),
    ],
)
def test_literals_read_in_project_zone(
    con: duckdb.DuckDBPyConnection, condition: str, expected: list[str]
) -> None:
    query = f"SELECT uuid FROM events WHERE event = '$pageview' AND {condition} ORDER BY timestamp"
    assert col(run(con, query, tz=NY)) == expected


def test_bad_datetime_literal_is_a_hogql_error(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(HogQLError, match="DateTime"):
        run(con, "SELECT uuid FROM events WHERE timestamp > 'yesterday'")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=instants, tz=st.sampled_from(ZONES))
def test_wall_clock_literal_finds_its_instant(moment: datetime, tz: str) -> None:
    local = moment.astimezone(ZoneInfo(tz))
    wall = local.replace(tzinfo=None)
    assume(wall.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC) == moment)  # skip the ambiguous repeated hour
    con = _new_con()
    con.execute("INSERT INTO events (team_id, uuid, timestamp) VALUES (1, 'u', ?)", [moment])
    text = wall.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert col(run(con, f"SELECT uuid FROM events WHERE timestamp = '{text}'", tz=tz)) == ["u"]
    utc_text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    hit = f"SELECT uuid FROM events WHERE timestamp = toDateTime64('{utc_text}', 6, 'UTC')"
    assert col(run(con, hit, tz=tz)) == ["u"]
    con.close()


# --- keyset pagination as the connector sends it --------------------------------------------------


def after(created_at_utc: str, tie_expr: str, tie_value: str) -> str:
    """The connector's keyset condition: strictly after (created_at, tie key)."""
    moment = f"toDateTime64('{created_at_utc}', 6, 'UTC')"
    return f"(created_at > {moment} OR (created_at = {moment} AND {tie_expr} > '{tie_value}'))"


def _to_utc_text(rendered: str) -> str:
    return datetime.fromisoformat(rendered).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.fixture(scope="module")
def ties() -> Iterator[duckdb.DuckDBPyConnection]:
    """Events/persons whose cursor columns tie a lot, in a zone whose offset is not whole hours."""
    con = _new_con()
    con.execute(
        """INSERT INTO events SELECT 5, printf('0190%028d', (i * 7919) % 97), 'e', 'd', NULL, '{}', '',
           's', 'w',
           TIMESTAMPTZ '2024-01-10 00:00:00+00' + to_microseconds(i * 1000),
           TIMESTAMPTZ '2024-01-05 10:00:00.123456+00' + to_seconds(i // 10), NULL, NULL
           FROM range(97) t(i)"""
    )
    con.execute(
        """INSERT INTO events VALUES (5, 'outside-window', 'e', 'd', NULL, '{}', '', 's', 'w',
           '2024-02-01 00:00:00+00', '2024-01-05 10:00:00.123456+00', NULL, NULL)"""
    )
    con.execute(
        """INSERT INTO persons SELECT 5, printf('p%03d', (i * 31) % 53), TIMESTAMPTZ '2024-01-01 00:00:00+00'
           + to_seconds(i // 4), '{}', false, i % 11 = 0, 0, NULL FROM range(53) t(i)"""
    )
    con.execute(
        """INSERT INTO person_distinct_ids SELECT 5, 'd' || (i % 40), 'p', false, i FROM range(80) t(i)"""
    )
    yield con
    con.close()


EVENTS_PAGE = (
    "SELECT uuid, event, distinct_id, person_id, properties, elements_chain, `$session_id`, timestamp, "
    "created_at "
    "FROM events WHERE timestamp >= toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC') "
    "AND timestamp < toDateTime64('2024-02-01 00:00:00.000000', 6, 'UTC') "
    "AND created_at < toDateTime64('2024-02-01 00:00:00.000000', 6, 'UTC') {keyset}"
    "ORDER BY created_at ASC, toString(uuid) ASC LIMIT {limit}"
)
PERSONS_PAGE = (
    "SELECT id, created_at, properties, is_identified FROM persons {keyset}"
    "ORDER BY created_at ASC, toString(id) ASC LIMIT {limit}"
)
PDI_PAGE = (
    "SELECT distinct_id, person_id FROM person_distinct_ids {keyset}ORDER BY distinct_id ASC LIMIT {limit}"
)


@pytest.mark.parametrize("page_size", [1, 3, 10, 50_000])
def test_events_keyset_pages_are_exact_with_ties(ties: duckdb.DuckDBPyConnection, page_size: int) -> None:
    seen: list[tuple[str, str]] = []
    keyset = ""
    for _ in range(200):
        result = run(ties, EVENTS_PAGE.format(keyset=keyset, limit=page_size), team=5, tz="America/St_Johns")
        rows = result["results"]
        assert result["hasMore"] is False
        seen.extend((_to_utc_text(r[8]), r[0]) for r in rows)
        if len(rows) < page_size:
            break
        t, u = _to_utc_text(rows[-1][8]), rows[-1][0]
        keyset = f"AND {after(t, 'toString(uuid)', u)} "
    expected = ties.execute(
        """SELECT strftime(created_at, '%Y-%m-%d %H:%M:%S.%f'), uuid FROM events WHERE team_id = 5
           AND timestamp < '2024-02-01 00:00:00+00' ORDER BY created_at, uuid"""
    ).fetchall()
    assert seen == expected and len(seen) == 97


@pytest.mark.parametrize("page_size", [1, 4, 7, 100])
def test_persons_keyset_pages_are_exact_with_ties(ties: duckdb.DuckDBPyConnection, page_size: int) -> None:
    seen: list[str] = []
    keyset = ""
    while True:
        rows = run(ties, PERSONS_PAGE.format(keyset=keyset, limit=page_size), team=5, tz=KOLKATA)["results"]
        seen.extend(r[0] for r in rows)
        if len(rows) < page_size:
            break
        t, i = _to_utc_text(rows[-1][1]), rows[-1][0]
        keyset = f"WHERE {after(t, 'toString(id)', i)} "
    expected = ties.execute(
        "SELECT id FROM persons WHERE team_id = 5 AND NOT is_deleted ORDER BY created_at, id"
    ).fetchall()
    assert seen == [e[0] for e in expected] and len(seen) == 48


@pytest.mark.parametrize("page_size", [1, 6, 100])
def test_person_distinct_ids_keyset_pages(ties: duckdb.DuckDBPyConnection, page_size: int) -> None:
    seen: list[tuple[str, str]] = []
    keyset = ""
    while True:
        rows = run(ties, PDI_PAGE.format(keyset=keyset, limit=page_size), team=5)["results"]
        seen.extend((r[0], r[1]) for r in rows)
        if len(rows) < page_size:
            break
        keyset = f"WHERE distinct_id > '{rows[-1][0]}' "
    assert seen == sorted((f"d{i}", "p") for i in range(40))


# --- unsupported SQL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "SELEC uuid FROM events",
        "SELECT uuid FROM events; SELECT 1",
        "INSERT INTO events (uuid) VALUES ('x')",
        "DELETE FROM events",
        "DROP TABLE events",
        "UPDATE events SET event = 'x'",
        "CREATE TABLE x AS SELECT 1",
        "PRAGMA database_list",
        "ATTACH ':memory:' AS x",
        "COPY events TO 'x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM numbers(10)",
        "SELECT * FROM system.tables",
        "SELECT * FROM main.events",
        "SELECT * FROM raw_sessions",
        "SELECT getenv('HOME')",
        "SELECT read_text('/etc/passwd')",
        "SELECT nope FROM events",
        "SELECT toTimeZone(event, 'UTC') FROM events",
        "SELECT uuid FROM events LIMIT 'ten'",
        "SELECT uuid FROM events LIMIT 1 BY event",
        "SELECT uuid FROM events ARRAY JOIN [1, 2] AS x",
        "SELECT uuid FROM events PREWHERE event = 'x'",
        "SELECT uuid FROM events SETTINGS max_threads = 1",
        "SELECT uuid FROM events FORMAT JSON",
        "WITH events AS (SELECT 1) SELECT * FROM events",
        "SELECT uuid FROM events WHERE timestamp > toDateTime64('2024-13-45 00:00:00', 6, 'UTC')",
        "SELECT toDateTime64('2024-01-01', 6, 'Nowhere/Land')",
        "SELECT toDateTime64(event, 6) FROM events",
        "SELECT uuid FROM events INTERSECT SELECT uuid FROM events",
        "SELECT row_number() OVER () FROM events",
        "SELECT 1 FROM events WHERE (((((",
        "SELECT 'unterminated",
    ],
)
def test_unsupported_sql_raises_hogql_error(con: duckdb.DuckDBPyConnection, query: str) -> None:
    with pytest.raises(HogQLError) as info:
        run(con, query)
    assert str(info.value)


def test_unknown_table_message_is_helpful(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(HogQLError, match="Unknown table `raw_sessions`. Available tables: events, persons"):
        run(con, "SELECT * FROM raw_sessions")


def test_project_zone_must_be_valid(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(HogQLError):
        run(con, "SELECT 1", tz="Not/AZone'; DROP TABLE events; --")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80))
def test_garbage_only_ever_raises_hogql_error(con: duckdb.DuckDBPyConnection, text: str) -> None:
    with contextlib.suppress(HogQLError):
        run(con, text)


TOKENS = [
    "SELECT",
    "FROM",
    "WHERE",
    "events",
    "persons",
    "person_distinct_ids",
    "uuid",
    "timestamp",
    "*",
    ",",
    "(",
    ")",
    "'2024-01-01'",
    "1",
    "=",
    "<",
    "AND",
    "OR",
    "NOT",
    "LIMIT",
    "OFFSET",
    "ORDER BY",
    "GROUP BY",
    "count()",
    "toString(",
    "toDateTime64(",
    "toTimeZone(",
    "'UTC'",
    "IN",
    "AS",
    "x",
    "properties.$browser",
    "`$session_id`",
    "JOIN",
    "ON",
    "UNION ALL",
    "WITH",
    "now()",
    ";",
    "BETWEEN",
    "DESC",
    "50001",
    "''",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=25))
def test_token_soup_only_ever_raises_hogql_error(con: duckdb.DuckDBPyConnection, tokens: list[str]) -> None:
    query = " ".join(tokens)
    try:
        result = run(con, query)
    except HogQLError as e:
        assert str(e)
        return
    assert isinstance(result["results"], list)


# --- performance smoke ----------------------------------------------------------------------------


def test_performance_smoke_50k_page_over_1m_rows() -> None:
    con = _new_con()
    con.execute(
        """INSERT INTO events SELECT 1 + i % 2, uuid()::VARCHAR, 'event_' || (i % 20),
           'distinct_' || (i % 5000),
           uuid()::VARCHAR, '{"$browser": "Chrome", "$current_url": "https://example.com/p/' || i || '"}',
           'a:href="/x"', 'session_' || (i % 1000), 'window_' || (i % 100),
           TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 2678400),
           TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 2678400 + 1000000), NULL, NULL
           FROM range(1000000) t(i)"""
    )
    start = datetime(2024, 1, 3, tzinfo=UTC)
    timings = []
    for page in range(3):
        cursor = (start + timedelta(days=3 * page)).strftime("%Y-%m-%d %H:%M:%S.%f")
        keyset = f"AND {after(cursor, 'toString(uuid)', '')} "
        query = EVENTS_PAGE.format(keyset=keyset, limit=50_000)
        began = time.perf_counter()
        result = execute_hogql(con, 1, NY, query)
        timings.append(time.perf_counter() - began)
        assert len(result["results"]) == 50_000 and len(result["columns"]) == 9
    print(f"\n50k-row page over 1M rows (9 columns): {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
    con.close()
