"""The deprecated /events/ endpoint and its flaws (posthog-api.md §3.1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import requests

from fake_posthog.server import FakePostHog
from fake_posthog.world import World

Client = Callable[..., requests.Session]
AFTER, BEFORE = "2025-11-01T00:00:00Z", "2026-03-16T00:00:00Z"  # the whole shared world, inside a year


def tie_instant(world: World, team: int = 1) -> datetime:
    ties = Counter(world.truth_events(team).column("timestamp").to_pylist())
    instant, n = ties.most_common(1)[0]
    assert n >= 150
    return instant


def events(session: requests.Session, server: FakePostHog, team: int = 1, **params: Any) -> dict[str, Any]:
    r = session.get(f"{server.url}/api/projects/{team}/events/", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_event_shape_and_project_time_zone(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    page = events(fake_client(fake_server_shared), fake_server_shared, team=2, after=AFTER, before=BEFORE,
                  orderBy='["timestamp"]', limit=5)
    assert set(page) == {"next", "results"}  # no count, no previous
    event = page["results"][0]
    assert list(event) == ["id", "distinct_id", "properties", "event", "timestamp", "person", "elements",
                           "elements_chain"]
    assert isinstance(event["properties"], dict) and event["person"] is None and event["elements"] == []
    # America/New_York, six fractional digits, explicit offset; the same instant as the ground truth.
    assert event["timestamp"][-6:] in ("-05:00", "-04:00") and len(event["timestamp"].split(".")[1]) == 12
    truth = {r["uuid"]: r for r in fake_server_shared.world.truth_events(2).to_pylist()}
    assert datetime.fromisoformat(event["timestamp"]) == truth[event["id"]]["timestamp"]


def test_include_person(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    page = events(fake_client(fake_server_shared), fake_server_shared, after=AFTER, before=BEFORE, limit=3,
                  include_person="true")
    person = page["results"][0]["person"]
    assert set(person) == {"is_identified", "distinct_ids", "properties"} and isinstance(person["properties"], dict)


def test_default_limit_100_and_silent_cap(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    assert len(events(session, fake_server_shared, after=AFTER, before=BEFORE,
                      orderBy='["timestamp"]')["results"]) == 100
    capped = events(session, fake_server_shared, after=AFTER, before=BEFORE, orderBy='["timestamp"]', limit=10000)
    assert len(capped["results"]) == 1000 and "limit=10000" in capped["next"]  # no error, no hint


def test_cap_can_be_lifted_for_benchmarks(make_fake_server: Callable[..., FakePostHog], fake_client: Client) -> None:
    server = make_fake_server(events=20_000, events_max_limit=50_000)
    page = events(fake_client(server), server, after=AFTER, before=BEFORE, orderBy='["timestamp"]', limit=5000)
    assert len(page["results"]) == 5000


def test_bounds_are_exclusive(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    truth = fake_server_shared.world.truth_events(1)
    stamp = sorted(truth.column("timestamp").to_pylist())[5000]
    iso = stamp.isoformat()
    after = events(session, fake_server_shared, after=iso, before=BEFORE, orderBy='["timestamp"]', limit=10)
    assert all(datetime.fromisoformat(e["timestamp"]) > stamp for e in after["results"])
    before = events(session, fake_server_shared, after=AFTER, before=iso, limit=10)
    assert all(datetime.fromisoformat(e["timestamp"]) < stamp for e in before["results"])
    window = events(session, fake_server_shared, after=(stamp - timedelta(microseconds=1)).isoformat(),
                    before=(stamp + timedelta(microseconds=1)).isoformat(), limit=10)
    assert [datetime.fromisoformat(e["timestamp"]) for e in window["results"]] == [stamp]


def test_next_copies_params_and_skips_ties(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    tie = tie_instant(fake_server_shared.world)
    start = (tie - timedelta(minutes=30)).isoformat()
    first = events(session, fake_server_shared, after=start, before=BEFORE, orderBy='["timestamp"]', limit=100)
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in first["results"]]
    assert stamps[-1] == tie and stamps[0] < tie  # the page ends inside the block of ties
    nxt = first["next"]
    assert nxt.startswith(fake_server_shared.url) and "orderBy=" in nxt and "limit=100" in nxt and "before=" in nxt
    second = session.get(nxt).json()
    # `after` moved to the tie instant, which is exclusive: the rest of the block is never served.
    assert all(datetime.fromisoformat(e["timestamp"]) > tie for e in second["results"])


def test_following_next_over_a_project_loses_rows(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    """Ascending pages of 1000 from the start: the tie block straddles a page boundary and rows are lost."""
    world = fake_server_shared.world
    session = fake_client(fake_server_shared)
    url: str | None = f"{fake_server_shared.url}/api/projects/1/events/"
    params: dict[str, Any] | None = {"after": AFTER, "before": BEFORE, "orderBy": '["timestamp"]', "limit": 1000}
    seen: list[str] = []
    while url:
        page = session.get(url, params=params).json()
        params = None
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    truth = world.truth_events(1)
    missing = set(truth.column("uuid").to_pylist()) - set(seen)
    assert len(seen) == len(set(seen))
    assert 0 < len(missing) < 200
    lost = truth.filter(pc.is_in(truth.column("uuid"), value_set=pa.array(sorted(missing))))
    assert set(lost.column("timestamp").to_pylist()) == {tie_instant(world)}


def test_descending_probing_returns_next_null_too_early(fake_server_shared: FakePostHog,
                                                        fake_client: Client) -> None:
    world = fake_server_shared.world
    truth = world.truth_events(1).column("timestamp").to_pylist()
    before = world.now - timedelta(days=10)
    page = events(fake_client(fake_server_shared), fake_server_shared, after=AFTER, before=before.isoformat(),
                  limit=1000)
    served = [datetime.fromisoformat(e["timestamp"]) for e in page["results"]]
    assert served == sorted(served, reverse=True)
    older = [t for t in truth if t < before]
    # The 24 h window held at least limit/2 rows but fewer than the limit: no next, though more exist.
    assert page["next"] is None and 500 <= len(served) < 1000 and len(older) > len(served)


def test_offset_above_50000_refused(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server_shared).get(f"{fake_server_shared.url}/api/projects/1/events/",
                                            params={"after": AFTER, "before": BEFORE, "offset": 50001})
    assert r.status_code == 400
    assert r.json() == {"type": "validation_error", "code": "invalid_input",
                        "detail": "Offset is deprecated. Max supported offset value is 50000", "attr": None}


def test_missing_after_means_last_24_hours(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    page = events(fake_client(fake_server_shared), fake_server_shared)  # world anchored months ago
    assert page == {"next": None, "results": []}


@pytest.mark.parametrize("params", [{"after": "2024-01-01T00:00:00Z", "before": BEFORE}, {"after": "yesterday"}])
def test_bad_ranges_are_400(fake_server_shared: FakePostHog, fake_client: Client, params: dict[str, str]) -> None:
    r = fake_client(fake_server_shared).get(f"{fake_server_shared.url}/api/projects/1/events/", params=params)
    assert r.status_code == 400 and r.json()["type"] == "validation_error"


def test_filters_and_empty_project(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    page = events(session, fake_server_shared, after=AFTER, before=BEFORE, event="$feature_flag_called", limit=50)
    assert page["results"] and all(e["event"] == "$feature_flag_called" for e in page["results"])
    assert all("$feature_flag" in e["properties"] for e in page["results"])
    assert events(session, fake_server_shared, team=4, after=AFTER, before=BEFORE)["results"] == []
