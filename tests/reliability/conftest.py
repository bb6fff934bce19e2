"""Shared pieces of the reliability suite: the CLI as a subprocess, fast retries in-process, DuckDB snapshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

import posthog_source
from fake_posthog import FakePostHog
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings

WRAPPER = Path(__file__).with_name("cli_wrapper.py")
START_DATE = "2025-06-01"  # before every event of the generated worlds (anchored on FAKE_NOW)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def cli_env(workdir: Path, server: FakePostHog | None, key: str | None = "full", **extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: only our settings, so no developer config leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__"))}
    env.update({
        "DLT_DATA_DIR": str(workdir / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "warehouse.duckdb"),
        "SOURCES__POSTHOG__START_DATE": START_DATE,
        "SOURCES__POSTHOG__INGESTION_LAG": "0",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    })
    if server is not None:
        env["SOURCES__POSTHOG__HOST"] = server.url
        if key is not None:
            env["SOURCES__POSTHOG__API_KEY"] = server.world.keys.get(key, key)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str], env: dict[str, str], cwd: Path, kill_at: str | None = None, fast_retries: bool = False,
    timeout: float = 120, duckdb_memory_limit: str | None = None, delete_batch_row_groups: int | None = None,
) -> CliResult:
    """`posthog-pipeline <args>` in a subprocess (through the wrapper when a kill point or fast retries are
    asked for), from `cwd` so that no repository .dlt config applies."""
    options = (["--kill-at", kill_at] if kill_at else []) + (["--fast-retries"] if fast_retries else [])
    options += ["--duckdb-memory-limit", duckdb_memory_limit] if duckdb_memory_limit else []
    options += ["--delete-batch-row-groups", str(delete_batch_row_groups)] if delete_batch_row_groups else []
    command = [sys.executable, str(WRAPPER), *options, "--", *args]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def start_cli(args: Sequence[str], env: dict[str, str], cwd: Path, kill_at: str | None = None) -> subprocess.Popen[str]:
    options = ["--kill-at", kill_at] if kill_at else []
    return subprocess.Popen([sys.executable, str(WRAPPER), *options, "--", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the DuckDB file (dlt's own included), rows sorted: equal snapshots = nothing changed."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall()
        return {
            f"{schema}.{table}": sorted(con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall(), key=repr)
            for schema, table in tables
        }


def copy_workdir(source: Path, target: Path) -> None:
    """A loaded warehouse and its pipeline state, cloned so each case starts from the same loaded state."""
    shutil.copy(source / "warehouse.duckdb", target / "warehouse.duckdb")
    shutil.copytree(source / "dlt", target / "dlt")


class FastClients:
    """A client factory (`RunOptions.client_factory`) whose clients retry without real backoff sleeps (waits
    asked by PostHog are capped at 50 ms, and recorded); `built` holds the clients made, so a test can read
    their stats and the waits they asked for."""

    def __init__(self) -> None:
        self.built: list[PostHogClient] = []

    def __call__(self, config: SourceSettings) -> PostHogClient:
        client = posthog_source.build_client(config)
        client.backoff_base = 0.01
        client.slept = []  # type: ignore[attr-defined]

        def sleep(seconds: float, record: list[float] = client.slept) -> None:  # type: ignore[attr-defined]
            record.append(seconds)
            import time

            time.sleep(min(seconds, 0.05))

        client._sleep = sleep
        if client.limiter is not None:  # the limiter would hold other requests for the whole real wait
            client.limiter.pause = lambda request_class, seconds: None  # type: ignore[method-assign]
        self.built.append(client)
        return client


@pytest.fixture
def fast_client() -> FastClients:
    """A fresh FastClients for the test to pass to its runs."""
    return FastClients()
