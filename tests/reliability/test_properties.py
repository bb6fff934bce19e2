"""Property-based tests for the pieces whose inputs vary: 429 bodies, HogQL instants around DST changes,
keyset paging over any distribution of equal timestamps, and window grouping."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_posthog import World
from fake_posthog.hogql import execute_hogql
from posthog_source.client import parse_retry_wait
from posthog_source.hogql import EVENTS_BY_CREATED_AT, EVENTS_BY_TIMESTAMP, keyset_pages, to_utc_timestamps
from posthog_source.projects import Project
from posthog_source.windows import group_windows, split_windows
from tests.conftest import FAKE_NOW

DETERMINISTIC = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------- 429 bodies
@DETERMINISTIC
@given(seconds=st.integers(min_value=0, max_value=10**7), noise=st.text(max_size=40))
def test_wait_is_read_from_the_body(seconds: int, noise: str) -> None:
    body = f'{{"type": "throttled_error", "detail": "{noise}Request was throttled. Expected available in {seconds} ' \
           f'second{"s" if seconds != 1 else ""}.", "attr": null}}'.encode()
    assert parse_retry_wait({}, body) == float(seconds)


@DETERMINISTIC
@given(header=st.integers(min_value=0, max_value=10**6), body_seconds=st.integers(min_value=0, max_value=10**6))
def test_retry_after_header_wins_over_the_body(header: int, body_seconds: int) -> None:
    body = f"Expected available in {body_seconds} seconds.".encode()
    assert parse_retry_wait({"Retry-After": str(header)}, body) == float(header)


@DETERMINISTIC
@given(body=st.binary(max_size=200), header=st.one_of(st.none(), st.text(max_size=30)))
def test_any_body_or_header_gives_a_wait_or_none(body: bytes, header: str | None) -> None:
    """Garbage never raises; a wait, when found, is never negative (the caller backs off otherwise)."""
    wait = parse_retry_wait({"Retry-After": header} if header is not None else {}, body)
    assert wait is None or wait >= 0


# ---------------------------------------------------------------------------------------------- HogQL instants
DST_ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham",
             "America/Sao_Paulo", "Asia/Tehran"]
ALL_ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", *DST_ZONES]


@functools.cache
def transitions(zone: str, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) of every offset change of `zone` in `year`."""
    tz = ZoneInfo(zone)
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        before, after = at.astimezone(tz).utcoffset(), (at + timedelta(minutes=30)).astimezone(tz).utcoffset()
        if before != after:
            edge = at
            while edge.astimezone(tz).utcoffset() == before:
                edge += timedelta(minutes=1)
            found.append((edge, before, after))
        at += timedelta(minutes=30)
    return found


@st.composite
def near_transition(draw: st.DrawFn) -> tuple[str, datetime, tuple[datetime, timedelta, timedelta]]:
    """A zone and a UTC instant within 150 minutes of one of its DST changes (the gaps and overlaps)."""
    zone = draw(st.sampled_from(DST_ZONES))
    year = draw(st.integers(min_value=2005, max_value=2030))
    changes = transitions(zone, year)
    change = draw(st.sampled_from(changes)) if changes else (datetime(year, 6, 1, tzinfo=UTC), timedelta(0),
                                                            timedelta(0))
    delta = timedelta(minutes=draw(st.integers(-150, 150)), microseconds=draw(st.integers(0, 999_999)))
    return zone, change[0] + delta, change


def rendered(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).isoformat()


@DETERMINISTIC
@given(instants=st.lists(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 1, 1),
                                      timezones=st.just(UTC)), min_size=1, max_size=20),
       zone=st.sampled_from(ALL_ZONES))
def test_values_with_an_offset_are_exact_in_every_zone(instants: list[datetime], zone: str) -> None:
    values = [rendered(i, zone) for i in instants]
    assert to_utc_timestamps(values, zone).to_pylist() == instants


@DETERMINISTIC
@given(near_transition())
def test_values_with_an_offset_are_exact_across_dst_changes(case: tuple[str, datetime, Any]) -> None:
    zone, instant, _ = case
    assert to_utc_timestamps([rendered(instant, zone), None], zone).to_pylist() == [instant, None]


def wall_clock(case: tuple[str, datetime, Any]) -> tuple[str, str, datetime | None, datetime]:
    """The naive wall-clock text of the case (on the pre-change offset, so it sweeps the gap or overlap), its
    earliest valid reading (None inside a gap) and the change instant."""
    zone, instant, (change, before, _after) = case
    naive = (instant + before).replace(tzinfo=None)
    tz = ZoneInfo(zone)
    earliest = naive.replace(tzinfo=tz, fold=0)
    exists = earliest.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive
    return zone, naive.isoformat(sep=" "), earliest.astimezone(UTC) if exists else None, change


@DETERMINISTIC
@given(near_transition())
def test_wall_clock_values_read_in_the_project_zone(case: tuple[str, datetime, Any]) -> None:
    """Naive values are the project's wall clock: the earliest reading in an overlap, and a time at the change
    inside a gap (HogQL never renders a real instant there)."""
    zone, text, expected, change = wall_clock(case)
    converted = to_utc_timestamps([text], zone).to_pylist()[0]
    if expected is not None:
        assert converted == expected
    else:
        assert abs(converted - change) <= timedelta(hours=1)


@DETERMINISTIC
@given(near_transition())
def test_a_wall_clock_value_converts_the_same_whatever_else_is_on_the_page(case: tuple[str, datetime, Any]) -> None:
    zone, text, _, _ = wall_clock(case)
    alone = to_utc_timestamps([text], zone).to_pylist()[0]
    mixed = to_utc_timestamps([text, "2024-01-01T00:00:00+00:00"], zone).to_pylist()[0]
    assert alone == mixed


# ---------------------------------------------------------------------------------------------- keyset paging
class HogQLStub:
    """A client whose POST /query/ runs the fake's HogQL directly over a World's DuckDB (no HTTP)."""

    def __init__(self, world: World, timezone: str) -> None:
        self.world, self.timezone = world, timezone

    def post(
        self, path: str, body: dict[str, Any], what: str = "", parse: Callable[[bytes], Any] = orjson.loads
    ) -> Any:
        team_id = int(path.split("/")[3])
        answer = execute_hogql(self.world.cursor(), team_id, self.timezone, body["query"]["query"])
        return parse(orjson.dumps(answer))  # the bytes PostHog would send, parsed as the real client does


@pytest.fixture(scope="module")
def tie_world() -> World:
    return World.generate(seed=3, events=500, now=FAKE_NOW)


_teams = itertools.count(1000)


@settings(derandomize=True, deadline=None, max_examples=15,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(groups=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 12)), min_size=1, max_size=5),
       page_size=st.integers(1, 9), zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
def test_keyset_pages_return_every_row_once(tie_world: World, groups: list[tuple[int, int]], page_size: int,
                                            zone: str) -> None:
    """Groups of events sharing one timestamp and created_at (some groups on the same second) are read exactly
    once by both cursors, whatever the page size."""
    team = next(_teams)
    base = datetime(2026, 1, 10, 12, tzinfo=UTC)
    inserted = [u for second, size in groups
                for u in tie_world.add_events(team, size, tie=True, created_at=base + timedelta(seconds=second))]
    project = Project(team, "ties", zone, None)
    for table in (EVENTS_BY_TIMESTAMP, EVENTS_BY_CREATED_AT):
        pages = [page.table for page in keyset_pages(HogQLStub(tie_world, zone), project, table, [],  # type: ignore[arg-type]
                                                     page_size=page_size)]
        uuids = [u for page in pages for u in page.column("uuid").to_pylist()]
        assert sorted(uuids) == sorted(inserted), table.cursor
        assert all(len(page) <= page_size for page in pages)


# ---------------------------------------------------------------------------------------------- windows
@DETERMINISTIC
@given(near_transition(), st.integers(1, 72), st.sampled_from([900, 3600, 6 * 3600, 86_400]))
def test_windows_from_local_times_across_dst_are_utc_aligned(case: tuple[str, datetime, Any], hours: int,
                                                             size: int) -> None:
    zone, instant, _ = case
    start = pendulum.instance(instant).in_timezone(zone)  # a zone-local start, as a user may give one
    windows = split_windows(start, start.add(hours=hours), size)
    # compared as UTC: Python never finds an ambiguous local time equal to an instant in another zone (PEP 495)
    assert windows[0][0] == start.in_timezone("UTC") and windows[-1][1] == start.add(hours=hours).in_timezone("UTC")
    for (_, hi), (lo, _) in itertools.pairwise(windows):
        assert hi == lo and hi.timezone_name == "UTC" and hi.int_timestamp % size == 0


@DETERMINISTIC
@given(counts=st.lists(st.integers(0, 500), min_size=1, max_size=40), target=st.integers(1, 1000),
       extra=st.lists(st.tuples(st.integers(0, 39), st.integers(1, 50)), max_size=10))
def test_group_windows_cover_every_bucket_and_respect_the_target(counts: list[int], target: int,
                                                                 extra: list[tuple[int, int]]) -> None:
    """Windows are contiguous unions of buckets from first to last; one holds more than the target only when
    it is a single bucket. Counts may name any instant inside a bucket."""
    start = pendulum.datetime(2026, 3, 28, tz="UTC")
    buckets = split_windows(start, start.add(days=len(counts)), 86_400)
    credited = [(buckets[i][0].add(hours=i % 24), n) for i, n in enumerate(counts)]
    credited += [(buckets[i % len(buckets)][0].add(minutes=7), n) for i, n in extra]
    windows = group_windows(buckets, credited, target)
    assert windows[0][0] == buckets[0][0] and windows[-1][1] == buckets[-1][1]
    edges = {lo for lo, _ in buckets} | {buckets[-1][1]}
    for (_, hi), (lo, _) in itertools.pairwise(windows):
        assert hi == lo
    for lo, hi in windows:
        assert lo in edges and hi in edges and lo < hi
        rows = sum(n for at, n in credited if lo <= at < hi)
        inside = [b for b in buckets if lo <= b[0] < hi]
        assert rows <= target or len(inside) == 1 or all(
            sum(n for at, n in credited if b[0] <= at < b[1]) == 0 for b in inside[1:]
        )
