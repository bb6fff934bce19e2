"""Cutting a range of events into slices that each read about what they return (read amplification near 1).

PostHog meters API queries by the bytes ClickHouse *reads* (PostHog#95375), and what a query reads is what its
primary index cannot skip. PostHog's events are sorted by (team_id, toDate(timestamp), event,
cityHash64(distinct_id), cityHash64(uuid)) (posthog/models/event/sql.py `EVENTS_TABLE_SQL`,
PostHog/posthog@cfd68dbcdf60e15eaa45052287b3117687399dff): a query bounded on `timestamp` scans every row of
the UTC days it touches, never a part of a day by time of day; ANDed conditions on `event` and then on
cityHash64(distinct_id) narrow it further. A keyset page scans its whole query range again, so a window paged
ten times is read ten times. Hence slices: each about one page of rows, each a range of the sort key
  - consecutive whole days, while their rows fit one slice;
  - within a day too big for one slice, a range of `event` names (in the index's byte order);
  - within an event too big for one slice on its day, a range of cityHash64(distinct_id).
Together the slices cover every key of the range, including event names and days that had no row when they
were counted: counts only decide where slices are cut, so rows arriving later are still read (by keyset
pages, which stay for ties and for slices that grew).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pendulum

from posthog_source.hogql.queries import string_literal

# cityHash64 is a UInt64; counts group it in 256 buckets of its top 8 bits (bitShiftRight(h, 56)).
HASH_BUCKETS = 256
HASH_BUCKET_SHIFT = 56
HASH_EXPRESSION = "cityHash64(distinct_id)"


@dataclass(frozen=True)
class Slice:
    """One range of the events sort key: [lo, hi) in `timestamp`, narrowed by `keys` (conditions on `event`
    and cityHash64(distinct_id)); `rows` counted when it was cut."""

    lo: pendulum.DateTime
    hi: pendulum.DateTime
    keys: tuple[str, ...]
    rows: int


DayCounts = Sequence[tuple[pendulum.DateTime, int]]
# (day, event, rows) for the days asked for.
EventCounter = Callable[[Sequence[pendulum.DateTime]], Sequence[tuple[pendulum.DateTime, str, int]]]
# (day, event, hash bucket, rows) for the (day, event) pairs asked for.
BucketCounter = Callable[[Sequence[tuple[pendulum.DateTime, str]]],
                         Sequence[tuple[pendulum.DateTime, str, int, int]]]


def cut_slices(lo: pendulum.DateTime, hi: pendulum.DateTime, days: DayCounts, target: int,
               count_events: EventCounter, count_buckets: BucketCounter) -> list[Slice]:
    """Slices covering [lo, hi) with about `target` rows each (a single hash bucket larger than that stays
    one slice: its rows are one heavy distinct_id). Days are UTC; `days` holds rows per day start."""
    target = max(1, target)
    rows_of = _per_day(lo, hi, days)
    slices: list[Slice] = []
    big: list[pendulum.DateTime] = []
    group_lo, group_rows = lo, 0
    for day, rows in rows_of:
        start = max(day, lo)
        if rows > target:
            if start > group_lo:
                slices.append(Slice(group_lo, start, (), group_rows))
            big.append(day)
            group_lo, group_rows = _next_day(day, hi), 0
        elif group_rows and group_rows + rows > target:
            slices.append(Slice(group_lo, start, (), group_rows))
            group_lo, group_rows = start, rows
        else:
            group_rows += rows
    if group_lo < hi:
        slices.append(Slice(group_lo, hi, (), group_rows))
    slices += _split_days(lo, hi, big, target, count_events, count_buckets)
    return sorted(slices, key=lambda s: (s.lo, s.keys))


def _per_day(lo: pendulum.DateTime, hi: pendulum.DateTime, days: DayCounts) -> list[tuple[pendulum.DateTime, int]]:
    """The start of every UTC day touching [lo, hi) with its rows (0 when not counted)."""
    counted: dict[pendulum.DateTime, int] = {}
    for day, rows in days:
        start = day.in_timezone("UTC").start_of("day")
        counted[start] = counted.get(start, 0) + rows
    out = []
    day = lo.in_timezone("UTC").start_of("day")
    while day < hi:
        out.append((day, counted.get(day, 0)))
        day = day.add(days=1)
    return out


def _next_day(day: pendulum.DateTime, hi: pendulum.DateTime) -> pendulum.DateTime:
    return min(day.add(days=1), hi)


def _split_days(lo: pendulum.DateTime, hi: pendulum.DateTime, big: Sequence[pendulum.DateTime], target: int,
                count_events: EventCounter, count_buckets: BucketCounter) -> list[Slice]:
    """Days (UTC day starts) with more rows than a slice, cut by ranges of `event`, and events too big by hash
    ranges."""
    if not big:
        return []
    events: dict[pendulum.DateTime, dict[str, int]] = {}
    for day, event, rows in count_events(big):
        start = day.in_timezone("UTC").start_of("day")
        events.setdefault(start, {})[event] = events.get(start, {}).get(event, 0) + rows
    heavy = [(day, event) for day in big for event in heavy_events(events.get(day, {}), target)]
    buckets: dict[tuple[pendulum.DateTime, str], dict[int, int]] = {}
    for day, event, bucket, rows in (count_buckets(heavy) if heavy else ()):
        buckets.setdefault((day.in_timezone("UTC").start_of("day"), event), {})[bucket] = rows
    slices = []
    for day in big:
        for keys, rows in event_ranges(events.get(day, {}), target, lambda e, d=day: buckets.get((d, e), {})):
            slices.append(Slice(max(day, lo), _next_day(day, hi), keys, rows))
    return slices


def event_ranges(events: Mapping[str, int], target: int,
                 buckets_of: Callable[[str], Mapping[int, int]]) -> list[tuple[tuple[str, ...], int]]:
    """Conditions covering every `event` value (those counted and any other), each range about `target`
    rows: consecutive names grouped in byte order (ClickHouse's String order), an event bigger than that
    alone, split by hash ranges."""
    out: list[tuple[tuple[str, ...], int]] = []
    lower: str | None = None  # the condition bounding the current group from below
    rows = 0
    for event in sorted(events, key=lambda e: e.encode()):
        n = events[event]
        if not cuttable(event):  # never a bound: it stays inside the range around it, however big
            rows += n
            continue
        if n > target:
            out.append(((*([lower] if lower else []), f"event < {string_literal(event)}"), rows))
            out += [((f"event = {string_literal(event)}", *keys), r)
                    for keys, r in hash_ranges(buckets_of(event), target)]
            lower, rows = f"event > {string_literal(event)}", 0
        elif rows and rows + n > target:
            out.append(((*([lower] if lower else []), f"event < {string_literal(event)}"), rows))
            lower, rows = f"event >= {string_literal(event)}", n
        else:
            rows += n
    out.append((tuple([lower] if lower else []), rows))
    return out


def cuttable(event: str) -> bool:
    """Whether a name can bound a slice. HogQL decodes a string literal's escapes one kind after another
    (`\\n` before `\\\\`), so a name holding a backslash may not come back as written, and a bound that moved
    would make two slices overlap; control characters are kept out for the same reason. Such names are read
    inside the range that holds them."""
    return "\\" not in event and all(ord(c) >= 0x20 for c in event)


def heavy_events(events: Mapping[str, int], target: int) -> list[str]:
    """The events of one day that `event_ranges` splits by distinct_id hash (and needs bucket counts for)."""
    return [e for e, n in events.items() if n > target and cuttable(e)]


def hash_ranges(buckets: Mapping[int, int], target: int) -> list[tuple[tuple[str, ...], int]]:
    """Conditions on cityHash64(distinct_id) covering all of UInt64 in ranges of about `target` rows, cut
    at bucket boundaries (the top 8 bits)."""
    cuts: list[int] = []
    rows = 0
    per_range: list[int] = []
    for bucket in range(HASH_BUCKETS):
        n = buckets.get(bucket, 0)
        if n and rows and rows + n > target:  # an empty bucket joins the range before it
            cuts.append(bucket)
            per_range.append(rows)
            rows = 0
        rows += n
    per_range.append(rows)
    bounds = [None, *(c << HASH_BUCKET_SHIFT for c in cuts), None]
    out = []
    for (low, high), n in zip(zip(bounds, bounds[1:], strict=False), per_range, strict=True):
        keys = ([f"{HASH_EXPRESSION} >= {low}"] if low is not None else []) + (
            [f"{HASH_EXPRESSION} < {high}"] if high is not None else [])
        out.append((tuple(keys), n))
    return out

