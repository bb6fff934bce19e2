"""Faults and long rate-limit waits: whatever PostHog's infrastructure does, every table ends exact."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fake_posthog import FakePostHog, FaultConfig
from fake_posthog.ratelimit import throttled_detail
from fake_posthog.server import ApiError
from tests.helpers import read_rows, run_pipeline
from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_metadata import assert_tables_match_server
from tests.reliability.conftest import FastClients, cli_env, run_cli, snapshot

HOGQL_TABLES = ["events", "persons", "person_distinct_ids"]


def assert_everything_exact(world: Any, workdir: Path) -> None:
    """Events, persons, distinct ids and every metadata table hold exactly the server's keys and values."""
    assert_events_exact(world, workdir)
    assert_persons_exact(world, workdir)
    assert_tables_match_server(world, workdir)
    assert sorted(p["id"] for p in read_rows(workdir, "projects")) == sorted(p["id"] for p in world.projects)
    assert {o["id"] for o in read_rows(workdir, "organizations")} == {o["id"] for o in world.organizations}


# 14 % of requests fail, every kind represented; slow answers outlast the 1 s read timeout.
def faults(seed: int) -> FaultConfig:
    return FaultConfig(seed=seed, rate_5xx=0.05, rate_drop=0.02, rate_drop_mid_body=0.02, rate_truncated_json=0.02,
                       rate_slow=0.01, rate_429=0.02, slow_seconds=1.5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_table_exact_under_faults(make_fake_server: Callable[..., FakePostHog], tmp_path: Path,
                                        fast_client: FastClients, seed: int) -> None:
    """5xx, drops, cut bodies, truncated JSON, timeouts and 429s on top of PostHog's budgets at 20x speed."""
    server = make_fake_server(seed=11, events=3_000, faults=faults(seed), rate_limits=True, time_scale=20.0)
    run_pipeline(server, tmp_path, page_size=400, request_timeout="1s", rate_limit_time_scale=20.0,
                 client_factory=fast_client)
    served = sum(server.fault_counts.values())
    assert served >= 0.1 * len(server.request_log) * 0.7 and served >= 5, server.fault_counts
    assert fast_client.built[0].stats.retries >= served - server.fault_counts["429"]
    assert_everything_exact(server.world, tmp_path)


def throttle_first_queries(server: FakePostHog, seconds: int, times: int) -> list[str]:
    """The next `times` HogQL queries get PostHog's sustained-limit 429 ("Expected available in N seconds",
    no Retry-After); returns the log of throttled paths."""
    original = server.throttle
    throttled: list[str] = []

    def throttle(key: Any, route: Any, req: Any) -> None:
        if route.bucket == "query" and len(throttled) < times:
            throttled.append(req.path)
            raise ApiError(429, "throttled_error", "throttled", throttled_detail(seconds))
        original(key, route, req)

    server.throttle = throttle  # type: ignore[method-assign]
    return throttled


def test_long_429_is_announced_and_waited(make_fake_server: Callable[..., FakePostHog], tmp_path: Path,
                                          fast_client: FastClients, caplog: pytest.LogCaptureFixture) -> None:
    """A 2200 s wait (under max_rate_limit_wait) is logged with resource, length and end time, then waited."""
    server = make_fake_server(seed=5, events=1_000)
    throttled = throttle_first_queries(server, 2200, times=1)
    with caplog.at_level(logging.INFO, logger="posthog_source"):
        run_pipeline(server, tmp_path, resources=HOGQL_TABLES, rate_limits={}, client_factory=fast_client)
    assert throttled
    assert 2200.0 in fast_client.built[0].slept
    waits = [r.getMessage() for r in caplog.records if "rate limit" in r.getMessage()]
    assert waits and re.search(r"on \w+.* of project \d+: waiting 2200 s \(until \d\d:\d\d:\d\d UTC\)", waits[0]), waits
    assert_events_exact(server.world, tmp_path)
    assert_persons_exact(server.world, tmp_path)


def test_429_longer_than_max_wait_stops_cleanly_and_next_run_continues(
    make_fake_server: Callable[..., FakePostHog], tmp_path: Path
) -> None:
    """The CLI stops with one line naming the wait and the limit; what was loaded is untouched, and the next
    run (after PostHog's window) loads exactly what is missing."""
    server = make_fake_server(seed=5, events=1_000)
    env = cli_env(tmp_path, server, SOURCES__POSTHOG__MAX_RATE_LIMIT_WAIT="10m")
    args = ["run", "--resources", ",".join(HOGQL_TABLES)]
    assert run_cli(args, env, tmp_path).code == 0
    before = snapshot(tmp_path / "warehouse.duckdb")
    now = datetime.now(UTC)  # ingested after the first run's cut-off (ingestion_lag is 0 here)
    server.world.add_events(1, 300, created_at=now)
    server.world.add_events(2, 200, tie=True, created_at=now)
    throttle_first_queries(server, 2200, times=1)
    stopped = run_cli(args, env, tmp_path)
    assert stopped.code == 1, stopped.stderr
    assert len(stopped.error_lines()) == 1 and "Traceback" not in stopped.stderr
    assert re.search(r"rate-limited .* for 2200 s, more than max_rate_limit_wait \(600 s\); stopped cleanly",
                     stopped.error_lines()[0]), stopped.stderr
    assert snapshot(tmp_path / "warehouse.duckdb") == before
    resumed = run_cli(args, env, tmp_path)
    assert resumed.code == 0, resumed.stderr
    assert_events_exact(server.world, tmp_path)
    assert_persons_exact(server.world, tmp_path)
