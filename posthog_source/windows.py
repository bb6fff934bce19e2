"""Splitting a time range into windows: the unit of work of first runs and backfills."""

from __future__ import annotations

import bisect

import pendulum


def split_windows(
    start: pendulum.DateTime, end: pendulum.DateTime, size_seconds: float
) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """Half-open UTC windows covering [start, end) with no gap and no overlap.

    Boundaries are aligned to multiples of the size since the Unix epoch (1d windows start at 00:00 UTC),
    so runs over overlapping ranges cut the same windows and a resumed backfill recognises its own.
    """
    if size_seconds <= 0:
        raise ValueError("window size must be positive")
    start_us = _micros(start)
    end_us = _micros(end)
    size_us = int(size_seconds * 1_000_000)
    windows = []
    lo = start_us
    while lo < end_us:
        hi = min(end_us, (lo // size_us + 1) * size_us)
        windows.append((_from_micros(lo), _from_micros(hi)))
        lo = hi
    return windows


def group_windows(
    buckets: list[tuple[pendulum.DateTime, pendulum.DateTime]],
    counts: list[tuple[pendulum.DateTime, int]],
    target_rows: int,
) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """Merge contiguous buckets into windows of about `target_rows` rows.

    `counts` are (instant, rows) pairs, each credited to the bucket that contains the instant. The result
    covers every bucket, empty ones included, so rows that arrive after counting are not missed: counts only
    decide where windows are cut. A bucket larger than the target is a window of its own.
    """
    if not buckets:
        return []
    starts = [lo for lo, _ in buckets]
    rows_in = [0] * len(buckets)
    for instant, rows in counts:
        rows_in[max(0, bisect.bisect_right(starts, instant) - 1)] += rows
    windows: list[tuple[pendulum.DateTime, pendulum.DateTime]] = []
    current_lo: pendulum.DateTime | None = None
    current_rows = 0
    for (lo, _), rows in zip(buckets, rows_in, strict=True):
        if current_lo is not None and current_rows > 0 and current_rows + rows > target_rows:
            windows.append((current_lo, lo))
            current_lo, current_rows = None, 0
        if current_lo is None:
            current_lo = lo
        current_rows += rows
    windows.append((current_lo, buckets[-1][1]))  # type: ignore[arg-type]
    return windows


def _micros(value: pendulum.DateTime) -> int:
    value = value.in_timezone("UTC")
    return int(value.int_timestamp) * 1_000_000 + value.microsecond


def _from_micros(value: int) -> pendulum.DateTime:
    seconds, micros = divmod(value, 1_000_000)
    return pendulum.from_timestamp(seconds, tz="UTC").add(microseconds=micros)
