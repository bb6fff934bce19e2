"""Old copies of merged events noted before the new ones are appended and deleted after them, in batches of row
groups (pipelines/destinations/duckdb.py find_old_copies, delete_old_copies), on real DuckDB files: exact whatever the
table's row groups, the new copies kept, and within a memory limit that one DELETE is not."""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.destinations import duckdb as loader


def _connect(path: Path, memory: str = "128MB", row_group_rows: int = 2_048) -> Any:
    connection = duckdb.connect(":memory:", config={"memory_limit": memory, "threads": 2,
                                                    "preserve_insertion_order": False})
    connection.execute(f"SET temp_directory = '{path}.tmp'")
    connection.execute(f"ATTACH '{path}' AS db (ROW_GROUP_SIZE {row_group_rows})")
    connection.execute("USE db")
    return connection


def _table(connection: Any) -> None:
    connection.execute("CREATE SCHEMA IF NOT EXISTS posthog")
    connection.execute("CREATE TABLE IF NOT EXISTS posthog.events (project_id BIGINT NOT NULL, "
                       "uuid VARCHAR NOT NULL, properties VARCHAR)")


def _append(connection: Any, first: int, count: int, project: int = 1) -> None:
    connection.execute(f"INSERT INTO posthog.events SELECT {project}, 'u' || i::VARCHAR, repeat('p', 40) "
                       f"FROM range({first}, {first + count}) AS t(i)")


def _stage(path: Path, keys: list[tuple[int, str]]) -> str:
    table = pa.table({"project_id": pa.array([k[0] for k in keys], pa.int64()),
                      "uuid": pa.array([k[1] for k in keys], pa.string())})
    pq.write_table(table, path)
    return str(path)


def _replace(connection: Any, staged: str, new_copies: list[tuple[int, str]] | None = None) -> int:
    """What a merge does: note the old copies of the staged keys, append the new ones (`new_copies`, marked
    `new` in `properties`), delete the noted copies; the rows deleted."""
    loader.find_old_copies(connection, "posthog", [staged])
    if new_copies:
        appended = _stage(Path(staged + ".new.parquet"), new_copies)
        connection.execute(f"INSERT INTO posthog.events SELECT project_id, uuid, 'new' FROM read_parquet('{appended}')")
    return loader.delete_old_copies(connection, "posthog")


def _keys(connection: Any) -> list[tuple[int, str]]:
    return sorted(connection.execute("SELECT project_id, uuid FROM posthog.events").fetchall())


def _row_groups(connection: Any) -> int:
    return connection.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('posthog.events')"
                              ).fetchone()[0]


def _groups_holding(connection: Any, keys: set[tuple[int, str]]) -> int:
    """How many row groups hold one of `keys` (the test's own count: row numbers against the layout)."""
    sizes = connection.execute("SELECT row_group_id, max(start + count) FROM pragma_storage_info('posthog.events') "
                               "GROUP BY 1 ORDER BY 1").fetchall()
    starts = list(itertools.accumulate((size for _, size in sizes), initial=0))
    rows = connection.execute("SELECT rowid, project_id, uuid FROM posthog.events").fetchall()
    return len({bisect.bisect_right(starts, rowid) - 1 for rowid, *key in rows if tuple(key) in keys})


def test_one_delete_over_many_row_groups_fails_where_batches_fit(tmp_path: Path) -> None:
    """DuckDB holds ~256 KiB for every row group one DELETE touches until a CHECKPOINT: 293 row groups are
    more than a 32 MB limit, whichever way the delete is written. In batches they fit, and exactly the staged
    keys go (every 7th row of the table, so every row group is touched)."""
    path = tmp_path / "warehouse.duckdb"
    connection = _connect(path, memory="32MB")
    _table(connection)
    _append(connection, 0, 600_000)
    connection.execute("CHECKPOINT")
    assert _row_groups(connection) == 293
    staged = _stage(tmp_path / "staged.parquet", [(1, f"u{i}") for i in range(0, 600_000, 7)])
    before = _keys(connection)
    with pytest.raises(duckdb.OutOfMemoryException):
        connection.execute(f"DELETE FROM posthog.events AS e WHERE EXISTS (SELECT 1 FROM read_parquet('{staged}') "
                           "AS s WHERE s.project_id = e.project_id AND s.uuid = e.uuid)")
    connection.close()

    connection = _connect(path, memory="32MB")
    assert _keys(connection) == before  # the failed statement changed nothing
    assert _replace(connection, staged) == len(range(0, 600_000, 7))
    gone = {(1, f"u{i}") for i in range(0, 600_000, 7)}
    assert _keys(connection) == [key for key in before if key not in gone]
    connection.close()


def test_few_row_groups_are_deleted_in_one_statement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows in no more row groups than one batch (an incremental run's) go in one statement, no CHECKPOINT."""
    connection = _connect(tmp_path / "warehouse.duckdb")
    _table(connection)
    _append(connection, 0, 300_000)
    staged = _stage(tmp_path / "staged.parquet", [(1, f"u{i}") for i in range(290_000, 300_000)] + [(1, "new")])
    checkpoints: list[bool] = []
    batch = loader.delete_batch
    monkeypatch.setattr(loader, "delete_batch", lambda *a, **k: checkpoints.append(k.get("checkpoint", True))
                        or batch(*a, **k))
    assert _replace(connection, staged) == 10_000
    assert checkpoints == [False]
    assert _keys(connection) == sorted((1, f"u{i}") for i in range(290_000))
    assert _replace(connection, staged) == 0  # nothing left: nothing done
    assert checkpoints == [False]
    connection.close()


# found by this test: a CHECKPOINT compacting the row groups below the batch just deleted renumbered their rows
@example(appends=[(1, 2_048), (2_099, 2_048)], earlier_delete_every=50, staged_every=2, staged_offset=0, strangers=0,
         divisor=2)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    appends=st.lists(st.tuples(st.integers(1, 30_000), st.sampled_from([2_048, 4_096, 8_192])), min_size=1,
                     max_size=5),
    earlier_delete_every=st.sampled_from([0, 3, 50]),
    staged_every=st.integers(1, 40),
    staged_offset=st.integers(0, 39),
    strangers=st.integers(0, 30),
    divisor=st.integers(2, 5),
)
def test_batched_deletes_remove_exactly_the_staged_keys(tmp_path_factory: pytest.TempPathFactory,
                                                        appends: list[tuple[int, int]], earlier_delete_every: int,
                                                        staged_every: int, staged_offset: int, strangers: int,
                                                        divisor: int) -> None:
    """Tables grown by appends of any size under any row group size, with rows deleted earlier (so row groups
    are partly empty and a CHECKPOINT compacts them, renumbering rows), and staged keys that are in the table,
    in it twice in the staged file, or not in it: every staged key's row goes, no other. Batches are a
    fraction of the table's row groups, so several are needed when the staged keys are in most of them (as
    many as the test counts itself from the table's layout); in no more row groups than a batch, one."""
    workdir = tmp_path_factory.mktemp("deletes")
    path = workdir / "warehouse.duckdb"
    first = 0
    for count, rows in appends:
        connection = _connect(path, row_group_rows=rows)
        _table(connection)
        _append(connection, first, count, project=1 + first % 2)
        connection.close()
        first += count
    connection = _connect(path)
    if earlier_delete_every:
        connection.execute(f"DELETE FROM posthog.events WHERE hash(uuid) % {earlier_delete_every} = 0")
        connection.execute("CHECKPOINT")
    before = _keys(connection)
    staged_keys = before[staged_offset::staged_every]
    staged_keys += staged_keys[:5] + [(1, f"stranger{i}") for i in range(strangers)]
    staged = _stage(workdir / "staged.parquet", staged_keys)
    groups = _row_groups(connection)
    batch = max(1, groups // divisor)
    holding = _groups_holding(connection, set(staged_keys))
    original, original_batch = loader.DELETE_BATCH_ROW_GROUPS, loader.delete_batch
    statements: list[bool] = []
    loader.DELETE_BATCH_ROW_GROUPS = batch
    loader.delete_batch = lambda *a, **k: statements.append(k.get("checkpoint", True)) or original_batch(*a, **k)
    try:
        new = sorted(set(staged_keys))  # the package's rows: unique on the key, some not in the table yet
        deleted = _replace(connection, staged, new)
    finally:
        loader.DELETE_BATCH_ROW_GROUPS, loader.delete_batch = original, original_batch
    after = _keys(connection)
    replaced = set(new)
    assert after == sorted([key for key in before if key not in replaced] + new)  # each key once
    kept = connection.execute("SELECT project_id, uuid FROM posthog.events WHERE properties = 'new'").fetchall()
    assert sorted(kept) == new  # ... and the one kept is the new copy
    assert deleted == len(before) + len(new) - len(after)
    if holding > batch:
        assert statements == [True] * -(-holding // batch)
    else:
        assert statements == ([False] if holding else [])
    connection.close()
