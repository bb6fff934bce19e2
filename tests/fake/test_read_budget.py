"""Read bytes per query and the hourly read budget (posthog-api.md §9, PostHog#95375).

Expected costs are computed here straight from the world's DuckDB tables, independently of the estimator:
rows of the team (pruned to whole UTC days by `timestamp` bounds only) × the average width of the columns read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from fake_posthog.ratelimit import ReadBudget
from fake_posthog.server import FakePostHog

Client = Callable[..., requests.Session]
THROTTLED = {"type": "throttled_error", "code": "throttled", "attr": None}


def post(server: FakePostHog, session: requests.Session, text: str, team: int = 1,
         **extra: Any) -> requests.Response:
    return session.post(f"{server.url}/api/projects/{team}/query/",
                        json={"query": {"kind": "HogQLQuery", "query": text}, "refresh": "force_blocking", **extra})


def scalar(server: FakePostHog, sql: str, *args: Any) -> Any:
    row = server.world.cursor().execute(sql, list(args)).fetchone()
    assert row is not None
    return row[0]


def utc(text: str) -> str:
    return f"toDateTime64('{text}', 6, 'UTC')"


def test_bytes_are_rows_times_column_width(make_fake_server: Callable[..., FakePostHog],
                                           fake_client: Client) -> None:
    server = make_fake_server(events=5000)
    session = fake_client(server)
    team_rows = scalar(server, "SELECT count(*) FROM events WHERE team_id = 1")
    r = post(server, session, "select uuid from events limit 10")
    assert r.status_code == 200
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == team_rows * 16  # a UUID is 16 bytes, every row read
    r = post(server, session, "select uuid from events order by timestamp limit 10")
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == team_rows * (16 + 8)  # ORDER BY reads timestamp too
    event_width = scalar(server, "SELECT avg(strlen(event)) FROM events WHERE team_id = 1")
    r = post(server, session, "select uuid, event from events limit 1")
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == round(team_rows * (16 + event_width))
    assert server.query_count_by_key["full"] == 3
    assert server.rows_scanned_by_key["full"] == 3 * team_rows


def test_properties_path_reads_the_whole_column(make_fake_server: Callable[..., FakePostHog],
                                                fake_client: Client) -> None:
    server = make_fake_server(events=3000)
    session = fake_client(server)
    rows = scalar(server, "SELECT count(*) FROM events WHERE team_id = 1")
    width = scalar(server, "SELECT avg(strlen(properties)) FROM events WHERE team_id = 1")
    r = post(server, session, "select properties.$browser from events limit 1")
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == round(rows * width)
    star = int(post(server, session, "select * from events limit 1").headers["X-PostHog-Query-Bytes-Read"])
    assert star > rows * width  # SELECT * reads every column


def test_timestamp_bounds_prune_to_days_created_at_does_not(make_fake_server: Callable[..., FakePostHog],
                                                           fake_client: Client) -> None:
    server = make_fake_server(events=20_000)
    session = fake_client(server)
    team_rows = scalar(server, "SELECT count(*) FROM events WHERE team_id = 1")
    # mid-day bounds: the scan covers the whole UTC days 2026-03-01 .. 2026-03-03
    day_rows = scalar(server, "SELECT count(*) FROM events WHERE team_id = 1 AND timestamp >= ? AND timestamp < ?",
                      datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    assert 0 < day_rows < team_rows
    bounded = (f"select uuid from events where timestamp >= {utc('2026-03-01 10:00:00.000000')} "
               f"and timestamp < {utc('2026-03-03 02:00:00.000000')} order by timestamp limit 5")
    assert int(post(server, session, bounded).headers["X-PostHog-Query-Bytes-Read"]) == day_rows * (16 + 8)
    by_created = (f"select uuid from events where created_at >= {utc('2026-03-01 10:00:00.000000')} "
                  f"and created_at < {utc('2026-03-03 02:00:00.000000')} limit 5")
    r = post(server, session, by_created)
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == team_rows * (16 + 8)  # uuid + created_at, every row
    # the keyset condition the connector writes still prunes (OR of > and =)
    keyset = (f"select uuid from events where (timestamp > {utc('2026-03-01 10:00:00.000000')} or "
              f"(timestamp = {utc('2026-03-01 10:00:00.000000')} and uuid > 'a')) and "
              f"timestamp < {utc('2026-03-03 02:00:00.000000')} limit 5")
    assert int(post(server, session, keyset).headers["X-PostHog-Query-Bytes-Read"]) == day_rows * (16 + 8)
    # bounds read as wall-clock in the project's zone (project 2: America/New_York)
    ny_rows = scalar(server, "SELECT count(*) FROM events WHERE team_id = 2 AND timestamp >= ? AND timestamp < ?",
                     datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    r = post(server, session, "select uuid from events where timestamp >= '2026-03-01 12:00:00' and "
                              "timestamp < '2026-03-02 12:00:00' limit 1", team=2)
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == ny_rows * (16 + 8)


def test_other_tables_scan_every_row_of_the_team(make_fake_server: Callable[..., FakePostHog],
                                                 fake_client: Client) -> None:
    server = make_fake_server(events=3000)
    session = fake_client(server)
    persons = scalar(server, "SELECT count(*) FROM persons WHERE team_id = 1")  # deleted ones included
    r = post(server, session, "select id from persons where created_at > '2026-03-01' limit 1")
    assert int(r.headers["X-PostHog-Query-Bytes-Read"]) == persons * (16 + 8)


def test_stats_show_cost_per_key(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=2000)
    full, scoped = fake_client(server), fake_client(server, "scoped")
    a = int(post(server, full, "select uuid from events limit 1").headers["X-PostHog-Query-Bytes-Read"])
    b = int(post(server, scoped, "select event from events limit 1").headers["X-PostHog-Query-Bytes-Read"])
    c = int(post(server, full, "select uuid from events limit 1", team=2).headers["X-PostHog-Query-Bytes-Read"])
    assert post(server, full, "select nope from nowhere").status_code == 400  # refused queries read nothing
    stats = requests.get(server.url + "/_fake/stats").json()["server"]
    assert stats["read_bytes_by_key"] == {"full": a + c, "scoped": b}
    assert stats["queries_by_key"] == {"full": 2, "scoped": 1}
    assert stats["read_bytes_by_project"] == {"1": a + b, "2": c}
    assert stats["read_bytes"] == a + b + c and stats["queries"] == 3
    assert server.read_bytes_by_key == {"full": a + c, "scoped": b}
    assert all(server.world.keys["full"] not in str(v) for v in stats.values())  # the secret never shows


def tiny_budget(make: Callable[..., FakePostHog], **kwargs: Any) -> FakePostHog:
    """A server whose budget is 3600 bytes an hour with one hour of capacity (1 byte per nominal second)."""
    return make(events=2000, read_budget=True, read_budget_bytes_per_hour=3600, read_budget_capacity_hours=1,
                **kwargs)


def test_query_that_crosses_zero_runs_the_next_gets_429(make_fake_server: Callable[..., FakePostHog],
                                                        fake_client: Client) -> None:
    server = tiny_budget(make_fake_server)
    session = fake_client(server)
    r = post(server, session, "select uuid from events limit 3")  # ~19 kB, far over the 3600 B left
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    assert r.headers["X-PostHog-Query-Budget-Remaining-Bytes"] == "-3600"  # floored at one hour of refill
    refused = post(server, session, "select 1")
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 3590 <= wait <= 3600  # 3600 B at 1 B/s, less the instants already refilled
    assert refused.json() == {**THROTTLED, "detail": f"Request was throttled. Expected available in {wait} seconds."}
    assert server.budget_throttled_count == 1 and server.throttled_count == 1
    assert server.query_count_by_key["full"] == 1  # the refused query did not run
    stats = requests.get(server.url + "/_fake/stats").json()["server"]
    assert stats["budget_throttled"] == 1 and stats["read_budget_remaining"]["1"] <= -3590


def test_budget_is_per_team_by_default(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = tiny_budget(make_fake_server)
    assert post(server, fake_client(server), "select uuid from events limit 1").status_code == 200
    assert post(server, fake_client(server, "scoped"), "select 1").status_code == 429  # same team, other key
    assert post(server, fake_client(server), "select 1", team=2).status_code == 200  # other team


def test_budget_per_key_option(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = tiny_budget(make_fake_server, read_budget_scope="key")
    assert post(server, fake_client(server), "select uuid from events limit 1").status_code == 200
    assert post(server, fake_client(server), "select 1", team=2).status_code == 429  # same key, other team
    assert post(server, fake_client(server, "scoped"), "select 1").status_code == 200


def test_cached_answers_pass_an_empty_budget(make_fake_server: Callable[..., FakePostHog],
                                             fake_client: Client) -> None:
    server = tiny_budget(make_fake_server)
    session = fake_client(server)
    text = "select uuid from events limit 2"
    assert post(server, session, text, refresh="blocking").status_code == 200
    cached = post(server, session, text, refresh="blocking")
    assert cached.status_code == 200 and cached.json()["is_cached"] is True
    assert post(server, session, text).status_code == 429  # force_blocking must compute: refused


def test_budget_refills_with_time_scale(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    # 3600 B/h at time_scale 3600 refills 3600 B per real second: the floor of -3600 B lasts one second
    server = tiny_budget(make_fake_server, time_scale=3600)
    session = fake_client(server)
    assert post(server, session, "select uuid from events limit 1").status_code == 200
    refused = post(server, session, "select 1")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert post(server, session, "select 1").status_code == 200


def test_budget_follows_rate_limits_by_default(make_fake_server: Callable[..., FakePostHog],
                                               fake_client: Client) -> None:
    off = make_fake_server(events=1000, read_budget_bytes_per_hour=3600, read_budget_capacity_hours=1)
    session = fake_client(off)
    assert [post(off, session, "select uuid from events").status_code for _ in range(3)] == [200] * 3
    assert off.read_budget is None
    on = make_fake_server(events=1000, rate_limits=True, read_budget_bytes_per_hour=3600,
                          read_budget_capacity_hours=1)
    session = fake_client(on)
    assert [post(on, session, "select uuid from events").status_code for _ in range(2)] == [200, 429]


def test_bucket_arithmetic() -> None:
    now = [0.0]
    budget = ReadBudget(bytes_per_hour=3600, capacity_hours=2, clock=lambda: now[0])
    assert budget.balance("t") == 7200  # starts full
    assert budget.wait("t") is None
    assert budget.debit("t", 7000) == 200
    assert budget.debit("t", 10**9) == -3600  # floor: one hour of refill
    assert budget.wait("t") == 3600
    now[0] += 3599.5
    assert budget.wait("t") == 1
    now[0] += 0.5
    assert budget.wait("t") == 1  # a zero balance is still exhausted
    now[0] += 10**6
    assert budget.balance("t") == 7200  # never above capacity
    assert budget.balance("other") == 7200


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_bucket_refill_scales(scale: float) -> None:
    now = [0.0]
    budget = ReadBudget(bytes_per_hour=3600, capacity_hours=1, time_scale=scale, clock=lambda: now[0])
    budget.debit("t", 3600 + 360)  # 360 B below zero, refilled at 1 B (or 60 B) per real second
    assert budget.wait("t") == round(360 / scale)
    now[0] += 180 / scale
    assert budget.wait("t") == round(180 / scale)
    now[0] += 181 / scale
    assert budget.wait("t") is None


def test_estimate_follows_ctes_unions_and_subqueries() -> None:
    from fake_posthog.cost import CostEstimator
    from fake_posthog.world import World

    world = World.generate(seed=3, events=3000, now=datetime(2026, 3, 15, 12, tzinfo=UTC))
    cur = world.cursor()
    events = cur.execute("SELECT count(*) FROM events WHERE team_id = 1").fetchone()[0]  # type: ignore[index]
    persons = cur.execute("SELECT count(*) FROM persons WHERE team_id = 1").fetchone()[0]  # type: ignore[index]
    estimate = CostEstimator(world).estimate
    cte = estimate(1, "UTC", "with x as (select uuid from events) select count() from x")
    assert [(s.table, s.rows, s.columns) for s in cte.scans] == [("events", events, ("uuid",))]
    union = estimate(1, "UTC", "select uuid from events union all select id from persons")
    assert union.read_bytes == (events + persons) * 16
    sub = estimate(1, "UTC", "select count() from events where person_id in (select id from persons)")
    assert {s.table: s.columns for s in sub.scans} == {"events": ("person_id",), "persons": ("id",)}
    assert estimate(1, "UTC", "not sql at all ((").read_bytes == 0


def test_sort_key_prunes_by_event_and_distinct_id_hash(make_fake_server: Callable[..., FakePostHog],
                                                      fake_client: Client) -> None:
    """PostHog's events are sorted by (team_id, toDate(timestamp), event, cityHash64(distinct_id), ...): after
    the days, conditions on `event` and on cityHash64(distinct_id) narrow the scan; `distinct_id` itself and
    an OR do not."""
    server = make_fake_server(events=20_000)
    session = fake_client(server)
    day = (f"timestamp >= {utc('2026-03-01 00:00:00.000000')} and timestamp < {utc('2026-03-02 00:00:00.000000')}")
    between = ("team_id = 1 AND timestamp >= TIMESTAMPTZ '2026-03-01 00:00:00+00' "
               "AND timestamp < TIMESTAMPTZ '2026-03-02 00:00:00+00'")
    day_rows = scalar(server, f"SELECT count(*) FROM events WHERE {between}")
    pageviews = scalar(server, f"SELECT count(*) FROM events WHERE {between} AND event = '$pageview'")
    below = scalar(server, f"SELECT count(*) FROM events WHERE {between} AND event < '$pageview'")
    assert 0 < pageviews < day_rows and 0 < below < day_rows

    def scanned(where: str) -> int:
        before = server.rows_scanned_by_key["full"]
        r = post(server, session, f"select uuid from events where {where} limit 1")
        assert r.status_code == 200, r.text
        return int(server.rows_scanned_by_key["full"] - before)

    assert scanned(day) == day_rows
    assert scanned(f"{day} and event = '$pageview'") == pageviews
    assert scanned(f"'$pageview' = event and {day}") == pageviews
    assert scanned(f"{day} and event in ('$pageview')") == pageviews
    assert scanned(f"{day} and event < '$pageview'") == below
    assert scanned(f"{day} and (event = '$pageview' or distinct_id = 'x')") == day_rows  # an OR prunes nothing
    assert scanned(f"{day} and distinct_id = 'x'") == day_rows  # the key holds its hash, not the value
    half = 2 ** 63
    low_half = scalar(server, f"SELECT count(*) FROM events WHERE {between} AND event = '$pageview' "
                              f"AND hash(CAST(distinct_id AS VARCHAR)) < {half}")
    assert 0 < low_half < pageviews
    assert scanned(f"{day} and event = '$pageview' and cityHash64(distinct_id) < {half}") == low_half
    # the hash prunes only where `event` is pinned to values: after a range of names, or alone, it does not
    assert scanned(f"{day} and event < '$pageview' and cityHash64(distinct_id) < {half}") == below
    assert scanned(f"{day} and cityHash64(distinct_id) < {half}") == day_rows
    # the engine answers with the same hash the meter prunes by: the two halves hold every row once
    rows = []
    for condition in (f"cityHash64(distinct_id) < {half}", f"cityHash64(distinct_id) >= {half}"):
        r = post(server, session, f"select uuid from events where {day} and event = '$pageview' and {condition} "
                                  "limit 50000")
        rows += [row[0] for row in r.json()["results"]]
    assert len(rows) == len(set(rows)) == pageviews
    buckets = post(server, session, f"select bitShiftRight(cityHash64(distinct_id), 56) as b, count() as n from "
                                    f"events where {day} and event = '$pageview' group by b order by b")
    counted = buckets.json()["results"]
    assert sum(n for _, n in counted) == pageviews and all(0 <= b < 256 for b, _ in counted)
    assert sum(n for b, n in counted if b < 128) == low_half
