"""The one REST walker, per pagination style, against a scripted client (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from posthog_source.catalogue import BY_TABLE, Endpoint, Pagination
from posthog_source.errors import PostHogSourceError
from posthog_source.rest import shape_rows, walk_pages


class Scripted:
    """Answers GETs from a list of (expected path-or-url, answer); records the params it was sent."""

    def __init__(self, answers: list[tuple[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def get(self, path_or_url: str, params: dict[str, Any] | None = None, what: str = "") -> Any:
        expected, answer = self.answers.pop(0)
        assert path_or_url == expected, (path_or_url, expected)
        self.calls.append((path_or_url, params))
        return answer


def test_next_links_are_followed_through_short_pages_until_null():
    """PostHog returns short pages mid-list (persons, issue #24787): only a null `next` ends the walk."""
    client = Scripted([
        ("/api/projects/1/cohorts/", {"results": [{"id": 1}, {"id": 2}], "next": "https://h/api/projects/1/cohorts/?offset=2"}),
        ("https://h/api/projects/1/cohorts/?offset=2", {"results": [{"id": 3}], "next": "https://h/x?offset=3"}),
        ("https://h/x?offset=3", {"results": [], "next": None}),
    ])
    pages = list(walk_pages(client, BY_TABLE["cohorts"], 1))  # type: ignore[arg-type]
    assert [len(p) for p in pages] == [2, 1, 0]
    assert client.calls[0][1] == {"limit": 100} and client.calls[1][1] is None  # next links carry their params


def test_a_next_link_seen_twice_stops_instead_of_looping():
    loop = {"results": [{"id": 1}], "next": "https://h/again"}
    client = Scripted([("/api/projects/1/cohorts/", loop), ("https://h/again", loop)])
    with pytest.raises(PostHogSourceError, match="same next link twice"):
        list(walk_pages(client, BY_TABLE["cohorts"], 1))  # type: ignore[arg-type]


def test_has_next_pages_advance_the_offset_by_what_came_back():
    client = Scripted([
        ("/api/projects/2/session_recordings/", {"results": [{"id": "a"}] * 50, "has_next": True}),
        ("/api/projects/2/session_recordings/", {"results": [{"id": "b"}] * 7, "has_next": True}),
        ("/api/projects/2/session_recordings/", {"results": [{"id": "c"}], "has_next": False}),
    ])
    pages = list(walk_pages(client, BY_TABLE["session_recordings"], 2))  # type: ignore[arg-type]
    assert [len(p) for p in pages] == [50, 7, 1]
    assert [params["offset"] for _, params in client.calls] == [0, 50, 57]  # type: ignore[index]


def test_a_bare_list_is_one_page():
    client = Scripted([("/api/projects/1/groups_types/", [{"group_type_index": 0}, {"group_type_index": 1}])])
    pages = list(walk_pages(client, BY_TABLE["group_types"], 1))  # type: ignore[arg-type]
    assert pages == [[{"group_type_index": 0}, {"group_type_index": 1}]]
    assert BY_TABLE["group_types"].pagination is Pagination.BARE_LIST


def test_organization_endpoints_use_their_absolute_path():
    client = Scripted([("/api/organizations/", {"results": [{"id": "o"}], "next": None})])
    assert list(walk_pages(client, BY_TABLE["organizations"], None)) == [[{"id": "o"}]]  # type: ignore[arg-type]


def test_rows_are_shaped_once_per_key_with_utc_instants_and_unknown_fields_kept():
    endpoint = Endpoint("things", "things/", "thing", instants=("created_at",))
    seen: set[tuple[Any, ...]] = set()
    rows = shape_rows([{"id": 1, "created_at": "2025-02-01T00:00:00Z", "brand_new_field": {"x": 1}},
                       {"id": 1, "created_at": "2025-02-01T00:00:00Z"},  # repeated by offset drift
                       {"id": 2, "created_at": None}], endpoint, 7, seen)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["project_id"] == 7 and rows[0]["brand_new_field"] == {"x": 1}
    assert rows[0]["created_at"].isoformat() == "2025-02-01T00:00:00+00:00" and rows[1]["created_at"] is None
