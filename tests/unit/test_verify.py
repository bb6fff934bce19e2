"""verify's pure parts: the diff of two count maps, the repair windows around missing events and the
slices of a day."""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from hypothesis import given
from hypothesis import strategies as st

from pipelines.verify import (
    REPAIR_SLICE_ROWS,
    DayCounts,
    DayDifference,
    Pending,
    _slices,
    diff_counts,
    diff_person_counts,
    format_report,
    judge_days,
    windows_around,
)

BASE = date(2026, 1, 1)
keys = st.tuples(st.integers(1, 4), st.integers(0, 40).map(lambda n: BASE + timedelta(days=n)))
counts = st.dictionaries(keys, st.integers(0, 1_000), max_size=60)


@given(counts, counts)
def test_diff_lists_exactly_the_days_that_differ(posthog, destination):
    found = diff_counts(posthog, destination)
    expected = {k for k in set(posthog) | set(destination) if posthog.get(k, 0) != destination.get(k, 0)}
    assert {(d.project_id, d.day) for d in found} == expected
    assert found == sorted(found)
    for d in found:
        assert (d.posthog, d.destination) == (posthog.get((d.project_id, d.day), 0),
                                              destination.get((d.project_id, d.day), 0))
        assert d.difference == d.destination - d.posthog != 0
    # applying the differences to PostHog's counts gives the destination's
    rebuilt = {k: n for k, n in posthog.items() if n}
    for d in found:
        rebuilt[(d.project_id, d.day)] = rebuilt.get((d.project_id, d.day), 0) + d.difference
    assert {k: n for k, n in rebuilt.items() if n} == {k: n for k, n in destination.items() if n}


def test_diff_of_equal_maps_is_empty_and_a_zero_day_equals_a_missing_one():
    same = {(1, BASE): 5, (2, BASE): 0}
    assert diff_counts(same, {(1, BASE): 5}) == []
    assert diff_person_counts({1: 3, 2: 0}, {1: 3}) == []
    assert [d.difference for d in diff_person_counts({1: 3}, {1: 1, 5: 2})] == [-2, 2]


@given(st.lists(st.integers(0, 3 * 86_400_000_000), max_size=80), st.integers(1, 3_600))
def test_repair_windows_hold_every_missing_event_and_little_else(offsets, gap_seconds):
    """Each missing event's instant is in exactly one window; windows are sorted, disjoint, and at least the
    gap apart (closer instants share one window), each from its first instant to just after its last."""
    base = pendulum.datetime(2026, 3, 1, tz="UTC")
    instants = [base.add(microseconds=o) for o in offsets]
    gap = timedelta(seconds=gap_seconds)
    windows = windows_around(instants, gap)
    for instant in instants:
        assert sum(lo <= instant < hi for lo, hi in windows) == 1
    for lo, hi in windows:
        inside = sorted(i for i in instants if lo <= i < hi)
        assert inside[0] == lo and hi == inside[-1].add(microseconds=1)
        assert all(b - a <= gap for a, b in zip(inside, inside[1:], strict=False))
    assert all(next_lo - hi >= gap - timedelta(microseconds=1) for (_, hi), (next_lo, _) in zip(windows, windows[1:],
                                                                                             strict=False))


@given(st.integers(0, 5_000_000), st.integers(1, 86_400))
def test_slices_cut_a_window_into_contiguous_parts_of_bounded_size(rows, seconds):
    lo = pendulum.datetime(2026, 3, 1, tz="UTC")
    hi = lo.add(seconds=seconds)
    parts = _slices(lo, hi, rows)
    assert parts[0][0] == lo and parts[-1][1] == hi
    assert all(a < b for a, b in parts) and all(b == c for (_, b), (c, _) in zip(parts, parts[1:], strict=False))
    assert len(parts) == max(1, -(-rows // REPAIR_SLICE_ROWS))


def test_report_table_names_project_day_counts_and_signed_difference():
    from pipelines.verify import VerifyReport

    report = VerifyReport(
        start=pendulum.datetime(2026, 1, 1, tz="UTC"), end=pendulum.datetime(2026, 1, 3, tz="UTC"),
        project_ids=[1, 2], days_compared=4,
        events=[DayDifference(1, BASE, 1_200, 1_190), DayDifference(2, BASE + timedelta(1), 0, 3)],
        persons=[], queries=4, read_bytes=2_500_000,
    )
    lines = format_report(report).splitlines()
    assert lines[0].split() == ["project", "day", "PostHog", "destination", "difference"]
    assert lines[1].split() == ["1", "2026-01-01", "1,200", "1,190", "-10"]
    assert lines[2].split() == ["2", "2026-01-02", "0", "3", "+3"]
    assert lines[-1] == ("verify: 4 project-days compared (timestamp [2026-01-01T00:00:00+00:00, "
                         "2026-01-03T00:00:00+00:00), projects 1, 2), 2 differ, persons of 2 projects compared; "
                         "4 queries sent to PostHog, 2.5 MB read")


@given(st.integers(0, 50), st.integers(0, 20), st.integers(0, 20), st.integers(0, 100))
def test_a_day_differs_only_outside_what_the_pipeline_may_hold(promised, waiting, later, held):
    """Fewer rows than promised, or more than PostHog holds, is a difference; anything between is pending
    (rows waiting for the sweep or ingested after the last run may be there already: a repair reads them)."""
    pending = Pending()
    key = (1, BASE)
    found = judge_days({key: DayCounts(promised, waiting, later)}, {key: held}, pending)
    inside = promised <= held <= promised + waiting + later
    assert (found == []) == inside
    if inside:
        assert pending.waiting_for_sweep + pending.ingested_after == promised + waiting + later - held
    else:
        assert found[0].difference == held - (promised if held < promised else promised + waiting + later)
