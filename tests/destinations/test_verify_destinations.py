"""`verify` and `verify --repair` on PostgreSQL (through dlt's sql_client) and on parquet files (through dlt's
dataset access), against the fake's ground truth."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.runner import RunOptions
from pipelines.verify import VerifyOptions, verify_and_repair
from posthog_source.config import load_settings
from posthog_source.errors import ConfigurationError
from tests.destinations.exact import run_into
from tests.destinations.readers import parquet_reader, postgres_reader
from tests.integration.test_events import assert_events_exact
from tests.integration.test_verify import delete_events_in_fake, pick_day

RESOURCES = ["events", "persons"]


def options(server: Any, workdir: Path, destination: str, pipelines: str = "pipelines") -> VerifyOptions:
    return VerifyOptions(RunOptions(
        pipeline_name="posthog", destination=destination, pipelines_dir=str(workdir / pipelines),
        settings=load_settings(api_key=server.world.keys["full"], host=server.url, ingestion_lag="0"),
    ))


def differing(outcome_report: Any) -> dict[tuple[int, date], tuple[int, int]]:
    return {(d.project_id, d.day): (d.posthog, d.destination) for d in outcome_report.events}


@pytest.fixture
def postgres(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    return postgres_dsn


def postgres_execute(dsn: str, sql: str, *params: Any) -> None:
    import psycopg2

    with contextlib.closing(psycopg2.connect(dsn)) as connection, connection, connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_verify_and_repair_on_postgres(make_fake_server, tmp_path, postgres, check_rows_from):
    server = make_fake_server(seed=12, events=4_000)
    world = server.world
    check_rows_from(postgres_reader(postgres))
    with pytest.raises(ConfigurationError, match="no destination data"):
        verify_and_repair(options(server, tmp_path, "postgres"))
    run_into(server, tmp_path, "postgres", resources=RESOURCES)
    assert verify_and_repair(options(server, tmp_path, "postgres")).equal

    day_a, events_a = pick_day(world, 2, 3)  # America/New_York: the days compared are UTC days
    day_b, events_b = pick_day(world, 1, 4)
    for event in events_a[:2]:
        postgres_execute(postgres, "DELETE FROM posthog.events WHERE project_id = 2 AND uuid = %s", event["uuid"])
    delete_events_in_fake(world, 1, [e["uuid"] for e in events_b[:3]])
    person = postgres_reader(postgres)("persons")[0]
    postgres_execute(postgres, "DELETE FROM posthog.persons WHERE project_id = %s AND id = %s",
                     person["project_id"], person["id"])

    found = verify_and_repair(options(server, tmp_path, "postgres"))
    assert differing(found.first) == {(2, day_a): (len(events_a), len(events_a) - 2),
                                      (1, day_b): (len(events_b) - 3, len(events_b))}
    assert [(p.project_id, p.difference) for p in found.first.persons or []] == [(person["project_id"], -1)]
    assert found.repair is None and not found.equal  # read-only without repair: 2 rows lost, 3 rows extra
    truth = sum(len(world.truth_events(p["id"])) for p in world.projects)
    assert len(postgres_reader(postgres)("events")) == truth - 2 + 3

    # a machine without the pipeline's local folder verifies and repairs the same way
    request = options(server, tmp_path, "postgres", pipelines="fresh")
    request.repair = True
    repaired = verify_and_repair(request)
    assert differing(repaired.first) == differing(found.first)
    assert repaired.repair is not None and repaired.repair.rows_deleted == 3
    assert repaired.after is not None and repaired.after.events == []
    assert_events_exact(world, None)


def _drop_rows_from_parquet(bucket: Path, uuids: set[str]) -> None:
    """A destination that lost rows: the parquet file holding them is rewritten without them, in place."""
    for path in (bucket / "posthog" / "events").glob("*.parquet"):
        table = pq.read_table(path)
        keep = pc.invert(pc.is_in(table.column("uuid"), value_set=pa.array(sorted(uuids))))
        if table.filter(keep).num_rows != table.num_rows:
            pq.write_table(table.filter(keep), path)


def test_verify_and_repair_on_parquet_files(make_fake_server, tmp_path, monkeypatch):
    """Parquet files are append-only: verify counts distinct uuids; --repair adds what is missing but cannot
    remove what PostHog deleted, and says so (the outcome stays unequal: exit 4)."""
    bucket = tmp_path / "lake"
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(bucket))
    server = make_fake_server(seed=12, events=4_000)
    world = server.world
    with pytest.raises(ConfigurationError, match="no destination data"):
        verify_and_repair(options(server, tmp_path, "filesystem"))
    run_into(server, tmp_path, "filesystem", resources=RESOURCES)
    assert verify_and_repair(options(server, tmp_path, "filesystem")).equal

    day_a, events_a = pick_day(world, 2, 3)
    day_b, events_b = pick_day(world, 1, 4)
    _drop_rows_from_parquet(bucket, {e["uuid"] for e in events_a[:2]})
    delete_events_in_fake(world, 1, [e["uuid"] for e in events_b[:3]])

    # verified from a machine without the local pipeline folder: the schema is restored from the bucket
    found = verify_and_repair(options(server, tmp_path, "filesystem", pipelines="fresh"))
    assert differing(found.first) == {(2, day_a): (len(events_a), len(events_a) - 2),
                                      (1, day_b): (len(events_b) - 3, len(events_b))}

    request = options(server, tmp_path, "filesystem")
    request.repair = True
    repaired = verify_and_repair(request)
    assert repaired.repair is not None and repaired.repair.rows_deleted == 0
    assert any("append-only" in note and "3 events" in note for note in repaired.repair.notes)
    assert repaired.after is not None and not repaired.equal
    assert differing(repaired.after) == {(1, day_b): (len(events_b) - 3, len(events_b))}  # only what cannot go
    # every event PostHog holds is in the files again (once or more: readers dedupe on the key)
    landed = {(r["project_id"], r["uuid"]) for r in parquet_reader(bucket)("events")}
    truth = {(p["id"], e["uuid"]) for p in world.projects for e in world.truth_events(p["id"], as_dicts=True)}
    assert truth <= landed and len(landed - truth) == 3
