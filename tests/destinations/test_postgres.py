"""PostgreSQL for real: every table loaded, merged on a second run, and a backfill fanned out over processes,
each compared with the fake's ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.backfill import MARKER_TABLE
from tests.destinations.exact import assert_every_table_exact, mutate_everything, run_into
from tests.destinations.readers import postgres_reader
from tests.integration.test_events import assert_events_exact

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The destination configured the way a user would: DESTINATION__POSTGRES__CREDENTIALS."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    return postgres_dsn


def test_every_table_is_exact_in_postgres_and_merges_on_the_next_run(
    make_fake_server, tmp_path, postgres, check_rows_from
):
    server = make_fake_server(seed=11, events=20_000)
    read = postgres_reader(postgres)
    check_rows_from(read)
    run_into(server, tmp_path, "postgres", page_size=4_000)
    counts = assert_every_table_exact(server.world, read)
    assert counts["events"] >= 20_000 and counts["feature_flags"] > 200 and counts["annotations"] > 1000

    mutate_everything(server.world)
    run_into(server, tmp_path, "postgres", page_size=4_000)
    assert_every_table_exact(server.world, read)
    assert "renamed flag" in {f["name"] for f in read("feature_flags")}


def test_backfill_fanned_out_over_processes_into_postgres_is_exact(make_fake_server, tmp_path, postgres,
                                                                   check_rows_from):
    """Three `posthog-pipeline backfill` processes, own pipeline names, disjoint ranges, loading at once."""
    server = make_fake_server(seed=21, events=20_000)
    ranges = [("2025-12-01", "2026-01-10"), ("2026-01-10", "2026-02-14"), ("2026-02-14", "2026-03-20")]
    env = {
        **os.environ,
        "DESTINATION__POSTGRES__CREDENTIALS": postgres,
        "SOURCES__POSTHOG__API_KEY": server.world.keys["full"],
        "SOURCES__POSTHOG__HOST": server.url,
        "SOURCES__POSTHOG__PAGE_SIZE": "2000",
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "PYTHONPATH": str(REPO),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines", "backfill", "--destination", "postgres", "--pipeline-name",
             f"backfill_{i}", "--start-date", start, "--end-date", end, "--window", "7d", "--workers", "2",
             "--no-handover"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i, (start, end) in enumerate(ranges)
    ]
    outputs = [process.communicate(timeout=240)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    read = postgres_reader(postgres)
    check_rows_from(read)
    assert_events_exact(server.world, None)
    markers = read(MARKER_TABLE)
    assert {m["pipeline_name"] for m in markers} == {"backfill_0", "backfill_1", "backfill_2"}
    assert len(markers) == len({(m["window_start"], m["window_end"]) for m in markers})


@pytest.mark.parametrize("kill_at", ["during:load", "after:normalize"])
def test_a_re_merge_killed_in_its_load_never_shows_an_event_missing_in_postgres(make_fake_server, tmp_path,
                                                                               postgres_dsn, kill_at):
    """dlt merges events into PostgreSQL with delete-insert in one transaction: killed in its load, a run that
    replaces every loaded event leaves each event visible (old copy or new); the next run ends exact."""
    from tests.reliability.conftest import cli_env, run_cli

    server = make_fake_server(seed=12, events=3_000)
    world = server.world
    env = cli_env(tmp_path, server, DESTINATION__POSTGRES__CREDENTIALS=postgres_dsn)
    command = ["run", "--destination", "postgres", "--resources", "events"]
    assert run_cli(command, env, tmp_path).code == 0
    read = postgres_reader(postgres_dsn)
    loaded = {(r["project_id"], r["uuid"]) for r in read("events")}
    world.con.execute("UPDATE events SET properties = json_merge_patch(properties, '{\"changed\": true}')")
    killed = run_cli([*command, "--full-refresh"], env, tmp_path, kill_at=kill_at)
    assert killed.code == -9, killed.stderr[-2000:]
    assert {(r["project_id"], r["uuid"]) for r in read("events")} == loaded  # none missing at the kill
    rerun = run_cli(command, env, tmp_path)
    assert rerun.code == 0, rerun.stderr[-2000:]
    rows = read("events")
    assert len(rows) == len({(r["project_id"], r["uuid"]) for r in rows}) == len(loaded)
    assert all('"changed": true' in r["properties"].replace('":true', '": true') for r in rows)
