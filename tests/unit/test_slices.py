"""Slices of the events sort key (posthog_source/slices.py): together they hold every event of the range
once, including events counted nowhere (new names, new days, arriving after the count), and each holds
about the target rows unless one hash bucket alone is bigger."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pendulum
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_source.slices import HASH_BUCKET_SHIFT, Slice, cut_slices, cuttable, event_ranges, hash_ranges

START = pendulum.datetime(2026, 3, 1, tz="UTC")
NAMES = ["$pageview", "$autocapture", "$identify", "purchase", "Purchase", "vidéo_lue", "a'b", "z\\q", "a\\n",
         "tab\there", "$pageleave"]
_CONDITION = re.compile(r"^(event|cityHash64\(distinct_id\)) (<|<=|>|>=|=) (.+)$")


def _value(text: str) -> str | int:
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return int(text)


def holds(s: Slice, instant: pendulum.DateTime, event: str, hashed: int) -> bool:
    """Whether an event lies in a slice, reading its conditions as ClickHouse would (bytes order)."""
    if not s.lo <= instant < s.hi:
        return False
    for condition in s.keys:
        match = _CONDITION.match(condition)
        assert match, condition
        column, op, raw = match.groups()
        left: object = event.encode() if column == "event" else hashed
        value = _value(raw)
        right: object = value.encode() if isinstance(value, str) else value
        if not {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right,  # type: ignore[operator]
                "=": left == right}[op]:
            return False
    return True


events_strategy = st.lists(
    st.tuples(st.integers(0, 5 * 86_400 - 1), st.sampled_from(NAMES), st.integers(0, 2**64 - 1)),
    max_size=400)


@settings(max_examples=150, deadline=None)
@given(counted=events_strategy, later=events_strategy, target=st.integers(1, 120),
       start_offset=st.integers(0, 86_399), length=st.integers(1, 5 * 86_400))
def test_slices_hold_every_event_once(counted, later, target, start_offset, length):
    lo = START.add(seconds=start_offset)
    hi = lo.add(seconds=length)

    def at(seconds: int) -> pendulum.DateTime:
        return START.add(seconds=seconds)

    in_range = [(at(t), e, h) for t, e, h in counted if lo <= at(t) < hi]
    days = Counter(i.start_of("day") for i, _, _ in in_range)

    def count_events(asked: Sequence[pendulum.DateTime]) -> list[tuple[pendulum.DateTime, str, int]]:
        per = Counter((i.start_of("day"), e) for i, e, _ in in_range if i.start_of("day") in set(asked))
        return [(d, e, n) for (d, e), n in per.items()]

    def count_buckets(pairs: Sequence[tuple[pendulum.DateTime, str]]) -> list[tuple[pendulum.DateTime, str, int, int]]:
        per = Counter((i.start_of("day"), e, h >> HASH_BUCKET_SHIFT) for i, e, h in in_range
                      if (i.start_of("day"), e) in set(pairs))
        return [(d, e, b, n) for (d, e, b), n in per.items()]

    slices = cut_slices(lo, hi, sorted(days.items()), target, count_events, count_buckets)
    everything = in_range + [(at(t), e, h) for t, e, h in later if lo <= at(t) < hi]
    for instant, event, hashed in everything:
        assert sum(holds(s, instant, event, hashed) for s in slices) == 1, (instant, event, hashed)
    for s in slices:  # what each slice was cut to hold, as counted
        rows = sum(holds(s, i, e, h) for i, e, h in in_range)
        assert rows == s.rows
        cut_rows = sum(holds(s, i, e, h) for i, e, h in in_range if cuttable(e))
        if cut_rows > target:  # beyond names that cannot bound a slice, only one hash bucket may exceed it
            buckets = {h >> HASH_BUCKET_SHIFT for i, e, h in in_range if holds(s, i, e, h)}
            events = {e for i, e, h in in_range if holds(s, i, e, h)}
            assert len(buckets) == 1 and len(events) == 1, s


def test_event_ranges_cover_names_between_the_counted_ones():
    ranges = event_ranges({"b": 5, "d": 5, "f": 5}, 10, lambda e: {})
    assert [keys for keys, _ in ranges] == [("event < 'f'",), ("event >= 'f'",)]
    big = event_ranges({"b": 5, "d": 50, "f": 5}, 10, lambda e: {0: 25, 200: 25})
    assert [keys for keys, _ in big] == [
        ("event < 'd'",), ("event = 'd'", f"cityHash64(distinct_id) < {200 << HASH_BUCKET_SHIFT}"),
        ("event = 'd'", f"cityHash64(distinct_id) >= {200 << HASH_BUCKET_SHIFT}"), ("event > 'd'",)]


def test_hash_ranges_without_buckets_is_one_open_range():
    assert hash_ranges({}, 10) == [((), 0)]


def test_a_name_holding_a_backslash_never_bounds_a_slice():
    """HogQL decodes `'a\\\\n'` to a, backslash, newline: as a bound it would move and two slices overlap."""
    ranges = event_ranges({"a\\n": 50, "b": 5}, 10, lambda e: {0: 25, 200: 25})
    assert all("\\" not in condition for keys, _ in ranges for condition in keys)
    assert [keys for keys, _ in ranges] == [("event < 'b'",), ("event >= 'b'",)]
