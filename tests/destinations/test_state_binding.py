"""The state a run continues from is the state of the destination it writes (issue: a new DuckDB file in another
folder got only the last increment). Whatever the folder, file, dataset or destination, a run either continues
exactly (the destination holds this pipeline's state at the local version) or restores what the destination
holds, or starts over from `start_date`: never a silent partial table. Real HTTP, real DuckDB files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from pipelines.runner import RunOptions, run
from posthog_source.config import load_settings
from tests.helpers import read_rows
from tests.integration.test_events import assert_events_exact

TABLES = ["events", "persons", "person_distinct_ids"]


def run_at(server: Any, pipelines: Path, duckdb_file: Path, dataset: str = "posthog") -> Any:
    return run(RunOptions(
        resources=TABLES, pipeline_name="posthog", duckdb_path=str(duckdb_file), pipelines_dir=str(pipelines),
        dataset_name=dataset,
        settings=load_settings(api_key=server.world.keys["full"], host=server.url, start_date="2025-06-01",
                               ingestion_lag="0")))


def events_in(duckdb_file: Path, dataset: str = "posthog") -> int:
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        return con.execute(f'SELECT count(*) FROM "{dataset}".events').fetchone()[0]


def total_events(world: Any) -> int:
    return sum(len(world.truth_events(p["id"])) for p in world.projects)


def test_a_deleted_file_starts_over(make_fake_server, tmp_path):
    server = make_fake_server(seed=51, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    (tmp_path / "warehouse.duckdb").unlink()
    server.world.add_events(1, 25)
    result = run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    assert result.state_origin == "none"
    assert_events_exact(server.world, tmp_path)


def test_a_dropped_schema_starts_over(make_fake_server, tmp_path):
    server = make_fake_server(seed=52, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("DROP SCHEMA posthog CASCADE")
    server.world.add_events(1, 25)
    result = run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    assert result.state_origin == "none"
    assert_events_exact(server.world, tmp_path)


def test_another_file_for_the_same_pipeline_starts_over(make_fake_server, tmp_path):
    """A changed DESTINATION__DUCKDB__CREDENTIALS: the new file gets everything, the old one stays as it was."""
    server = make_fake_server(seed=53, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "first.duckdb")
    server.world.add_events(1, 25)
    (tmp_path / "second").mkdir()
    result = run_at(server, tmp_path / "pipelines", tmp_path / "second" / "warehouse.duckdb")
    assert result.state_origin == "none"
    assert_events_exact(server.world, tmp_path / "second")
    # and back to the first file: its state is older than the local one (the second file's): restored from it
    server.world.add_events(2, 15)
    back = run_at(server, tmp_path / "pipelines", tmp_path / "first.duckdb")
    assert back.state_origin == "destination"
    shutil.copy(tmp_path / "first.duckdb", tmp_path / "warehouse.duckdb")
    assert_events_exact(server.world, tmp_path)


def test_a_renamed_dataset_starts_over(make_fake_server, tmp_path):
    server = make_fake_server(seed=54, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    server.world.add_events(1, 25)
    result = run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb", dataset="posthog_v2")
    assert result.state_origin == "none"
    assert events_in(tmp_path / "warehouse.duckdb", "posthog_v2") == total_events(server.world)


def test_an_older_copy_of_the_destination_is_continued_from_its_own_state(make_fake_server, tmp_path):
    """The file was restored from a backup taken after the first run; the local state is the second run's."""
    server = make_fake_server(seed=55, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    shutil.copy(tmp_path / "warehouse.duckdb", tmp_path / "backup.duckdb")
    server.world.add_events(1, 25)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    shutil.copy(tmp_path / "backup.duckdb", tmp_path / "warehouse.duckdb")
    server.world.add_events(2, 15)
    result = run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    assert result.state_origin == "destination"
    assert_events_exact(server.world, tmp_path)


def test_the_same_destination_continues_from_the_local_state(make_fake_server, tmp_path):
    server = make_fake_server(seed=56, events=3_000)
    run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    new = server.world.add_events(1, 25)
    result = run_at(server, tmp_path / "pipelines", tmp_path / "warehouse.duckdb")
    assert result.state_origin == "local"
    assert result.rows_extracted["events"] < 100 and len(new) == 25  # an increment
    assert_events_exact(server.world, tmp_path)


def test_two_folders_with_the_default_file_each_get_every_event(make_fake_server, tmp_path):
    """The README's cron line run from another folder: `./posthog_pipeline.duckdb` there is new, so that run
    starts over (and says so in one line) instead of continuing from the first folder's state."""
    server = make_fake_server(seed=57, events=3_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
                "SOURCES__POSTHOG__START_DATE": "2025-06-01", "SOURCES__POSTHOG__INGESTION_LAG": "0",
                "DLT_DATA_DIR": str(tmp_path / "dlt")})  # one pipeline folder for both, as ~/.dlt is
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        if folder == "b":
            server.world.add_events(1, 25)
        done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--resources", ",".join(TABLES)],
                              env=env, cwd=tmp_path / folder, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert "starting over" in done.stderr
    assert events_in(tmp_path / "b" / "posthog_pipeline.duckdb") == total_events(server.world)
    shutil.copy(tmp_path / "b" / "posthog_pipeline.duckdb", tmp_path / "warehouse.duckdb")
    assert_events_exact(server.world, tmp_path)
    assert read_rows(tmp_path, "persons")


def test_the_run_lock_outlives_a_dropped_local_state(tmp_path):
    """A run that drops its local state (its destination does not hold it) keeps its lock: a second run of the
    same pipeline still refuses (the lock file was inside the dropped folder before)."""
    import pytest

    from pipelines.runner import make_pipeline, single_run
    from posthog_source.errors import ConfigurationError

    options = RunOptions(pipeline_name="posthog", duckdb_path=str(tmp_path / "warehouse.duckdb"),
                         pipelines_dir=str(tmp_path / "pipelines"))
    pipeline = make_pipeline(options)
    with single_run(pipeline):
        pipeline.drop()
        with pytest.raises(ConfigurationError, match="already running"), single_run(make_pipeline(options)):
            pass
