"""`--start-date` as a user gives it: refused in the future, and said to be unused on a pipeline with state."""

from __future__ import annotations

from typing import Any

from tests.integration.test_cli import cli


def env_for(server: Any, tmp_path: Any) -> dict[str, str]:
    return {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "w.duckdb")}


def test_a_start_date_on_a_pipeline_with_state_is_said_to_be_unused(make_fake_server, tmp_path):
    server = make_fake_server(seed=41, events=1_500)
    env = env_for(server, tmp_path)
    first = cli(["run", "--resources", "events", "--start-date", "2025-01-01"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "was not used" not in first.stderr
    again = cli(["run", "--resources", "events", "--start-date", "2024-01-01"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "--start-date 2024-01-01 was not used" in again.stderr
    assert "posthog-pipeline backfill --start-date 2024-01-01" in again.stderr


def test_a_start_date_in_the_future_is_refused_before_anything_is_read(make_fake_server, tmp_path):
    server = make_fake_server(seed=41, events=500)
    result = cli(["run", "--resources", "events", "--start-date", "2999-01-01"], env_for(server, tmp_path), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: start_date 2999-01-01") and "in the future" in result.stderr
    assert not [line for line in server.request_log if "/query" in str(line)]


def test_check_says_where_the_next_run_finds_its_state(make_fake_server, tmp_path):
    import shutil

    server = make_fake_server(seed=42, events=800)
    env = env_for(server, tmp_path)
    before = cli(["check"], env, tmp_path)
    assert before.returncode == 0, before.stderr
    assert "state of pipeline 'posthog_pipeline' (duckdb): none yet" in before.stdout
    assert cli(["run", "--resources", "events"], env, tmp_path).returncode == 0
    assert "in the local pipeline folder" in cli(["check"], env, tmp_path).stdout
    shutil.rmtree(tmp_path / "dlt")  # a fresh worker: no local folder
    assert "in the destination (restored by the next run)" in cli(["check"], env, tmp_path).stdout
