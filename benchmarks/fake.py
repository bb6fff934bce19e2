"""The fake PostHog as a child process: started with the scenario's options, always stopped."""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.procs import BenchError, kill_tree
from posthog_source.hogql import EVENT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
# The data spans the 90 days before the fake's `now`; an hour in the past keeps every event older than
# any client's ingestion lag, so "all rows" means the same for every peer.
NOW = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
START_DATE = (NOW - timedelta(days=100)).strftime("%Y-%m-%dT00:00:00Z")
# The stored events columns the connector loads (its select list, hogql.EVENT_COLUMNS): a loaded event's
# bytes are theirs, so "bytes read ÷ bytes loaded" is 1 when a run reads each loaded row once.
LOADED_EVENT_COLUMNS = tuple(re.sub(r"^toString\((.*)\)$", r"\1", c.expression).strip("`") for c in EVENT_COLUMNS)
PROJECTS = (1, 2)  # the key's current organisation: what /api/projects/ lists, so what every peer reads


def peer_arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line every peer script takes: where the fake is, its key, the range and the projects."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--start-date", required=True)
    parser.add_argument("--projects", required=True)
    return parser


@dataclass
class FakeOptions:
    events: int
    seed: int = 1
    rate_limits: bool = False
    time_scale: float = 1.0
    events_max_limit: int | None = None
    property_padding: int = 0  # bytes of `$padding` on every other event: realistic ~1 KB rows
    fat_share: float = 0.0  # share of 10-50 KB `$exception` / `$ai_generation` events
    read_budget_gb_per_hour: float | None = None  # the read budget's refill (with rate_limits)
    read_budget_capacity_hours: float | None = None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "fake_posthog", "--port", "0", "--seed", str(self.seed),
                "--events", str(self.events), "--now", NOW.isoformat()]
        if self.rate_limits:
            argv += ["--rate-limits", "--time-scale", str(self.time_scale)]
        if self.property_padding:
            argv += ["--property-padding", str(self.property_padding)]
        if self.fat_share:
            argv += ["--fat-share", str(self.fat_share)]
        if self.read_budget_gb_per_hour is not None:
            argv += ["--read-budget-gb-per-hour", str(self.read_budget_gb_per_hour)]
        if self.read_budget_capacity_hours is not None:
            argv += ["--read-budget-capacity-hours", str(self.read_budget_capacity_hours)]
        if self.events_max_limit is not None:
            argv += ["--events-max-limit", str(self.events_max_limit)]
        return argv


@dataclass
class FakeServer:
    """A running fake: its URL, the full-access key, and its truth and counters over /_fake/stats."""

    options: FakeOptions
    log_dir: Path
    url: str = ""
    key: str = ""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> FakeServer:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        err = open(self.log_dir / "fake_posthog.stderr.log", "wb")  # noqa: SIM115 - lives as long as the server
        self._proc = subprocess.Popen(self.options.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=err,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        err.close()
        try:
            hello = self._hello(timeout=120 + self.options.events / 20_000)
            self.url, self.key = hello["url"], hello["keys"]["full"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def _hello(self, timeout: float) -> dict[str, Any]:
        """The {"url", "keys"} line; other output before it (DuckDB progress while generating) is skipped."""
        assert self._proc is not None and self._proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self._proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                line = self._proc.stdout.readline()
                if line.lstrip().startswith(b'{"url"'):
                    return json.loads(line)
            if self._proc.poll() is not None:
                break
        raise BenchError(f"the fake PostHog did not start within {timeout:.0f} s; see "
                         f"{self.log_dir / 'fake_posthog.stderr.log'}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            kill_tree(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/stats", timeout=60) as response:
            return json.loads(response.read())

    def meter(self) -> Meter:
        """Every counter a benchmark reads, from one /_fake/stats request."""
        stats = self.stats()
        server = stats["server"]
        widths = server.get("event_column_bytes") or {}
        return Meter(
            requests=int(server["requests"]), throttled=int(server["throttled"]),
            queries=int(server.get("queries") or 0), read_bytes=int(server.get("read_bytes") or 0),
            rows_scanned=sum(int(v) for v in (server.get("rows_scanned_by_key") or {}).values()),
            event_row_bytes=sum(float(widths.get(c, 0.0)) for c in LOADED_EVENT_COLUMNS),
            query_span_seconds=float(server.get("query_span_seconds") or 0.0),
            budget_after_last_query=float(sum((server.get("read_budget_after_last_query") or {}).values())),
            events_by_project={int(k): int(v) for k, v in stats["tables"]["events"].items()},
        )


@dataclass(frozen=True)
class Meter:
    """The fake's counters at one moment. `query_span_seconds` and `budget_after_last_query` span the server's
    whole life: meaningful for a server that serves one run, as the budget scenario's does."""

    requests: int  # requests served
    throttled: int  # 429s served
    queries: int  # HogQL queries that ran
    read_bytes: int
    rows_scanned: int
    event_row_bytes: float  # an event row over the columns the connector loads
    query_span_seconds: float  # from the first computed answer to the last
    budget_after_last_query: float  # the read budget's balance after each bucket's last query, summed
    events_by_project: dict[int, int]

    def truth(self, projects: tuple[int, ...] = PROJECTS) -> int:
        """Events the peers should deliver: every event of the projects they read."""
        return sum(self.events_by_project.get(p, 0) for p in projects)
