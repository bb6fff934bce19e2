"""The execution-time limit (posthog-api.md §3.2, §9): a query scanning too many rows fails like PostHog's
ClickHouse timeout, every time, until the client narrows it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from fake_posthog.server import QUERY_TIMEOUT_DETAIL, QUERY_TOO_SLOW_DETAIL, FakePostHog

Client = Callable[..., requests.Session]


def post(server: FakePostHog, session: requests.Session, text: str, **extra: Any) -> requests.Response:
    return session.post(f"{server.url}/api/projects/1/query/",
                        json={"query": {"kind": "HogQLQuery", "query": text}, **extra})


def window(lo: str, hi: str, column: str = "timestamp") -> str:
    return (f"select uuid, timestamp from events where {column} >= toDateTime64('{lo}', 6, 'UTC') and "
            f"{column} < toDateTime64('{hi}', 6, 'UTC') order by timestamp, uuid limit 50000")


def rows_between(server: FakePostHog, lo: datetime, hi: datetime) -> int:
    row = server.world.cursor().execute(
        "SELECT count(*) FROM events WHERE team_id = 1 AND timestamp >= ? AND timestamp < ?", [lo, hi]).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def limited(make_fake_server: Callable[..., FakePostHog]) -> FakePostHog:
    server = make_fake_server(events=20_000)
    march = rows_between(server, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
    server.execution_limit_rows = march - 1  # two weeks of project 1 is one row too many
    return server


def test_too_wide_window_times_out_every_time(limited: FakePostHog, fake_client: Client) -> None:
    session = fake_client(limited)
    wide = window("2026-03-01 00:00:00", "2026-03-15 00:00:00")
    answers = [post(limited, session, wide, refresh=refresh) for refresh in ("blocking", "blocking", "force_blocking")]
    for r in answers:
        assert r.status_code == 504
        assert r.json() == {"type": "server_error", "code": "error", "detail": QUERY_TIMEOUT_DETAIL, "attr": None}
    assert limited.timeout_count == 3
    assert limited.read_bytes_by_key["full"] == 0 and limited.query_count_by_key["full"] == 0
    # split in two halves, each fits
    first = post(limited, session, window("2026-03-01 00:00:00", "2026-03-08 00:00:00"))
    second = post(limited, session, window("2026-03-08 00:00:00", "2026-03-15 00:00:00"))
    assert first.status_code == 200 and second.status_code == 200
    expected = rows_between(limited, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
    assert len(first.json()["results"]) + len(second.json()["results"]) == expected


def test_created_at_window_scans_everything(limited: FakePostHog, fake_client: Client) -> None:
    """A narrow created_at window prunes nothing, so it times out where a timestamp window would not."""
    session = fake_client(limited)
    narrow = ("2026-03-10 00:00:00", "2026-03-10 01:00:00")
    assert post(limited, session, window(*narrow)).status_code == 200
    assert post(limited, session, window(*narrow, column="created_at")).status_code == 504


def test_estimated_too_long_variant(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000, execution_limit_rows=10, execution_limit_status=512)
    r = post(server, fake_client(server), "select count() from events")
    assert r.status_code == 512
    assert r.json() == {"type": "server_error", "code": "error", "detail": QUERY_TOO_SLOW_DETAIL, "attr": None}


def test_off_by_default(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    assert server.execution_limit_rows is None
    assert post(server, fake_client(server), "select * from events limit 50000").status_code == 200


def test_invalid_query_is_still_400(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000, execution_limit_rows=10)
    r = post(server, fake_client(server), "select uuid from events limit 5 offset 5")
    assert r.status_code == 400 and r.json()["code"] == "query_error"
