"""Backfills: windows in parallel, resumed after a crash, handed over to the incremental cursor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

import pipelines.backfill as backfill_module
from pipelines.backfill import MARKER_TABLE, backfill
from pipelines.runner import RunOptions
from posthog_source.config import load_settings
from tests.helpers import read_rows, run_pipeline
from tests.integration.test_events import assert_events_exact

START = pendulum.datetime(2025, 12, 1)  # the fake's data spans the 90 days before 2026-03-15


def day(text: str) -> pendulum.DateTime:
    return pendulum.parse(text, tz="UTC")  # type: ignore[return-value]


def options(server: Any, workdir: Path, workers: int, pipeline_name: str = "posthog_backfill") -> RunOptions:
    return RunOptions(
        pipeline_name=pipeline_name,
        duckdb_path=str(workdir / "warehouse.duckdb"),
        pipelines_dir=str(workdir / "pipelines"),
        settings=load_settings(api_key=server.world.keys["full"], host=server.url, ingestion_lag="0",
                               page_size=2_000, workers=workers),
    )


def test_backfill_in_parallel_windows_is_exact_and_hands_over(make_fake_server, tmp_path):
    server = make_fake_server(seed=21, events=30_000)
    world = server.world
    totals = backfill(options(server, tmp_path, workers=3), START, None, timedelta(days=7), handover_pipeline="posthog")
    assert_events_exact(world, tmp_path)
    markers = read_rows(tmp_path, MARKER_TABLE)
    assert len(markers) == len({(m["window_start"], m["window_end"]) for m in markers}) > 10
    assert totals["events"] >= 30_000

    # The incremental pipeline continues from the hand-over: late and new events arrive and are loaded.
    world.add_events(1, 200, late_by=timedelta(days=2))
    world.add_events(2, 300)
    run_pipeline(server, tmp_path, resources=["events"], pipeline_name="posthog", page_size=2_000)
    assert_events_exact(world, tmp_path)


def test_backfill_resumes_after_a_crash(make_fake_server, tmp_path, monkeypatch):
    server = make_fake_server(seed=22, events=20_000)
    real_run = backfill_module.run
    calls = {"n": 0}

    def crashing_run(run_options: RunOptions) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash between windows")
        return real_run(run_options)

    monkeypatch.setattr(backfill_module, "run", crashing_run)
    with pytest.raises(RuntimeError):
        backfill(options(server, tmp_path, workers=2), START, day("2026-03-16"), timedelta(days=3))
    finished_before = {(m["window_start"], m["window_end"]) for m in read_rows(tmp_path, MARKER_TABLE)}
    assert len(finished_before) == 6  # three batches of two windows

    monkeypatch.setattr(backfill_module, "run", real_run)
    seen: list[Any] = []

    def recording_run(run_options: RunOptions) -> Any:
        assert run_options.settings is not None
        seen.append(run_options.settings.start_date)
        return real_run(run_options)

    monkeypatch.setattr(backfill_module, "run", recording_run)
    backfill(options(server, tmp_path, workers=2), START, day("2026-03-16"), timedelta(days=3))
    assert min(seen) > START  # resumed after the finished windows instead of starting over (instants)
    assert_events_exact(server.world, tmp_path)


def test_the_scope_of_a_backfill_names_projects_configured_anywhere(make_fake_server, tmp_path, monkeypatch):
    """Before: only --projects counted, so windows of projects set in TOML or env were recorded as "all", and a
    later backfill of all projects skipped them without a word."""
    server = make_fake_server(seed=22, events=3_000)
    monkeypatch.setenv("SOURCES__POSTHOG__PROJECT_IDS", "1")
    backfill(options(server, tmp_path, workers=2), day("2026-03-10"), day("2026-03-12"), timedelta(days=1))
    assert {m["scope"] for m in read_rows(tmp_path, MARKER_TABLE)} == {"projects:1"}
    monkeypatch.delenv("SOURCES__POSTHOG__PROJECT_IDS")
    # every project now
    backfill(options(server, tmp_path, workers=2), day("2026-03-10"), day("2026-03-12"), timedelta(days=1))
    assert {m["scope"] for m in read_rows(tmp_path, MARKER_TABLE)} == {"projects:1", "projects:all"}
    loaded = {r["project_id"] for r in read_rows(tmp_path, "events")}
    assert loaded >= {1, 2}
