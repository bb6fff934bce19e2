"""Persons change the PostHog way (shared/posthog-api.md §9): through `$set`/`$identify` events with new
versions, deletions at version + 100 without an event; and rows can become queryable after created_at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import requests

from fake_posthog.hogql import execute_hogql
from fake_posthog.server import FakePostHog
from fake_posthog.world import World

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
Client = Callable[..., requests.Session]


def hogql(world: World, query: str, team: int = 1) -> list[list]:
    return execute_hogql(world.cursor(), team, world.timezone(team), query)["results"]


@pytest.fixture
def world() -> World:
    return World.generate(seed=5, events=5000, now=NOW)


def live_distinct_id(world: World, team: int = 1, skip: int = 0) -> tuple[str, str]:
    row = world.truth_distinct_ids(team)[skip]
    return row["distinct_id"], row["person_id"]


def test_set_person_properties_ingests_a_set_event_and_a_new_version(world: World) -> None:
    did, pid = live_distinct_id(world)
    before = next(p for p in world.truth_persons(1) if p["id"] == pid)
    at = NOW + timedelta(minutes=5)
    out = world.set_person_properties(1, did, set={"plan": "enterprise"},
                                      set_once={"first_seen_plan": "free", "email": "ignored@example.com"}, at=at)
    assert out["person_id"] == pid and out["version"] == before["version"] + 1
    event = next(e for e in world.truth_events(1, as_dicts=True) if e["uuid"] == out["uuid"])
    assert event["event"] == "$set" and event["created_at"] == at and event["distinct_id"] == did
    assert event["properties"]["$set"] == {"plan": "enterprise"}
    assert event["properties"]["$set_once"]["first_seen_plan"] == "free"
    after = next(p for p in world.truth_persons(1) if p["id"] == pid)
    assert after["properties"]["plan"] == "enterprise" and after["properties"]["first_seen_plan"] == "free"
    assert after["properties"]["email"] == before["properties"]["email"]  # $set_once never overrides
    versions = hogql(world, f"SELECT version, properties FROM raw_persons WHERE id = '{pid}' ORDER BY version")
    assert versions[-1][0] == out["version"] and orjson.loads(versions[-1][1])["plan"] == "enterprise"
    assert len(versions) >= 2
    shown = hogql(world, f"SELECT properties FROM persons WHERE id = '{pid}'")
    assert orjson.loads(shown[0][0])["plan"] == "enterprise"
    # Nothing changes: an event, but no new version.
    again = world.set_person_properties(1, did, set={"plan": "enterprise"})
    assert again["version"] == out["version"]


def test_update_person_properties_goes_through_an_event(world: World) -> None:
    _, pid = live_distinct_id(world)
    n_before = len(world.truth_events(1))
    version = world.update_person_properties(1, pid, {"vip": True})
    assert len(world.truth_events(1)) == n_before + 1
    assert next(p for p in world.truth_persons(1) if p["id"] == pid)["version"] == version


def test_merge_persons_moves_ids_deletes_the_merged_and_repoints_events(world: World) -> None:
    keep_did, keep_id = live_distinct_id(world)
    merge_row = next(r for r in world.truth_distinct_ids(1) if r["person_id"] != keep_id)
    merge_did, merge_id = merge_row["distinct_id"], merge_row["person_id"]
    merged_ids = [r["distinct_id"] for r in world.truth_distinct_ids(1) if r["person_id"] == merge_id]
    old_versions = {r["distinct_id"]: r["version"] for r in world.truth_distinct_ids(1)}
    merge_version = next(p for p in world.truth_persons(1) if p["id"] == merge_id)["version"]
    old_events = [e["uuid"] for e in world.truth_events(1, as_dicts=True) if e["person_id"] == merge_id]
    out = world.merge_persons(1, keep_did, merge_did)
    assert out["person_id"] == keep_id and out["merged_person_id"] == merge_id
    identify = next(e for e in world.truth_events(1, as_dicts=True) if e["uuid"] == out["uuid"])
    assert identify["event"] == "$identify" and identify["properties"]["$anon_distinct_id"] == merge_did
    now_ids = {r["distinct_id"]: r for r in world.truth_distinct_ids(1)}
    for did in merged_ids:
        assert now_ids[did]["person_id"] == keep_id and now_ids[did]["version"] == old_versions[did] + 1
    assert merge_id not in {p["id"] for p in world.truth_persons(1)}
    raw = hogql(world, f"SELECT version, is_deleted FROM raw_persons WHERE id = '{merge_id}' ORDER BY version")
    assert raw[-1] == [merge_version + 100, 1]
    assert hogql(world, f"SELECT count() FROM persons WHERE id = '{merge_id}'") == [[0]]
    pdi = dict(hogql(world, "SELECT distinct_id, person_id FROM person_distinct_ids LIMIT 50000"))
    assert all(pdi[d] == keep_id for d in merged_ids)
    if old_events:
        row = hogql(world, f"SELECT person_id, event_person_id FROM events WHERE uuid = '{old_events[0]}'")
        assert row == [[keep_id, merge_id]]
    kept = next(p for p in world.truth_persons(1) if p["id"] == keep_id)
    assert kept["is_identified"] and kept["version"] == out["version"]


def test_delete_person_writes_version_plus_100_and_no_event(world: World) -> None:
    did, pid = live_distinct_id(world)
    version = next(p for p in world.truth_persons(1) if p["id"] == pid)["version"]
    n_events = len(world.truth_events(1))
    world.delete_person(1, pid)
    assert len(world.truth_events(1)) == n_events
    assert pid not in {p["id"] for p in world.truth_persons(1)}
    assert did not in {r["distinct_id"] for r in world.truth_distinct_ids(1)}
    raw = hogql(world, f"SELECT version, is_deleted FROM raw_persons WHERE id = '{pid}' ORDER BY version")
    assert raw[-1] == [version + 100, 1]


def test_generated_deleted_persons_follow_the_rule(world: World) -> None:
    deleted = [p for p in world.truth_persons(1, include_deleted=True) if p["is_deleted"]]
    assert deleted and all(p["version"] >= 100 for p in deleted)
    multi = hogql(world, "SELECT count() FROM (SELECT id FROM raw_persons GROUP BY id HAVING count() > 1)")
    assert multi[0][0] > 0


def test_hidden_events_become_visible_later(world: World) -> None:
    count = hogql(world, "SELECT count() FROM events")[0][0]
    truth = len(world.truth_events(1))
    hidden = world.add_events(1, 30, hidden=True)
    assert hogql(world, "SELECT count() FROM events")[0][0] == count and len(world.truth_events(1)) == truth
    assert len(world.truth_events(1, include_hidden=True)) == truth + 30
    assert world.reveal_events(hidden[:10]) == 10
    assert hogql(world, "SELECT count() FROM events")[0][0] == count + 10
    assert world.reveal_all() == 20
    assert {e["uuid"] for e in world.truth_events(1, as_dicts=True)} >= set(hidden)


def test_mutations_over_http(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(seed=6, events=3000)
    world = server.world
    did, pid = live_distinct_id(world)

    def mutate(op: str, **args: object) -> object:
        response = requests.post(server.url + "/_fake/mutate", json={"op": op, "args": args}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    out = mutate("set_person_properties", team_id=1, distinct_id=did, set={"plan": "team"},
                 at="2026-03-15T12:30:00Z")
    assert out["person_id"] == pid
    other = next(r for r in world.truth_distinct_ids(1) if r["person_id"] != pid)
    assert mutate("merge_persons", team_id=1, keep_distinct_id=did,
                  merge_distinct_id=other["distinct_id"])["merged_person_id"] == other["person_id"]
    hidden = mutate("add_events", team_id=1, n=5, hidden=True)
    assert mutate("reveal_events", uuids=hidden) == 5
    body = {"query": {"kind": "HogQLQuery", "query": f"SELECT count() FROM events WHERE uuid IN {tuple(hidden)}"}}
    answer = fake_client(server).post(server.url + "/api/projects/1/query/", json=body).json()
    assert answer["results"] == [[5]]
