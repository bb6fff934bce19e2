"""Used as dlt users use a source, `dlt.pipeline(...).run(posthog_source(...))`, the result is what the CLI
produces: exact on DuckDB, and on parquet files through `pipelines.destinations.lake.load_files` (the views of
each table's current rows: no sentinel rows, no copies after a second run); and quiet (before: 48 warnings a run)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dlt

from pipelines.destinations.lake import load_files
from posthog_source import posthog_source
from tests.destinations.readers import views_reader
from tests.helpers import read_rows
from tests.integration.test_events import assert_events_exact

TABLES = ("events", "persons", "feature_flags")


def source_of(server: Any) -> Any:
    return posthog_source(api_key=server.world.keys["full"], host=server.url, start_date="2025-06-01",
                          ingestion_lag="0").with_resources(*TABLES)


def change(world: Any) -> None:
    flags = world.visible_objects("feature_flags", 1)
    world.delete_object("feature_flags", 1, flags[0]["id"])
    world.add_events(1, 20)


def flags_of(world: Any) -> set[tuple[int, Any]]:
    return {(p["id"], f["id"]) for p in world.projects for f in world.visible_objects("feature_flags", p["id"])}


def test_duckdb_from_python_is_exact_and_quiet(make_fake_server, tmp_path, caplog):
    server = make_fake_server(seed=61, events=2_000)
    pipeline = dlt.pipeline("library", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
                            dataset_name="posthog")
    with caplog.at_level(logging.WARNING, logger="dlt"):
        pipeline.run(source_of(server))
        change(server.world)
        pipeline.run(source_of(server))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert_events_exact(server.world, tmp_path)
    assert {(r["project_id"], r["id"]) for r in read_rows(tmp_path, "feature_flags")} == flags_of(server.world)


def test_parquet_from_python_reads_current_rows_through_the_views(make_fake_server, tmp_path: Path):
    server = make_fake_server(seed=62, events=2_000)
    pipeline = dlt.pipeline("library", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=dlt.destinations.filesystem(str(tmp_path / "lake")), dataset_name="posthog")
    load_files(pipeline, source_of(server))
    change(server.world)
    load_files(pipeline, source_of(server))
    read = views_reader(tmp_path / "lake")
    flags = read("feature_flags")
    assert {(r["project_id"], r["id"]) for r in flags} == flags_of(server.world)  # no sentinel, no old copy
    events = read("events")
    expected = {(p["id"], e["uuid"]) for p in server.world.projects for e in server.world.truth_events(p["id"],
                                                                                                      as_dicts=True)}
    keys = [(r["project_id"], r["uuid"]) for r in events]
    assert len(keys) == len(set(keys)) and set(keys) == expected
