"""The endpoint catalogue: one entry per PostHog list endpoint, as data.

One generic walker (`rest.py`) reads every entry; what differs between endpoints (path, pagination style,
key, scope, instants to parse) is written here once, from docs/posthog-api.md ("REST lists").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Pagination(Enum):
    NEXT_LINK = "next_link"  # DRF limit/offset or cursor envelope: follow the absolute `next` until null
    HAS_NEXT = "has_next"  # session recordings: {results, has_next}; advance offset ourselves
    BARE_LIST = "bare_list"  # group types: a plain JSON array, no paging


class Level(Enum):
    ORGANIZATION = "organization"  # /api/organizations/...; keyed by id alone
    PROJECT = "project"  # /api/projects/{project_id}/...; rows carry project_id


_COMMON_INSTANTS = ("created_at", "updated_at")


@dataclass(frozen=True)
class Endpoint:
    table: str
    path: str  # relative to /api/projects/{project_id}/ for project endpoints, else absolute
    scope: str  # PostHog scope object; the key needs `<scope>:read`
    level: Level = Level.PROJECT
    pagination: Pagination = Pagination.NEXT_LINK
    primary_key: tuple[str, ...] = ("project_id", "id")
    page_size: int | None = 100  # sent as `limit`; None sends none
    params: dict[str, Any] = field(default_factory=dict)
    instants: tuple[str, ...] = _COMMON_INSTANTS  # top-level fields parsed to UTC timestamps
    per_group_type: bool = False  # groups: one walk per group_type_index
    # A key no real row has, typed like the real ones: the snapshot sentinel (see snapshot.py).
    sentinel_key: dict[str, Any] = field(default_factory=lambda: {"id": 0})


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("organizations", "/api/organizations/", "organization", level=Level.ORGANIZATION,
             primary_key=("id",)),
    Endpoint("cohorts", "cohorts/", "cohort", instants=("created_at", "last_calculation")),
    Endpoint("feature_flags", "feature_flags/", "feature_flag",
             instants=("created_at", "updated_at", "last_called_at")),
    Endpoint("insights", "insights/", "insight", params={"basic": "true"},
             instants=("created_at", "updated_at", "last_modified_at", "last_refresh", "last_viewed_at")),
    Endpoint("dashboards", "dashboards/", "dashboard",
             instants=("created_at", "last_accessed_at", "last_viewed_at", "last_refresh")),
    Endpoint("annotations", "annotations/", "annotation", page_size=1000,
             instants=("created_at", "updated_at", "date_marker")),
    Endpoint("actions", "actions/", "action", instants=("created_at", "last_calculated_at", "pinned_at")),
    Endpoint("experiments", "experiments/", "experiment",
             instants=("created_at", "updated_at", "start_date", "end_date")),
    Endpoint("surveys", "surveys/", "survey", instants=("created_at", "start_date", "end_date"),
             sentinel_key={"id": ""}),
    Endpoint("event_definitions", "event_definitions/", "event_definition",
             instants=("created_at", "last_seen_at", "last_updated_at"), sentinel_key={"id": ""}),
    Endpoint("property_definitions", "property_definitions/", "property_definition", instants=(),
             sentinel_key={"id": ""}),
    Endpoint("early_access_features", "early_access_feature/", "early_access_feature",
             instants=("created_at",), sentinel_key={"id": ""}),
    Endpoint("group_types", "groups_types/", "group", pagination=Pagination.BARE_LIST, page_size=None,
             primary_key=("project_id", "group_type_index"), instants=("created_at",),
             sentinel_key={"group_type_index": -1}),
    Endpoint("groups", "groups/", "group", per_group_type=True, page_size=None,
             primary_key=("project_id", "group_type_index", "group_key"), instants=("created_at",),
             sentinel_key={"group_type_index": -1, "group_key": ""}),
    Endpoint("session_recordings", "session_recordings/", "session_recording",
             pagination=Pagination.HAS_NEXT, page_size=50,
             instants=("start_time", "end_time", "expiry_time"), sentinel_key={"id": ""}),
)

# Loaded through HogQL (posthog_source/hogql/), listed so names can be validated in one place.
HOGQL_TABLES: tuple[str, ...] = ("events", "persons", "person_distinct_ids", "sessions", "cohort_people")
# `projects` comes from project discovery itself.
ALL_TABLES: tuple[str, ...] = ("projects",) + tuple(e.table for e in ENDPOINTS) + HOGQL_TABLES

BY_TABLE: dict[str, Endpoint] = {e.table: e for e in ENDPOINTS}
