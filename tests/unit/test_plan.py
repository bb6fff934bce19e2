"""The events planner, without HTTP: which windows a run reads, which marks it stores, what a sweep adds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pendulum
import pytest

from posthog_source.config import SourceSettings
from posthog_source.events import QueryPlan, estimate_line, plan_events
from posthog_source.hogql import EVENTS_BY_CREATED_AT, EVENTS_BY_TIMESTAMP
from posthog_source.incremental import Position
from posthog_source.projects import Project

PROJECT = Project(1, "web", "UTC", None)
NOW = pendulum.datetime(2026, 3, 15, 12, 0, tz="UTC")


def settings(**values: object) -> SourceSettings:
    return SourceSettings.parse(api_key="phx_test", host="http://127.0.0.1:9", **values)


class Counter:
    """A stand-in for PostHog's counts: answers `days` to the per-day counts in turn and records each query's
    conditions; finer counts and the slice size as given."""

    def __init__(self, *answers: list[tuple[pendulum.DateTime, int]], slice_rows: int = 40_000,
                 events: Sequence[tuple[pendulum.DateTime, str, int]] = (),
                 buckets: Sequence[tuple[pendulum.DateTime, str, int, int]] = ()) -> None:
        self.answers = list(answers)
        self.asked: list[Sequence[str]] = []
        self.rows, self.events, self.buckets = slice_rows, events, buckets
        self.sampled: list[Sequence[str]] = []

    def by_day(self, project: Project, conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]:
        self.asked.append(conditions)
        return self.answers.pop(0) if self.answers else []

    def by_day_and_event(self, project: Project,
                         conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int]]:
        self.asked.append(conditions)
        return self.events

    def by_hash_bucket(self, project: Project,
                       conditions: Sequence[str]) -> Sequence[tuple[pendulum.DateTime, str, int, int]]:
        self.asked.append(conditions)
        return self.buckets

    def slice_rows(self, project: Project, sample: Sequence[str], rows: int) -> int:
        self.sampled.append(sample)
        return self.rows


def day(n: int) -> pendulum.DateTime:
    return NOW.start_of("day").subtract(days=n)


def test_a_first_run_without_start_date_reads_from_the_first_day_with_events():
    counter = Counter([(day(400), 10), (day(3), 20)])
    planned = plan_events(PROJECT, Position(), settings(ingestion_lag="5m"), NOW, counter)
    assert planned.expected_rows == 30
    assert planned.plans[0].ts_lo == day(400) and planned.plans[0].table is EVENTS_BY_TIMESTAMP
    assert planned.plans[-1].ts_hi == NOW - timedelta(minutes=5) + timedelta(hours=24)
    assert "timestamp >=" not in " ".join(counter.asked[0])  # the count itself has no lower bound
    assert planned.marks is not None and planned.marks.watermark == NOW - timedelta(minutes=5)
    assert planned.marks.swept_to == planned.marks.watermark  # everything ingested so far was read


def test_an_incremental_run_rereads_the_overlap_and_bounds_timestamp_by_max_lateness():
    watermark = NOW.subtract(hours=2)
    marks = Position(watermark, watermark, NOW.subtract(hours=2))
    counter = Counter([(day(0), 5)])
    planned = plan_events(PROJECT, marks, settings(ingestion_lag="0", ingestion_overlap="1h"), NOW, counter)
    (plan,) = planned.plans
    assert plan.table is EVENTS_BY_CREATED_AT and plan.purpose == "incremental"
    assert plan.created_lo == watermark - timedelta(hours=1) and plan.created_hi == NOW
    assert plan.ts_lo == watermark - timedelta(days=7)
    assert len(counter.asked) == 1  # the sweep is not due: one count query
    assert planned.marks == Position(NOW, watermark, marks.swept_at)


def test_a_due_sweep_reads_only_the_old_days_that_received_events():
    watermark = NOW.subtract(hours=2)
    marks = Position(watermark, NOW.subtract(days=2), NOW.subtract(days=2))
    counter = Counter([(day(0), 5)], [(day(60), 3), (day(20), 4), (day(19), 1)])
    planned = plan_events(PROJECT, marks, settings(ingestion_lag="0", late_sweep="1d"), NOW, counter)
    sweeps = [p for p in planned.plans if p.purpose == "sweep"]
    assert [(p.ts_lo, p.ts_hi) for p in sweeps] == [(day(60), day(59)), (day(20), day(18))]
    assert all(p.created_lo == NOW.subtract(days=2) - timedelta(hours=1) and p.created_hi == NOW for p in sweeps)
    sweep_count = " ".join(counter.asked[1])
    assert "timestamp <" in sweep_count and "created_at >=" in sweep_count
    assert planned.expected_rows == 13
    assert planned.marks == Position(NOW, NOW, NOW)


@pytest.mark.parametrize("late_sweep", ["0", "1d"])
def test_late_sweep_zero_sweeps_every_run(late_sweep):
    marks = Position(NOW.subtract(minutes=10), NOW.subtract(minutes=10), NOW.subtract(minutes=10))
    counter = Counter([], [])
    plan_events(PROJECT, marks, settings(ingestion_lag="0", late_sweep=late_sweep), NOW, counter)
    assert len(counter.asked) == (2 if late_sweep == "0" else 1)


def test_a_stateless_window_stores_no_marks_and_has_no_created_at_bound():
    config = settings(start_date="2026-01-01", end_date="2026-01-03")
    planned = plan_events(PROJECT, Position(), config, NOW, Counter([(pendulum.datetime(2026, 1, 1), 9)]))
    assert planned.marks is None
    assert all(p.created_lo is None and p.created_hi is None for p in planned.plans)


def test_a_window_splits_into_halves_that_continue_after_the_last_key():
    plan = QueryPlan(PROJECT, EVENTS_BY_TIMESTAMP, day(2), day(0), None, None, "window")
    after = (day(2).add(hours=3), "0190")
    first, second = plan.split(after)
    assert (first.ts_lo, first.ts_hi, second.ts_lo, second.ts_hi) == (day(2), day(1), day(1), day(0))
    assert first.after == second.after == after
    tiny = QueryPlan(PROJECT, EVENTS_BY_TIMESTAMP, day(0), day(0).add(seconds=90), None, None, "window")
    assert tiny.split(None) == []


def test_the_first_run_estimate_names_queries_and_pace():
    line = estimate_line(1_000_000, 50_000, 2)
    assert "1,000,000 events" in line and "20 queries" in line and "2,400 queries/hour" in line
