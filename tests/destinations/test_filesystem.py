"""The filesystem destination: plain parquet files and Delta tables, read back and compared with the fake's
ground truth."""

from __future__ import annotations

import pytest

from tests.destinations.exact import assert_every_table_exact, mutate_everything, run_into
from tests.destinations.readers import delta_reader, parquet_reader
from tests.integration.test_events import assert_events_exact

# Delta offers upsert but not delete-insert, which the snapshot tables and persons use (docs/destinations.md).
DELTA_TABLES = ["events", "projects", "organizations"]


@pytest.fixture
def bucket(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A local bucket configured the way a user would (an s3://, gs:// or az:// URL works the same)."""
    path = tmp_path / "lake"
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(path))
    return path


def test_every_table_is_exact_in_parquet_files(make_fake_server, tmp_path, bucket, check_rows_from):
    """Parquet files are append-only (dlt turns merges into appends), so one run is compared."""
    server = make_fake_server(seed=11, events=20_000)
    read = parquet_reader(bucket)
    check_rows_from(read)
    run_into(server, tmp_path, "filesystem", page_size=4_000)
    counts = assert_every_table_exact(server.world, read)
    assert counts["events"] >= 20_000 and counts["feature_flags"] > 200


def test_events_are_exact_in_delta_tables_and_merge_on_the_next_run(
    make_fake_server, tmp_path, bucket, check_rows_from
):
    pytest.importorskip("deltalake", reason="the deltalake extra is not installed")
    server = make_fake_server(seed=11, events=20_000)
    world = server.world
    read = delta_reader(bucket)
    check_rows_from(read)
    run_into(server, tmp_path, "filesystem", table_format="delta", resources=DELTA_TABLES, page_size=4_000)
    assert_events_exact(world, None)

    mutate_everything(world)  # new, late and tied events: merged (upsert) into the Delta table
    run_into(server, tmp_path, "filesystem", table_format="delta", resources=DELTA_TABLES, page_size=4_000)
    assert_events_exact(world, None)
    assert sorted(p["id"] for p in read("projects")) == sorted(p["id"] for p in world.projects)
    assert sorted(o["id"] for o in read("organizations")) == sorted(o["id"] for o in world.organizations)
