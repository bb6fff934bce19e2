"""The fake answers like the recorded real PostHog answers (shared/posthog-api.md §10).

Recordings: estuary/connectors source-posthog/tests/snapshots (PostHog Cloud, 2026) and airbytehq/airbyte
source-posthog integration_tests/expected_records.jsonl (2022). Each test quotes the recorded value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import requests

from fake_posthog.hogql import execute_hogql
from fake_posthog.server import FakePostHog
from fake_posthog.world import World, iso_z

Client = Callable[..., requests.Session]


def hogql(world: World, query: str, team: int = 1) -> dict:
    return execute_hogql(world.cursor(), team, world.timezone(team), query)


def test_persons_star_is_the_recorded_column_set_with_int8_booleans(fake_world: World) -> None:
    # Recorded persons row: "is_identified": 0, "last_seen_at": ..., "$virt_initial_channel_type": "Unknown",
    # "$virt_initial_referring_domain_type": null, and no team_id.
    result = hogql(fake_world, "SELECT * FROM persons ORDER BY created_at, id LIMIT 500")
    assert result["columns"] == ["id", "created_at", "properties", "is_identified", "last_seen_at",
                                 "$virt_initial_referring_domain_type", "$virt_initial_channel_type"]
    types = dict(result["types"])
    assert types["is_identified"] == "Int8" and types["id"] == "UUID"
    assert types["created_at"] == "DateTime64(3, 'UTC')" and types["last_seen_at"] == "Nullable(DateTime64(3, 'UTC'))"
    rows = [dict(zip(result["columns"], r, strict=True)) for r in result["results"]]
    assert {r["is_identified"] for r in rows} == {0, 1} and all(type(r["is_identified"]) is int for r in rows)
    assert {"Unknown", "Direct"} <= {r["$virt_initial_channel_type"] for r in rows}
    assert None in {r["$virt_initial_referring_domain_type"] for r in rows}
    assert any(r["last_seen_at"] is not None for r in rows)
    assert all(isinstance(r["properties"], str) for r in rows)  # JSON text, as recorded


def test_raw_persons_is_deleted_is_int8_and_counts_are_uint64(fake_world: World) -> None:
    result = hogql(fake_world, "SELECT is_deleted, count() FROM raw_persons GROUP BY is_deleted ORDER BY is_deleted")
    assert result["types"] == [["is_deleted", "Int8"], ["count()", "UInt64"]]
    assert [row[0] for row in result["results"]] == [0, 1]


def test_hogql_instants_read_like_the_recording(fake_world: World) -> None:
    # Recorded: "timestamp": "2026-03-06T14:24:34.632000Z" in a UTC project.
    stamps = [r[0] for r in hogql(fake_world, "SELECT timestamp FROM events ORDER BY created_at LIMIT 200")["results"]]
    assert all(s.endswith("Z") and "+00:00" not in s for s in stamps)
    assert all(len(s) == 27 and s[19] == "." for s in stamps if not s.endswith(":00Z") or "." in s)
    ny = hogql(fake_world, "SELECT timestamp FROM events ORDER BY created_at LIMIT 50", team=2)["results"]
    assert all(r[0][-6:] in ("-05:00", "-04:00") for r in ny)


def test_rest_instants_drop_a_zero_fraction() -> None:
    # Recorded: "date_marker": "2025-02-01T00:00:00Z" and "created_at": "2021-06-02T10:56:33.222435Z".
    assert iso_z(datetime(2025, 2, 1, tzinfo=UTC)) == "2025-02-01T00:00:00Z"
    assert iso_z(datetime(2021, 6, 2, 10, 56, 33, 222435, tzinfo=UTC)) == "2021-06-02T10:56:33.222435Z"


def test_rest_lists_mix_instants_with_and_without_fraction(fake_server_shared: FakePostHog,
                                                           fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    rows = session.get(fake_server_shared.url + "/api/projects/1/annotations/").json()["results"]
    markers = [r["date_marker"] for r in rows]
    assert any("." not in m for m in markers) and any("." in m for m in markers)
    for m in markers:
        datetime.fromisoformat(m.replace("Z", "+00:00"))
    # Recorded: "hidden_in_user_interface": null beside false elsewhere: null fields must be tolerated.
    assert {r["hidden_in_user_interface"] for r in rows} == {None, False}


def test_lists_carry_fields_the_connector_never_heard_of(fake_server_shared: FakePostHog,
                                                         fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    flags = session.get(fake_server_shared.url + "/api/projects/1/feature_flags/").json()["results"]
    # Recorded flag fields: "bucketing_identifier": "distinct_id", "analytics_dashboards": [], "can_edit": true
    assert all(f["bucketing_identifier"] == "distinct_id" and f["analytics_dashboards"] == [] for f in flags)
    assert None in {f["last_called_at"] for f in flags}
    cohorts = session.get(fake_server_shared.url + "/api/projects/1/cohorts/").json()["results"]
    # Recorded cohort: "cohort_type": null, "condition_type": null, "pending_version": ..., "version": ...
    assert None in {c["cohort_type"] for c in cohorts} and all("pending_version" in c for c in cohorts)


def test_project_lists_use_the_short_form(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    # Recorded /api/projects/ row: id, uuid, organization, api_token, name, timezone,
    # "has_completed_onboarding_for": {"product_analytics": true}, ... and no created_at.
    session = fake_client(fake_server_shared)
    world = fake_server_shared.world
    listed = session.get(fake_server_shared.url + "/api/projects/").json()["results"]
    org_id = world.organizations[1]["id"]
    other = session.get(f"{fake_server_shared.url}/api/organizations/{org_id}/projects/").json()["results"]
    for row in listed + other:
        assert "created_at" not in row
        assert {"id", "uuid", "organization", "api_token", "name", "timezone",
                "has_completed_onboarding_for"} <= set(row)
    assert listed[0]["has_completed_onboarding_for"] == {"product_analytics": True}
    assert "created_at" in session.get(fake_server_shared.url + "/api/projects/1/").json()


def test_late_events_of_any_age(fake_world: World) -> None:
    events = fake_world.truth_events(1).select(["timestamp", "created_at"]).to_pylist()
    lateness = [e["created_at"] - e["timestamp"] for e in events]
    assert sum(d > timedelta(days=30) for d in lateness) >= 50
    assert max(lateness) > timedelta(days=60) and max(lateness) < timedelta(days=90)
    history_start = fake_world.now - timedelta(days=90)
    assert min(e["timestamp"] for e in events) >= history_start - timedelta(days=7)


def test_fat_events_and_padding() -> None:
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    fat = World.generate(seed=3, events=4000, now=now, fat_share=0.05)
    rows = fat.cursor().execute("""SELECT event, properties FROM events
                                   WHERE event IN ('$exception', '$ai_generation')""").fetchall()
    assert {r[0] for r in rows} == {"$exception", "$ai_generation"} and 100 <= len(rows) <= 300
    sizes = [len(r[1].encode()) for r in rows]
    assert min(sizes) >= 10_000 and max(sizes) <= 60_000
    parsed = [orjson.loads(r[1]) for r in rows]
    assert any("$exception_list" in p for p in parsed) and any("$ai_input" in p for p in parsed)
    padded = World.generate(seed=3, events=4000, now=now, property_padding=1000)
    avg = padded.cursor().execute("SELECT avg(strlen(properties)) FROM events").fetchone()[0]
    assert avg >= 1000
    plain = World.generate(seed=3, events=4000, now=now)
    assert plain.cursor().execute("SELECT count(*) FROM events WHERE event = '$exception'").fetchone()[0] == 0
