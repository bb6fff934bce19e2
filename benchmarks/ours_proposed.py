"""Ours with the loader changes proposed for pipelines/runner.py applied at start-up, to measure them before
they are made (`python -m benchmarks.ours_proposed run --resources events`, same arguments as the CLI).

1. DuckDB loader: one thread, a 256 MB buffer pool (instead of two threads and 384 MB). The load's
   statements are a streaming INSERT and a key-only DELETE join, which need no large working set; a second
   thread on this 2-CPU machine only adds CPU.
2. A first run into an empty (or missing) events table is loaded with `append`: dlt then copies the parquet
   straight into the table, without a staging copy and the DELETE of the merge.
Nothing else differs from `posthog-pipeline`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import duckdb

from pipelines import cli, runner

PROPOSED_LOADER_CONFIG = {"memory_limit": "256MB", "threads": 1, "preserve_insertion_order": False}


def events_table_is_empty(path: str, dataset: str = "posthog") -> bool:
    """No events table yet, or one without rows (what runner.py would ask its destination)."""
    if not os.path.exists(path):
        return True
    with duckdb.connect(path, read_only=True) as con:
        found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                            "table_name = 'events'", [dataset]).fetchone()
        if not found or not found[0]:
            return True
        return con.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{dataset}".events LIMIT 1)').fetchone() == (0,)


def main() -> int:
    runner.DUCKDB_LOADER_CONFIG.clear()
    runner.DUCKDB_LOADER_CONFIG.update(PROPOSED_LOADER_CONFIG)
    original = runner.posthog_source
    empty = events_table_is_empty(os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", runner.DEFAULT_DUCKDB_FILE))

    def source(**kwargs: Any) -> Any:
        built = original(**kwargs)
        if empty and "events" in built.resources:
            built.resources["events"].apply_hints(write_disposition="append")
        return built

    runner.posthog_source = source  # type: ignore[assignment]
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
