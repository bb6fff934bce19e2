"""Every table of a run compared with the fake's ground truth, whatever destination it landed in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pipelines.runner import RunOptions, RunResult, run
from posthog_source import ALL_TABLES
from posthog_source.config import load_settings
from tests.destinations.readers import Reader
from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_exactness import assert_cohort_people_exact, assert_sessions_exact
from tests.integration.test_metadata import assert_tables_match_server


def assert_every_table_exact(world: Any, read: Reader) -> dict[str, int]:
    """Events, persons, distinct ids, every project table, projects and organisations; returns the row count
    of each table (for the report). Needs check_rows_from(read) in effect."""
    assert_events_exact(world, None)
    assert_persons_exact(world, None)
    assert_sessions_exact(world, None)  # type: ignore[arg-type]
    assert_cohort_people_exact(world, None)  # type: ignore[arg-type]
    assert_tables_match_server(world, None)
    assert sorted(p["id"] for p in read("projects")) == sorted(p["id"] for p in world.projects)
    assert sorted(o["id"] for o in read("organizations")) == sorted(o["id"] for o in world.organizations)
    return {table: len(read(table)) for table in ALL_TABLES}


def run_into(server: Any, workdir: Path, destination: str, table_format: str | None = None,
             resources: list[str] | None = None, pipeline_name: str = "posthog", **source_args: Any) -> RunResult:
    """One real run over HTTP into `destination`, configured the dlt way (the test sets its env vars); the
    pipeline's state is kept under `workdir`."""
    source_args.setdefault("start_date", "2025-06-01")
    source_args.setdefault("ingestion_lag", "0")
    source_args.setdefault("late_sweep", "0")  # every run sweeps: exact after each, very late events included
    return run(RunOptions(
        resources=resources,
        pipeline_name=pipeline_name,
        destination=destination,
        table_format=table_format,
        pipelines_dir=str(workdir / "pipelines"),
        settings=load_settings(api_key=server.world.keys["full"], host=server.url, **source_args),
    ))


def mutate_everything(world: Any) -> None:
    """Changes a second run must carry over: new, late (3 and 40 days: the sweep, `late_sweep="0"`) and tied
    events, new persons, a person changed by `$set` and two merged by `$identify`, a session that grows, a
    recalculated cohort, an edited, a deleted and a new feature flag, a deleted cohort."""
    new = set(world.add_events(1, 400))
    world.add_events(2, 150, late_by=timedelta(days=3))
    world.add_events(1, 30, late_by=timedelta(days=40))
    world.add_events(3, 300, tie=True)
    world.add_persons(2, 25)
    ids = [row["distinct_id"] for row in world.truth_distinct_ids(1)]
    world.set_person_properties(1, ids[3], set={"plan": "enterprise"})
    world.merge_persons(1, ids[10], ids[40])
    live = next(e["session_id"] for e in world.truth_events(1, as_dicts=True) if e["uuid"] in new and e["session_id"])
    world.add_session_events(1, live, 2)
    cohort = next(c for c in world.visible_objects("cohorts", 1) if not c["is_static"]
                  and any(m["cohort_id"] == c["id"] for m in world.truth_cohort_people(1)))
    world.recalculate_cohort(1, cohort["id"])
    flags = world.visible_objects("feature_flags", 1)
    world.edit_object("feature_flags", 1, flags[0]["id"], name="renamed flag", active=False)
    world.delete_object("feature_flags", 1, flags[1]["id"])
    world.add_object("feature_flags", 2, key="brand-new-flag")
    world.delete_object("cohorts", 1, world.visible_objects("cohorts", 1)[0]["id"])
