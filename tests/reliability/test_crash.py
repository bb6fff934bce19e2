"""Crash safety: SIGKILL at chosen points of a run or a backfill; the next run ends exact.

The CLI runs in a subprocess (tests/reliability/cli_wrapper.py) that kills itself at a deterministic point;
the fake PostHog runs in this process, so the world can change between the kill and the re-run.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from benchmarks.resume import pad_properties
from fake_posthog import FakePostHog
from posthog_source.catalogue import ENDPOINTS
from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_metadata import assert_same_values, expected_rows, loaded_rows
from tests.reliability.conftest import cli_env, run_cli, start_cli

METADATA = ["feature_flags", "cohorts"]
RUN = ["run", "--resources", ",".join(["events", "persons", "person_distinct_ids", *METADATA])]
BACKFILL = ["backfill", "--start-date", "2025-12-01", "--end-date", "2026-03-16", "--window", "21d",
            "--workers", "2", "--no-handover"]
KILLED = -signal.SIGKILL


def assert_run_tables_exact(world: object, workdir: Path) -> None:
    assert_events_exact(world, workdir)
    assert_persons_exact(world, workdir)
    for endpoint in (e for e in ENDPOINTS if e.table in METADATA):
        expected, loaded = expected_rows(world, endpoint), loaded_rows(workdir, endpoint)
        assert set(loaded) == set(expected), endpoint.table
        for key, row in expected.items():
            assert_same_values(row, loaded[key], endpoint)


@pytest.mark.parametrize(("command", "kill_at"), [
    (RUN, "pages:3"),  # mid-extract, some pages fetched
    (RUN, "after:extract"),  # extracted package on disk, not normalized
    (RUN, "during:normalize"),  # package committed as normalized, extracted copy not yet removed
    (RUN, "after:normalize"),  # normalized, not loaded
    (RUN, "during:load"),  # rows in the destination, package not marked loaded
    (RUN, "committed:events"),  # the appended events committed, their job not marked done
    (BACKFILL, "backfill:1"),  # between backfill batches
    (BACKFILL, "pages:4"),  # inside a backfill batch
], ids=lambda v: v if isinstance(v, str) else v[0])
def test_rerun_after_sigkill_is_exact(make_fake_server: Callable[..., FakePostHog], tmp_path: Path,
                                      command: list[str], kill_at: str) -> None:
    server = make_fake_server(seed=17, events=3_000)
    world = server.world
    env = cli_env(tmp_path, server, SOURCES__POSTHOG__PAGE_SIZE="400")
    killed = run_cli(command, env, tmp_path, kill_at=kill_at)
    assert killed.code == KILLED, killed.stderr[-2000:]
    if command is RUN:  # new data arrives before the re-run: pending and new rows must both land once
        world.add_events(1, 150, created_at=datetime.now(UTC))
        world.add_persons(2, 10)
        world.delete_object("feature_flags", 1, world.visible_objects("feature_flags", 1)[0]["id"])
    rerun = run_cli(command, env, tmp_path)
    assert rerun.code == 0, rerun.stderr[-3000:]
    if command is RUN:
        assert_run_tables_exact(world, tmp_path)
    else:
        assert_events_exact(world, tmp_path)


@pytest.mark.parametrize("kill_at", ["during:load", "committed:events", "deleting:1"])
def test_a_killed_merge_reruns_exact(make_fake_server: Callable[..., FakePostHog], tmp_path: Path,
                                     kill_at: str) -> None:
    """A run that replaces loaded events (here a full refresh of events that all changed), killed in its load:
    when the new copies are partly appended, or all of them and dlt has not noted it, or between the batches
    that delete the old copies. Right after the kill every event is still in the file (old copy or new: the
    old ones are deleted only after the new ones are in; before, a kill in the load of a re-merge of 300,000
    events left 0 of them). The re-run ends with every event once, new."""
    server = make_fake_server(seed=17, events=3_000)
    world = server.world
    env = cli_env(tmp_path, server, SOURCES__POSTHOG__PAGE_SIZE="400")
    assert run_cli(RUN, env, tmp_path).code == 0
    loaded = visible_events(tmp_path)
    world.con.execute("UPDATE events SET properties = json_merge_patch(properties, '{\"changed\": true}')")
    killed = run_cli([*RUN, "--full-refresh"], env, tmp_path, kill_at=kill_at, delete_batch_row_groups=1)
    assert killed.code == KILLED, killed.stderr[-2000:]
    assert visible_events(tmp_path) == loaded  # none missing at the instant of the kill
    world.add_events(1, 150, created_at=datetime.now(UTC))
    rerun = run_cli(RUN, env, tmp_path, delete_batch_row_groups=1)
    assert rerun.code == 0, rerun.stderr[-3000:]
    assert_run_tables_exact(world, tmp_path)


def visible_events(workdir: Path) -> set[tuple[int, str]]:
    """The events a reader of the DuckDB file sees now (each key once, whatever copies it has)."""
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return set(con.execute("SELECT DISTINCT project_id, uuid FROM posthog.events").fetchall())


def test_second_concurrent_run_refuses(make_fake_server: Callable[..., FakePostHog], tmp_path: Path) -> None:
    """While one run holds the pipeline, a second exits 2 saying so; the held run, once killed, is recovered."""
    server = make_fake_server(seed=17, events=1_000)
    env = cli_env(tmp_path, server)
    args = ["run", "--resources", "events,cohorts"]
    first = start_cli(args, env, tmp_path, kill_at="hold:extract")
    try:
        marker = tmp_path / "dlt" / "holding"
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert first.poll() is None and time.monotonic() < deadline, "first run did not start"
            time.sleep(0.1)
        second = run_cli(args, env, tmp_path)
    finally:
        first.kill()
        first.wait()
    assert second.code == 2, second.stderr
    assert second.error_lines() == [
        "error: pipeline 'posthog_pipeline' is already running in another process; wait for it to finish "
        "(or use a different --pipeline-name for a separate run)"
    ]
    assert "Traceback" not in second.stderr
    assert run_cli(args, env, tmp_path).code == 0
    assert_events_exact(server.world, tmp_path)


# Small enough for the suite, large for the limit: 70,000 events of ~1 KB (70 MB of properties) under a 64 MB
# DuckDB limit, about the proportions of 300k 1 KB events under the 384 MB users get (benchmarks/resume.py
# runs that size at every kill point).
SMALL_LIMIT = "64MB"
LARGE_RUN = ["run", "--resources", "events"]


@pytest.fixture
def padded_server(make_fake_server: Callable[..., FakePostHog]) -> FakePostHog:
    server = make_fake_server(seed=17, events=70_000)
    assert pad_properties(server.world, 1024) > 900
    return server


@pytest.mark.parametrize("kill_at", ["after:extract", "during:load"])
def test_large_rows_resume_after_sigkill_within_the_memory_limit(padded_server: FakePostHog, tmp_path: Path,
                                                                  kill_at: str) -> None:
    env = cli_env(tmp_path, padded_server, SOURCES__POSTHOG__PAGE_SIZE="10000")
    killed = run_cli(LARGE_RUN, env, tmp_path, kill_at=kill_at, duckdb_memory_limit=SMALL_LIMIT)
    assert killed.code == KILLED, killed.stderr[-2000:]
    rerun = run_cli(LARGE_RUN, env, tmp_path, duckdb_memory_limit=SMALL_LIMIT)
    assert rerun.code == 0, rerun.stderr[-3000:]
    assert_events_exact(padded_server.world, tmp_path)


def test_re_merging_every_loaded_event_fits_the_memory_limit(padded_server: FakePostHog, tmp_path: Path) -> None:
    """A full refresh re-reads every event; here each one changed, so every row is replaced. DuckDB's MERGE
    held every updated row in memory ("failed to pin block" at the limit); delete + insert spills. DuckDB also
    holds memory for every row group one DELETE touches, so the old copies are deleted in batches of row
    groups (4.8M events failed in one); batches of 2 here, so that these 70k events take several."""
    env = cli_env(tmp_path, padded_server, SOURCES__POSTHOG__PAGE_SIZE="10000")
    assert run_cli(LARGE_RUN, env, tmp_path, duckdb_memory_limit=SMALL_LIMIT).code == 0
    padded_server.world.con.execute(
        "UPDATE events SET properties = replace(properties, '\"padding\":\"', '\"padding\":\"changed ')")
    rerun = run_cli([*LARGE_RUN, "--full-refresh"], env, tmp_path, duckdb_memory_limit=SMALL_LIMIT,
                    delete_batch_row_groups=2)
    assert rerun.code == 0, rerun.stderr[-3000:]
    total = sum(padded_server.world.stats()["events"].values())
    assert f"deleted the {total} old copies of the events to load" in rerun.stderr, rerun.stderr[-3000:]
    assert_events_exact(padded_server.world, tmp_path)


def test_a_merge_killed_between_its_delete_batches_ends_exact(padded_server: FakePostHog, tmp_path: Path) -> None:
    """Batched deletes are not one transaction: a run killed after some of them leaves old copies beside their
    new ones (never an event missing). The next run keeps the newest copy of each key first."""
    env = cli_env(tmp_path, padded_server, SOURCES__POSTHOG__PAGE_SIZE="10000")
    assert run_cli(LARGE_RUN, env, tmp_path, duckdb_memory_limit=SMALL_LIMIT).code == 0
    padded_server.world.con.execute(
        "UPDATE events SET properties = replace(properties, '\"padding\":\"', '\"padding\":\"changed ')")
    killed = run_cli([*LARGE_RUN, "--full-refresh"], env, tmp_path, kill_at="deleting:2",
                     duckdb_memory_limit=SMALL_LIMIT, delete_batch_row_groups=2)
    assert killed.code == KILLED, killed.stderr[-2000:]
    total = sum(padded_server.world.stats()["events"].values())
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows, keys = con.execute("SELECT count(*), count(DISTINCT (project_id, uuid)) FROM posthog.events").fetchone()
    assert keys == total < rows < 2 * total  # the kill came between the batches; every event visible
    rerun = run_cli(LARGE_RUN, env, tmp_path, duckdb_memory_limit=SMALL_LIMIT, delete_batch_row_groups=2)
    assert rerun.code == 0, rerun.stderr[-3000:]
    assert f"removed {rows - total} events that were in the table twice" in rerun.stderr, rerun.stderr[-3000:]
    assert_events_exact(padded_server.world, tmp_path)


def test_very_wide_events_load_within_the_loaders_memory(tmp_path, monkeypatch):
    """`$exception` / `$ai_generation` events of 10-50 KB: a parquet row group of dlt's default 5,000 rows of
    them is larger than the loader's DuckDB memory, which DuckDB must hold whole. Row groups are cut by rows
    and written slice by slice (a few MB each), so the load fits in the memory users get (~22 KB events)
    without raising the loader's pool."""
    from fake_posthog.server import FakePostHog
    from fake_posthog.world import World
    from pipelines.destinations import duckdb as loader
    from tests.conftest import FAKE_NOW
    from tests.helpers import read_rows, run_pipeline

    assert loader.DUCKDB_LOADER_CONFIG["memory_limit"] == "128MB"  # what users get
    shapes: list[loader.PendingShape] = []
    measure = loader.pending_shape
    monkeypatch.setattr(loader, "pending_shape", lambda pipeline: shapes.append(measure(pipeline)) or shapes[-1])
    with FakePostHog(World.generate(seed=9, events=12_000, now=FAKE_NOW, fat_share=0.7)) as server:
        run_pipeline(server, tmp_path, resources=["events"])
        assert len(read_rows(tmp_path, "events")) == sum(server.world.stats()["events"].values())
    widest = max(shape.row_bytes or 0 for shape in shapes)
    assert widest > 10_000  # the test's rows are what it says
    assert max(shape.row_group_bytes for shape in shapes) < 12 * 2**20  # 1,000 such rows: ~22 MB
    assert {loader.loader_memory_limit(shape) for shape in shapes} == {"128MB"}
