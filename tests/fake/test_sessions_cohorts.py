"""HogQL `sessions` (aggregated from real multi-event sessions) and cohort membership tables."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from fake_posthog.hogql import execute_hogql
from fake_posthog.world import CHANNEL_OF_PROPS, World

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def hogql(world: World, query: str, team: int = 1) -> dict:
    return execute_hogql(world.cursor(), team, world.timezone(team), query)


def test_generated_sessions_are_real(fake_world: World) -> None:
    by_session: dict[str, list] = defaultdict(list)
    for e in fake_world.truth_events(1).select(["session_id", "timestamp"]).to_pylist():
        if e["session_id"]:
            by_session[e["session_id"]].append(e["timestamp"])
    sizes = [len(v) for v in by_session.values()]
    assert statistics.median(sizes) >= 3 and max(sizes) <= 40
    durations = [(max(v) - min(v)).total_seconds() for v in by_session.values() if len(v) > 1]
    assert 30 <= statistics.median(durations) <= 1800
    assert sum(d > 3600 for d in durations) / len(durations) < 0.01


UUID_V7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_sessions_table_matches_an_independent_aggregation(fake_world: World) -> None:
    """One row per UUIDv7 `$session_id` (posthog/models/raw_sessions/sessions_v2.py keeps only version-7
    UUIDs): events with another id, a v4 UUID here, belong to no session."""
    events = [e for e in fake_world.truth_events(1, as_dicts=True) if e["session_id"]]
    others = {e["session_id"] for e in events if not UUID_V7.fullmatch(e["session_id"])}
    assert others and all(s[14] == "4" for s in others)  # the generator's UUIDv4 ids exist
    grouped: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if UUID_V7.fullmatch(e["session_id"]):
            grouped[e["session_id"]].append(e)
    truth = {s["session_id"]: s for s in fake_world.truth_sessions(1)}
    assert set(truth) == set(grouped)
    result = hogql(fake_world, "SELECT * FROM sessions ORDER BY session_id LIMIT 50000")
    assert len(result["results"]) == len(grouped)
    types = dict(result["types"])
    assert types["$start_timestamp"] == "DateTime64(6, 'UTC')" and types["$session_duration"] == "Int64"
    assert types["$pageview_count"] == "UInt64" and types["$is_bounce"] == "Nullable(UInt8)"
    assert "team_id" not in result["columns"] and "$channel_type" in result["columns"]
    rows = {r[0]: dict(zip(result["columns"], r, strict=True)) for r in result["results"]}
    for sid in sorted(grouped)[::97]:
        evs = sorted(grouped[sid], key=lambda e: (e["timestamp"], e["uuid"]))
        row, t = rows[sid], truth[sid]
        start, end = evs[0]["timestamp"], evs[-1]["timestamp"]
        assert t["$start_timestamp"] == start and t["$end_timestamp"] == end
        assert datetime.fromisoformat(row["$start_timestamp"].replace("Z", "+00:00")) == start
        # dateDiff('second', ...) counts second boundaries crossed, as ClickHouse does
        duration = int(end.timestamp() // 1) - int(start.timestamp() // 1)
        assert row["$session_duration"] == duration
        pageviews = sum(e["event"] == "$pageview" for e in evs)
        autocaptures = sum(e["event"] == "$autocapture" for e in evs)
        assert row["$pageview_count"] == pageviews and row["$autocapture_count"] == autocaptures
        assert row["$entry_current_url"] == evs[0]["properties"]["$current_url"]
        assert row["$end_current_url"] == evs[-1]["properties"]["$current_url"]
        assert row["distinct_id"] == evs[-1]["distinct_id"]
        bounce = None if pageviews == 0 else int(not (pageviews > 1 or autocaptures > 0 or duration >= 10))
        assert row["$is_bounce"] == bounce


def test_channel_types_follow_the_acquisition_properties(fake_world: World) -> None:
    result = hogql(fake_world, "SELECT $channel_type, count() FROM sessions GROUP BY $channel_type")
    seen = {r[0] for r in result["results"]}
    assert set(CHANNEL_OF_PROPS) <= seen
    paid = hogql(fake_world, "SELECT $entry_utm_medium, $entry_gclid FROM sessions "
                             "WHERE $channel_type = 'Paid Search' LIMIT 5")["results"]
    assert paid and all(r[0] == "cpc" and r[1] for r in paid)


def test_sessions_change_while_events_arrive() -> None:
    world = World.generate(seed=8, events=3000, now=NOW)
    before = len(world.truth_sessions(1))
    uuids = world.add_events(1, 40)
    sessions = {e["session_id"] for e in world.truth_events(1, as_dicts=True) if e["uuid"] in uuids}
    sessions = {s for s in sessions if s and UUID_V7.fullmatch(s)}
    after = {s["session_id"]: s for s in world.truth_sessions(1)}
    assert sessions and sessions <= set(after) and len(after) >= before
    hidden = world.add_events(1, 5, hidden=True)
    hidden_sessions = {e["session_id"] for e in world.truth_events(1, as_dicts=True, include_hidden=True)
                       if e["uuid"] in hidden and e["session_id"] and UUID_V7.fullmatch(e["session_id"])}
    fresh = hidden_sessions - set(after)
    assert not fresh & {s["session_id"] for s in world.truth_sessions(1)}
    world.reveal_all()
    assert hidden_sessions <= {s["session_id"] for s in world.truth_sessions(1)}


def test_cohort_people_match_the_cohorts(fake_world: World) -> None:
    cohorts = {c["id"]: c for c in fake_world.visible_objects("cohorts", 1)}
    truth = fake_world.truth_cohort_people(1)
    dynamic = hogql(fake_world, "SELECT * FROM cohort_people ORDER BY cohort_id, person_id LIMIT 50000")
    # schema/cohort_people.py: SELECT * is person_id, cohort_id (no version: it lives in raw_cohort_people)
    assert dynamic["columns"] == ["person_id", "cohort_id"]
    assert dynamic["types"] == [["person_id", "UUID"], ["cohort_id", "Int64"]]
    static = hogql(fake_world, "SELECT * FROM static_cohort_people ORDER BY cohort_id, person_id LIMIT 50000")
    assert static["columns"] == ["person_id", "cohort_id"]
    assert dynamic["results"] and static["results"]
    assert sorted((r[1], r[0]) for r in dynamic["results"]) == [
        (t["cohort_id"], t["person_id"]) for t in truth if not t["is_static"]]
    assert all(not cohorts[cohort_id]["is_static"] for _person_id, cohort_id in dynamic["results"])
    assert all(cohorts[r[1]]["is_static"] for r in static["results"])
    members: dict[int, int] = defaultdict(int)
    for t in truth:
        members[t["cohort_id"]] += 1
    assert all(c["count"] == members.get(cid, 0) for cid, c in cohorts.items())
    live = {p["id"] for p in fake_world.truth_persons(1)}
    assert {t["person_id"] for t in truth} <= live


def test_recalculate_cohort_changes_membership_and_version() -> None:
    world = World.generate(seed=9, events=5000, now=NOW)
    cohort = next(c for c in world.visible_objects("cohorts", 1) if not c["is_static"] and c["count"] >= 5)
    before = {t["person_id"] for t in world.truth_cohort_people(1) if t["cohort_id"] == cohort["id"]}
    at = datetime(2026, 3, 15, 13, tzinfo=UTC)
    out = world.recalculate_cohort(1, cohort["id"], at=at)
    after = {t["person_id"] for t in world.truth_cohort_people(1) if t["cohort_id"] == cohort["id"]}
    assert out["left"] and out["joined"] and after == (before - set(out["left"])) | set(out["joined"])
    updated = next(c for c in world.visible_objects("cohorts", 1) if c["id"] == cohort["id"])
    assert updated["version"] == cohort["version"] + 1 == out["version"]
    assert updated["last_calculation"] == "2026-03-15T13:00:00Z" and updated["count"] == len(after)
    # the old version's rows stay in raw_cohort_people; cohort_people serves only the current one
    raw = hogql(world, "SELECT DISTINCT version FROM raw_cohort_people WHERE cohort_id = "
                       f"{cohort['id']} ORDER BY version")["results"]
    assert raw == [[cohort["version"]], [out["version"]]]
    served = hogql(world, f"SELECT toString(person_id) FROM cohort_people WHERE cohort_id = {cohort['id']}")
    assert {r[0] for r in served["results"]} == after
    world.delete_object("cohorts", 1, cohort["id"])  # a deleted cohort's members leave cohort_people
    assert not hogql(world, f"SELECT person_id FROM cohort_people WHERE cohort_id = {cohort['id']}")["results"]
    static = next(c for c in world.visible_objects("cohorts", 1) if c["is_static"])
    with pytest.raises(ValueError, match="static"):
        world.recalculate_cohort(1, static["id"])
    explicit = world.recalculate_cohort(1, cohort["id"], leave=sorted(after)[:1], join=[])
    assert explicit["left"] == sorted(after)[:1] and explicit["count"] == len(after) - 1
