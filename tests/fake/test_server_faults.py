"""Injected faults: each kind behaves as documented, deterministically per (seed, request number)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from fake_posthog.faults import FaultConfig
from fake_posthog.server import FakePostHog

Client = Callable[..., requests.Session]


def outcome(session: requests.Session, url: str) -> str:
    """What a client observes: a status, a broken JSON body, or the kind of connection failure."""
    try:
        r = session.get(url, timeout=5)
    except requests.exceptions.ChunkedEncodingError:
        return "incomplete-body"
    except requests.exceptions.ConnectionError:
        return "connection-dropped"
    if r.status_code != 200:
        return str(r.status_code)
    try:
        r.json()
    except ValueError:
        return "bad-json"
    return "ok"


def test_pick_is_deterministic_per_seed() -> None:
    config = FaultConfig.uniform(0.5, seed=11)
    first = [config.pick(n)[0] for n in range(200)]
    assert first == [config.pick(n)[0] for n in range(200)]
    assert first != [FaultConfig.uniform(0.5, seed=12).pick(n)[0] for n in range(200)]
    assert 60 < sum(1 for f in first if f) < 140


def test_same_seed_same_faults_over_http(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    runs = []
    for _ in range(2):
        server = make_fake_server(events=1000, faults=FaultConfig(seed=5, rate_5xx=0.15, rate_drop=0.1,
                                                                  rate_drop_mid_body=0.1, rate_truncated_json=0.1,
                                                                  rate_429=0.1))
        session = fake_client(server)
        runs.append([outcome(session, server.url + "/api/projects/1/cohorts/?limit=20") for _ in range(40)])
        assert sum(server.fault_counts.values()) == sum(1 for o in runs[-1] if o != "ok")
    assert runs[0] == runs[1]
    assert {"ok", "connection-dropped", "incomplete-body", "bad-json", "429"} <= set(runs[0])


@pytest.mark.parametrize(("config", "expected"), [
    (FaultConfig(rate_drop=1.0), "connection-dropped"),
    (FaultConfig(rate_drop_mid_body=1.0), "incomplete-body"),
    (FaultConfig(rate_truncated_json=1.0), "bad-json"),
    (FaultConfig(rate_429=1.0), "429"),
])
def test_each_fault_kind(make_fake_server: Callable[..., FakePostHog], fake_client: Client, config: FaultConfig,
                         expected: str) -> None:
    server = make_fake_server(events=1000, faults=config)
    session = fake_client(server)
    assert outcome(session, server.url + "/api/projects/1/cohorts/") == expected
    if expected == "429":
        r = session.get(server.url + "/api/projects/1/cohorts/")
        assert "Retry-After" not in r.headers
        assert r.json()["detail"] == "Request was throttled. Expected available in 1 seconds."


def test_5xx_and_slow(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=1000, faults=FaultConfig(seed=1, rate_5xx=1.0))
    session = fake_client(server)
    statuses = {session.get(server.url + "/api/projects/1/cohorts/").status_code for _ in range(30)}
    assert statuses == {500, 502, 503}
    slow = make_fake_server(events=1000, faults=FaultConfig(rate_slow=1.0, slow_seconds=0.3))
    started = time.monotonic()
    assert fake_client(slow).get(slow.url + "/api/projects/1/cohorts/").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_admin_routes_never_faulted(make_fake_server: Callable[..., FakePostHog]) -> None:
    server = make_fake_server(events=1000, faults=FaultConfig(rate_drop=1.0))
    for _ in range(5):
        assert requests.get(server.url + "/_fake/stats").status_code == 200
