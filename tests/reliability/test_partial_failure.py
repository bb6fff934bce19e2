"""One table never sinks a run (posthog_source/failures.py): a table PostHog refuses, or whose reads keep failing,
keeps what the destination had and is named; every other table loads exact and commits its state; exit 5.
Over real HTTP against the fake, into real DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_posthog.server import ApiError
from posthog_source.catalogue import ENDPOINTS
from tests.helpers import read_rows, run_pipeline, table_exists
from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_exactness import assert_cohort_people_exact, assert_sessions_exact
from tests.integration.test_metadata import assert_tables_match_server

FEATURE_FLAGS = next(e for e in ENDPOINTS if e.table == "feature_flags")


def test_an_old_self_hosted_posthog_without_sessions_loads_every_other_table(make_fake_server, tmp_path):
    """PostHog answers `Unknown table `sessions`.` (database.py `get_table`) where the table does not exist."""
    server = make_fake_server(seed=31, events=5_000, missing_tables={"sessions"})
    world = server.world
    result = run_pipeline(server, tmp_path)
    assert list(result.failed_tables) == ["sessions"]
    assert "Unknown table `sessions`." in result.failed_tables["sessions"]
    assert "--exclude" in result.failed_tables["sessions"]
    assert not table_exists(tmp_path, "sessions")
    assert_events_exact(world, tmp_path)
    assert_persons_exact(world, tmp_path)
    assert_cohort_people_exact(world, tmp_path)
    assert_tables_match_server(world, tmp_path)
    assert result.rows_extracted["events"] > 0 and "sessions" not in result.rows_extracted

    # the refusal is lifted (PostHog upgraded): sessions load exact, and the others carry on from their state
    server.missing_tables = frozenset()
    world.add_events(1, 40)
    again = run_pipeline(server, tmp_path)
    assert again.failed_tables == {}
    assert_sessions_exact(world, tmp_path)
    assert_events_exact(world, tmp_path)
    assert again.rows_extracted["events"] < 200  # an increment, not a re-read: events committed their state


def failing_second_pages(server: Any, path_part: str) -> None:
    """Every request for the second and later pages of one list answers 500 (with `Retry-After: 0`, so the
    client's retries are spent at once): PostHog failing mid-list."""
    original = server.throttle

    def throttle(key: Any, route: Any, req: Any) -> None:
        if path_part in req.path and int(req.params.get("offset") or 0) > 0:
            raise ApiError(500, "server_error", "error", "A server error occurred.", headers={"Retry-After": "0"})
        original(key, route, req)

    server.throttle = throttle


def flag_rows(workdir: Path) -> dict[tuple[int, Any], dict[str, Any]]:
    return {(r["project_id"], r["id"]): r for r in read_rows(workdir, "feature_flags")}


def test_a_snapshot_failing_on_its_second_page_keeps_the_rows_it_had(make_fake_server, tmp_path):
    server = make_fake_server(seed=32, events=4_000)
    world = server.world
    tables = ["events", "persons", "person_distinct_ids", "feature_flags", "cohorts"]
    assert run_pipeline(server, tmp_path, resources=tables).failed_tables == {}
    before = flag_rows(tmp_path)
    assert len([k for k in before if k[0] == 1]) > 100  # project 1's flags span several pages
    flags = world.visible_objects("feature_flags", 1)
    world.edit_object("feature_flags", 1, flags[0]["id"], name="renamed after the first run")
    world.delete_object("feature_flags", 1, flags[1]["id"])
    new_events = set(world.add_events(1, 30))

    original_throttle = server.throttle
    failing_second_pages(server, "/feature_flags/")
    result = run_pipeline(server, tmp_path, resources=tables)
    assert list(result.failed_tables) == ["feature_flags"]
    assert flag_rows(tmp_path) == before  # neither wiped nor half replaced: the edit and deletion wait
    assert_events_exact(world, tmp_path)
    assert new_events <= {r["uuid"] for r in read_rows(tmp_path, "events")}
    assert_persons_exact(world, tmp_path)

    server.throttle = original_throttle  # PostHog recovers: the next run retries the table
    assert run_pipeline(server, tmp_path, resources=tables).failed_tables == {}
    after = flag_rows(tmp_path)
    assert after[(1, flags[0]["id"])]["name"] == "renamed after the first run"
    assert (1, flags[1]["id"]) not in after
    assert_tables_match_server(world, tmp_path, tables=["feature_flags", "cohorts"])


def test_the_command_line_names_each_failed_table_and_exits_5(make_fake_server, tmp_path):
    server = make_fake_server(seed=33, events=2_000, missing_tables={"sessions"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
                "SOURCES__POSTHOG__START_DATE": "2025-06-01", "SOURCES__POSTHOG__INGESTION_LAG": "0",
                "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "warehouse.duckdb"),
                "DLT_DATA_DIR": str(tmp_path / "dlt")})
    run = subprocess.run([sys.executable, "-m", "pipelines", "run", "--resources", "events,sessions,projects"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 5, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: table sessions: PostHog refused") and "Unknown table `sessions`." in errors[0]
    assert errors[-1].startswith("error: 1 table failed and kept what the destination had")
    assert "Traceback" not in run.stderr and server.world.keys["full"] not in run.stdout + run.stderr
    assert "events" in run.stdout  # the summary of what loaded is printed first
    assert_events_exact(server.world, tmp_path)

    excluded = subprocess.run([sys.executable, "-m", "pipelines", "run", "--exclude", "sessions"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert excluded.returncode == 0, excluded.stderr


def test_check_probes_each_hogql_table_and_names_what_this_posthog_lacks(make_fake_server, tmp_path):
    server = make_fake_server(seed=34, events=1_000, missing_tables={"sessions"}, record_queries=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
                "DLT_DATA_DIR": str(tmp_path / "dlt")})
    check = subprocess.run([sys.executable, "-m", "pipelines", "check"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    projects = [p["id"] for p in server.world.projects]
    for project in projects:
        assert (f"  project {project}: readable: events, persons, person_distinct_ids, cohort_people"
                in check.stdout)
        assert f"  project {project}: not readable: sessions (PostHog refused" in check.stdout
    assert "--exclude sessions" in check.stdout
    probes = [q for q in server.queries_seen if q.endswith("LIMIT 0")]
    assert len(probes) == 7 * len(projects)  # events, persons, raw_persons, distinct ids, sessions, 2 cohort tables


def test_a_failed_run_leaves_no_extract_folder_behind(make_fake_server, tmp_path):
    """A run that stops mid-extract (here the key is refused halfway: exit 3) leaves nothing in the pipeline's
    folder that a later run would not use (before: one abandoned extract folder per failure)."""
    server = make_fake_server(seed=35, events=1_000)
    original = server.throttle

    def refuse_queries(key: Any, route: Any, req: Any) -> None:
        if "/query/" in req.path:
            raise ApiError(401, "authentication_error", "authentication_failed", "Invalid personal API key.")
        original(key, route, req)

    server.throttle = refuse_queries
    for _ in range(3):
        with pytest.raises(Exception, match="API key"):
            run_pipeline(server, tmp_path, resources=["events", "feature_flags"])
    normalize = tmp_path / "pipelines" / "posthog" / "normalize"
    assert sorted(p.name for p in normalize.iterdir() if p.is_dir()) == ["extracted"]
    server.throttle = original
    assert run_pipeline(server, tmp_path, resources=["events", "feature_flags"]).failed_tables == {}
    assert_events_exact(server.world, tmp_path)
