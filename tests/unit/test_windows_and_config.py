"""Window splitting and input parsing: pure functions, so hypothesis explores their inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_source.config import check_range, parse_duration, parse_instant, parse_project_ids, resolve_host
from posthog_source.errors import ConfigurationError
from posthog_source.windows import split_windows

instants = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(pendulum.instance)


@settings(max_examples=300, deadline=None)
@given(start=instants, fraction=st.floats(min_value=1e-9, max_value=500.0),
       size=st.sampled_from([1, 59, 3600, 86_400, 7 * 86_400, 90_000.5]))
def test_windows_cover_the_range_without_gap_or_overlap(start, fraction, size):
    end = start + timedelta(microseconds=max(1, int(fraction * size * 1_000_000)))
    windows = split_windows(start, end, size)
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (lo, hi), (next_lo, _) in zip(windows, windows[1:], strict=False):
        assert lo < hi
        assert hi == next_lo  # contiguous: no gap, no overlap
    for lo, hi in windows:
        assert (hi - lo).total_seconds() <= size + 1e-6


def test_windows_are_aligned_to_utc_days_across_dst():
    # Europe/Berlin switches to summer time on 2024-03-31; windows are UTC days regardless.
    start = pendulum.datetime(2024, 3, 30, 12, tz="Europe/Berlin")
    windows = split_windows(start, start.add(days=3), 86_400)
    assert [w[0].isoformat() for w in windows[1:]] == [
        "2024-03-31T00:00:00+00:00", "2024-04-01T00:00:00+00:00", "2024-04-02T00:00:00+00:00"]
    assert windows[0][0] == start


def test_resolve_host():
    assert resolve_host("us") == "https://us.posthog.com"
    assert resolve_host("EU") == "https://eu.posthog.com"
    assert resolve_host("https://ph.example.com/") == "https://ph.example.com"
    assert resolve_host("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert resolve_host("http://localhost:8000") == "http://localhost:8000"
    for bad in ("ph.example.com", "http://ph.example.com", "ftp://x", "http://10.0.0.1"):
        with pytest.raises(ConfigurationError):
            resolve_host(bad)


def test_parse_project_ids():
    assert parse_project_ids(None) is None
    assert parse_project_ids("2, 1,2") == [1, 2]
    assert parse_project_ids([3, "4"]) == [3, 4]
    assert parse_project_ids(7) == [7]
    with pytest.raises(ConfigurationError, match="not a number"):
        parse_project_ids("1,abc")


def test_parse_instant_and_range():
    assert parse_instant("2024-01-31", "start_date") == pendulum.datetime(2024, 1, 31, tz="UTC")
    assert parse_instant("2024-01-31T12:00:00+02:00", "x") == pendulum.datetime(2024, 1, 31, 10, tz="UTC")
    for bad in ("yesterday-ish", "2024-13-01", "31/01/2024"):
        with pytest.raises(ConfigurationError, match="not a date"):
            parse_instant(bad, "start_date")
    with pytest.raises(ConfigurationError, match="not after"):
        check_range(pendulum.datetime(2024, 2, 1), pendulum.datetime(2024, 1, 1))


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_parse_duration(number, unit):
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{number}{unit}", "x") == number * factor


def test_parse_duration_rejects_garbage():
    for bad in ("", "1y", "-5m", "0d", "five"):
        with pytest.raises(ConfigurationError):
            parse_duration(bad, "window")
