"""The read-budget pacer (posthog_source/ratelimit.py ReadBudgetPacer) against PostHog's bucket as the fake
models it (fake_posthog/ratelimit.py ReadBudget, PostHog#95375): a backfill bigger than the bucket reads at
the refill rate with no 429, on a simulated clock."""

from __future__ import annotations

import random

import pytest

from fake_posthog.ratelimit import ReadBudget
from posthog_source.ratelimit import ReadBudgetPacer

MB = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("per_hour", "query_mb", "capacity_hours", "seed"), [
    (20_000, 50, 0.25, 1), (200_000, 400, 0.25, 2), (5_000, 60, 0.25, 3),
    (60_000, 35, 0.002, 4),  # a bucket of ~3 queries, refilling 3x faster than the pacer assumes at first
])
def test_a_read_larger_than_the_bucket_runs_at_the_refill_rate_without_429(per_hour, query_mb, capacity_hours,
                                                                          seed):
    rng = random.Random(seed)
    clock = Clock()
    bucket = ReadBudget(bytes_per_hour=per_hour * MB, capacity_hours=capacity_hours, clock=clock)
    pacer = ReadBudgetPacer(clock=clock)
    refused = read = 0
    capacity = bucket.capacity
    while read < max(4 * capacity, 100 * query_mb * MB):  # well beyond the bucket
        with pacer.query("1", clock.sleep):
            if bucket.wait("team") is not None:
                refused += 1
                clock.sleep(bucket.wait("team") or 1)
                continue
            clock.sleep(rng.uniform(0.2, 3.0))  # the query runs
            cost = int(query_mb * MB * rng.uniform(0.6, 1.0))
            remaining = bucket.debit("team", cost)
            read += cost
        pacer.observe("1", cost, int(remaining))
    refill = per_hour * MB / 3600
    share = (read - capacity) / (clock.now * refill)
    assert refused == 0
    assert share >= 0.9, f"{share:.1%} of the refill rate"
    rate = pacer.rate("1")
    assert rate is not None and abs(rate / refill - 1) < 0.1


def test_without_a_balance_nothing_waits():
    pacer = ReadBudgetPacer(clock=Clock())
    pacer.observe("1", 10 * MB, None)
    assert pacer.delay("1") == 0


def test_each_team_has_its_own_bucket():
    """PostHog's read budget is per team: one project's empty bucket does not hold back another's queries."""
    clock = Clock()
    pacer = ReadBudgetPacer(clock=clock)
    pacer.observe("1", 40 * MB, 100 * MB)
    pacer.observe("1", 40 * MB, -30 * MB)
    pacer.observe("2", 40 * MB, 400 * MB)
    assert pacer.delay("1") > 0
    assert pacer.delay("2") == 0


def test_an_answer_is_counted_before_its_place_in_flight_is_given_up():
    """Between the two, another thread would see neither the query in flight nor its debit in the balance."""
    from contextlib import contextmanager

    from posthog_source.client import PostHogClient
    from tests.unit.stub_http import json_answer, stub_server

    events: list[str] = []

    class Recording(ReadBudgetPacer):
        @contextmanager
        def query(self, team, sleep):
            with super().query(team, sleep):
                yield
            events.append("released")

        def observe(self, team, read, remaining):
            events.append(f"observed {read} {remaining}")
            super().observe(team, read, remaining)

    answer = json_answer(200, {"results": []}, **{"X-PostHog-Query-Bytes-Read": "36000000",
                                                  "X-PostHog-Query-Budget-Remaining-Bytes": "200000000"})
    with stub_server(answer) as server:
        client = PostHogClient(server.url, "phx_" + "k" * 30, pacer=Recording())
        client.post("/api/projects/7/query/", {"query": {"kind": "HogQLQuery", "query": "select 1"}})
    assert events == ["observed 36000000 200000000", "released"]


@pytest.mark.parametrize("seed", range(50))
def test_queries_in_flight_at_once_stay_inside_the_bucket(seed):
    """Three queries of one team in flight (PostHog's concurrency), whose answers arrive out of the order
    PostHog debited them (a big body takes longer to arrive): a newer answer can carry an older balance. A
    discrete-event run on a simulated clock, the bucket as the fake models it."""
    rng = random.Random(seed)
    clock = Clock()
    bucket = ReadBudget(bytes_per_hour=1_000 * MB * 60, capacity_hours=0.25 / 60, clock=clock)  # the bench's
    pacer = ReadBudgetPacer(clock=clock)
    running: list[list] = []  # [done on the server at, seen by us at, cost, place in flight, remaining]
    refused = read = 0
    while read < 8 * bucket.capacity:
        if len(running) < 3 and pacer.delay("1") <= 0:
            place = pacer.query("1", clock.sleep)
            place.__enter__()
            if bucket.wait("team") is not None:
                refused += 1
                place.__exit__(None, None, None)
                clock.sleep(bucket.wait("team") or 1)
                continue
            done = clock.now + rng.uniform(0.5, 2.5)
            running.append([done, done + rng.uniform(0.0, 1.5), int(36 * MB * rng.uniform(0.6, 1.0)), place, None])
            continue
        pending = [q[0] for q in running if q[4] is None] + [q[1] for q in running if q[4] is not None]
        wake = min(pending + [clock.now + max(pacer.delay("1"), 0.01)])
        clock.now = max(clock.now, wake)
        for query in sorted(running, key=lambda q: q[0]):
            if query[4] is None and query[0] <= clock.now:
                query[4] = bucket.debit("team", query[2])
                read += query[2]
        for query in [q for q in running if q[4] is not None and q[1] <= clock.now]:
            pacer.observe("1", query[2], int(query[4]))
            query[3].__exit__(None, None, None)
            running.remove(query)
    assert refused == 0
