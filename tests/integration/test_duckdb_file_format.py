"""The DuckDB file a run writes (pipelines/destinations/duckdb.py): a new file in DuckDB's v1.2 storage format with
its strings in ZSTD; a file an older version made keeps its format and DuckDB's default compression (forcing ZSTD
there would store strings uncompressed). Both load exactly, and a second run merges into them."""

from __future__ import annotations

import duckdb
import pytest

from tests.helpers import run_pipeline
from tests.integration.test_events import assert_events_exact


def storage(path) -> tuple[str, set[str]]:
    """The file's storage version and the compressions of the events' strings."""
    with duckdb.connect(str(path), read_only=True) as con:
        version = con.execute("SELECT tags['storage_version'] FROM duckdb_databases() "
                              "WHERE database_name = current_database()").fetchone()[0]
        methods = {m for (m,) in con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('posthog.events') "
            "WHERE column_name IN ('uuid', 'properties', 'distinct_id') AND segment_type = 'VARCHAR'").fetchall()}
    return version, methods


@pytest.mark.parametrize("older_file", [False, True])
def test_strings_are_zstd_in_a_new_file_and_an_older_file_keeps_its_format(make_fake_server, tmp_path, caplog,
                                                                         older_file):
    server = make_fake_server(seed=41, events=6_000)
    path = tmp_path / "warehouse.duckdb"
    if older_file:
        duckdb.connect(str(path)).close()  # DuckDB's default format, as dlt or an earlier version made it
    with caplog.at_level("INFO", logger="pipelines"):
        run_pipeline(server, tmp_path, resources=["events"])
        server.world.add_events(1, 500)
        run_pipeline(server, tmp_path, resources=["events"], full_refresh=True)
    assert_events_exact(server.world, tmp_path)
    version, methods = storage(path)
    older = "older than v1.2" in caplog.text
    if older_file:
        assert version.startswith("v1.0") and older
        assert "ZSTD" not in methods
    else:
        assert version.startswith("v1.2") and not older
        assert methods == {"ZSTD"}
