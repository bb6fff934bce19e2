"""The loader's DuckDB settings that follow the width of the rows it loads (pipelines/destinations/duckdb.py)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from pipelines import runner
from pipelines.destinations import duckdb as loader
from pipelines.destinations.duckdb import PendingShape, loader_memory_limit, row_group_rows


@given(st.floats(min_value=1, max_value=10_000_000, allow_nan=False))
def test_row_groups_are_byte_sized_multiples_of_the_vector_size_within_duckdbs_bounds(row_bytes: float) -> None:
    rows = row_group_rows(row_bytes)
    assert rows % loader.MIN_ROW_GROUP_ROWS == 0
    assert loader.MIN_ROW_GROUP_ROWS <= rows <= loader.MAX_ROW_GROUP_ROWS
    if loader.MIN_ROW_GROUP_ROWS < rows < loader.MAX_ROW_GROUP_ROWS:
        assert rows * row_bytes <= loader.LOADER_ROW_GROUP_BYTES < (rows + loader.MIN_ROW_GROUP_ROWS) * row_bytes


def test_realistic_and_wide_events_get_their_row_groups() -> None:
    assert row_group_rows(1_500) == 8_192
    assert row_group_rows(22_000) == loader.MIN_ROW_GROUP_ROWS
    assert row_group_rows(100) == loader.MAX_ROW_GROUP_ROWS
    assert row_group_rows(None) == 8_192  # nothing pending to measure


def test_a_second_loader_thread_only_while_row_groups_are_cut_by_bytes() -> None:
    assert loader.loader_threads(1_500) == loader.DUCKDB_LOADER_CONFIG["threads"] == 2
    assert loader.loader_threads(None) == 2
    widest_cut_by_bytes = loader.LOADER_ROW_GROUP_BYTES / loader.MIN_ROW_GROUP_ROWS
    assert loader.loader_threads(widest_cut_by_bytes) == 2
    assert loader.loader_threads(widest_cut_by_bytes + 1) == 1
    assert loader.loader_threads(22_000) == 1


def test_the_memory_limit_grows_only_for_large_parquet_row_groups() -> None:
    assert loader_memory_limit(PendingShape(1_500, 1_500_000)) == loader.DUCKDB_LOADER_CONFIG["memory_limit"]
    assert loader_memory_limit(PendingShape(22_000, 22 * 2**20)) == f"{12 * 22}MB"


def test_the_shape_is_measured_decoded_in_the_pending_packages_parquet_files(tmp_path) -> None:
    """A repeated value is stored once in parquet (dictionary encoding) but held in full by DuckDB."""
    wide = tmp_path / "events.0.parquet"
    pq.write_table(pa.table({"v": ["x" * 2_000] * 3_000}), wide, row_group_size=1_000)
    narrow = tmp_path / "persons.0.parquet"
    pq.write_table(pa.table({"v": ["y" * 10] * 3_000}), narrow, row_group_size=1_000)

    class Job:
        def __init__(self, path):
            self.file_path = str(path)

    class Info:
        jobs = {"new_jobs": [Job(wide), Job(narrow), Job(tmp_path / "_dlt_pipeline_state.0.insert_values.gz")]}

    class Pipeline:
        def list_normalized_load_packages(self):
            return ["1"]

        def get_load_package_info(self, load_id):
            return Info()

    shape = loader.pending_shape(Pipeline())  # type: ignore[arg-type]
    assert shape.row_bytes is not None and 2_000 <= shape.row_bytes < 2_100
    assert 2_000_000 <= shape.row_group_bytes < 2_200_000


def test_the_extract_writes_slice_by_slice_unless_the_user_sized_dlts_buffer(monkeypatch) -> None:
    monkeypatch.delenv("DATA_WRITER__BUFFER_MAX_ITEMS", raising=False)
    assert runner.writer_settings()["SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS"] == "1"
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "20000")
    assert "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS" not in runner.writer_settings()
