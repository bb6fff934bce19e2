"""Runs `pipelines.cli.main()` in a subprocess after patching it for a reliability test.

    python cli_wrapper.py [--kill-at POINT] [--fast-retries] -- <posthog-pipeline arguments>

POINT picks where the process SIGKILLs itself, deterministically (no timing races):
`pages:N` (the N-th HogQL page, mid-extract), `after:extract`, `during:normalize` (new package committed, extracted one
not yet deleted), `after:normalize`, `during:load` (rows written
to the destination, package not yet marked complete), `committed:events` (DuckDB committed the events file's
rows, dlt has not yet recorded that job as done, so a resumed load inserts that file again),
`backfill:N` (after N backfill batches), `deleting:N` (after N batches of old copies deleted once a large merge
appended the new ones, pipelines.destinations.duckdb.delete_old_copies), or
`hold:extract` (not a kill: writes `<DLT_DATA_DIR>/holding` and sleeps, keeping the run lock).
`--fast-retries` shortens the client's backoff so a fault storm fails in seconds, not minutes.
`--duckdb-memory-limit SIZE` lowers the loader's DuckDB memory limit
(pipelines.destinations.duckdb.DUCKDB_LOADER_CONFIG), so the suite can show on small data that a load fits its
limit by design rather than by headroom.
`--delete-batch-row-groups N` lowers pipelines.destinations.duckdb.DELETE_BATCH_ROW_GROUPS, so a merge of the
suite's size deletes its old copies in batches as one of millions of events does.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after_calls(func: Callable[..., Any], n: int) -> Callable[..., Any]:
    """`func`, killing the process once it has returned `n` times."""
    calls = [0]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        calls[0] += 1
        if calls[0] >= n:
            _die()
        return result

    return wrapper


def _kill_after_pages(n: int) -> None:
    import posthog_source.events as events

    original = events.keyset_pages
    seen = [0]

    def pages(*args: Any, **kwargs: Any) -> Any:
        for page in original(*args, **kwargs):
            seen[0] += 1
            if seen[0] >= n:
                _die()
            yield page

    events.keyset_pages = pages


def _hold_extract() -> None:
    import dlt

    def hold(*args: Any, **kwargs: Any) -> Any:
        with open(os.path.join(os.environ["DLT_DATA_DIR"], "holding"), "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(120)

    dlt.Pipeline.extract = hold  # type: ignore[method-assign]


def install(point: str) -> None:
    kind, _, arg = point.partition(":")
    if kind == "pages":
        _kill_after_pages(int(arg))
    elif kind == "after":
        import dlt

        setattr(dlt.Pipeline, arg, _after_calls(getattr(dlt.Pipeline, arg), 1))
    elif kind == "during" and arg == "normalize":
        from dlt.common.storages.load_storage import LoadStorage

        # the new load package is committed, the extracted one not yet deleted: both exist on disk
        LoadStorage.commit_new_load_package = _after_calls(LoadStorage.commit_new_load_package, 1)  # type: ignore
    elif kind == "during" and arg == "load":
        from dlt.load.load import Load

        def die_before_completing(*args: Any, **kwargs: Any) -> None:
            _die()

        Load.complete_package = die_before_completing  # type: ignore[method-assign]
    elif kind == "committed" and arg == "events":
        from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

        original = DuckDbCopyJob.run

        def run_then_die(self: Any) -> None:
            original(self)
            if self.load_table_name == "events":
                _die()

        DuckDbCopyJob.run = run_then_die  # type: ignore[method-assign]
    elif kind == "backfill":
        import pipelines.backfill as backfill

        backfill.run = _after_calls(backfill.run, int(arg))
    elif kind == "deleting":
        from pipelines.destinations import duckdb as duckdb_loader

        duckdb_loader.delete_batch = _after_calls(duckdb_loader.delete_batch, int(arg))
    elif kind == "hold":
        _hold_extract()
    else:
        raise SystemExit(f"unknown kill point {point}")


def main(argv: list[str]) -> int:
    split = argv.index("--")
    options, cli_args = argv[:split], argv[split + 1 :]
    if "--kill-at" in options:
        install(options[options.index("--kill-at") + 1])
    if "--duckdb-memory-limit" in options:
        from pipelines.destinations import duckdb as duckdb_loader

        duckdb_loader.DUCKDB_LOADER_CONFIG["memory_limit"] = options[options.index("--duckdb-memory-limit") + 1]
    if "--delete-batch-row-groups" in options:
        from pipelines.destinations import duckdb as duckdb_loader

        duckdb_loader.DELETE_BATCH_ROW_GROUPS = int(options[options.index("--delete-batch-row-groups") + 1])
    if "--fast-retries" in options:
        from posthog_source.client import PostHogClient

        PostHogClient._backoff = lambda self, attempt: 0.01  # type: ignore[method-assign]
    from pipelines.cli import main as cli_main

    return cli_main(cli_args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
