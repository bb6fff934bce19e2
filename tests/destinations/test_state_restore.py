"""State with the data: a run on a worker without the local pipeline folder restores dlt's state from the
destination and continues incrementally (it does not start over), on DuckDB, PostgreSQL and parquet files.
Checked over real HTTP against the fake's ground truth, and by the rows the fake served."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.runner import RunOptions, state_origin
from tests.destinations.exact import run_into
from tests.destinations.readers import Reader, postgres_reader, views_reader
from tests.destinations.served import ServedEvents
from tests.helpers import read_rows
from tests.integration.test_events import assert_events_exact, assert_persons_exact

HOGQL = ["events", "persons", "person_distinct_ids"]


@pytest.fixture(params=["duckdb", "postgres", "filesystem"])
def destination(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Reader]:
    """The destination configured the dlt way, and how to read a table back from it."""
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
        return "postgres", postgres_reader(dsn)
    if request.param == "filesystem":
        monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(tmp_path / "lake"))
        return "filesystem", views_reader(tmp_path / "lake")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "warehouse.duckdb"))
    return "duckdb", lambda table: read_rows(tmp_path, table)


def test_a_fresh_worker_restores_the_state_and_reads_only_what_is_new(
    make_fake_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: tuple[str, Reader],
    check_rows_from: Any,
) -> None:
    name, read = destination
    check_rows_from(read)
    server = make_fake_server(seed=13, events=6_000)
    world = server.world
    served = ServedEvents(monkeypatch)
    probe = RunOptions(pipeline_name="posthog", destination=name, pipelines_dir=str(tmp_path / "pipelines"))
    assert state_origin(probe) == "none"
    first = run_into(server, tmp_path, name, resources=HOGQL, page_size=1_500)
    assert first.state_origin == "none"
    assert len(served.uuids) >= 6_000
    first_ended = datetime.now(UTC)

    assert state_origin(probe) == "local"
    shutil.rmtree(tmp_path / "pipelines")  # the worker is gone; only the destination remains
    assert state_origin(probe) == "destination"  # what `check` reports, without restoring anything
    assert not (tmp_path / "pipelines" / "posthog" / "state.json").exists()
    now = datetime.now(UTC)  # after the first run's watermark (add_events' default spreads over the last second)
    new = set(world.add_events(1, 120, created_at=now)) | set(world.add_events(2, 80, created_at=now,
                                                                              late_by=timedelta(days=2)))
    world.add_persons(3, 9)
    served.clear()
    second = run_into(server, tmp_path, name, resources=HOGQL, page_size=1_500)

    assert second.state_origin == "destination"
    assert_events_exact(world, None)
    assert_persons_exact(world, None)
    # Only what is new plus the look-back: every new event was served, and nothing ingested more than a day
    # before the first run ended (a run that started over would have served all 6,000 again).
    recent = {e["uuid"] for p in world.projects for e in world.truth_events(p["id"], as_dicts=True)
              if e["created_at"] >= first_ended - timedelta(days=1)}
    assert new <= set(served.uuids) <= recent, (len(served.uuids), len(new))
    assert len(served.uuids) == len(set(served.uuids))

    third = run_into(server, tmp_path, name, resources=HOGQL, page_size=1_500)
    assert third.state_origin == "local"
