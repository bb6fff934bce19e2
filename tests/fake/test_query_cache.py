"""The query result cache (posthog-api.md §3.2, §9): identical text inside the target age answers old rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
import pytest
import requests

from fake_posthog.server import FakePostHog

Client = Callable[..., requests.Session]
COUNT = "select count() from events"


def query(server: FakePostHog, session: requests.Session, text: str, team: int = 1, **extra: Any) -> dict[str, Any]:
    r = session.post(f"{server.url}/api/projects/{team}/query/",
                     json={"query": {"kind": "HogQLQuery", "query": text}, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_identical_query_answers_from_cache(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    session = fake_client(server)
    first = query(server, session, COUNT)
    second = query(server, session, COUNT)
    assert first["is_cached"] is False and second["is_cached"] is True
    assert second["cache_key"] == first["cache_key"] and second["cache_key"].startswith("cache_")
    assert second["last_refresh"] == first["last_refresh"]
    refreshed = pendulum.parse(first["last_refresh"])
    assert abs(refreshed - pendulum.now("UTC")) < timedelta(seconds=30)
    assert pendulum.parse(second["cache_target_age"]) - refreshed == timedelta(minutes=15)
    assert second["results"] == first["results"]
    assert server.cache_hits_by_key["full"] == 1 and server.query_count_by_key["full"] == 1


def test_cached_answer_is_stale_until_forced(make_fake_server: Callable[..., FakePostHog],
                                             fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    session = fake_client(server)
    before = query(server, session, COUNT)["results"][0][0]
    server.world.add_events(1, 7)
    stale = query(server, session, COUNT, refresh="blocking")
    assert stale["is_cached"] is True and stale["results"][0][0] == before  # the new rows are not there
    forced = query(server, session, COUNT, refresh="force_blocking")
    assert forced["is_cached"] is False and forced["results"][0][0] == before + 7
    # the forced calculation replaced the cache entry
    again = query(server, session, COUNT)
    assert again["is_cached"] is True and again["results"][0][0] == before + 7
    assert again["last_refresh"] == forced["last_refresh"]


@pytest.mark.parametrize("refresh", ["force_async", True])
def test_other_forcing_values(make_fake_server: Callable[..., FakePostHog], fake_client: Client,
                              refresh: Any) -> None:
    server = make_fake_server(events=1000)
    session = fake_client(server)
    before = query(server, session, COUNT)["results"][0][0]
    server.world.add_events(1, 3)
    answer = query(server, session, COUNT, refresh=refresh)
    assert answer["is_cached"] is False and answer["results"][0][0] == before + 3


@pytest.mark.parametrize("refresh", ["async", "lazy_async", "force_cache", "async_except_on_cache_miss", False])
def test_cache_using_values(make_fake_server: Callable[..., FakePostHog], fake_client: Client, refresh: Any) -> None:
    server = make_fake_server(events=1000)
    session = fake_client(server)
    query(server, session, COUNT)
    assert query(server, session, COUNT, refresh=refresh)["is_cached"] is True


def test_unknown_refresh_value_is_400(fake_server: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server).post(f"{fake_server.url}/api/projects/1/query/",
                                      json={"query": {"kind": "HogQLQuery", "query": COUNT}, "refresh": "now"})
    assert r.status_code == 400
    assert r.json()["type"] == "validation_error" and r.json()["attr"] == "refresh"


def test_cache_is_per_team_not_per_key(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    one = query(server, fake_client(server), COUNT, team=1)
    two = query(server, fake_client(server), COUNT, team=2)
    assert two["is_cached"] is False and two["cache_key"] != one["cache_key"]
    assert two["results"] != one["results"]
    other_key = query(server, fake_client(server, "scoped"), COUNT, team=1)
    assert other_key["is_cached"] is True and other_key["results"] == one["results"]
    # only the exact text hits: a changed spelling is another query
    assert query(server, fake_client(server), COUNT + " ", team=1)["is_cached"] is False


def test_name_does_not_change_the_cache_key(make_fake_server: Callable[..., FakePostHog],
                                            fake_client: Client) -> None:
    server = make_fake_server(events=1000)
    session = fake_client(server)
    query(server, session, COUNT, name="first")
    assert query(server, session, COUNT, name="second", client_query_id="x")["is_cached"] is True


def test_target_age_expires_and_scales(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=1000, cache_target_age_seconds=60, time_scale=60)  # one real second
    session = fake_client(server)
    first = query(server, session, COUNT)
    age = pendulum.parse(first["cache_target_age"]) - pendulum.parse(first["last_refresh"])
    assert age == timedelta(seconds=1)
    server.world.add_events(1, 2, created_at=datetime.now(UTC))
    assert query(server, session, COUNT)["is_cached"] is True
    time.sleep(1.05)
    fresh = query(server, session, COUNT)
    assert fresh["is_cached"] is False and fresh["results"][0][0] == first["results"][0][0] + 2


def test_cache_can_be_switched_off(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=1000, query_cache=False)
    session = fake_client(server)
    query(server, session, COUNT)
    second = query(server, session, COUNT)
    assert second["is_cached"] is False and "cache_key" not in second
    assert server.query_count_by_key["full"] == 2


def test_cached_answer_reads_nothing(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    session = fake_client(server)
    r1 = session.post(f"{server.url}/api/projects/1/query/", json={"query": {"kind": "HogQLQuery",
                                                                             "query": "select uuid from events"}})
    spent = server.read_bytes_by_key["full"]
    assert spent > 0 and r1.headers["X-PostHog-Query-Bytes-Read"] == str(spent)
    r2 = session.post(f"{server.url}/api/projects/1/query/", json={"query": {"kind": "HogQLQuery",
                                                                             "query": "select uuid from events"}})
    assert r2.json()["is_cached"] is True and "X-PostHog-Query-Bytes-Read" not in r2.headers
    assert server.read_bytes_by_key["full"] == spent
    stats = requests.get(server.url + "/_fake/stats").json()["server"]
    assert stats["cache_hits_by_key"] == {"full": 1} and stats["queries_by_key"] == {"full": 1}


def test_entries_expire_unread_and_the_cache_holds_a_bounded_number_of_rows() -> None:
    """Like Redis: an entry goes at its target age even if never read again, and past `max_rows` cached
    rows the oldest entries are evicted (the newest one always stays)."""
    from fake_posthog.querycache import QueryCache

    now = [0.0]
    cache = QueryCache(target_age_seconds=60, clock=lambda: now[0], max_rows=10)
    cache.put("a", {"results": [[1]] * 4})
    cache.put("b", {"results": [[2]] * 4})
    assert len(cache) == 2 and cache.get("a") is not None
    cache.put("c", {"results": [[3]] * 4})  # 12 rows > 10: the oldest goes
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None
    cache.put("huge", {"results": [[4]] * 50})
    assert len(cache) == 1 and cache.get("huge") is not None
    now[0] = 61.0
    cache.put("d", {"results": [[5]]})  # "huge" expired unread
    assert len(cache) == 1 and cache.get("d") is not None
