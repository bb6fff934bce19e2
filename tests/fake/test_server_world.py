"""Generated data, test-only mutations, ground truth, the admin routes and `python -m fake_posthog`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from fake_posthog.server import FakePostHog
from fake_posthog.world import MUTATIONS, World

Client = Callable[..., requests.Session]
ROOT = Path(__file__).resolve().parents[2]


def test_projects_organisations_and_zones(fake_world: World) -> None:
    orgs = {p["organization"] for p in fake_world.projects}
    assert len(fake_world.organizations) == 2 and len(orgs) == 2 and len(fake_world.projects) >= 4
    zones = {p["timezone"] for p in fake_world.projects}
    assert "UTC" in zones and zones & {"America/New_York", "America/Los_Angeles"}
    assert zones & {"Europe/Berlin", "Asia/Kolkata"}


def test_event_split_and_empty_project(fake_world: World) -> None:
    counts = fake_world.stats()["events"]
    assert sum(counts.values()) >= 120_000 and counts["4"] == 0
    assert counts["1"] > counts["2"] > counts["3"] > 0
    assert fake_world.stats()["persons"]["4"] == 0


def test_generation_is_deterministic() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    a, b = (World.generate(seed=3, events=5000, now=now) for _ in range(2))
    assert a.truth_events(1).equals(b.truth_events(1))
    assert a.visible_objects("feature_flags", 1) == b.visible_objects("feature_flags", 1)
    assert a.keys == b.keys
    assert World.generate(seed=4, events=5000, now=now).keys != a.keys


def test_tie_block_straddles_row_50000_and_a_page_boundary(fake_world: World) -> None:
    events = fake_world.truth_events(1).to_pylist()  # ordered by (created_at, uuid)
    assert len(events) > 50_000
    (instant, n), = Counter(e["timestamp"] for e in events).most_common(1)
    assert n >= 150
    rows = [i for i, e in enumerate(events) if e["timestamp"] == instant and e["created_at"] == instant]
    assert len(rows) == n and rows[0] < 50_000 <= rows[-1]
    by_time = sorted(events, key=lambda e: (e["timestamp"], e["uuid"]))
    positions = [i for i, e in enumerate(by_time) if e["timestamp"] == instant]
    assert positions[0] // 1000 != positions[-1] // 1000


def test_event_shapes(fake_world: World) -> None:
    events = fake_world.truth_events(1, as_dicts=True)
    assert isinstance(events, list)
    late = [e for e in events if e["created_at"] - e["timestamp"] > timedelta(days=1)]
    assert 0.005 < len(late) / len(events) < 0.05
    assert sum(e["created_at"] >= e["timestamp"] for e in events) / len(events) > 0.99
    assert any("Plan" in e["properties"] and "plan" in e["properties"] for e in events)
    assert any(any(ord(c) > 0x3000 for c in str(e["properties"].get("title", ""))) for e in events)
    assert any(isinstance(e["properties"].get("nested"), dict) for e in events)
    assert any(isinstance(e["properties"].get("tags"), list) for e in events)
    flags = [e for e in events if e["event"] == "$feature_flag_called"]
    assert flags and all({"$feature_flag", "$feature_flag_response"} <= e["properties"].keys() for e in flags)
    names = {e["event"] for e in events}
    assert {"$pageview", "$autocapture", "signed_up"} <= names
    assert all("$current_url" in e["properties"] and "$browser" in e["properties"] for e in events[:100])
    assert sum(e["session_id"] is not None for e in events) / len(events) > 0.9
    assert any(e["elements_chain"] for e in events)
    assert any(e["timestamp"].microsecond % 1000 for e in events[:10])
    span = max(e["created_at"] for e in events) - min(e["created_at"] for e in events)
    assert timedelta(days=80) < span <= timedelta(days=91)


def test_persons_and_distinct_ids(fake_world: World) -> None:
    persons = {p["id"] for p in fake_world.truth_persons(1)}
    everyone = fake_world.truth_persons(1, include_deleted=True)
    assert len(everyone) > len(persons)  # some are deleted
    dids = fake_world.truth_distinct_ids(1)
    per_person = Counter(d["person_id"] for d in dids)
    assert max(per_person.values()) >= 2 and set(per_person) == persons
    event_people = set(fake_world.truth_events(1).column("person_id").to_pylist())
    assert event_people <= {p["id"] for p in everyone}


def test_one_million_events(capsys: object) -> None:
    started = time.monotonic()
    world = World.generate(seed=1, events=1_000_000, now=datetime(2026, 1, 1, tzinfo=UTC))
    elapsed = time.monotonic() - started
    assert sum(world.stats()["events"].values()) >= 1_000_000
    print(f"1M events generated in {elapsed:.1f} s")  # informative only


def test_mutations_reach_truth_and_api(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=10_000)
    world, session = server.world, fake_client(server)
    base = len(world.truth_events(1))
    ingested = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)
    new = world.add_events(1, 5, created_at=ingested)
    late = world.add_events(1, 3, created_at=ingested, late_by=timedelta(days=3))
    ties = world.add_events(1, 4, created_at=ingested + timedelta(minutes=1), tie=True)
    truth = {e["uuid"]: e for e in world.truth_events(1).to_pylist()}
    assert len(truth) == base + 12 and set(new + late + ties) <= set(truth)
    assert all(truth[u]["created_at"] - truth[u]["timestamp"] == timedelta(days=3) for u in late)
    assert len({truth[u]["timestamp"] for u in ties}) == 1
    page = session.get(server.url + "/api/projects/1/events/", params={
        "after": (ingested - timedelta(days=4)).isoformat(), "before": (ingested + timedelta(hours=1)).isoformat(),
        "orderBy": '["timestamp"]', "limit": 1000}).json()
    assert set(late) <= {e["id"] for e in page["results"]}

    [person] = world.add_persons(1, 1)
    first = session.get(server.url + "/api/projects/1/persons/?limit=1").json()["results"][0]
    assert first["uuid"] == person
    version = next(p for p in world.truth_persons(1) if p["id"] == person)["version"]
    assert world.update_person_properties(1, person, {"plan": "enterprise"}) == version + 1
    assert next(p for p in world.truth_persons(1) if p["id"] == person)["properties"]["plan"] == "enterprise"
    world.delete_person(1, person)
    assert person not in {p["id"] for p in world.truth_persons(1)}
    assert person not in {d["person_id"] for d in world.truth_distinct_ids(1)}

    flag = world.visible_objects("feature_flags", 1)[0]
    world.edit_object("feature_flags", 1, flag["id"], name="renamed")
    got = session.get(f"{server.url}/api/projects/1/feature_flags/{flag['id']}/").json()
    assert got["name"] == "renamed" and got["updated_at"] > flag["updated_at"]
    world.delete_object("feature_flags", 1, flag["id"])
    assert flag["id"] not in {f["id"] for f in world.visible_objects("feature_flags", 1)}
    added = world.add_object("cohorts", 4, name="first cohort of the empty project")
    listed = session.get(server.url + "/api/projects/4/cohorts/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == added["id"]


def test_admin_routes(make_fake_server: Callable[..., FakePostHog]) -> None:
    server = make_fake_server(events=5000)
    stats = requests.get(server.url + "/_fake/stats").json()
    assert stats["tables"]["events"]["4"] == 0 and stats["tables"]["cohorts"]["1"] == 230
    r = requests.post(server.url + "/_fake/mutate", json={"op": "add_events", "args": {
        "team_id": 4, "n": 7, "created_at": "2026-03-15T12:30:00Z"}})
    assert r.status_code == 200 and len(r.json()["result"]) == 7
    r = requests.post(server.url + "/_fake/mutate", json={"op": "delete_object", "args": {
        "kind": "cohorts", "team_id": 1, "id": server.world.visible_objects("cohorts", 1)[0]["id"]}})
    assert r.status_code == 200
    after = requests.get(server.url + "/_fake/stats").json()["tables"]
    assert after["events"]["4"] == 7 and after["cohorts"]["1"] == 229
    bad = requests.post(server.url + "/_fake/mutate", json={"op": "drop_database", "args": {}})
    assert bad.status_code == 400
    assert {"set_person_properties", "merge_persons", "delete_person", "recalculate_cohort", "reveal_events",
            "reveal_all", "add_events"} <= set(MUTATIONS)


def test_main_prints_url_and_keys_then_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fake_posthog", "--events", "2000", "--seed", "5",
                             "--fat-share", "0.05", "--property-padding", "200"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert {"full", "limited", "scoped", "no_query", "project_token"} <= set(info["keys"])
        r = requests.get(info["url"] + "/api/projects/", headers={"Authorization": f"Bearer {info['keys']['full']}"})
        assert r.status_code == 200 and r.json()["count"] == 2
        body = {"query": {"kind": "HogQLQuery", "query":
                          "SELECT count() FROM events WHERE event IN ('$exception', '$ai_generation')"}}
        fat = requests.post(info["url"] + "/api/projects/1/query/", json=body,
                            headers={"Authorization": f"Bearer {info['keys']['full']}"}).json()
        assert fat["results"][0][0] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
