"""Every HogQL table read the way real PostHog answers: the answer's `types` decide each conversion.

Recorded real answers (estuary/connectors source-posthog snapshots, captured from PostHog Cloud in 2026)
show `"is_identified": 0` with type `Int8`, and instants such as `2026-03-06T14:24:34.632000Z`; REST answers
drop a zero fraction (`"2025-02-01T00:00:00Z"`). Whatever form a value takes, the table must be the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_source import hogql
from posthog_source.errors import PostHogSourceError
from posthog_source.hogql import Kind, clickhouse_base_type, rows_to_arrow
from posthog_source.projects import Project
from tests.unit.pages import parse_page

UTC_PROJECT = Project(1, "web", "UTC", None)
NY_PROJECT = Project(2, "mobile", "America/New_York", None)

PERSON_ID = "0190f3a2-5c1e-7000-8000-000000000001"
CREATED = datetime(2026, 3, 6, 14, 24, 34, 632000, tzinfo=UTC)
WHOLE_SECOND = datetime(2025, 2, 1, 0, 0, 0, tzinfo=UTC)

# The same two persons, in every form PostHog has been seen to answer.
INSTANT_FORMS = [
    ("2026-03-06T14:24:34.632000Z", "2025-02-01T00:00:00Z"),  # recorded: UTC project, fraction / none
    ("2026-03-06T14:24:34.632Z", "2025-02-01T00:00:00.000000Z"),
    ("2026-03-06T09:24:34.632000-05:00", "2025-01-31T19:00:00-05:00"),  # a New York project
    ("2026-03-06T19:54:34.632+05:30", "2025-02-01T05:30:00+05:30"),
]
BOOLEAN_FORMS = [((1, 0), "Int8"), ((True, False), "Bool"), (("true", "false"), "String"), ((1, 0), "UInt8"),
                 ((1, 0), "Nullable(Int8)")]


def person_answer(instants: tuple[str, str], booleans: tuple[object, object], bool_type: str) -> dict:
    return {
        "results": [[PERSON_ID, instants[0], '{"email": "ada@example.com"}', booleans[0]],
                    ["0190f3a2-5c1e-7000-8000-000000000002", instants[1], "{}", booleans[1]]],
        "types": [["toString(id)", "String"], ["created_at", "DateTime64(6, 'UTC')"],
                  ["properties", "String"], ["is_identified", bool_type]],
        "columns": ["toString(id)", "created_at", "properties", "is_identified"],
        "hasMore": False, "limit": 100,
    }


@pytest.mark.parametrize("instants", INSTANT_FORMS)
@pytest.mark.parametrize(("booleans", "bool_type"), BOOLEAN_FORMS)
def test_persons_are_the_same_table_whatever_form_the_values_take(instants, booleans, bool_type):
    page = parse_page(orjson.dumps(person_answer(instants, booleans, bool_type)), hogql.PERSONS_BY_ID,
                      UTC_PROJECT, 100)
    assert page.table is not None
    assert page.table.column("created_at").to_pylist() == [CREATED, WHOLE_SECOND]
    assert page.table.column("is_identified").to_pylist() == [True, False]
    assert page.table.column("id").to_pylist()[0] == PERSON_ID
    assert page.table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")


def test_recorded_int8_boolean_no_longer_breaks_the_page():
    """The answer that made `run` stop with `ArrowInvalid: Could not convert 1 with type int`."""
    recorded = {"results": [[PERSON_ID, "2026-03-06T14:24:34.632000Z", "{}", 0]],
                "types": [["id", "UUID"], ["created_at", "DateTime64(6, 'UTC')"], ["properties", "String"],
                          ["is_identified", "Int8"]]}
    table = rows_to_arrow(recorded["results"], hogql.PERSONS, UTC_PROJECT, recorded["types"])
    assert table.column("is_identified").to_pylist() == [False]


def test_a_type_we_cannot_read_names_the_table_and_column():
    rows = [[PERSON_ID, "yesterday-ish", "{}", 1]]
    types = [["id", "UUID"], ["created_at", "Array(String)"], ["properties", "String"], ["is_identified", "Int8"]]
    with pytest.raises(PostHogSourceError) as caught:
        rows_to_arrow(rows, hogql.PERSONS, UTC_PROJECT, types)
    message = str(caught.value)
    assert "persons.created_at" in message and "Array(String)" in message and "instant" in message


def test_a_boolean_column_with_text_that_is_no_boolean_is_a_clear_error():
    rows = [[PERSON_ID, "2026-03-06T14:24:34Z", "{}", "maybe"]]
    with pytest.raises(PostHogSourceError, match=r"persons\.is_identified"):
        rows_to_arrow(rows, hogql.PERSONS, UTC_PROJECT, None)


def test_a_missing_column_is_a_clear_error_not_a_zip_traceback():
    with pytest.raises(PostHogSourceError, match="columns"):
        rows_to_arrow([[PERSON_ID, "2026-03-06T14:24:34Z", "{}"]], hogql.PERSONS, UTC_PROJECT, None)


def test_wall_clock_instants_are_read_in_the_project_zone():
    rows = [[PERSON_ID, "2026-03-06 09:24:34.632", "{}", 1]]
    table = rows_to_arrow(rows, hogql.PERSONS, NY_PROJECT, [["", "String"], ["", "DateTime64(6)"], ["", "String"],
                                                           ["", "Int8"]])
    assert table.column("created_at").to_pylist() == [CREATED]


@pytest.mark.parametrize(("given_type", "base"), [
    ("Nullable(DateTime64(6, 'America/New_York'))", "DateTime64(6, 'America/New_York')"),
    ("LowCardinality(Nullable(String))", "String"), ("Int8", "Int8"), (None, ""),
])
def test_clickhouse_wrappers_are_looked_through(given_type, base):
    assert clickhouse_base_type(given_type) == base


@settings(deadline=None, max_examples=60, derandomize=True)
@given(values=st.lists(st.one_of(st.none(), st.integers(0, 1), st.booleans(),
                                 st.sampled_from(["true", "false", "0", "1"])), min_size=1, max_size=30))
def test_any_mix_of_boolean_forms_converts_to_the_same_booleans(values):
    expected = [None if v is None else v in (1, True, "true", "1") for v in values]
    assert hogql.convert_column(values, Kind.BOOL, "Int8", "UTC").to_pylist() == expected


@settings(deadline=None, max_examples=40, derandomize=True)
@given(micros=st.integers(0, 999_999), zone=st.sampled_from(["Z", "+00:00", "-05:00", "+05:30"]),
       drop_zero=st.booleans())
def test_instants_with_any_offset_and_fraction_are_one_instant(micros, zone, drop_zero):
    base = datetime(2026, 3, 6, 14, 24, 34, micros, tzinfo=UTC)
    offset = {"Z": timedelta(0), "+00:00": timedelta(0), "-05:00": timedelta(hours=-5),
              "+05:30": timedelta(hours=5, minutes=30)}[zone]
    local = base.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if not (drop_zero and micros == 0):
        text += f".{micros:06d}"
    text += zone
    assert hogql.convert_column([text], Kind.INSTANT, "DateTime64(6, 'UTC')", "UTC").to_pylist() == [base]


# -- every HogQL table, in both value forms PostHog uses ----------------------------------------------
ALL_HOGQL_TABLES = [hogql.EVENTS_BY_CREATED_AT, hogql.PERSONS, hogql.PERSON_DISTINCT_IDS, hogql.SESSIONS,
                    hogql.COHORT_PEOPLE, hogql.STATIC_COHORT_PEOPLE, hogql.DELETED_PERSONS]
FORMS = {  # kind -> (ClickHouse type, first form, second form) for two rows
    Kind.INSTANT: ("DateTime64(6, 'UTC')", ["2026-03-06T14:24:34.632000Z", "2025-02-01T00:00:00Z"],
                   ["2026-03-06T09:24:34.632-05:00", "2025-02-01T05:30:00+05:30"]),
    Kind.BOOL: ("Int8", [1, 0], [True, False]),
    Kind.INT: ("UInt64", [42, 7], ["42", "7"]),
    Kind.STRING: ("String", [PERSON_ID, "a"], [PERSON_ID, "a"]),
    # a JSON string as PostHog sends properties, or an object some versions parse first: the same text
    Kind.JSON: ("String", ['{"a":1}', "{}"], [{"a": 1}, {}]),
}


@pytest.mark.parametrize("table", ALL_HOGQL_TABLES, ids=lambda t: t.table)
def test_every_hogql_table_is_the_same_whatever_form_its_values_take(table):
    types = [[c.expression, FORMS[c.kind][0]] for c in table.columns]
    first = [list(row) for row in zip(*[FORMS[c.kind][1] for c in table.columns], strict=True)]
    second = [list(row) for row in zip(*[FORMS[c.kind][2] for c in table.columns], strict=True)]
    one = rows_to_arrow(first, table, UTC_PROJECT, types)
    other = rows_to_arrow(second, table, UTC_PROJECT, [[name, "String"] for name, _ in types])
    assert one.equals(other), table.table
    assert one.schema == table.schema
