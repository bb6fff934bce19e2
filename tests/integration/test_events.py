"""Events, persons and distinct ids through HogQL: exact key sets and values against the server's truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import read_rows, run_pipeline, table_exists

HOGQL_TABLES = ["events", "persons", "person_distinct_ids"]


def assert_events_exact(world: Any, workdir: Path) -> None:
    """Each (project_id, uuid) once, none missing, and every value equal (instants as instants)."""
    loaded = read_rows(workdir, "events")
    keys = [(r["project_id"], r["uuid"]) for r in loaded]
    assert len(keys) == len(set(keys)), "duplicate events"
    by_key = {(r["project_id"], r["uuid"]): r for r in loaded}
    expected_keys = set()
    for project in world.projects:
        for event in world.truth_events(project["id"], as_dicts=True):
            key = (project["id"], event["uuid"])
            expected_keys.add(key)
            row = by_key.get(key)
            assert row is not None, f"missing event {key}"
            assert row["timestamp"] == event["timestamp"] and row["created_at"] == event["created_at"]
            assert json.loads(row["properties"]) == event["properties"]
            for name in ("event", "distinct_id", "elements_chain", "session_id"):
                assert row[name] == event[name], name
            # the person PostHog showed when the event was loaded: after a merge it shows the person merged
            # into for old events too, which `person_distinct_ids` follows (events are not re-read for it)
            assert row["person_id"] in (event["person_id"], event["event_person_id"]), "person_id"
    assert set(by_key) == expected_keys


def assert_persons_exact(world: Any, workdir: Path) -> None:
    persons = {(r["project_id"], r["id"]): r for r in read_rows(workdir, "persons")}
    expected = {(p["id"], person["id"]): person for p in world.projects for person in world.truth_persons(p["id"])}
    assert set(persons) == set(expected)
    for key, person in expected.items():
        assert persons[key]["created_at"] == person["created_at"]
        assert json.loads(persons[key]["properties"]) == person["properties"]
        assert persons[key]["is_identified"] == person["is_identified"]
    distinct = {(r["project_id"], r["distinct_id"]): r["person_id"] for r in read_rows(workdir, "person_distinct_ids")}
    expected_ids = {(p["id"], d["distinct_id"]): d["person_id"] for p in world.projects
                    for d in world.truth_distinct_ids(p["id"])}
    assert distinct == expected_ids


@pytest.mark.parametrize("page_size", [50_000, 997])
def test_first_run_is_exact(make_fake_server, tmp_path, page_size):
    """Pages of 50,000 cross the tie block at row 50,000; pages of 997 cross every other boundary."""
    server = make_fake_server(seed=7, events=120_000)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, page_size=page_size)
    assert_events_exact(server.world, tmp_path)
    assert_persons_exact(server.world, tmp_path)


def test_properties_keys_differing_by_case_and_unicode_survive(make_fake_server, tmp_path):
    server = make_fake_server(seed=3, events=5_000)
    run_pipeline(server, tmp_path, resources=["events"])
    both = [json.loads(r["properties"]) for r in read_rows(tmp_path, "events")]
    with_both = [p for p in both if "Plan" in p and "plan" in p]
    # the fake gives these events "Plan": "Pro" and "plan": "free": both keys survive with their own values
    assert with_both and all(p["Plan"] == "Pro" and p["plan"] == "free" for p in with_both)
    assert any(any(ord(ch) > 127 for ch in json.dumps(p, ensure_ascii=False)) for p in both)


def test_second_run_picks_up_new_late_and_tied_events(make_fake_server, tmp_path):
    server = make_fake_server(seed=5, events=20_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, page_size=1_000)
    world.add_events(1, 700)
    world.add_events(2, 300, late_by=timedelta(days=3))  # old timestamp, new ingestion time
    world.add_events(3, 2_500, tie=True)  # one created_at and timestamp for all: crosses page boundaries
    world.add_persons(2, 40)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, page_size=1_000)
    assert_events_exact(world, tmp_path)
    assert_persons_exact(world, tmp_path)
    # what was loaded is not kept a second time in the pipeline's folder (dlt keeps it unless told)
    loaded = list((tmp_path / "pipelines").glob("*/load/loaded/*"))
    assert len(loaded) >= 2
    assert [path for package in loaded for path in package.glob("completed_jobs/*")] == []


def test_rows_still_being_ingested_wait_for_the_next_run(make_fake_server, tmp_path):
    server = make_fake_server(seed=5, events=2_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=["events"], ingestion_lag="1h")
    fresh = world.add_events(1, 50, created_at=datetime.now(UTC) - timedelta(minutes=10))
    run_pipeline(server, tmp_path, resources=["events"], ingestion_lag="1h")
    loaded = {r["uuid"] for r in read_rows(tmp_path, "events")}
    assert not loaded & set(fresh)  # inside the lag: left for later
    run_pipeline(server, tmp_path, resources=["events"], ingestion_lag="1m")
    assert_events_exact(world, tmp_path)


def test_no_op_run_asks_one_query_per_project(make_fake_server, tmp_path):
    server = make_fake_server(seed=5, events=2_000)
    run_pipeline(server, tmp_path, resources=["events"])
    before = len(server.request_log)
    result = run_pipeline(server, tmp_path, resources=["events"])
    queries = [p for _, p, _ in server.request_log[before:] if p.rstrip("/").endswith("/query")]
    assert result.rows_extracted.get("events", 0) == 0
    assert len(queries) == len(server.world.projects)


def test_full_refresh_picks_up_changed_and_deleted_persons(make_fake_server, tmp_path):
    server = make_fake_server(seed=9, events=3_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=["persons", "person_distinct_ids"])
    person = world.truth_persons(1)[0]
    world.update_person_properties(1, person["id"], {"plan": "enterprise", "ünïcode": "✓"})
    gone = world.truth_persons(2)[0]
    world.delete_person(2, gone["id"])
    run_pipeline(server, tmp_path, resources=["persons", "person_distinct_ids"], full_refresh=True)
    assert_persons_exact(world, tmp_path)
    changed = next(r for r in read_rows(tmp_path, "persons") if r["id"] == person["id"])
    assert json.loads(changed["properties"])["plan"] == "enterprise"


def test_promoted_properties_become_typed_columns(make_fake_server, tmp_path):
    server = make_fake_server(seed=3, events=3_000)
    run_pipeline(server, tmp_path, resources=["events"], promoted_properties=["$browser", "plan"])
    rows = read_rows(tmp_path, "events")
    assert len(rows) == sum(len(server.world.truth_events(p["id"])) for p in server.world.projects)
    for row in rows:
        properties = json.loads(row["properties"])
        assert row["prop_browser"] == properties.get("$browser")
        assert row["prop_plan"] == (None if properties.get("plan") is None else str(properties["plan"]))
    # the columns hold values, not only NULLs that would match a missing property as well
    assert sum(row["prop_browser"] is not None for row in rows) > len(rows) / 10
    assert any(row["prop_plan"] is not None for row in rows)
    with pytest.raises(Exception, match="would both become column prop_plan"):
        run_pipeline(server, tmp_path, resources=["events"], promoted_properties=["Plan", "plan"])


def test_real_rate_limits_time_compressed_serve_no_429(make_fake_server, tmp_path):
    """PostHog's budgets at 10x speed (a minute lasts 6 s): small pages force hundreds of queries across
    four projects, more than the burst window allows, and the client paces itself."""
    server = make_fake_server(seed=13, events=40_000, rate_limits=True, time_scale=10.0)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES, page_size=150, rate_limit_time_scale=10.0, workers=4)
    assert server.throttled_count == 0
    assert_events_exact(server.world, tmp_path)


def test_key_without_query_scope_skips_hogql_tables_and_keeps_loaded_rows(make_fake_server, tmp_path, caplog):
    server = make_fake_server(seed=9, events=2_000)
    run_pipeline(server, tmp_path, resources=HOGQL_TABLES)
    before = {t: len(read_rows(tmp_path, t)) for t in HOGQL_TABLES}
    run_pipeline(server, tmp_path, key="no_query", resources=[*HOGQL_TABLES, "cohorts"], full_refresh=True)
    assert {t: len(read_rows(tmp_path, t)) for t in HOGQL_TABLES} == before  # nothing wiped
    assert read_rows(tmp_path, "cohorts")  # what the key may read still loads
    assert "skipped person_distinct_ids" in caplog.text and "query:read" in caplog.text


def test_events_are_not_staged_and_an_old_staged_copy_is_dropped(make_fake_server, tmp_path):
    """Events are appended after their old copies are deleted, so no copy of them is staged; the staged copy a
    merge by dlt left in the file (up to the previous version) is dropped by the next load."""
    server = make_fake_server(seed=5, events=5_000)
    run_pipeline(server, tmp_path, resources=["events"], full_refresh=True)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA posthog_staging")
        con.execute("CREATE TABLE posthog_staging.events AS SELECT * FROM posthog.events")
    server.world.add_events(1, 300)
    run_pipeline(server, tmp_path, resources=["events"], full_refresh=True)
    assert_events_exact(server.world, tmp_path)
    assert not table_exists(tmp_path, "events", dataset="posthog_staging")
