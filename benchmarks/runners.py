"""One abstraction for every system under test: how to start it, and how to count what it delivered.

A `Runner` only builds a command line and an environment and counts rows afterwards; `measure` does the
rest the same way for all of them (fresh work dir, timeout, wall time, tree memory, server counters).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.fake import PROJECTS, ROOT, START_DATE, FakeServer
from benchmarks.procs import BenchError, run_measured

VENV_BIN = Path(sys.executable).parent
WORK = Path(__file__).resolve().parent / ".work"
AIRBYTE_VENV = WORK / "airbyte-venv"


@dataclass(frozen=True)
class Target:
    """Where a runner sends its requests (the fake, or the latency proxy in front of it) and with which key."""

    url: str
    key: str
    time_scale: float | None = None  # the fake's rate-limit time scale, when limits are on
    projects: tuple[int, ...] = PROJECTS  # what ours reads (the read-budget run reads one team's bucket)


@dataclass(frozen=True)
class Delivered:
    rows: int
    distinct: int


@dataclass(frozen=True)
class Result:
    system: str
    scenario: str
    wall_seconds: float
    peak_tree_rss_mb: float
    peak_process_hwm_mb: float
    rows: int
    distinct: int
    truth: int
    requests: int
    throttled: int
    returncode: int = 0
    cpu_seconds: float = float("nan")
    queries: int = 0  # HogQL queries the server ran for it (count queries included)
    read_bytes: int = 0  # what the fake's meter says its queries read (PostHog's read budget's unit)
    rows_scanned: int = 0
    event_row_bytes: float = 0.0  # an event row over the columns ours loads: what a loaded event is worth
    query_span_seconds: float = 0.0  # from the server's first computed answer to its last (budget scenario)
    budget_end_bytes: float = 0.0  # what the read budget's buckets held at the end (negative: overdrawn)

    @property
    def bytes_amplification(self) -> float:
        """Bytes read ÷ bytes loaded (each loaded event at the columns the connector loads)."""
        loaded = self.distinct * self.event_row_bytes
        return self.read_bytes / loaded if loaded else float("nan")

    @property
    def rows_amplification(self) -> float:
        return self.rows_scanned / self.distinct if self.distinct else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.distinct if self.distinct else float("nan")

    @property
    def events_per_second(self) -> float:
        return self.distinct / self.wall_seconds if self.wall_seconds else 0.0


class Runner(ABC):
    """A system under test."""

    name: str
    timeout_seconds: float = 3600.0
    must_succeed = True  # False: a failed run is recorded (rows it got before failing), not fatal

    def prepare(self) -> None:  # noqa: B027 - optional hook, most runners need no setup
        """One-time setup shared by all rounds (installs); default none."""

    @abstractmethod
    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """argv and environment of one run that reads every event of PROJECTS since START_DATE."""

    @abstractmethod
    def delivered(self, workdir: Path) -> Delivered:
        """Rows it delivered and how many distinct keys among them."""

    def stdout_path(self, workdir: Path) -> Path | None:
        return None


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "DLT_"))}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"  # every request stays on loopback
    return env


def duckdb_count(path: Path, sql: str) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1] or 0)


class Ours(Runner):
    """`posthog-pipeline run --resources events`, configured through env vars as a user would."""

    name = "ours"

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env = base_env() | {
            "SOURCES__POSTHOG__API_KEY": target.key,
            "SOURCES__POSTHOG__HOST": target.url,
            "SOURCES__POSTHOG__START_DATE": START_DATE,
            "SOURCES__POSTHOG__PROJECT_IDS": ",".join(map(str, target.projects)),
            "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "ours.duckdb"),
            "DLT_DATA_DIR": str(workdir / "dlt"),
        }
        if target.time_scale is not None:
            env["SOURCES__POSTHOG__RATE_LIMIT_TIME_SCALE"] = str(target.time_scale)
        return [str(VENV_BIN / "posthog-pipeline"), "run", "--resources", "events"], env

    def delivered(self, workdir: Path) -> Delivered:
        rows, distinct = duckdb_count(
            workdir / "ours.duckdb", "SELECT count(*), count(DISTINCT (project_id, uuid)) FROM posthog.events")
        return Delivered(rows, distinct)


class OursMerge(Ours):
    """Ours again on the same pipeline and DuckDB file with `--full-refresh`: every event re-read and merged
    into a table that already holds all of them (the incremental path's MERGE, at full size)."""

    name = "ours_merge"

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = super().command(target, workdir)
        return [*argv, "--full-refresh"], env


class Reference(Runner):
    """A plain HogQL keyset -> Arrow -> dlt -> DuckDB extractor (benchmarks.reference), appending."""

    name = "reference"

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env = base_env() | {"DLT_DATA_DIR": str(workdir / "dlt"), "RUNTIME__LOG_LEVEL": "WARNING"}
        argv = [sys.executable, "-m", "benchmarks.reference", "--url", target.url, "--key", target.key,
                "--start-date", START_DATE, "--projects", ",".join(map(str, PROJECTS)),
                "--duckdb", str(workdir / "reference.duckdb")]
        return argv, env

    def delivered(self, workdir: Path) -> Delivered:
        rows, distinct = duckdb_count(
            workdir / "reference.duckdb",
            "SELECT count(*), count(DISTINCT (project_id, uuid)) FROM posthog.events")
        return Delivered(rows, distinct)


class RestApi(Runner):
    """dlt's generic rest_api source, configured for PostHog the way peers.md describes (benchmarks.rest_api_peer)."""

    name = "rest_api"

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env = base_env() | {"DLT_DATA_DIR": str(workdir / "dlt"), "RUNTIME__LOG_LEVEL": "WARNING"}
        argv = [sys.executable, "-m", "benchmarks.rest_api_peer", "--url", target.url, "--key", target.key,
                "--start-date", START_DATE, "--projects", ",".join(map(str, PROJECTS)),
                "--duckdb", str(workdir / "restapi_peer.duckdb")]
        return argv, env

    def delivered(self, workdir: Path) -> Delivered:
        path = workdir / "restapi_peer.duckdb"
        rows = distinct = 0
        for project in PROJECTS:
            r, d = duckdb_count(path, f"SELECT count(*), count(DISTINCT id) FROM posthog.events_{project}")
            rows, distinct = rows + r, distinct + d
        return Delivered(rows, distinct)


class RawLimit(Runner):
    """The ceiling: the connector's own HogQL pages fetched and parsed with orjson, nothing written."""

    name = "raw_limit"

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "benchmarks.raw_limit", "--url", target.url, "--key", target.key,
                "--start-date", START_DATE, "--projects", ",".join(map(str, PROJECTS))]
        return argv, base_env()

    def stdout_path(self, workdir: Path) -> Path | None:
        return workdir / "raw_limit.json"

    def delivered(self, workdir: Path) -> Delivered:
        summary = json.loads((workdir / "raw_limit.json").read_text())
        return Delivered(int(summary["rows"]), int(summary["distinct"]))


class Airbyte(Runner):
    """Airbyte's source-posthog in its own cached virtualenv, `read` of the events stream to a file."""

    name = "airbyte"
    must_succeed = False  # it gives up after five 429s; that is a result, not a harness error

    def prepare(self) -> None:
        exe = AIRBYTE_VENV / "bin" / "source-posthog"
        if exe.exists():
            return
        WORK.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(AIRBYTE_VENV, ignore_errors=True)
        print("installing airbyte-source-posthog into benchmarks/.work (once, about a minute) ...", flush=True)
        for argv in (["python3", "-m", "venv", str(AIRBYTE_VENV)],
                     [str(AIRBYTE_VENV / "bin" / "pip"), "install", "--quiet", "airbyte-source-posthog"]):
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                raise BenchError(f"installing Airbyte's connector failed ({' '.join(argv)}):\n{done.stderr[-2000:]}")

    def command(self, target: Target, workdir: Path) -> tuple[list[str], dict[str, str]]:
        config = {"api_key": target.key, "start_date": START_DATE, "base_url": target.url, "events_time_step": 30}
        catalog = {"streams": [{
            "stream": {"name": "events", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
            "sync_mode": "incremental", "destination_sync_mode": "append", "cursor_field": ["timestamp"],
            "primary_key": [["id"]],
        }]}
        (workdir / "config.json").write_text(json.dumps(config))
        (workdir / "catalog.json").write_text(json.dumps(catalog))
        argv = [str(AIRBYTE_VENV / "bin" / "source-posthog"), "read", "--config", str(workdir / "config.json"),
                "--catalog", str(workdir / "catalog.json")]
        return argv, base_env()

    def stdout_path(self, workdir: Path) -> Path | None:
        return workdir / "airbyte.jsonl"

    def delivered(self, workdir: Path) -> Delivered:
        rows, ids = 0, set()
        with open(workdir / "airbyte.jsonl", "rb") as fh:
            for line in fh:
                if b'"RECORD"' not in line:
                    continue
                message = json.loads(line)
                record = message.get("record") or {}
                if message.get("type") == "RECORD" and record.get("stream") == "events":
                    rows += 1
                    ids.add((record.get("data") or {}).get("id"))
        return Delivered(rows, len(ids))


RUNNERS: dict[str, Runner] = {r.name: r for r in (Ours(), OursMerge(),
                                                   Reference(), RawLimit(), Airbyte(), RestApi())}


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def measure(runner: Runner, server: FakeServer, target: Target, workdir: Path, scenario: str,
            keep: bool = False) -> Result:
    """One run of `runner` against `target`, with rows checked against the server's truth.

    keep=True reuses workdir (a second run on the same pipeline state) instead of starting fresh.
    """
    if not keep:
        fresh_dir(workdir)
    argv, env = runner.command(target, workdir)
    before = server.meter()
    measured = run_measured(argv, env, workdir / "logs", f"{runner.name}-{len(list(workdir.glob('logs/*')))}",
                            runner.timeout_seconds, runner.stdout_path(workdir), cwd=ROOT, check=runner.must_succeed)
    after = server.meter()
    try:
        delivered = runner.delivered(workdir)
    except (OSError, ValueError, duckdb.Error) as exc:
        if measured.returncode == 0:
            raise BenchError(f"{runner.name} finished but its output could not be counted: {exc}") from exc
        delivered = Delivered(0, 0)
    return Result(runner.name, scenario, measured.wall_seconds, measured.peak_tree_rss_mb,
                  measured.peak_process_hwm_mb, delivered.rows, delivered.distinct, after.truth(target.projects),
                  after.requests - before.requests - 1, after.throttled - before.throttled, measured.returncode,
                  measured.cpu_seconds, after.queries - before.queries, after.read_bytes - before.read_bytes,
                  after.rows_scanned - before.rows_scanned, after.event_row_bytes, after.query_span_seconds,
                  after.budget_after_last_query)


__all__ = ["RUNNERS", "ROOT", "Delivered", "Result", "Runner", "Target", "measure"]
