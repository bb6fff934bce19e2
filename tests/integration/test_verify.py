"""`posthog-pipeline verify [--repair]` against the fake over real HTTP, into a real DuckDB file: it finds rows
lost from the destination and events PostHog deleted, lists exactly those project-days, changes nothing, and
`--repair` ends exact."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pendulum
import pytest

from pipelines.runner import RunOptions
from pipelines.verify import VerifyOptions, verify_and_repair, windows_around
from posthog_source.config import load_settings
from tests.helpers import read_rows, run_pipeline
from tests.integration.test_events import assert_events_exact

PIPELINE = "posthog"


# -- helpers -----------------------------------------------------------------------------------------
def delete_events_in_fake(world: Any, team_id: int, uuids: list[str]) -> None:
    """What a GDPR deletion does in PostHog: the events are gone from every later query."""
    with world.lock:
        world.con.execute(
            f"DELETE FROM events WHERE team_id = ? AND uuid IN ({', '.join('?' * len(uuids))})", [team_id, *uuids]
        )


def fake_events(world: Any, team_id: int) -> list[dict[str, Any]]:
    return world.truth_events(team_id, as_dicts=True)


def duckdb_sql(workdir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def cli(workdir: Path, server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipelines verify ...` as a user runs it, on the same machine as the loading runs (DLT_DATA_DIR
    holds their pipeline folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({
        "SOURCES__POSTHOG__API_KEY": server.world.keys["full"],
        "SOURCES__POSTHOG__HOST": server.url,
        "SOURCES__POSTHOG__INGESTION_LAG": "0",
        "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "warehouse.duckdb"),
        "DLT_DATA_DIR": str(workdir),
    })
    return subprocess.run([sys.executable, "-m", "pipelines", "verify", "--pipeline-name", PIPELINE, *args],
                          env=env, cwd=workdir, capture_output=True, text=True, timeout=300)


def listed_days(stdout: str) -> dict[tuple[int, date], tuple[int, int, int]]:
    """The table of differing days: (project, day) -> (PostHog, destination, difference)."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit() and len(parts[1]) == 10:
            numbers = [int(p.replace(",", "")) for p in parts[2:]]
            found[(int(parts[0]), date.fromisoformat(parts[1]))] = (numbers[0], numbers[1], numbers[2])
    return found


def options_for(server: Any, workdir: Path) -> VerifyOptions:
    return VerifyOptions(RunOptions(
        pipeline_name=PIPELINE, duckdb_path=str(workdir / "warehouse.duckdb"), pipelines_dir=str(workdir / "pipelines"),
        settings=load_settings(api_key=server.world.keys["full"], host=server.url, ingestion_lag="0"),
    ))


def assert_exact_uuids(world: Any, workdir: Path) -> None:
    loaded: dict[int, set[str]] = {}
    for row in read_rows(workdir, "events"):
        loaded.setdefault(int(row["project_id"]), set()).add(row["uuid"])
    for project in world.projects:
        truth = {e["uuid"] for e in fake_events(world, project["id"])}
        assert loaded.get(project["id"], set()) == truth, f"project {project['id']}"


@pytest.fixture
def loaded(make_fake_server: Any, tmp_path: Path) -> tuple[Any, Path]:
    server = make_fake_server(seed=5, events=4_000)
    run_pipeline(server, tmp_path, resources=["events", "persons"], pipeline_name=PIPELINE)
    return server, tmp_path


def pick_day(world: Any, team_id: int, at_least: int, skip: int = 0) -> tuple[date, list[dict[str, Any]]]:
    """A UTC day of the project holding at least `at_least` events, and its events."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for event in fake_events(world, team_id):
        by_day.setdefault(event["timestamp"].date(), []).append(event)
    days = [d for d in sorted(by_day) if len(by_day[d]) >= at_least]
    return days[skip], by_day[days[skip]]


# -- tests ---------------------------------------------------------------------------------------------
def test_an_exact_destination_verifies_equal_with_one_count_query_per_project_and_table(loaded, monkeypatch):
    """The cost: one grouped events count (split by what the last run promised), one persons count (split the
    same way) and one count of deleted persons per project, each named, forced past the result cache, the
    events one bounded on `timestamp` on both sides."""
    server, workdir = loaded
    bodies: list[dict[str, Any]] = []
    original = server.h_query

    def recording(req: Any) -> Any:
        bodies.append(orjson.loads(req.body))
        return original(req)

    monkeypatch.setattr(server, "h_query", recording)
    outcome = verify_and_repair(options_for(server, workdir))
    report = outcome.first
    assert outcome.equal and report.events == [] and report.persons == []
    projects = len(server.world.projects)
    assert report.queries == len(bodies) == 3 * projects
    assert all(b["refresh"] == "force_blocking" and b["name"].startswith("posthog-dlt verify") for b in bodies)
    counts = [b["query"]["query"] for b in bodies if "FROM events" in b["query"]["query"]]
    assert len(counts) == projects
    for text in counts:
        assert "toDate(toTimeZone(timestamp, 'UTC'))" in text and "GROUP BY day" in text
        assert "timestamp >= toDateTime64('" in text and "timestamp < toDateTime64('" in text and "'UTC')" in text
    assert sum(1 for b in bodies if b["query"]["query"].endswith("count() FROM persons")) == projects
    assert sum(1 for b in bodies if "FROM raw_persons WHERE is_deleted = 1" in b["query"]["query"]) == projects
    # the default range starts on the destination's first UTC day
    first = min(r["timestamp"] for r in read_rows(workdir, "events"))
    assert report.start.date() == first.date() and report.start.hour == 0


def test_rows_deleted_from_the_destination_are_listed_by_project_day_and_nothing_changes(loaded):
    server, workdir = loaded
    world = server.world
    day_a, events_a = pick_day(world, 2, 3)  # project 2 runs in America/New_York: days must be UTC days
    day_b, events_b = pick_day(world, 3, 2)  # Asia/Kolkata
    day_c, events_c = pick_day(world, 1, 5, skip=3)
    gone = [(2, e["uuid"]) for e in events_a] + [(3, events_b[0]["uuid"])] + [(1, e["uuid"]) for e in events_c[:4]]
    for project_id, uuid in gone:
        duckdb_sql(workdir, "DELETE FROM posthog.events WHERE project_id = ? AND uuid = ?", [project_id, uuid])
    before_events, before_persons = read_rows(workdir, "events"), read_rows(workdir, "persons")

    result = cli(workdir, server)
    assert result.returncode == 4, result.stderr
    expected = {
        (2, day_a): (len(events_a), 0, -len(events_a)),
        (3, day_b): (len(events_b), len(events_b) - 1, -1),
        (1, day_c): (len(events_c), len(events_c) - 4, -4),
    }
    assert listed_days(result.stdout) == expected
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("verify: ") and ", 3 differ" in summary
    assert f"; {3 * len(world.projects)} queries sent to PostHog" in summary
    assert "verify: project 2 (" in result.stderr  # progress per project
    assert read_rows(workdir, "events") == before_events and read_rows(workdir, "persons") == before_persons


def test_events_deleted_in_posthog_are_found(loaded):
    server, workdir = loaded
    day, events = pick_day(server.world, 1, 4)
    delete_events_in_fake(server.world, 1, [e["uuid"] for e in events[:2]])
    result = cli(workdir, server)
    assert result.returncode == 4, result.stderr
    assert listed_days(result.stdout) == {(1, day): (len(events) - 2, len(events), 2)}


def test_repair_reads_only_around_what_is_missing_and_ends_exact(loaded):
    server, workdir = loaded
    world = server.world
    day_a, events_a = pick_day(world, 2, 3)
    day_b, events_b = pick_day(world, 1, 5)
    day_c, events_c = pick_day(world, 3, 3)
    for event in events_a[:3]:
        duckdb_sql(workdir, "DELETE FROM posthog.events WHERE project_id = 2 AND uuid = ?", [event["uuid"]])
    delete_events_in_fake(world, 1, [e["uuid"] for e in events_b[:3]])  # a GDPR deletion in PostHog
    # a day that lost two rows in the destination and one event in PostHog: both are fixed by one repair
    for event in events_c[:2]:
        duckdb_sql(workdir, "DELETE FROM posthog.events WHERE project_id = 3 AND uuid = ?", [event["uuid"]])
    delete_events_in_fake(world, 3, [events_c[2]["uuid"]])

    sent = len(server.request_log)
    result = cli(workdir, server, "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    queries = sum(1 for _, path, _ in server.request_log[sent:] if path.endswith("/query/"))
    out = result.stdout.splitlines()
    assert listed_days(result.stdout) == {
        (2, day_a): (len(events_a), len(events_a) - 3, -3),
        (1, day_b): (len(events_b) - 3, len(events_b), 3),
        (3, day_c): (len(events_c) - 1, len(events_c) - 2, -1),
    }
    repair_line = next(line for line in out if line.startswith("repair: "))
    # only the minutes around the missing events were re-read (before: their whole days); the day whose
    # events PostHog deleted needs no read, only the removal
    windows = {2: windows_around(pendulum.instance(e["timestamp"]) for e in events_a[:3]),
               3: windows_around(pendulum.instance(e["timestamp"]) for e in events_c[:2])}
    reread = sum(1 for project, spans in windows.items() for e in world.truth_events(project, as_dicts=True)
                 if any(lo <= e["timestamp"] < hi for lo, hi in spans))
    count = sum(len(spans) for spans in windows.values())
    assert f"{count} windows re-read ({reread:,} events loaded), 4 events removed" in repair_line
    assert reread <= len(events_a) + len(events_c) - 1  # never more than the two days
    # the cost: two verifies (3 queries per project each), one uuid page per day, and per re-read window one
    # count query and one page
    projects = len(world.projects)
    assert f"3 uuid queries and about {2 * count} re-read queries" in repair_line
    assert queries == 2 * 3 * projects + 3 + 2 * count
    assert out[-1].startswith("after repair: ") and ", 0 differ" in out[-1]
    assert_exact_uuids(world, workdir)
    assert_events_exact(world, workdir)


def test_repair_pages_and_slices_a_large_day(loaded):
    """Keyset pages on the uuid and time slices of a day, with tiny sizes so one day spans many of each."""
    server, workdir = loaded
    day, events = pick_day(server.world, 1, 40)
    delete_events_in_fake(server.world, 1, [e["uuid"] for e in events[::5]])
    duckdb_sql(workdir, "DELETE FROM posthog.events WHERE project_id = 1 AND uuid = ?", [events[1]["uuid"]])
    options = dataclasses.replace(options_for(server, workdir), repair=True, uuid_page_size=7, repair_slice_rows=10)
    outcome = verify_and_repair(options)
    assert [(d.project_id, d.day) for d in outcome.first.events] == [(1, day)]
    assert outcome.repair is not None and outcome.repair.rows_deleted == len(events[::5])
    assert outcome.repair.queries > len(events) // 7  # many pages were read
    assert outcome.after is not None and outcome.after.equal
    assert_events_exact(server.world, workdir)


def test_a_persons_count_mismatch_is_reported(loaded):
    server, workdir = loaded
    person = next(r for r in read_rows(workdir, "persons") if r["project_id"] == 1)
    duckdb_sql(workdir, "DELETE FROM posthog.persons WHERE project_id = 1 AND id = ?", [person["id"]])
    server.world.add_persons(2, 3)
    result = cli(workdir, server)
    assert result.returncode == 4, result.stderr
    truth = {p["id"]: len(server.world.truth_persons(p["id"])) for p in server.world.projects}
    lines = [line for line in result.stdout.splitlines() if line.startswith("persons of project")]
    assert lines == [f"persons of project 1: PostHog {truth[1]:,}, destination {truth[1] - 1:,} (-1)"]
    # project 2's new persons were created after the last run: pending, not a difference
    assert "pending: 3 persons created or changed since the last run: the next run loads them" in result.stdout
    assert listed_days(result.stdout) == {}  # events are still equal
    assert "1 differ" in result.stdout.splitlines()[-1]

    repaired = cli(workdir, server, "--repair")  # project 1's persons are read whole again: equal after
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repair: persons of 1 project(s) re-read whole" in repaired.stdout
    assert repaired.stdout.splitlines()[-1].startswith("after repair: ") and ", 0 differ" in repaired.stdout


def test_no_destination_data_is_said_in_one_line_with_exit_2(make_fake_server, tmp_path):
    server = make_fake_server(seed=5, events=500)
    result = cli(tmp_path, server)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no destination data") and result.stderr.count("\n") == 1
    assert not (tmp_path / "warehouse.duckdb").exists()  # verify created nothing
    assert server.world.keys["full"] not in result.stdout + result.stderr


def test_a_malformed_date_is_a_one_line_error(loaded):
    server, workdir = loaded
    result = cli(workdir, server, "--start-date", "yesterday-ish")
    assert result.returncode == 2 and result.stderr.startswith("error: start_date 'yesterday-ish' is not a date")


def test_rows_left_for_later_on_purpose_are_pending_not_differences(make_fake_server, tmp_path):
    """Right after a good run, verify exits 0: events ingested after it (ingestion_lag included) and events
    older than max_lateness waiting for the late sweep are reported as pending, with their counts. A real
    loss still exits 4 (before: 70, then 62, then 49 days 'differed' after every good run)."""
    server = make_fake_server(seed=6, events=4_000)
    world = server.world
    run_pipeline(server, tmp_path, resources=["events", "persons"], pipeline_name=PIPELINE, late_sweep="1d")
    very_late = world.add_events(1, 7, late_by=timedelta(days=20)) + world.add_events(2, 4, late_by=timedelta(days=30))
    recent = world.add_events(1, 9)
    run_pipeline(server, tmp_path, resources=["events", "persons"], pipeline_name=PIPELINE, late_sweep="1d")
    loaded = {r["uuid"] for r in read_rows(tmp_path, "events")}
    assert set(recent) <= loaded and not set(very_late) & loaded  # the very late ones wait for the sweep
    after = world.add_events(3, 5, created_at=datetime.now(UTC))  # ingested after the last run

    result = cli(tmp_path, server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pending: {len(after)} events ingested after the last run" in result.stdout
    assert f"pending: {len(very_late)} events not loaded yet that the next run reads again" in result.stdout
    assert "next sweep at " in result.stdout and ", 0 differ" in result.stdout.splitlines()[-1]

    lost = next(r for r in read_rows(tmp_path, "events") if r["project_id"] == 1 and r["uuid"] not in recent)
    duckdb_sql(tmp_path, "DELETE FROM posthog.events WHERE project_id = 1 AND uuid = ?", [lost["uuid"]])
    result = cli(tmp_path, server)
    assert result.returncode == 4
    day = lost["timestamp"].astimezone(UTC).date()
    assert listed_days(result.stdout)[(1, day)][2] == -1
