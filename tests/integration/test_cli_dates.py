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
