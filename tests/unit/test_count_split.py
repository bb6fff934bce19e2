"""Per-day counts PostHog gives up on (504/512) are asked again in halves (events.count_days): the days add up
to the same answer, whatever the data and wherever PostHog draws its line."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_source.errors import PostHogSourceError, QueryTooLargeError
from posthog_source.events import OPEN_START, _split_day, count_days
from posthog_source.projects import Project

PROJECT = Project(1, "web", "UTC", None)
END = pendulum.datetime(2026, 3, 15, 7, 30, tz="UTC")
_BOUND = re.compile(r"timestamp (>=|<) toDateTime64\('([^']+)'")


class GivingUpCounts:
    """Events per day; a count over more than `most_days` days of data is refused as too large, as PostHog
    refuses a count that would scan too many rows."""

    def __init__(self, days: dict[pendulum.DateTime, int], most_days: int) -> None:
        self.days, self.most_days, self.asked = days, most_days, 0

    def by_day(self, project: Project, conditions: Sequence[str]) -> list[tuple[pendulum.DateTime, int]]:
        self.asked += 1
        lo = hi = None
        for text in conditions:
            for op, value in _BOUND.findall(text):
                instant = pendulum.parse(value, tz="UTC")
                lo, hi = (instant, hi) if op == ">=" else (lo, instant)
        inside = sorted((d, n) for d, n in self.days.items()
                        if (lo is None or d.add(days=1) > lo) and (hi is None or d < hi))
        if len(inside) > self.most_days:
            raise QueryTooLargeError("Query has hit the max execution time before completing", 504)
        return inside


days_before_end = st.dictionaries(st.integers(min_value=0, max_value=1500), st.integers(min_value=1, max_value=9),
                                  max_size=60)


@settings(max_examples=150, deadline=None)
@given(days_before_end, st.integers(min_value=1, max_value=20), st.booleans())
def test_halved_counts_add_up_to_the_whole_answer(offsets, most_days, open_start):
    days = {END.start_of("day").subtract(days=n): count for n, count in offsets.items()}
    lo = None if open_start else END.start_of("day").subtract(days=1200)
    truth = sorted((d, n) for d, n in days.items() if lo is None or d >= lo)
    counts = GivingUpCounts(days, most_days)
    assert count_days(counts, PROJECT, lo, END, []) == truth


def test_a_single_day_refused_is_one_line_for_the_user():
    counts = GivingUpCounts({END.start_of("day"): 5}, most_days=0)
    with pytest.raises(PostHogSourceError, match="gave up counting the events of project 1 on 2026-03-15"):
        count_days(counts, PROJECT, END.start_of("day"), END, [])


@given(st.datetimes(min_value=pendulum.datetime(2020, 1, 1).naive(), max_value=pendulum.datetime(2030, 1, 1).naive()),
       st.integers(min_value=1, max_value=10_000_000), st.booleans())
def test_a_split_is_a_utc_midnight_strictly_inside_the_range(start, seconds, open_start):
    lo = pendulum.instance(start, tz="UTC")
    hi = lo.add(seconds=seconds)
    mid = _split_day(None if open_start else lo, hi)
    first = OPEN_START if open_start else lo
    if mid is None:
        assert hi <= first.start_of("day").add(days=1)
    else:
        assert first < mid < hi and mid == mid.start_of("day")


def test_a_posthog_that_refuses_every_count_is_given_up_on_after_few_queries():
    counts = GivingUpCounts({END.start_of("day"): 5}, most_days=-1)
    with pytest.raises(PostHogSourceError, match="gave up counting"):
        count_days(counts, PROJECT, None, END, [])
    assert counts.asked <= 20
