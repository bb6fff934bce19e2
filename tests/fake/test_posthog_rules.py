"""The fake judges every HogQL query by PostHog's own rules (fake_posthog/rules.py), one test per rule.

Each rule quotes where PostHog states it. Files are PostHog/posthog's, read at the commits recorded in
fake_posthog/posthog_schema.json (`source.files_read`; most at 7e9fa1fe716c7ced0e75fed729ffdd406d8f34c6, a
tree of posthog/hogql/ copied as common/hogql/) and fake_posthog/posthog_functions.json (`source`).
"""

from __future__ import annotations

from typing import Any

import pytest

from fake_posthog import rules
from fake_posthog.rules import PostHogRefusal, judge


def refused(query: str, **kwargs: Any) -> str:
    with pytest.raises(PostHogRefusal) as caught:
        judge(query, **kwargs)
    return str(caught.value)


# -- the parser: hogql-parser, the C++ parser PostHog runs (posthog/hogql/parser.py, json_ast.py) -----------
def test_a_syntax_error_gets_the_parsers_message() -> None:
    message = refused("SELEC uuid FROM events")
    assert "mismatched input 'SELEC'" in message


def test_a_query_posthogs_parser_accepts_passes() -> None:
    judge("SELECT toString(uuid), event FROM events WHERE timestamp >= toDateTime64('2026-01-01 00:00:00.000000', "
          "6, 'UTC') ORDER BY timestamp ASC, toString(uuid) ASC LIMIT 50000")


# -- tables: posthog/hogql/database/database.py `Database.get_table` ----------------------------------------
def test_an_unknown_table_is_refused_with_posthogs_message() -> None:
    assert refused("SELECT 1 FROM evnts") == "Unknown table `evnts`."


def test_a_table_this_posthog_lacks_is_unknown() -> None:
    """An older self-hosted PostHog without `sessions` (the fake's `missing_tables`)."""
    query = "SELECT session_id FROM sessions LIMIT 1"
    judge(query)
    assert refused(query, missing_tables=frozenset({"sessions"})) == "Unknown table `sessions`."


def test_tables_the_connector_reads_exist() -> None:
    for table in ("events", "persons", "raw_persons", "person_distinct_ids", "sessions", "cohort_people",
                  "static_cohort_people", "raw_cohort_people", "groups"):
        judge(f"SELECT * FROM {table} LIMIT 0")


# -- fields: posthog/hogql/resolver.py `Resolver.visit_field`, ast.py `BaseTableType.get_child` --------------
def test_cohort_people_has_no_version() -> None:
    """schema/cohort_people.py: person_id, cohort_id, team_id and the `person` join; versions live in
    raw_cohort_people (what the connector asked before this round, refused by PostHog)."""
    assert refused("SELECT cohort_id, max(version) FROM cohort_people GROUP BY cohort_id") == (
        "Unable to resolve field: version")
    judge("SELECT cohort_id, max(version) FROM raw_cohort_people GROUP BY cohort_id")
    judge("SELECT cohort_id, toString(person_id) FROM cohort_people ORDER BY cohort_id LIMIT 10")


def test_a_field_after_a_table_name_is_looked_up_in_that_table() -> None:
    """schema/persons.py: no `updated_at` on persons (PostHog#41720)."""
    assert refused("SELECT persons.updated_at FROM persons") == "Field not found: updated_at"
    assert refused("SELECT p.updated_at FROM persons AS p") == "Field not found: updated_at"
    judge("SELECT p.created_at FROM persons AS p")


def test_select_aliases_resolve_in_where_order_and_group() -> None:
    judge("SELECT toString(toDate(toTimeZone(timestamp, 'UTC'))) AS day, count() AS n FROM events "
          "GROUP BY day ORDER BY day LIMIT 10")


def test_lazy_joins_and_virtual_tables_lead_on_to_their_fields() -> None:
    """events.person (a lazy join to persons in the default mode), events.pdi, events.poe (virtual)."""
    judge("SELECT person.properties.email, pdi.person_id, poe.properties FROM events LIMIT 1")
    assert refused("SELECT person.nope FROM events") == "Field not found: nope"


def test_a_field_two_joined_tables_have_must_be_qualified() -> None:
    """posthog/hogql/resolver_utils.py `lookup_field_by_name`."""
    assert refused("SELECT created_at FROM events e JOIN persons p ON p.id = e.person_id").startswith(
        "Ambiguous query. Found multiple sources for field: created_at (e.created_at, p.created_at)")
    judge("SELECT e.created_at FROM events e JOIN persons p ON p.id = e.person_id")


def test_json_fields_take_any_key() -> None:
    judge("SELECT properties.$browser, properties.a.b.c FROM events LIMIT 1")


def test_a_plain_field_has_no_properties() -> None:
    assert refused("SELECT event.foo FROM events").startswith('Can not access property "foo" on field "event"')


def test_subqueries_and_in_lists_are_resolved_in_their_own_scope() -> None:
    judge("SELECT toString(id) FROM persons WHERE id IN (SELECT person_id FROM events WHERE created_at >= "
          "toDateTime64('2026-01-01 00:00:00.000000', 6, 'UTC')) LIMIT 5")
    assert refused("SELECT toString(id) FROM persons WHERE id IN (SELECT version FROM cohort_people)") == (
        "Unable to resolve field: version")
    judge("SELECT n FROM (SELECT count() AS n FROM events) AS s")
    assert refused("SELECT m FROM (SELECT count() AS n FROM events) AS s") == "Unable to resolve field: m"


def test_sessions_are_keyed_by_session_id_v7() -> None:
    """schema/sessions_v2.py (what `sessions` is by default, database.py): `session_id` and `session_id_v7`,
    `$is_bounce`, `$channel_type`, `$session_duration`."""
    judge("SELECT toString(session_id), session_id_v7, `$is_bounce`, `$channel_type`, `$session_duration`, "
          "`$start_timestamp` FROM sessions LIMIT 1")
    assert refused("SELECT `$session_end` FROM sessions") == "Unable to resolve field: $session_end"


def test_person_id_resolves_in_every_persons_on_events_mode() -> None:
    """schema/events.py and database.py: `person_id` is the overrides expression by default, `pdi.person_id`
    when the mode is disabled, the stored column with properties on events."""
    for mode in rules.PERSONS_ON_EVENTS_MODES:
        judge("SELECT toString(person_id), person.properties FROM events LIMIT 1", persons_on_events_mode=mode)


# -- functions: posthog/hogql/functions/mapping.py, core.py `validate_function_args`, printer `visit_call` ---
def test_an_unknown_function_is_refused() -> None:
    assert refused("SELECT toStrin(uuid) FROM events").startswith("Unsupported function call 'toStrin(...)'")


def test_argument_counts_are_checked() -> None:
    assert refused("SELECT toString() FROM events").startswith("Function 'toString' expects")
    assert refused("SELECT count(uuid, event, timestamp) FROM events").startswith("Aggregation 'count' expects")


def test_fields_are_resolved_before_functions_are_checked() -> None:
    """The resolver runs before the printer, which is where PostHog refuses unknown functions."""
    assert refused("SELECT nosuch(version) FROM cohort_people") == "Unable to resolve field: version"


def test_the_functions_the_connector_uses_exist() -> None:
    for call in ("toString(uuid)", "toDate(timestamp)", "toTimeZone(timestamp, 'UTC')", "count()", "max(timestamp)",
                 "toDateTime64('2026-01-01 00:00:00.000000', 6, 'UTC')", "min(created_at)"):
        judge(f"SELECT {call} FROM events LIMIT 1")


# -- over HTTP: PostHog's answer is 400 validation_error with the message (posthog/api/query.py) -------------
def test_the_server_answers_a_refusal_like_posthog(fake_server: Any, fake_client: Any) -> None:
    session = fake_client(fake_server)
    query = "SELECT cohort_id, max(version) FROM cohort_people GROUP BY cohort_id"
    response = session.post(f"{fake_server.url}/api/projects/1/query/",
                            json={"query": {"kind": "HogQLQuery", "query": query}})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["detail"] == "Unable to resolve field: version"
