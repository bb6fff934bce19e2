"""Pagination shapes, orderings and hidden rows per endpoint (posthog-api.md §2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests

from fake_posthog.server import INSIGHT_BASIC_FIELDS, LIST_ENDPOINTS, FakePostHog

Client = Callable[..., requests.Session]


def follow(session: requests.Session, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every row reached by following `next` links."""
    rows: list[dict[str, Any]] = []
    while url:
        page = session.get(url, params=params).json()
        params = None
        rows += page["results"]
        url = page["next"]
    return rows


def test_limit_offset_envelope_with_absolute_links_from_host_header(fake_server_shared: FakePostHog,
                                                                     fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/feature_flags/"
    first = session.get(url, headers={"Host": "posthog.example:8443"}).json()
    assert list(first) == ["count", "next", "previous", "results"]
    assert len(first["results"]) == 100 and first["previous"] is None
    assert first["next"] == "http://posthog.example:8443/api/projects/1/feature_flags/?limit=100&offset=100"
    second = session.get(url, params={"limit": 100, "offset": 100}).json()
    assert second["previous"] == fake_server_shared.url + "/api/projects/1/feature_flags/?limit=100"
    third = session.get(url, params={"limit": 100, "offset": 200}).json()
    assert third["previous"].endswith("?limit=100&offset=100") and third["next"] is None
    assert first["count"] == second["count"] == third["count"] == len(first["results"] + second["results"]
                                                                        + third["results"])


def test_no_max_limit(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    page = fake_client(fake_server_shared).get(fake_server_shared.url + "/api/projects/1/cohorts/?limit=5000").json()
    assert len(page["results"]) == page["count"] == 230 and page["next"] is None


@pytest.mark.parametrize("path", sorted(p for p, e in LIST_ENDPOINTS.items() if e.pagination == "limit_offset"))
def test_lists_show_visible_rows_only_in_documented_order(fake_server_shared: FakePostHog, fake_client: Client,
                                                          path: str) -> None:
    endpoint = LIST_ENDPOINTS[path]
    world = fake_server_shared.world
    session = fake_client(fake_server_shared)
    for team in (1, 2, 4):
        rows = follow(session, f"{fake_server_shared.url}/api/projects/{team}/{path}")
        visible = world.visible_objects(endpoint.kind, team)
        if path == "property_definitions":
            visible = [r for r in visible if r["type"] == 1]
        assert sorted(str(r["id"]) for r in rows) == sorted(str(r["id"]) for r in visible)
        assert len({str(r["id"]) for r in rows}) == len(rows)
        assert not any(r.get("deleted") for r in rows)
        stored = world.objects[endpoint.kind].get(team, [])
        hidden = [r for r in stored if r.get("deleted") or r.get("_deleted")]
        assert team == 4 or hidden, "every populated kind has soft-deleted rows to hide"
    if endpoint.ordering[0] == "-created_at":
        rows = follow(session, f"{fake_server_shared.url}/api/projects/1/{path}")
        stamps = [r["created_at"] for r in rows]
        assert stamps == sorted(stamps, reverse=True)


def test_enough_rows_for_several_pages(fake_world: Any) -> None:
    counts = {kind: len(fake_world.visible_objects(kind, 1)) for kind in
              ("feature_flags", "cohorts", "annotations", "session_recordings", "groups")}
    assert counts["feature_flags"] > 200 and counts["cohorts"] == 230
    assert counts["annotations"] > 1000 and counts["session_recordings"] == 120 and counts["groups"] >= 130
    assert all(len(fake_world.visible_objects(k, 4)) == 0 for k in ("feature_flags", "cohorts", "insights"))


def test_archived_and_internal_flags_hidden_unless_asked(fake_server_shared: FakePostHog,
                                                         fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/feature_flags/"
    keys = {r["key"] for r in follow(session, url)}
    archived = follow(session, url, {"archived": "true"})
    assert archived and not keys & {r["key"] for r in archived}
    assert not any(k.startswith("survey-targeting-") for k in keys)


def test_order_param_on_flags(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    rows = follow(fake_client(fake_server_shared), fake_server_shared.url + "/api/projects/1/feature_flags/",
                  {"order": "-updated_at"})
    assert [r["updated_at"] for r in rows] == sorted((r["updated_at"] for r in rows), reverse=True)


def test_insights_basic_and_date_from(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/insights/"
    full = session.get(url, params={"limit": 3}).json()["results"]
    basic = session.get(url, params={"limit": 3, "basic": "true"}).json()["results"]
    assert all("result" in r and "query" in r for r in full)
    # PostHog's InsightBasicSerializer keeps the query definition but drops the heavy cached result.
    assert all("result" not in r and "query" in r for r in basic)
    assert all(set(r) <= set(INSIGHT_BASIC_FIELDS) for r in basic)
    assert [r["id"] for r in full] == [r["id"] for r in basic]
    everything = follow(session, url)
    cut = sorted(r["last_modified_at"] for r in everything)[len(everything) // 2]
    recent = follow(session, url, {"date_from": cut})
    assert {r["id"] for r in recent} == {r["id"] for r in everything if r["last_modified_at"] > cut}


def test_persons_offset_without_count_and_short_pages(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    world = fake_server_shared.world
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/persons/"
    first = session.get(url).json()
    assert "count" not in first and set(first) == {"next", "previous", "results"}
    assert first["next"].startswith(fake_server_shared.url) and "offset=100" in first["next"]
    pages, rows, url_ = [], [], url
    while url_:
        page = session.get(url_).json()
        pages.append(page)
        rows += page["results"]
        url_ = page["next"]
    # Deleted persons are dropped after the page is cut: some pages are short although `next` is set.
    assert any(len(p["results"]) < 100 and p["next"] for p in pages)
    truth = world.truth_persons(1)
    assert sorted(r["uuid"] for r in rows) == sorted(p["id"] for p in truth)
    keys = [(datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")), r["uuid"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    # Recorded (airbyte expected_records): "type": "person", "id" is the person uuid, plus
    # "matched_recordings": [] and "value_at_data_point": null.
    assert rows[0]["id"] == rows[0]["uuid"] and rows[0]["type"] == "person" and rows[0]["distinct_ids"]
    assert rows[0]["matched_recordings"] == [] and rows[0]["value_at_data_point"] is None
    assert session.get(url, params={"include_total": "true"}).json()["count"] == len(truth)


def test_session_recordings_has_next_and_default_50(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/session_recordings/"
    first = session.get(url).json()
    assert set(first) == {"results", "has_next", "version"} and first["version"] == 4
    assert len(first["results"]) == 50 and first["has_next"] is True
    rows, offset = [], 0
    while True:
        page = session.get(url, params={"offset": offset}).json()
        rows += page["results"]
        offset += 50
        if not page["has_next"]:
            break
    assert len(rows) == len({r["id"] for r in rows}) == 120
    assert all(isinstance(r["id"], str) for r in rows)


def test_group_types_bare_array(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    types = session.get(fake_server_shared.url + "/api/projects/1/groups_types/").json()
    assert isinstance(types, list) and [t["group_type_index"] for t in types] == [0, 1]
    assert session.get(fake_server_shared.url + "/api/projects/3/groups_types/").json() == []


def test_groups_need_group_type_index(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server_shared).get(fake_server_shared.url + "/api/projects/1/groups/")
    assert r.status_code == 400
    assert r.json() == {"type": "validation_error", "code": "required", "detail": "This field is required.",
                        "attr": "group_type_index"}


def test_groups_cursor_pagination(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    url = fake_server_shared.url + "/api/projects/1/groups/"
    first = session.get(url, params={"group_type_index": 0, "limit": 5}).json()
    assert set(first) == {"next", "previous", "results"} and len(first["results"]) == 100  # no page size param
    assert "cursor=" in first["next"] and "offset" not in first["next"]
    rows = follow(session, url, {"group_type_index": 0})
    keys = [r["group_key"] for r in rows]
    assert len(keys) == len(set(keys)) == 130
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) < len(stamps)  # ties survive the cursor


def test_annotations_default_1000_and_organization_scope(fake_server_shared: FakePostHog,
                                                         fake_client: Client) -> None:
    world = fake_server_shared.world
    session = fake_client(fake_server_shared)
    first = session.get(fake_server_shared.url + "/api/projects/1/annotations/").json()
    assert len(first["results"]) == 1000 and first["count"] > 1000 and "limit=1000&offset=1000" in first["next"]
    org_from_1 = {r["id"] for r in world.objects["annotations"][1] if r["scope"] == "organization"
                  and not r["deleted"]}
    in_2 = {r["id"] for r in follow(session, fake_server_shared.url + "/api/projects/2/annotations/")}
    assert org_from_1 and org_from_1 <= in_2
    in_4 = follow(session, fake_server_shared.url + "/api/projects/4/annotations/")
    assert in_4 and all(r["scope"] == "organization" for r in in_4)  # the empty project still sees org ones
    assert not org_from_1 & {r["id"] for r in in_4}  # ... but only from its own organisation
    dates = [r["date_marker"] for r in first["results"]]
    assert dates == sorted(dates, reverse=True)


def test_airbyte_style_requests(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    """No trailing slash, offset paging that ignores `next`: what Airbyte's connector sends."""
    session = fake_client(fake_server_shared)
    projects = session.get(fake_server_shared.url + "/api/projects?limit=100").json()["results"]
    for project in projects:
        ids, offset = [], 0
        while True:
            page = session.get(f"{fake_server_shared.url}/api/projects/{project['id']}/cohorts",
                               params={"limit": 100, "offset": offset}).json()
            ids += [r["id"] for r in page["results"]]
            if len(page["results"]) < 100:
                break
            offset += 100
        assert len(ids) == len(fake_server_shared.world.visible_objects("cohorts", project["id"]))


def test_retrieve_one_object(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    world = fake_server_shared.world
    session = fake_client(fake_server_shared)
    flag = world.visible_objects("feature_flags", 1)[0]
    assert session.get(f"{fake_server_shared.url}/api/projects/1/feature_flags/{flag['id']}/").json() == flag
    deleted = next(r for r in world.objects["feature_flags"][1] if r["deleted"])
    r = session.get(f"{fake_server_shared.url}/api/projects/1/feature_flags/{deleted['id']}")
    assert r.status_code == 404 and r.json()["detail"] == "Not found."
