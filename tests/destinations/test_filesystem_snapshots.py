"""Plain parquet files after several runs: every file carries its load id, and the views the run writes with
the data (pipelines/destinations/lake.py, docs/destinations.md) return each table's current rows exactly,
although the files hold every run's rows (snapshot tables re-read each run, merged tables appended)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.destinations.lake import VIEWS_FILE
from tests.destinations.exact import assert_every_table_exact, run_into
from tests.destinations.readers import views_reader


@pytest.fixture
def bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "lake"
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(path))
    return path


def change_the_world(world: Any, round_: int) -> None:
    """Edited, deleted and new metadata, new persons, new and late events (ingested now, after the watermark)."""
    now = datetime.now(UTC)
    world.add_events(1, 150, created_at=now)
    world.add_events(2, 60, created_at=now, late_by=timedelta(days=3))
    world.add_persons(2, 12)
    world.add_persons(3, 4)
    someone = world.truth_distinct_ids(1)[round_ * 7]["distinct_id"]
    world.set_person_properties(1, someone, set={"plan": f"round {round_}"})  # a changed person: a newer row
    world.delete_person(2, world.truth_persons(2)[round_]["id"])  # a deletion row hides the person's old rows
    flags = world.visible_objects("feature_flags", 1)
    world.edit_object("feature_flags", 1, flags[0]["id"], name=f"renamed in round {round_}", active=False)
    world.delete_object("feature_flags", 1, flags[1]["id"])
    world.add_object("feature_flags", 2, key=f"new-flag-{round_}")
    world.delete_object("cohorts", 1, world.visible_objects("cohorts", 1)[0]["id"])


def raw_rows(bucket: Path, table: str) -> int:
    with duckdb.connect() as con:
        pattern = str(bucket / "posthog" / table / "*.parquet")
        return int(con.execute(f"SELECT count(*) FROM read_parquet('{pattern}', union_by_name = true)").fetchone()[0])


def test_three_runs_read_back_exactly_through_the_views(
    make_fake_server: Any, tmp_path: Path, bucket: Path, check_rows_from: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_fake_server(seed=11, events=8_000)
    world = server.world
    read = views_reader(bucket)
    check_rows_from(read)
    caplog.set_level(logging.INFO)
    for round_ in range(3):
        if round_:
            change_the_world(world, round_)
        run_into(server, tmp_path, "filesystem", page_size=2_000, late_sweep="0")
        counts = assert_every_table_exact(world, read)
    assert {f["name"] for f in read("feature_flags")} >= {"renamed in round 2"}

    # The files hold every run's rows: without the rule, snapshots would count (about) three times.
    assert raw_rows(bucket, "cohorts") > 2.5 * counts["cohorts"]
    assert raw_rows(bucket, "feature_flags") > counts["feature_flags"] * 2
    # Every file says which load wrote it, Arrow pages (events, persons, distinct ids) included.
    with duckdb.connect() as con:
        files = sorted((bucket / "posthog").glob("*/*.parquet"))
        assert files
        for file in files:
            if file.parent.name.startswith("_dlt"):
                continue
            names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{file}')").fetchall()]
            assert "_dlt_load_id" in names, file
    # One line says what append-only means here; dlt's per-table warnings are not shown.
    messages = [r.getMessage() for r in caplog.records]
    noise = ("Falling back to `append`", "hard_delete", "when merging arrow schema with dlt schema")
    assert not [m for m in messages if any(n in m for n in noise)]
    assert sum("append-only" in m for m in messages) == 3
    assert (bucket / "posthog" / VIEWS_FILE).exists()


def test_a_load_killed_before_it_completed_is_not_read_and_the_next_run_finishes_it(
    make_fake_server: Any, tmp_path: Path, bucket: Path, check_rows_from: Any,
) -> None:
    """Killed after writing every file of its load but before dlt recorded the load: the views still show the
    previous run (a half-written snapshot never replaces a whole one); the next run completes it, exactly."""
    from tests.reliability.conftest import cli_env, run_cli

    server = make_fake_server(seed=5, events=3_000)
    world = server.world
    env = cli_env(tmp_path, server, DESTINATION__FILESYSTEM__BUCKET_URL=str(bucket))
    command = ["run", "--destination", "filesystem"]
    assert run_cli(command, env, tmp_path).code == 0
    read = views_reader(bucket)
    check_rows_from(read)
    assert_every_table_exact(world, read)
    flag = world.visible_objects("feature_flags", 1)[0]
    world.edit_object("feature_flags", 1, flag["id"], name="renamed while killed")
    killed = run_cli(command, env, tmp_path, kill_at="during:load")
    assert killed.code == -9, killed.stderr[-2000:]
    assert "renamed while killed" not in {f["name"] for f in read("feature_flags")}
    rerun = run_cli(command, env, tmp_path)
    assert rerun.code == 0, rerun.stderr[-2000:]
    assert_every_table_exact(world, read)
    assert "renamed while killed" in {f["name"] for f in read("feature_flags")}
