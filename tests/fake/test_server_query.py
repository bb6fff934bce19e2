"""HTTP wiring of POST /query/ (posthog-api.md §3.2): envelope, errors, scope, project time zone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from fake_posthog.server import FakePostHog

pytest.importorskip("fake_posthog.hogql")

Client = Callable[..., requests.Session]


def query(server: FakePostHog, session: requests.Session, text: str, team: int = 1, **extra: Any) -> requests.Response:
    return session.post(f"{server.url}/api/projects/{team}/query/",
                        json={"query": {"kind": "HogQLQuery", "query": text}, **extra})


def test_select_returns_hogql_response(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = query(fake_server_shared, fake_client(fake_server_shared),
              "select uuid, event, timestamp from events order by timestamp, uuid limit 3")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"results", "columns", "types", "hasMore"} <= body.keys()
    assert body["columns"] == ["uuid", "event", "timestamp"] and len(body["results"]) == 3


def test_results_rendered_in_project_zone(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = query(fake_server_shared, fake_client(fake_server_shared), "select timestamp from events limit 1", team=2)
    assert r.json()["results"][0][0][-6:] in ("-05:00", "-04:00")


def test_offset_is_refused_with_validation_envelope(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = query(fake_server_shared, fake_client(fake_server_shared), "select uuid from events limit 10 offset 10")
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "validation_error" and body["code"] == "query_error" and body["attr"] is None
    assert body["detail"].startswith("OFFSET is not supported on queries made with a personal API key")


def test_bad_query_is_400_not_500(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = query(fake_server_shared, fake_client(fake_server_shared), "select nope from nowhere")
    assert r.status_code == 400
    assert set(r.json()) == {"type", "code", "detail", "attr"} and r.json()["type"] == "validation_error"


@pytest.mark.parametrize("payload", [{"query": {"kind": "EventsQuery", "select": ["*"]}}, {"query": "select 1"}, {}])
def test_only_hogql_query_kind(fake_server_shared: FakePostHog, fake_client: Client, payload: dict[str, Any]) -> None:
    r = fake_client(fake_server_shared).post(fake_server_shared.url + "/api/projects/1/query/", json=payload)
    assert r.status_code == 400 and r.json()["type"] == "validation_error"


def test_invalid_json_body(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server_shared).post(fake_server_shared.url + "/api/projects/1/query/", data=b"{nope",
                                             headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "parse_error"


def test_query_rate_bucket(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    from fake_posthog.ratelimit import RateLimitConfig

    server = make_fake_server(events=2000, rate_limits=RateLimitConfig(query=((2, 60), (2400, 3600))))
    session = fake_client(server)
    statuses = [query(server, session, "select 1").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert session.get(server.url + "/api/projects/1/cohorts/").status_code == 200


def test_engine_errors_as_500_option(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    """PostHog#40637, #14036: a query HogQL accepts but ClickHouse rejects (here: a type error the database
    engine finds) can come back as a bare 500. HogQL-level mistakes stay 400; the default keeps all 400."""
    plain = make_fake_server(events=1000)
    assert query(plain, fake_client(plain), "select event + 1 from events").status_code == 400
    server = make_fake_server(events=1000, engine_errors_as_500=True)
    session = fake_client(server)
    for _ in range(2):  # deterministic: the same mistake fails the same way
        r = query(server, session, "select event + 1 from events")
        assert r.status_code == 500
        assert r.json() == {"type": "server_error", "code": "error", "detail": "A server error occurred.",
                            "attr": None}
    assert query(server, session, "select uuid from nowhere").status_code == 400
    assert query(server, session, "select uuid from events limit 1 offset 1").status_code == 400


def test_fresh_answer_carries_cache_fields(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = query(fake_server_shared, fake_client(fake_server_shared), "select event from events limit 1",
              refresh="force_blocking")
    body = r.json()
    assert body["is_cached"] is False and body["cache_key"].startswith("cache_")
    assert body["last_refresh"].endswith("Z") and body["cache_target_age"] > body["last_refresh"]
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) > 0
