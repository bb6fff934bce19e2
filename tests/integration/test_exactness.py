"""Against the stricter fake: late events of any age, ingestion delays, persons changed the PostHog way,
sessions and cohort membership. Every check compares with the fake's ground truth over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.helpers import read_rows, run_pipeline
from tests.integration.test_events import HOGQL_TABLES, assert_events_exact, assert_persons_exact


class LaterClock:
    """The pipeline's clock (`RunOptions.clock`), `shift(days)` later than the real one: a run on a later day,
    without waiting."""

    def __init__(self) -> None:
        self.days = 0.0

    def shift(self, days: float) -> None:
        self.days = days

    def __call__(self) -> pendulum.DateTime:
        return pendulum.now("UTC").add(seconds=int(self.days * 86_400))


@pytest.fixture
def clock() -> LaterClock:
    return LaterClock()


def loaded_uuids(workdir: Path) -> set[str]:
    return {r["uuid"] for r in read_rows(workdir, "events")}


@pytest.mark.parametrize("late_sweep", ["0", "1d"])
def test_late_events_of_any_age_are_loaded(make_fake_server, tmp_path, clock, late_sweep):
    """1 h and 3 d late: the bounded re-read; 20 d and 60 d late: the sweep (every run with 0, on the next
    day's run with the default 1d). Nothing is read twice into the table."""
    server = make_fake_server(seed=21, events=6_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=["events"], late_sweep=late_sweep, clock=clock)
    late = {age: world.add_events(1, 25, late_by=timedelta(days=age)) for age in (1 / 24, 3, 20, 60)}
    late[45] = world.add_events(2, 10, late_by=timedelta(days=45))  # a project in New York time
    run_pipeline(server, tmp_path, resources=["events"], late_sweep=late_sweep, clock=clock)
    loaded = loaded_uuids(tmp_path)
    recent = set(late[1 / 24]) | set(late[3])
    assert recent <= loaded
    if late_sweep == "1d":  # the sweep is not due yet: the very late ones wait for it
        assert not (set(late[20]) | set(late[60])) & loaded
        clock.shift(1.01)
        run_pipeline(server, tmp_path, resources=["events"], late_sweep=late_sweep, clock=clock)
    assert_events_exact(world, tmp_path)


def test_an_event_that_became_visible_after_a_run_is_loaded_by_the_next(make_fake_server, tmp_path):
    """Its `created_at` lies before the first run's horizon, but it was not queryable then: the next run's
    ingestion overlap (1 h by default) reads it."""
    server = make_fake_server(seed=22, events=4_000)
    world = server.world
    delayed = world.add_events(1, 30, created_at=datetime.now(UTC) - timedelta(minutes=20), hidden=True)
    run_pipeline(server, tmp_path, resources=["events"])
    assert not set(delayed) & loaded_uuids(tmp_path)
    world.reveal_events(delayed)
    run_pipeline(server, tmp_path, resources=["events"])
    assert set(delayed) <= loaded_uuids(tmp_path)
    assert_events_exact(world, tmp_path)


def test_an_overlap_of_zero_misses_it_which_is_what_the_setting_is_for(make_fake_server, tmp_path):
    server = make_fake_server(seed=22, events=4_000)
    world = server.world
    delayed = world.add_events(1, 30, created_at=datetime.now(UTC) - timedelta(minutes=20), hidden=True)
    run_pipeline(server, tmp_path, resources=["events"], ingestion_overlap="0")
    world.reveal_events(delayed)
    run_pipeline(server, tmp_path, resources=["events"], ingestion_overlap="0")
    assert not set(delayed) & loaded_uuids(tmp_path)


def some_distinct_ids(world: Any, team_id: int, n: int) -> list[str]:
    rows = world.truth_distinct_ids(team_id)
    by_person: dict[str, str] = {}
    for row in rows:
        by_person.setdefault(row["person_id"], row["distinct_id"])
    return list(by_person.values())[:n]


def assert_persons_exact_current(world: Any, workdir: Path) -> None:
    """persons and person_distinct_ids equal the truth; events equal it with `person_id` read through
    the distinct-id map (an event keeps the person it had when it was loaded; a merge re-points PostHog's
    view of old events, which the distinct-id map follows)."""
    assert_persons_exact(world, workdir)
    mapping = {(r["project_id"], r["distinct_id"]): r["person_id"] for r in read_rows(workdir, "person_distinct_ids")}
    for project in world.projects:
        for event in world.truth_events(project["id"], as_dicts=True):
            key = (project["id"], event["distinct_id"])
            if key in mapping:  # events of deleted persons keep a distinct id nobody has any more
                assert mapping[key] == event["person_id"]


@pytest.mark.parametrize("late_sweep", ["0", "1d"])
def test_persons_changed_by_set_and_merged_by_identify_carry_posthogs_values(make_fake_server, tmp_path,
                                                                             clock, late_sweep):
    server = make_fake_server(seed=23, events=8_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, late_sweep=late_sweep, clock=clock)
    first, second, third, fourth = some_distinct_ids(world, 1, 4)
    world.set_person_properties(1, first, set={"plan": "enterprise", "ünïcode": "✓"}, set_once={"first_seen": "x"})
    merged = world.merge_persons(1, second, third)
    ny = some_distinct_ids(world, 2, 1)[0]
    world.set_person_properties(2, ny, set={"plan": "team"})
    world.add_persons(2, 7)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, late_sweep=late_sweep, clock=clock)
    persons = {r["id"]: r for r in read_rows(tmp_path, "persons") if r["project_id"] == 1}
    changed = next(p for p in world.truth_persons(1) if p["properties"].get("plan") == "enterprise")
    assert json.loads(persons[changed["id"]]["properties"]) == changed["properties"]
    assert json.loads(persons[merged["person_id"]]["properties"]) == next(
        p["properties"] for p in world.truth_persons(1) if p["id"] == merged["person_id"])
    if late_sweep == "1d":  # the merged-away person leaves at the next sweep
        assert merged["merged_person_id"] in persons
        clock.shift(1.01)
        run_pipeline(server, tmp_path, resources=HOGQL_TABLES, late_sweep=late_sweep, clock=clock)
    assert merged["merged_person_id"] not in {r["id"] for r in read_rows(tmp_path, "persons")}
    world.delete_person(1, world.truth_persons(1)[5]["id"])  # no event: removed at the sweep
    del fourth
    clock.shift(2.02)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, late_sweep=late_sweep, clock=clock)
    assert_persons_exact_current(world, tmp_path)


def test_a_full_refresh_does_not_make_later_incremental_runs_drop_persons(make_fake_server, tmp_path):
    """A full refresh replaces each project's persons; the next incremental run replaces key by key (a merge
    key left behind by the full refresh would delete every person it did not re-read)."""
    server = make_fake_server(seed=24, events=5_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, full_refresh=True)
    world.add_persons(1, 3)
    world.set_person_properties(1, some_distinct_ids(world, 1, 1)[0], set={"plan": "growth"})
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES)
    assert_persons_exact(world, tmp_path)


def assert_sessions_exact(world: Any, workdir: Path) -> None:
    loaded = {(r["project_id"], r["session_id"]): r for r in read_rows(workdir, "sessions")}
    expected = {(p["id"], s["session_id"]): s for p in world.projects for s in world.truth_sessions(p["id"])}
    assert set(loaded) == set(expected)
    for key, truth in expected.items():
        row = loaded[key]
        assert row["start_timestamp"] == truth["$start_timestamp"] and row["end_timestamp"] == truth["$end_timestamp"]
        assert row["duration_seconds"] == truth["$session_duration"]
        assert row["pageview_count"] == truth["$pageview_count"]
        assert row["autocapture_count"] == truth["$autocapture_count"]
        assert row["entry_current_url"] == truth["$entry_current_url"]
        assert row["end_current_url"] == truth["$end_current_url"]
        assert row["channel_type"] == truth["$channel_type"]
        assert row["is_bounce"] == (None if truth["$is_bounce"] is None else bool(truth["$is_bounce"]))
        assert row["distinct_id"] == truth["distinct_id"]


def test_sessions_are_exact_and_a_session_that_grows_is_updated(make_fake_server, tmp_path):
    server = make_fake_server(seed=25, events=6_000)
    world = server.world
    live = set(world.add_events(1, 60))  # events of today, in sessions still going on
    run_pipeline(server, tmp_path, resources=["events", "sessions"])
    assert_sessions_exact(world, tmp_path)
    durations = [r["duration_seconds"] for r in read_rows(tmp_path, "sessions")]
    assert max(durations) > 60 and sum(d > 0 for d in durations) > len(durations) / 2  # real sessions
    # a session grows: its person comes back a minute later in the same session
    live_sessions = {e["session_id"] for e in world.truth_events(1, as_dicts=True) if e["uuid"] in live}
    session = next(s for s in world.truth_sessions(1) if s["session_id"] in live_sessions)
    world.add_session_events(1, session["session_id"], 3)
    run_pipeline(server, tmp_path, resources=["events", "sessions"])
    assert_sessions_exact(world, tmp_path)
    grown = next(r for r in read_rows(tmp_path, "sessions") if r["session_id"] == session["session_id"])
    assert grown["pageview_count"] == session["$pageview_count"] + 3
    assert grown["duration_seconds"] > session["$session_duration"]



def sessions_of(world: Any, uuids: list[str]) -> list[str]:
    """The sessions (UUIDv7 ids, the ones PostHog has a row for) the events `uuids` belong to."""
    wanted = set(uuids)
    with_row = {s["session_id"] for s in world.truth_sessions(1)}
    return sorted({e["session_id"] for e in world.truth_events(1, as_dicts=True)
                   if e["uuid"] in wanted and e["session_id"] in with_row})


@pytest.mark.parametrize("late_sweep", ["0", "1d"])
def test_sessions_joined_by_late_events_on_either_side_of_each_bound_are_re_read(make_fake_server, tmp_path,
                                                                                  clock, late_sweep):
    """Late events (old `timestamp`, ingested now) join sessions that started on both sides of the two bounds
    of the bounded re-read: B = watermark - overlap - max_lateness on the events' `timestamp`, and B - 24 h on
    `$start_timestamp`. Before: a session starting in [B - 24 h, B) joined by an event older than B was read by
    neither the bounded re-read nor the sweep, and kept its old end and pageview count for ever."""
    server = make_fake_server(seed=27, events=4_000)
    world = server.world
    hours = {"after B": 7 * 24 - 1, "before B": 7 * 24 + 3, "after B - 24h": 8 * 24 - 1,
             "before B - 24h": 8 * 24 + 3, "20 days": 20 * 24}
    planted = {name: world.add_events(1, 12, late_by=timedelta(hours=h)) for name, h in hours.items()}
    run_pipeline(server, tmp_path, resources=["events", "sessions"], late_sweep=late_sweep, clock=clock)
    assert_sessions_exact(world, tmp_path)
    joined: dict[str, list[str]] = {}
    for name, uuids in planted.items():
        joined[name] = sessions_of(world, uuids)
        assert joined[name], name
        for session in joined[name]:
            world.add_session_events(1, session, 2)  # events 45 and 90 s after its last one, ingested now
    run_pipeline(server, tmp_path, resources=["events", "sessions"], late_sweep=late_sweep, clock=clock)
    rows = {r["session_id"]: r for r in read_rows(tmp_path, "sessions")}
    truth = {s["session_id"]: s for s in world.truth_sessions(1)}
    for session in joined["after B"]:  # within max_lateness: the next run reads it in any case
        assert rows[session]["pageview_count"] == truth[session]["$pageview_count"]
    if late_sweep == "1d":  # the sweep is not due: sessions of very late events wait for it, then all are read
        clock.shift(1.01)
        run_pipeline(server, tmp_path, resources=["events", "sessions"], late_sweep=late_sweep, clock=clock)
    assert_sessions_exact(world, tmp_path)


def assert_cohort_people_exact(world: Any, workdir: Path) -> None:
    loaded = {(r["project_id"], r["cohort_id"], r["person_id"]) for r in read_rows(workdir, "cohort_people")}
    expected = {(p["id"], m["cohort_id"], m["person_id"]) for p in world.projects
                for m in world.truth_cohort_people(p["id"])}
    assert loaded == expected and expected


def test_cohort_membership_is_a_snapshot_people_who_left_disappear(make_fake_server, tmp_path):
    server = make_fake_server(seed=26, events=6_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=["cohort_people"])
    assert_cohort_people_exact(world, tmp_path)
    dynamic = next(c for c in world.visible_objects("cohorts", 1) if not c["is_static"]
                   and any(m["cohort_id"] == c["id"] for m in world.truth_cohort_people(1)))
    change = world.recalculate_cohort(1, dynamic["id"])
    assert change["left"]
    run_pipeline(server, tmp_path, resources=["cohort_people"])
    assert_cohort_people_exact(world, tmp_path)


def test_a_person_added_to_a_static_cohort_twice_is_loaded_once(make_fake_server, tmp_path):
    """PostHog's static_cohort_people keeps a person uploaded twice twice (schema/static_cohort_people.py does
    not de-duplicate): pages are in key order, and a row that repeats the previous key is dropped
    (hogql.drop_adjacent_duplicates), so the key is loaded once."""
    server = make_fake_server(seed=28, events=2_000)
    world = server.world
    with world.lock:
        world.con.execute("INSERT INTO static_cohort_people SELECT * FROM static_cohort_people WHERE team_id = 1 "
                          "LIMIT 3")
    run_pipeline(server, tmp_path, resources=["cohort_people"])
    assert_cohort_people_exact(world, tmp_path)
    rows = [(r["project_id"], r["cohort_id"], r["person_id"]) for r in read_rows(tmp_path, "cohort_people")]
    assert len(rows) == len(set(rows))
