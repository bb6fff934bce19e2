"""Running the real pipeline against the fake server, and reading back what landed in DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from fake_posthog import FakePostHog
from pipelines.runner import ClientFactory, RunOptions, RunResult, run
from posthog_source import build_client
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings, load_settings
from posthog_source.incremental import Clock, utc_now


def fast_retries(config: SourceSettings) -> PostHogClient:
    """The real client, whose one retry of a query PostHog found too large does not wait a second."""
    client = build_client(config)
    client.backoff_base = 0.001
    return client


def run_pipeline(
    server: FakePostHog,
    workdir: Path,
    key: str = "full",
    resources: list[str] | None = None,
    pipeline_name: str = "posthog",
    client_factory: ClientFactory = build_client,
    clock: Clock = utc_now,
    **source_args: Any,
) -> RunResult:
    """One real pipeline run over HTTP into `workdir/posthog.duckdb` (state kept in `workdir/pipelines`);
    `source_args` are settings as a user gives them (strings or typed), over dlt config."""
    source_args.setdefault("start_date", "2025-06-01")
    source_args.setdefault("ingestion_lag", "0")
    return run(
        RunOptions(
            resources=resources,
            pipeline_name=pipeline_name,
            duckdb_path=str(workdir / "warehouse.duckdb"),
            pipelines_dir=str(workdir / "pipelines"),
            settings=load_settings(api_key=server.world.keys.get(key, key), host=server.url, **source_args),
            client_factory=client_factory,
            clock=clock,
        )
    )


def read_rows(workdir: Path, table: str, dataset: str = "posthog") -> list[dict[str, Any]]:
    path = workdir / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        cursor = con.execute(f'SELECT * FROM "{dataset}"."{table}"')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def table_exists(workdir: Path, table: str, dataset: str = "posthog") -> bool:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [dataset, table],
        ).fetchone()
    return bool(found and found[0])
