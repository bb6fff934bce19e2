"""The command line as users run it: a subprocess with config in environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env["DLT_DATA_DIR"] = str(cwd / "dlt")  # pipeline state of this test only
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "pipelines", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def server(make_fake_server: Any) -> Any:
    return make_fake_server(seed=4, events=1_000)


def test_check_lists_projects_and_what_can_be_read(server, tmp_path):
    key = server.world.keys["limited"]
    result = cli(["check"], {"SOURCES__POSTHOG__API_KEY": key, "SOURCES__POSTHOG__HOST": server.url}, tmp_path)
    assert result.returncode == 0, result.stderr
    for project in server.world.projects:
        assert f"  {project['id']}  " in result.stdout
    assert "not readable: feature_flags (add the scope 'feature_flag:read'" in result.stdout
    assert key not in result.stdout + result.stderr


def test_check_with_a_wrong_key_exits_3_with_one_line(server, tmp_path):
    key = "phx_" + "x" * 40
    result = cli(["check"], {"SOURCES__POSTHOG__API_KEY": key, "SOURCES__POSTHOG__HOST": server.url}, tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: PostHog rejected the API key")
    assert key not in result.stdout + result.stderr


def test_run_then_report_from_the_command_line(server, tmp_path):
    env = {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
           "SOURCES__POSTHOG__START_DATE": "2025-06-01", "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "w.duckdb")}
    result = cli(["run", "--resources", "events,persons,person_distinct_ids,projects"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "events" in result.stdout
    report = cli(["report", "--html", str(tmp_path / "r.html")], env, tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Active users" in report.stdout and (tmp_path / "r.html").exists()
