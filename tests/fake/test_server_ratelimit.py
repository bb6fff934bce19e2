"""Rate limits (posthog-api.md §4): buckets, sliding windows, 429 body, Retry-After, query concurrency."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable

import pytest
import requests

import fake_posthog
from fake_posthog.ratelimit import RateLimitConfig, RateLimiter
from fake_posthog.server import FakePostHog

Client = Callable[..., requests.Session]
THROTTLED = {"type": "throttled_error", "code": "throttled", "attr": None}


def test_default_numbers_are_posthogs() -> None:
    config = RateLimitConfig()
    assert config.crud == ((480, 60), (4800, 3600))
    assert config.analytics == ((240, 60), (1200, 3600))
    assert config.query == ((240, 60), (2400, 3600))
    assert config.query_concurrency == 3


def test_sliding_window_wait_is_exact() -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimitConfig(crud=((2, 60),)), time_scale=1.0, clock=lambda: now[0])
    assert limiter.check("k", "crud") is None
    now[0] += 10
    assert limiter.check("k", "crud") is None
    assert limiter.check("k", "crud") == 50  # the first request leaves the window in 50 s
    now[0] += 50.0
    assert limiter.check("k", "crud") is None
    assert limiter.check("other", "crud") is None  # per key


def test_analytics_bucket_real_numbers(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=1000, rate_limits=True)
    session = fake_client(server)
    started = time.monotonic()
    statuses = [session.get(server.url + "/api/projects/1/insights/?limit=1&basic=true").status_code
                for _ in range(241)]
    elapsed = time.monotonic() - started  # the window started with the first request: the wait is 60 s minus this
    assert statuses[:240] == [200] * 240 and statuses[240] == 429
    r = session.get(server.url + "/api/projects/1/persons/?limit=1")  # same bucket
    assert r.status_code == 429
    detail = r.json()["detail"]
    assert detail.startswith("Request was throttled. Expected available in ") and detail.endswith(" seconds.")
    assert 60 - elapsed - 2 <= int(detail.split()[-2]) <= 60
    assert "Retry-After" not in r.headers
    assert session.get(server.url + "/api/projects/1/cohorts/").status_code == 200  # crud bucket unaffected
    assert fake_client(server, "limited").get(server.url + "/api/projects/1/insights/").status_code == 200
    assert server.throttled_count == 2


def test_compressed_time_scale_and_retry_after(make_fake_server: Callable[..., FakePostHog],
                                               fake_client: Client) -> None:
    config = RateLimitConfig(crud=((5, 60), (1000, 3600)))
    server = make_fake_server(events=1000, rate_limits=config, time_scale=60, retry_after_header=True)
    session = fake_client(server)
    url = server.url + "/api/projects/1/cohorts/?limit=1"
    assert [session.get(url).status_code for _ in range(5)] == [200] * 5
    r = session.get(url)
    assert r.status_code == 429
    assert r.json() == {**THROTTLED, "detail": "Request was throttled. Expected available in 1 seconds."}
    assert r.headers["Retry-After"] == "1"
    time.sleep(1.05)  # a minute at time_scale 60
    assert session.get(url).status_code == 200


def test_hour_window(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=1000, rate_limits=RateLimitConfig(crud=((100, 60), (3, 3600))), time_scale=36)
    session = fake_client(server)
    url = server.url + "/api/projects/1/actions/"
    assert [session.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert session.get(url).json()["detail"] == "Request was throttled. Expected available in 100 seconds."


def test_rejected_requests_are_not_throttled(make_fake_server: Callable[..., FakePostHog],
                                             fake_client: Client) -> None:
    server = make_fake_server(events=1000, rate_limits=RateLimitConfig(crud=((2, 60),)))
    bad = fake_client(server, "phx_wrong")
    assert all(bad.get(server.url + "/api/projects/1/cohorts/").status_code == 401 for _ in range(5))
    good = fake_client(server)
    assert [good.get(server.url + "/api/projects/1/cohorts/").status_code for _ in range(3)] == [200, 200, 429]


@pytest.fixture
def slow_hogql(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for fake_posthog.hogql whose queries take 1 s, to hold concurrency slots."""
    stub = types.ModuleType("fake_posthog.hogql")

    class HogQLError(Exception):
        pass

    def execute_hogql(con: object, team_id: int, team_timezone: str, query: str, *more: object,
                      ) -> dict[str, object]:
        time.sleep(1.0)
        return {"results": [[team_id]], "columns": ["team"], "types": [["team", "Int64"]], "hasMore": False}

    stub.HogQLError = HogQLError  # type: ignore[attr-defined]
    stub.execute_hogql = execute_hogql  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_posthog.hogql", stub)
    monkeypatch.setattr(fake_posthog, "hogql", stub, raising=False)


@pytest.mark.usefixtures("slow_hogql")
def test_fourth_concurrent_query_per_team_gets_429(make_fake_server: Callable[..., FakePostHog],
                                                   fake_client: Client) -> None:
    server = make_fake_server(events=1000, rate_limits=True, time_scale=60)  # queue wait 30 s / 60
    body = {"query": {"kind": "HogQLQuery", "query": "select 1"}}
    results: dict[str, requests.Response] = {}

    def post(name: str, team: int) -> None:
        results[name] = fake_client(server).post(f"{server.url}/api/projects/{team}/query/", json=body)

    threads = [threading.Thread(target=post, args=(f"t1-{i}", 1)) for i in range(4)]
    threads.append(threading.Thread(target=post, args=("t2", 2)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    team1 = sorted(results[f"t1-{i}"].status_code for i in range(4))
    assert team1 == [200, 200, 200, 429]
    refused = next(results[f"t1-{i}"] for i in range(4) if results[f"t1-{i}"].status_code == 429)
    assert refused.json()["type"] == "throttled_error"
    assert refused.json()["detail"].startswith("Exceeded maximum concurrency limit: 3")
    assert results["t2"].status_code == 200  # the limit is per team


@pytest.mark.parametrize("mode", ["all", "query"])
def test_always_throttle(make_fake_server: Callable[..., FakePostHog], fake_client: Client, mode: str) -> None:
    server = make_fake_server(events=1000, always_throttle=mode, always_throttle_wait=7, retry_after_header=True)
    session = fake_client(server)
    body = {"query": {"kind": "HogQLQuery", "query": "select 1"}}
    for _ in range(3):  # every attempt, not just the first
        r = session.post(server.url + "/api/projects/1/query/", json=body)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert r.json() == {**THROTTLED, "detail": "Request was throttled. Expected available in 7 seconds."}
    cohorts = session.get(server.url + "/api/projects/1/cohorts/")
    assert cohorts.status_code == (429 if mode == "all" else 200)
    assert fake_client(server, "phx_wrong").get(server.url + "/api/projects/1/cohorts/").status_code == 401
    assert server.throttled_count == (4 if mode == "all" else 3)


def test_retry_after_as_http_date(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    import email.utils
    import re
    from datetime import UTC, datetime, timedelta

    server = make_fake_server(events=1000, rate_limits=RateLimitConfig(crud=((1, 60),)), retry_after_header=True,
                              retry_after_format="http-date")
    session = fake_client(server)
    url = server.url + "/api/projects/1/cohorts/"
    assert session.get(url).status_code == 200
    r = session.get(url)
    assert r.status_code == 429
    value = r.headers["Retry-After"]
    assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                        r"\d{4} \d\d:\d\d:\d\d GMT", value), value
    wait = int(r.json()["detail"].split()[-2])
    when = email.utils.parsedate_to_datetime(value)
    now = datetime.now(UTC)
    assert now + timedelta(seconds=wait - 2) <= when <= now + timedelta(seconds=wait + 2)


def test_budget_retry_after_as_http_date(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    import email.utils
    from datetime import UTC, datetime, timedelta

    server = make_fake_server(events=1000, read_budget=True, read_budget_bytes_per_hour=3600,
                              read_budget_capacity_hours=1, retry_after_format="http-date")
    session = fake_client(server)
    body = {"query": {"kind": "HogQLQuery", "query": "select uuid from events"}, "refresh": "force_blocking"}
    assert session.post(server.url + "/api/projects/1/query/", json=body).status_code == 200
    r = session.post(server.url + "/api/projects/1/query/", json=body)
    assert r.status_code == 429
    when = email.utils.parsedate_to_datetime(r.headers["Retry-After"])
    assert abs(when - (datetime.now(UTC) + timedelta(seconds=3600))) < timedelta(seconds=15)


def test_bad_options_are_refused() -> None:
    from fake_posthog.world import World

    world = World.generate(seed=1, events=0)
    for bad in ({"retry_after_format": "ms"}, {"always_throttle": "some"}, {"read_budget_scope": "org"},
                {"execution_limit_status": 500}):
        with pytest.raises(ValueError):
            FakePostHog(world, **bad)  # type: ignore[arg-type]
