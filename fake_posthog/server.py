"""The HTTP side of the fake: routing, auth, scopes, pagination, the events and query endpoints, rate limits
and faults, each as PostHog does it (../shared/posthog-api.md). Start it with `FakePostHog(world).start()`."""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import math
import re
import socket
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from . import rules
from .cost import CostEstimator, QueryCost
from .faults import FaultConfig
from .querycache import DEFAULT_TARGET_AGE_SECONDS, FORCING_MODES, REFRESH_MODES, QueryCache, cache_key
from .ratelimit import (
    GB,
    RateLimitConfig,
    RateLimiter,
    ReadBudget,
    concurrency_detail,
    throttled_detail,
)
from .world import MUTATIONS, KeyInfo, World, iso_z

SUNSET = "Fri, 31 Jul 2026 00:00:00 GMT"
EVENT_LIST_TIME_WINDOWS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
                           timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
MAX_EVENTS_OFFSET = 50_000
OFFSET_MESSAGE = "Offset is deprecated. Max supported offset value is 50000"
# PostHog's InsightBasicSerializer (products/product_analytics/backend/api/insight.py): `basic=true` keeps these.
INSIGHT_BASIC_FIELDS = ("id", "short_id", "name", "derived_name", "filters", "query", "dashboards", "dashboard_tiles",
                        "description", "last_refresh", "refreshing", "saved", "tags", "updated_at", "created_by",
                        "created_at", "last_modified_at", "favorited", "user_access_level", "last_viewed_at")
PROPERTY_TYPES = {"event": 1, "person": 2, "group": 3, "session": 4}
# posthog/exceptions.py: ClickHouseQueryTimeOut (504) and ClickHouseEstimatedQueryExecutionTimeTooLong (512),
# plain APIExceptions, so drf-exceptions-hog answers type server_error, code error.
QUERY_TIMEOUT_DETAIL = ("Query has hit the max execution time before completing. See our docs for how to improve "
                        "your query performance. You may need to materialize.")
QUERY_TOO_SLOW_DETAIL = ("Estimated query execution time is too long. Try reducing its scope by changing the time "
                         "range.")
SERVER_ERROR_DETAIL = "A server error occurred."

Params = dict[str, str]


class ApiError(Exception):
    """An error answered with PostHog's envelope {type, code, detail, attr}."""

    def __init__(self, status: int, type_: str, code: str, detail: str, attr: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.type, self.code, self.detail, self.attr = status, type_, code, detail, attr
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps({"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr})


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "invalid_request", "not_found", detail)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "authentication_error", "permission_denied", detail)


def invalid(detail: str, attr: str | None = None, code: str = "invalid_input") -> ApiError:
    return ApiError(400, "validation_error", code, detail, attr)


# ---------------------------------------------------------------------------------------------- list endpoints
Filter = Callable[[list[dict[str, Any]], Params, World, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class ListEndpoint:
    """How PostHog lists one kind of object (posthog-api.md §2 table)."""

    kind: str
    scope: str
    pagination: str = "limit_offset"  # limit_offset | recordings | bare | cursor
    ordering: tuple[str, ...] = ("-created_at", "id")
    default_limit: int = 100
    bucket: str = "crud"
    order_param: bool = False  # `order=` passed straight to order_by
    filter: Filter | None = None
    basic_fields: tuple[str, ...] = ()  # all that `basic=true` keeps (empty: no light serializer)


def _contains(value: Any, needle: str) -> bool:
    return needle.lower() in str(value or "").lower()


def _flags_filter(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    if "archived" in p:
        rows = world.archived_flags(team_id) if p["archived"].lower() == "true" else rows
    if p.get("active") in ("true", "false"):
        rows = [r for r in rows if r["active"] == (p["active"] == "true")]
    if "key" in p:
        rows = [r for r in rows if r["key"] == p["key"]]
    if "search" in p:
        rows = [r for r in rows if _contains(r["key"], p["search"]) or _contains(r["name"], p["search"])]
    return rows


def _parse_relative_or_iso(value: str, attr: str) -> datetime:
    match = re.fullmatch(r"-(\d+)([hdwmy])", value)
    if match:
        unit = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}[match[2]]
        return datetime.now(UTC) - timedelta(seconds=int(match[1]) * unit)
    return parse_instant(value, attr)


def _date_filter(field_name: str, strict_from: bool) -> Filter:
    """`date_from`/`date_to` on one timestamp field (insights: last_modified_at > x; annotations: date_marker)."""

    def apply(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
        if p.get("date_from"):
            lo = iso_z(_parse_relative_or_iso(p["date_from"], "date_from"))
            rows = [r for r in rows if r[field_name] and (r[field_name] > lo if strict_from else r[field_name] >= lo)]
        if p.get("date_to"):
            hi = iso_z(_parse_relative_or_iso(p["date_to"], "date_to"))
            rows = [r for r in rows if r[field_name] and r[field_name] <= hi]
        return rows

    return apply


def _insights_filter(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    rows = _date_filter("last_modified_at", strict_from=True)(rows, p, world, team_id)
    if "short_id" in p:
        rows = [r for r in rows if r["short_id"] == p["short_id"]]
    if p.get("favorited") in ("true", "1"):
        rows = [r for r in rows if r["favorited"]]
    return rows


def _annotations_filter(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    rows = _date_filter("date_marker", strict_from=False)(rows, p, world, team_id)
    if "scope" in p:
        rows = [r for r in rows if r["scope"] == p["scope"]]
    if "search" in p:
        rows = [r for r in rows if _contains(r["content"], p["search"])]
    return rows


def _cohorts_filter(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    if p.get("type") in ("static", "dynamic"):
        rows = [r for r in rows if r["is_static"] == (p["type"] == "static")]
    return rows


def _search_name(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    return [r for r in rows if _contains(r["name"], p["search"])] if "search" in p else rows


def _property_definitions_filter(rows: list[dict[str, Any]], p: Params, world: World,
                                 team_id: int) -> list[dict[str, Any]]:
    wanted = PROPERTY_TYPES.get(p.get("type", "event"), 1)
    return _search_name([r for r in rows if r["type"] == wanted], p, world, team_id)


def _groups_filter(rows: list[dict[str, Any]], p: Params, world: World, team_id: int) -> list[dict[str, Any]]:
    raw = p.get("group_type_index")
    if raw is None or raw == "":
        raise invalid("This field is required.", attr="group_type_index", code="required")
    if not raw.isdigit():
        raise invalid("A valid integer is required.", attr="group_type_index", code="invalid_input")
    rows = [r for r in rows if r["group_type_index"] == int(raw)]
    if "group_key" in p:
        rows = [r for r in rows if _contains(r["group_key"], p["group_key"])]
    if "search" in p:
        rows = [r for r in rows if _contains(r["group_key"], p["search"])
                or _contains(r["group_properties"].get("name"), p["search"])]
    return rows


LIST_ENDPOINTS: dict[str, ListEndpoint] = {
    "cohorts": ListEndpoint("cohorts", "cohort", filter=_cohorts_filter),
    "feature_flags": ListEndpoint("feature_flags", "feature_flag", order_param=True, filter=_flags_filter),
    "insights": ListEndpoint("insights", "insight", ordering=("order", "id"), bucket="analytics",
                             order_param=True, filter=_insights_filter,
                             basic_fields=INSIGHT_BASIC_FIELDS),
    "dashboards": ListEndpoint("dashboards", "dashboard", ordering=("-pinned", "name", "id")),
    "annotations": ListEndpoint("annotations", "annotation", ordering=("-date_marker", "id"), default_limit=1000,
                                filter=_annotations_filter),
    "actions": ListEndpoint("actions", "action", filter=_search_name),
    "experiments": ListEndpoint("experiments", "experiment"),
    "surveys": ListEndpoint("surveys", "survey", filter=_search_name),
    "event_definitions": ListEndpoint("event_definitions", "event_definition",
                                      ordering=("-last_seen_at::date", "name"), filter=_search_name),
    "property_definitions": ListEndpoint("property_definitions", "property_definition", ordering=("name", "id"),
                                         filter=_property_definitions_filter),
    "early_access_feature": ListEndpoint("early_access_features", "early_access_feature"),
    "session_recordings": ListEndpoint("session_recordings", "session_recording", pagination="recordings",
                                       ordering=("-start_time", "id"), default_limit=50),
    "groups_types": ListEndpoint("group_types", "group", pagination="bare", ordering=("group_type_index",)),
    "groups": ListEndpoint("groups", "group", pagination="cursor", ordering=("-created_at", "group_key"),
                           filter=_groups_filter),
}


def sort_rows(rows: list[dict[str, Any]], ordering: tuple[str, ...]) -> list[dict[str, Any]]:
    """Order like Postgres: stable multi-key sort, NULLS LAST ascending and NULLS FIRST descending."""
    rows = list(rows)
    for spec in reversed(ordering):
        desc = spec.startswith("-")
        name = spec.lstrip("-")
        as_date = name.endswith("::date")
        name = name.removesuffix("::date")

        def value(row: dict[str, Any], name: str = name, as_date: bool = as_date) -> Any:
            v = row.get(name)
            return v[:10] if as_date and isinstance(v, str) else v

        present = [r for r in rows if value(r) is not None]
        missing = [r for r in rows if value(r) is None]
        present.sort(key=value, reverse=desc)
        rows = missing + present if desc else present + missing
    return rows


# ---------------------------------------------------------------------------------------------- helpers
def parse_instant(value: str, attr: str) -> datetime:
    """ISO 8601 (offset, 'Z' or naive = UTC) to an aware UTC datetime; 400 on anything else."""
    # A '+' sent unencoded in a query string arrives as a space: read "...00 05:00" as "...00+05:00".
    text = re.sub(r"(\d) (\d\d:?\d\d)$", r"\1+\2", value.strip())
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid(f"Invalid date: {value}", attr=attr) from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _positive_int(raw: str | None, default: int) -> int:
    """DRF's limit parsing: anything but a positive integer means the default."""
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


def _offset(raw: str | None) -> int:
    try:
        return max(0, int(raw)) if raw is not None else 0
    except ValueError:
        return 0


@dataclass
class Request:
    """What a handler needs from one HTTP request."""

    method: str
    raw_path: str  # as sent, with query string
    path: str  # without query, environments already rewritten
    params: Params
    param_list: list[tuple[str, str]]
    host: str
    body: bytes
    key: KeyInfo | None = None
    team_id: int | None = None
    org_id: str | None = None

    def url(self, params: list[tuple[str, str]]) -> str:
        """An absolute URL for the same path with other params (DRF's build_absolute_uri)."""
        base = f"http://{self.host}{urlsplit(self.raw_path).path}"
        return f"{base}?{urlencode(params)}" if params else base

    def with_params(self, **changes: Any) -> str:
        """This request's URL with params replaced (None removes one), keeping the others in order."""
        out = [(k, v) for k, v in self.param_list if k not in changes]
        out += [(k, str(v)) for k, v in changes.items() if v is not None]
        return self.url(out)

    def json(self) -> Any:
        try:
            return orjson.loads(self.body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_request", "parse_error", f"JSON parse error - {exc}") from exc


@dataclass
class Route:
    handler: Callable[[Request], tuple[int, bytes, dict[str, str]]]
    scope: str | None  # scope object; None = any valid key
    bucket: str = "crud"
    team_id: int | str | None = None  # project-based endpoint when set (str = unresolved)
    org_id: str | None = None  # organisation-based endpoint
    methods: tuple[str, ...] = ("GET",)


# ---------------------------------------------------------------------------------------------- the server
class FakePostHog:
    """A local PostHog-compatible API server over a `World`."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0,
                 rate_limits: bool | RateLimitConfig = False, time_scale: float = 1.0,
                 faults: FaultConfig | None = None, retry_after_header: bool = False,
                 events_max_limit: int = 1000, *, query_cache: bool = True,
                 cache_target_age_seconds: float = DEFAULT_TARGET_AGE_SECONDS,
                 read_budget: bool | None = None, read_budget_bytes_per_hour: float = 20 * GB,
                 read_budget_capacity_hours: float = 24.0, read_budget_scope: str = "team",
                 execution_limit_rows: int | None = None, execution_limit_status: int = 504,
                 always_throttle: str | None = None, always_throttle_wait: int = 1,
                 retry_after_format: str = "seconds", engine_errors_as_500: bool = False,
                 missing_tables: frozenset[str] | set[str] = frozenset(),
                 persons_on_events_mode: str = rules.PERSONS_ON_EVENTS_MODES[0], record_queries: bool = False) -> None:
        """Options after `events_max_limit` (docs/fake-posthog-server-rules.md): the query result cache and
        its nominal target age; the read budget (None: on when rate limits are), its refill per hour,
        capacity in hours of refill and scope ("team" as PostHog, or "key"); the execution limit in rows
        scanned per query and its status (504 timeout or 512 estimated too long); a 429 for every request
        ("all") or every /query/ ("query") with the given wait; the Retry-After form ("seconds" or
        "http-date"); and whether errors raised by the database engine answer 500 instead of 400.
        Every query is first judged by PostHog's own rules (rules.py): `missing_tables` are tables this
        PostHog lacks (an older self-hosted one without `sessions`), `persons_on_events_mode` is the team's
        mode PostHog resolves `events.person_id` by; `record_queries` keeps every query text judged
        (`queries_seen`), for the test that enumerates what the connector sends."""
        if read_budget_scope not in ("team", "key"):
            raise ValueError("read_budget_scope must be 'team' or 'key'")
        if execution_limit_status not in (504, 512):
            raise ValueError("execution_limit_status must be 504 or 512")
        if always_throttle not in (None, "all", "query"):
            raise ValueError("always_throttle must be None, 'all' or 'query'")
        if retry_after_format not in ("seconds", "http-date"):
            raise ValueError("retry_after_format must be 'seconds' or 'http-date'")
        self.world = world
        self.host, self.port = host, port
        self.time_scale = time_scale
        self.faults = faults
        self.retry_after_header = retry_after_header
        self.events_max_limit = events_max_limit
        config = rate_limits if isinstance(rate_limits, RateLimitConfig) else RateLimitConfig()
        self.limiter = RateLimiter(config, time_scale) if rate_limits else None
        self.query_cache = QueryCache(cache_target_age_seconds, time_scale) if query_cache else None
        self.cost = CostEstimator(world)
        budget_on = bool(rate_limits) if read_budget is None else read_budget
        self.read_budget = (ReadBudget(read_budget_bytes_per_hour, read_budget_capacity_hours, time_scale)
                            if budget_on else None)
        self.read_budget_scope = read_budget_scope
        self.execution_limit_rows = execution_limit_rows
        self.execution_limit_status = execution_limit_status
        self.always_throttle = always_throttle
        self.always_throttle_wait = always_throttle_wait
        self.retry_after_format = retry_after_format
        self.engine_errors_as_500 = engine_errors_as_500
        self.missing_tables = frozenset(missing_tables)
        self.persons_on_events_mode = persons_on_events_mode
        self.queries_seen: list[str] | None = [] if record_queries else None
        # What the queries cost, per key name (world.keys) and per project: for tests and benchmarks.
        self.read_bytes_by_key: Counter[str] = Counter()
        self.query_count_by_key: Counter[str] = Counter()  # queries that ran (not cached, not refused)
        self.rows_scanned_by_key: Counter[str] = Counter()
        self.cache_hits_by_key: Counter[str] = Counter()
        self.read_bytes_by_team: Counter[int] = Counter()
        self.timeout_count = 0  # queries failed by the execution limit
        self._first_query_at = self._last_query_at = 0.0  # monotonic instants of computed answers
        self.budget_after_last_query: dict[str, float] = {}  # each read-budget scope's balance after its last query
        self.budget_throttled_count = 0  # 429s from the read budget (also counted in throttled_count)
        self.last_query_cost: QueryCost | None = None
        self._key_names = {token: name for name, token in world.keys.items()}
        self.request_log: list[tuple[str, str, int]] = []
        self.throttled_count = 0  # 429s served by the rate limiter (not injected faults)
        self.fault_counts: Counter[str] = Counter()
        self._request_numbers = itertools.count()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._event_sql_ready = False

    # -------------------------------------------------------------- lifecycle
    def start(self) -> FakePostHog:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-posthog",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakePostHog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.request_log.append((method, path, status))

    def next_request_number(self) -> int:
        with self._lock:
            return next(self._request_numbers)

    # -------------------------------------------------------------- routing
    def route(self, method: str, path: str) -> Route:
        """Map a path (already rewritten from /api/environments/) to its route; 404 if unknown."""
        parts = [p for p in path.split("/") if p]
        n = len(parts)
        if n < 2 or parts[0] != "api":
            raise not_found("Endpoint not found.")
        head = parts[1]
        if head == "personal_api_keys" and n == 3 and parts[2] == "@current":
            return Route(self.h_current_key, None)
        if head == "users" and n == 3 and parts[2] == "@me":
            return Route(self.h_me, "user")
        if head == "organizations":
            if n == 2:
                return Route(self.h_organizations, "organization")
            org_id = self.world.current_organization if parts[2] == "@current" else parts[2]
            if n == 3:
                return Route(self.h_organization, "organization", org_id=org_id)
            if n == 4 and parts[3] == "projects":
                return Route(self.h_org_projects, "project", org_id=org_id)
        if head == "projects":
            if n == 2:
                return Route(self.h_projects, "project", org_id=self.world.current_organization)
            team: int | str = self.world.current_team if parts[2] == "@current" else parts[2]
            if n == 3:
                return Route(self.h_project, "project", team_id=team)
            resource = parts[3]
            if n == 4 and resource == "query":
                return Route(self.h_query, "query", bucket="query", team_id=team, methods=("POST",))
            if n == 4 and resource == "events":
                return Route(self.h_events, "query", bucket="analytics", team_id=team)
            if n == 4 and resource == "persons":
                return Route(self.h_persons, "person", bucket="analytics", team_id=team)
            endpoint = LIST_ENDPOINTS.get(resource)
            if endpoint is not None and n == 4:
                return Route(lambda r, e=endpoint: self.h_list(r, e), endpoint.scope, endpoint.bucket, team_id=team)
            if endpoint is not None and n == 5 and endpoint.pagination == "limit_offset":
                return Route(lambda r, e=endpoint, i=parts[4]: self.h_retrieve(r, e, i), endpoint.scope,
                             endpoint.bucket, team_id=team)
        raise not_found("Endpoint not found.")

    # -------------------------------------------------------------- auth and permissions
    def authenticate(self, req: Request, headers: Any) -> KeyInfo:
        """PostHog's find_key_with_source: header, then body, then query string; only the first is tried."""
        token, source = None, ""
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token, source = auth[7:].strip(), "Authorization header"
        if token is None and req.body and req.method == "POST":
            try:
                body = orjson.loads(req.body)
                if isinstance(body, dict) and body.get("personal_api_key"):
                    token, source = str(body["personal_api_key"]), "body"
            except orjson.JSONDecodeError:
                pass
        if token is None and req.params.get("personal_api_key"):
            token, source = req.params["personal_api_key"], "query string"
        www = {"WWW-Authenticate": f'Bearer resource_metadata="http://{req.host}/.well-known/'
                                  f'oauth-protected-resource"'}
        if token is None:
            raise ApiError(401, "authentication_error", "not_authenticated",
                           "Authentication credentials were not provided.", headers=www)
        info = self.world.key_info.get(token)
        if info is None:
            raise ApiError(401, "authentication_error", "authentication_failed",
                           f"Personal API key found in request {source} is invalid.", headers=www)
        return info

    def authorize(self, req: Request, route: Route, key: KeyInfo) -> None:
        """Project existence (404), scoped teams and organisations, then the scope itself (403)."""
        world = self.world
        if route.team_id is not None:
            team = str(route.team_id)
            project = world.project(int(team)) if team.isdigit() else None
            if project is None:
                raise not_found("Project not found.")
            req.team_id = project["id"]
            if key.scoped_teams is not None and project["id"] not in key.scoped_teams:
                raise forbidden(f"API key does not have access to the requested project: ID {project['id']}.")
            if key.scoped_organizations is not None and project["organization"] not in key.scoped_organizations:
                raise forbidden("API key does not have access to the requested organization: "
                                f"ID {project['organization']}.")
        elif route.scope is not None:
            if key.scoped_teams is not None:
                raise forbidden("API keys with scoped projects are only supported on project-based endpoints.")
            if key.scoped_organizations is not None:
                if route.org_id is None:
                    raise forbidden("API keys with scoped organizations are only supported on "
                                    "organization-based endpoints.")
                if route.org_id not in key.scoped_organizations:
                    raise forbidden(f"API key does not have access to the requested organization: ID {route.org_id}.")
        if route.scope is not None and key.scopes and "*" not in key.scopes:
            needed = f"{route.scope}:read"
            if needed not in key.scopes and f"{route.scope}:write" not in key.scopes:
                raise forbidden(f"API key missing required scope '{needed}'")

    def throttle(self, key: KeyInfo, route: Route, req: Request) -> None:
        if self.always_throttle == "all" or (self.always_throttle == "query" and route.bucket == "query"):
            self._throttled(self.always_throttle_wait)
        if self.limiter is None:
            return
        wait = self.limiter.check(key.key, route.bucket)
        if wait is not None:
            self._throttled(wait)

    def _throttled(self, wait: int) -> None:
        with self._lock:
            self.throttled_count += 1
        raise ApiError(429, "throttled_error", "throttled", throttled_detail(wait),
                       headers={"Retry-After": self.retry_after(wait)} if self.retry_after_header else {})

    def retry_after(self, wait: int) -> str:
        """A Retry-After value for a wait in real seconds: delay-seconds, or an IMF-fixdate (RFC 9110 §10.2.3)
        rounded up to the next whole second."""
        if self.retry_after_format == "seconds":
            return str(wait)
        when = datetime.now(UTC) + timedelta(seconds=wait)
        when = when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)
        return email.utils.format_datetime(when, usegmt=True)

    def key_name(self, key: KeyInfo | None) -> str:
        """How stats name a key: its name in world.keys (never the secret itself), else its label."""
        if key is None:
            return "anonymous"
        return self._key_names.get(key.key) or key.label or key.id

    # -------------------------------------------------------------- pagination
    def paginate(self, req: Request, endpoint: ListEndpoint, rows: list[dict[str, Any]]) -> Any:
        """Shape one page the way the endpoint's PostHog paginator does."""
        p = req.params
        if endpoint.pagination == "bare":
            return rows
        if endpoint.pagination == "cursor":
            return self.cursor_page(req, rows, endpoint.ordering[0])
        limit = _positive_int(p.get("limit"), endpoint.default_limit)
        offset = _offset(p.get("offset"))
        page = rows[offset:offset + limit]
        if endpoint.pagination == "recordings":
            return {"results": page, "has_next": offset + limit < len(rows), "version": 4}
        return limit_offset_envelope(req, page, len(rows), limit, offset)

    def cursor_page(self, req: Request, rows: list[dict[str, Any]], order: str, size: int = 100) -> dict[str, Any]:
        """DRF CursorPagination over `order`: the opaque cursor holds the last position and how many rows at
        that exact position were already served, so equal values are neither skipped nor repeated."""
        name, desc = order.lstrip("-"), order.startswith("-")
        start, position, skip = 0, None, 0
        if req.params.get("cursor"):
            try:
                decoded = orjson.loads(bytes.fromhex(req.params["cursor"]))
                position, skip = decoded["p"], int(decoded["o"])
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                raise not_found("Invalid cursor") from exc
            beyond = next((i for i, r in enumerate(rows)
                           if (r[name] < position if desc else r[name] > position)), len(rows))
            equal = next((i for i, r in enumerate(rows) if r[name] == position), None)
            start = beyond if equal is None else min(equal + skip, beyond)
        page = rows[start:start + size]
        nxt = None
        if start + size < len(rows):
            last = page[-1][name]
            served = sum(1 for r in page if r[name] == last)
            if last == position and all(r[name] == last for r in page):
                served += skip
            nxt = req.with_params(cursor=orjson.dumps({"p": last, "o": served}).hex())
        previous = req.with_params(cursor=None) if start > 0 else None
        return {"next": nxt, "previous": previous, "results": page}

    # -------------------------------------------------------------- handlers
    def h_current_key(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        k = req.key
        assert k is not None
        return ok({"id": k.id, "label": k.label, "mask_value": k.key[:4] + "..." + k.key[-4:],
                   "created_at": iso_z(self.world.now - timedelta(days=30)), "last_used_at": iso_z(datetime.now(UTC)),
                   "user_id": self.world.user["id"], "scopes": k.scopes, "scoped_teams": k.scoped_teams or [],
                   "scoped_organizations": k.scoped_organizations or []})

    def h_me(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        world = self.world
        org = world.organization(world.current_organization)
        team = world.project(world.current_team)
        return ok({**world.user, "organization": org, "team": team,
                   "organizations": [{k: o[k] for k in ("id", "name", "slug", "membership_level")}
                                     for o in world.organizations]})

    def h_organizations(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        return self.simple_list(req, self.world.organizations)

    def h_organization(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        org = self.world.organization(req.org_id or "")
        if org is None:
            raise not_found()
        return ok(org)

    def h_org_projects(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        org_id = req.org_id or ""
        if self.world.organization(org_id) is None:
            raise not_found()
        return self.simple_list(req, [p for p in self.world.projects if p["organization"] == org_id])

    def h_projects(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        org_id = self.world.current_organization
        return self.simple_list(req, [p for p in self.world.projects if p["organization"] == org_id])

    def h_project(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        assert req.team_id is not None
        return ok(self.world.project(req.team_id))

    def simple_list(self, req: Request, rows: list[dict[str, Any]]) -> tuple[int, bytes, dict[str, str]]:
        limit = _positive_int(req.params.get("limit"), 100)
        offset = _offset(req.params.get("offset"))
        return ok(limit_offset_envelope(req, rows[offset:offset + limit], len(rows), limit, offset))

    def h_list(self, req: Request, endpoint: ListEndpoint) -> tuple[int, bytes, dict[str, str]]:
        assert req.team_id is not None
        rows = self.world.visible_objects(endpoint.kind, req.team_id)
        if endpoint.filter is not None:
            rows = endpoint.filter(rows, req.params, self.world, req.team_id)
        ordering = endpoint.ordering
        if endpoint.order_param and req.params.get("order"):
            order = req.params["order"]
            if rows and order.lstrip("-") not in rows[0]:
                raise invalid(f"Cannot resolve keyword '{order.lstrip('-')}' into field.", attr="order")
            ordering = (order,)
        rows = sort_rows(rows, ordering)
        if endpoint.basic_fields and req.params.get("basic", "").lower() in ("true", "1"):
            rows = [{k: v for k, v in r.items() if k in endpoint.basic_fields} for r in rows]
        return ok(self.paginate(req, endpoint, rows))

    def h_retrieve(self, req: Request, endpoint: ListEndpoint, obj_id: str) -> tuple[int, bytes, dict[str, str]]:
        assert req.team_id is not None
        rows = self.world.visible_objects(endpoint.kind, req.team_id)
        if endpoint.kind == "feature_flags":
            rows += self.world.archived_flags(req.team_id)
        row = next((r for r in rows if str(r.get("id")) == obj_id), None)
        if row is None:
            raise not_found()
        return ok(row)

    def h_persons(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        """Offset paging ordered created_at DESC, id DESC, no `count` unless include_total. Deleted persons are
        dropped after the page is cut, so a page can be short while `next` is set (PostHog #24787)."""
        assert req.team_id is not None
        p = req.params
        limit = _positive_int(p.get("limit"), 100)
        offset = _offset(p.get("offset"))
        where, args = ["p.team_id = ?"], [req.team_id]
        if p.get("distinct_id"):
            where.append("p.id IN (SELECT person_id FROM person_distinct_ids WHERE team_id = ? AND distinct_id = ?"
                         " AND NOT is_deleted)")
            args += [req.team_id, p["distinct_id"]]
        if p.get("email"):
            where.append("json_extract_string(p.properties, '$.email') = ?")
            args.append(p["email"])
        cur = self.world.cursor()
        sql_where = " AND ".join(where)
        rows = cur.execute(f"""
            SELECT p.id, k.pk, p.created_at, p.properties, p.is_identified, p.is_deleted
            FROM persons p JOIN person_pks k ON k.team_id = p.team_id AND k.person_id = p.id
            WHERE {sql_where} ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?""",
                           [*args, limit + 1, offset]).fetchall()
        has_more = len(rows) > limit
        rows = [r for r in rows[:limit] if not r[5]]
        ids = [r[0] for r in rows]
        dids: dict[str, list[str]] = {}
        seen: dict[str, Any] = {}
        if ids:
            for person_id, did in cur.execute(
                    "SELECT person_id, distinct_id FROM person_distinct_ids WHERE team_id = ? AND NOT is_deleted "
                    "AND person_id IN (SELECT unnest(?)) ORDER BY distinct_id", [req.team_id, ids]).fetchall():
                dids.setdefault(person_id, []).append(did)
            seen = dict(cur.execute("SELECT person_id, max(timestamp) FROM events WHERE team_id = ? AND person_id IN "
                                    "(SELECT unnest(?)) GROUP BY 1", [req.team_id, ids]).fetchall())
        results = []
        for pid, _pk, created, props, identified, _deleted in rows:
            properties = orjson.loads(props)
            names = dids.get(pid, [])
            results.append({"type": "person", "id": pid, "uuid": pid,  # recorded: `id` is the uuid, not the pk
                            "name": properties.get("email") or (names[0] if names else pid),
                            "distinct_ids": names, "properties": properties, "created_at": iso_z(created),
                            "last_seen_at": iso_z(seen.get(pid)), "is_identified": identified,
                            "matched_recordings": [], "value_at_data_point": None})
        body: dict[str, Any] = {
            "next": req.with_params(limit=limit, offset=offset + limit) if has_more else None,
            "previous": (req.with_params(limit=limit, offset=offset - limit if offset - limit > 0 else None)
                         if offset > 0 else None),
            "results": results,
        }
        if p.get("include_total", "").lower() in ("true", "1"):
            total = cur.execute(f"SELECT count(*) FROM persons p WHERE {sql_where} AND NOT p.is_deleted",
                                args).fetchone()
            body = {"count": total[0] if total else 0, **body}
        return ok(body)

    def _ensure_event_sql(self) -> None:
        if not self._event_sql_ready:
            self.world.cursor().execute("""
                CREATE OR REPLACE MACRO fake_iso_in_tz(ts, tz) AS
                  strftime(timezone(tz, ts), '%Y-%m-%dT%H:%M:%S.%f') ||
                  CASE WHEN epoch_us(timezone(tz, ts)) < epoch_us(ts::TIMESTAMP) THEN '-' ELSE '+' END ||
                  printf('%02d:%02d', abs(epoch_us(timezone(tz, ts)) - epoch_us(ts::TIMESTAMP)) // 3600000000,
                         (abs(epoch_us(timezone(tz, ts)) - epoch_us(ts::TIMESTAMP)) // 60000000) % 60)""")
            self._event_sql_ready = True

    def h_events(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        """The deprecated /events/ endpoint with its flaws (posthog-api.md §3.1): exclusive bounds, a silent
        limit cap, a `next` that copies the params and moves after/before to the last timestamp (skipping
        ties), descending probing windows that can end with `next: null` too early, and the offset cap."""
        assert req.team_id is not None
        self._ensure_event_sql()
        p = req.params
        limit = min(_positive_int(p.get("limit"), 100), self.events_max_limit)
        offset = _offset(p.get("offset"))
        if offset > MAX_EVENTS_OFFSET:
            raise invalid(OFFSET_MESSAGE)
        headers: dict[str, str] = {}
        if "offset" in p:
            headers["X-PostHog-Warn"] = "offset is deprecated; use the next URL or the query API"
            if offset > 0:
                time.sleep(1.0 / self.time_scale)
        now = datetime.now(UTC)
        before = parse_instant(p["before"], "before") if p.get("before") else now + timedelta(seconds=5)
        after = parse_instant(p["after"], "after") if p.get("after") else now - timedelta(hours=24)
        if before - after > timedelta(days=366):
            raise invalid("Date range cannot exceed 1 year")
        try:
            order_by = orjson.loads(p["orderBy"]) if p.get("orderBy") else ["-timestamp"]
        except orjson.JSONDecodeError as exc:
            raise invalid("orderBy must be a JSON list", attr="orderBy") from exc
        ascending = bool(order_by) and order_by[0] == "timestamp"
        where, args = ["e.team_id = ?"], [req.team_id]
        for name in ("event", "distinct_id", "person_id"):
            if p.get(name):
                where.append(f"e.{name} = ?")
                args.append(p[name])
        include_person = p.get("include_person", "").lower() in ("true", "1")
        person_sql = ("CASE WHEN pp.id IS NULL THEN 'null' ELSE '{\"is_identified\":' || pp.is_identified::VARCHAR"
                      " || ',\"distinct_ids\":[' || to_json(e.distinct_id) || '],\"properties\":' || pp.properties"
                      " || '}' END") if include_person else "'null'"
        join = "LEFT JOIN persons pp ON pp.team_id = e.team_id AND pp.id = e.person_id" if include_person else ""
        tz = self.world.timezone(req.team_id)
        direction = "ASC" if ascending else "DESC"
        conditions = " AND ".join(w.replace("?", f"$a{i}") for i, w in enumerate(where))
        # Cut the page first (top-N on the timestamp), then render JSON for those rows only.
        sql = f"""
            WITH page AS (
              SELECT * FROM events e WHERE {conditions} AND e.timestamp > $lo AND e.timestamp < $hi
              ORDER BY e.timestamp {direction}, e.uuid LIMIT $lim OFFSET $off)
            SELECT '{{"id":' || to_json(e.uuid) || ',"distinct_id":' || to_json(e.distinct_id) ||
                   ',"properties":' || e.properties || ',"event":' || to_json(e.event) || ',"timestamp":"' ||
                   fake_iso_in_tz(e.timestamp, $tz) || '","person":' || {person_sql} ||
                   ',"elements":[],"elements_chain":' || to_json(e.elements_chain) || '}}',
                   fake_iso_in_tz(e.timestamp, $tz)
            FROM page e {join}
            ORDER BY e.timestamp {direction}, e.uuid"""
        named = {f"a{i}": v for i, v in enumerate(args)}
        cur = self.world.cursor()

        def fetch(lo: datetime) -> list[tuple[str, str]]:
            return cur.execute(sql, {**named, "tz": tz, "lo": lo, "hi": before, "lim": limit + 1,
                                     "off": offset}).fetchall()

        rows: list[tuple[str, str]] | None = None
        if not ascending:
            for window in EVENT_LIST_TIME_WINDOWS:
                lo = max(after, before - window)
                rows = fetch(lo)
                if len(rows) >= limit / 2 or lo == after:
                    break
                rows = None
        if rows is None:
            rows = fetch(after)
        has_more = len(rows) > limit
        rows = rows[:limit]
        nxt = None
        if has_more:
            nxt = req.with_params(**({"after": rows[-1][1]} if ascending else {"before": rows[-1][1]}))
        body = b'{"next":' + orjson.dumps(nxt) + b',"results":[' + ",".join(r[0] for r in rows).encode() + b"]}"
        return 200, body, headers

    def h_query(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        """POST /query/ with a HogQLQuery, served by fake_posthog.hogql (imported lazily), in PostHog's order:
        the result cache (unless refresh forces), the read budget, the team's concurrency slot, then the
        query itself, its execution limit and its cost (docs/fake-posthog-server-rules.md)."""
        assert req.team_id is not None
        team_id = req.team_id
        body = req.json()
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, dict):
            raise invalid("This field is required.", attr="query", code="required")
        if query.get("kind") != "HogQLQuery":
            raise invalid(f"Query kind {query.get('kind')!r} is not supported here; use HogQLQuery.",
                          attr="query__kind")
        text = query.get("query")
        if not isinstance(text, str) or not text.strip():
            raise invalid("This field is required.", attr="query__query", code="required")
        refresh = _refresh_mode(body.get("refresh"))
        tz = self.world.timezone(team_id)
        who = self.key_name(req.key)
        key = cache_key(team_id, tz, text)
        if self.query_cache is not None and refresh not in FORCING_MODES:
            cached = self.query_cache.get(key)
            if cached is not None:
                with self._lock:
                    self.cache_hits_by_key[who] += 1
                return 200, orjson.dumps(cached, default=str), {}
        scope = str(team_id) if self.read_budget_scope == "team" else who
        if self.read_budget is not None:
            wait = self.read_budget.wait(scope)
            if wait is not None:
                with self._lock:
                    self.throttled_count += 1
                    self.budget_throttled_count += 1
                raise ApiError(429, "throttled_error", "throttled", throttled_detail(wait),
                               headers={"Retry-After": self.retry_after(wait)})
        from . import hogql

        def run() -> tuple[int, bytes, dict[str, str]]:
            self.judge(text)
            try:
                result = hogql.execute_hogql(self.world.cursor(), team_id, tz, text, self.persons_on_events_mode)
            except hogql.HogQLError as exc:
                if self.engine_errors_as_500 and _raised_by_engine(exc):
                    raise ApiError(500, "server_error", "error", SERVER_ERROR_DETAIL) from exc
                raise ApiError(400, "validation_error", "query_error", str(exc)) from exc
            cost = self.cost.estimate(team_id, tz, text)
            if self.execution_limit_rows is not None and cost.rows_scanned > self.execution_limit_rows:
                with self._lock:
                    self.timeout_count += 1
                detail = QUERY_TIMEOUT_DETAIL if self.execution_limit_status == 504 else QUERY_TOO_SLOW_DETAIL
                raise ApiError(self.execution_limit_status, "server_error", "error", detail)
            with self._lock:
                self.last_query_cost = cost
                self.query_count_by_key[who] += 1
                self._first_query_at = self._first_query_at or time.monotonic()
                self._last_query_at = time.monotonic()
                self.read_bytes_by_key[who] += cost.read_bytes
                self.rows_scanned_by_key[who] += cost.rows_scanned
                self.read_bytes_by_team[team_id] += cost.read_bytes
            headers = {"X-PostHog-Query-Bytes-Read": str(cost.read_bytes)}
            if self.read_budget is not None:
                remaining = self.read_budget.debit(scope, cost.read_bytes)
                self.budget_after_last_query[scope] = remaining
                headers["X-PostHog-Query-Budget-Remaining-Bytes"] = str(math.floor(remaining))
            if self.query_cache is not None:
                result = self.query_cache.put(key, result)
            else:
                result = {**result, "is_cached": False}
            return 200, orjson.dumps(result, default=str), headers

        if self.limiter is None:
            return run()
        with self.limiter.query_slot(team_id) as acquired:
            if not acquired:
                with self._lock:
                    self.throttled_count += 1
                raise ApiError(429, "throttled_error", "throttled",
                               concurrency_detail(team_id, self.limiter.config.query_concurrency,
                                                  str(uuidlib.uuid4())))
            return run()

    def judge(self, text: str) -> None:
        """PostHog's own rules first: what real PostHog refuses gets its 400 and message (rules.py)."""
        if self.queries_seen is not None:
            with self._lock:
                self.queries_seen.append(text)
        try:
            rules.judge(text, self.persons_on_events_mode, self.missing_tables)
        except rules.PostHogRefusal as exc:
            raise ApiError(400, "validation_error", "query_error", str(exc)) from exc

    def event_column_bytes(self) -> dict[str, float]:
        """Each stored events column's average bytes per row over every project (benchmarks compare bytes read
        with the bytes of the columns a client loads)."""
        counts = dict(self.world.cursor().execute("SELECT team_id, count(*) FROM events GROUP BY team_id").fetchall())
        total = sum(counts.values())
        out: dict[str, float] = {}
        for team, n in counts.items():
            for column, width in self.cost.column_bytes(team).items():
                out[column] = out.get(column, 0.0) + n * width / total
        return out

    def event_row_bytes(self, columns: Iterable[str] | None = None) -> float:
        """The average bytes of an event row over `columns` (stored names; None: every column)."""
        widths = self.event_column_bytes()
        return sum(widths.get(c, 0.0) for c in columns) if columns is not None else sum(widths.values())

    def query_stats(self) -> dict[str, Any]:
        """What the queries cost so far (the `server` part of GET /_fake/stats adds these)."""
        with self._lock:
            stats: dict[str, Any] = {
                "read_bytes_by_key": dict(self.read_bytes_by_key),
                "queries_by_key": dict(self.query_count_by_key),
                "rows_scanned_by_key": dict(self.rows_scanned_by_key),
                "cache_hits_by_key": dict(self.cache_hits_by_key),
                "read_bytes_by_project": {str(k): v for k, v in self.read_bytes_by_team.items()},
                "read_bytes": sum(self.read_bytes_by_key.values()),
                "queries": sum(self.query_count_by_key.values()),
                "timeouts": self.timeout_count,
                "budget_throttled": self.budget_throttled_count,
                "query_span_seconds": (self._last_query_at - self._first_query_at) if self._first_query_at else 0.0,
                "read_budget_after_last_query": {k: math.floor(v) for k, v in self.budget_after_last_query.items()},
            }
        stats["event_column_bytes"] = self.event_column_bytes()  # outside the lock: it queries the world
        if self.read_budget is not None:
            with self.read_budget._lock:
                scopes = list(self.read_budget._buckets)
            stats["read_budget_remaining"] = {scope: math.floor(self.read_budget.balance(scope)) for scope in scopes}
        return stats

    # -------------------------------------------------------------- admin (tests and benchmarks only)
    def admin(self, req: Request) -> tuple[int, bytes, dict[str, str]]:
        if req.path.rstrip("/") == "/_fake/stats" and req.method == "GET":
            with self._lock:
                server = {"requests": len(self.request_log), "throttled": self.throttled_count,
                          "faults": dict(self.fault_counts)}
            server.update(self.query_stats())
            return ok({"tables": self.world.stats(), "server": server})
        if req.path.rstrip("/") == "/_fake/mutate" and req.method == "POST":
            body = req.json()
            return ok({"result": apply_mutation(self.world, body.get("op", ""), body.get("args") or {})})
        raise not_found("Endpoint not found.")


def _refresh_mode(value: Any) -> str:
    """QueryRequest.refresh: a RefreshType name, or a boolean (true = force_blocking); default blocking."""
    if value is None or value is False:
        return "blocking"
    if value is True:
        return "force_blocking"
    if isinstance(value, str) and value in REFRESH_MODES:
        return value
    names = ", ".join(repr(m) for m in REFRESH_MODES[:-1]) + f" or {REFRESH_MODES[-1]!r}"
    raise invalid(f"Input should be {names}", attr="refresh")


def _raised_by_engine(exc: BaseException) -> bool:
    """True when a HogQLError wraps an error of the database engine (DuckDB here, ClickHouse in PostHog),
    i.e. the HogQL layer accepted the query and execution failed."""
    import duckdb

    return isinstance(exc.__cause__, duckdb.Error)


def apply_mutation(world: World, op: str, args: dict[str, Any]) -> Any:
    """Run one World mutation from JSON arguments (so a server in another process can be changed)."""
    if op in MUTATIONS:
        return MUTATIONS[op](world, dict(args))
    args = dict(args)
    if isinstance(args.get("created_at"), str):
        args["created_at"] = parse_instant(args["created_at"], "created_at")
    if op == "add_events":
        return world.add_events(args.pop("team_id"), args.pop("n"), **args)
    if op == "add_persons":
        return world.add_persons(args.pop("team_id"), args.pop("n"), **args)
    if op == "update_person_properties":
        return world.update_person_properties(args["team_id"], args["person_id"], args["props"])
    if op == "delete_person":
        return world.delete_person(args["team_id"], args["person_id"])
    if op == "edit_object":
        return world.edit_object(args["kind"], args["team_id"], args["id"], **args.get("changes", {}))
    if op == "delete_object":
        return world.delete_object(args["kind"], args["team_id"], args["id"])
    if op == "add_object":
        return world.add_object(args["kind"], args["team_id"], **args.get("fields", {}))
    raise invalid(f"Unknown op {op!r}", attr="op")


def ok(payload: Any) -> tuple[int, bytes, dict[str, str]]:
    return 200, orjson.dumps(payload, default=str), {}


def limit_offset_envelope(req: Request, page: list[Any], count: int, limit: int, offset: int) -> dict[str, Any]:
    """DRF LimitOffsetPagination: count, absolute next/previous links (previous drops offset at 0)."""
    nxt = req.with_params(limit=limit, offset=offset + limit) if offset + limit < count else None
    previous = None
    if offset > 0:
        previous = req.with_params(limit=limit, offset=offset - limit if offset - limit > 0 else None)
    return {"count": count, "next": nxt, "previous": previous, "results": page}


# ---------------------------------------------------------------------------------------------- HTTP plumbing
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small response must not wait for a delayed ACK
    fake: FakePostHog
    timeout = 120

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.handle_any("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.handle_any("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.handle_any("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self.handle_any("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self.handle_any("DELETE")

    def handle_any(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        param_list = parse_qsl(split.query, keep_blank_values=True)
        path = split.path
        extra: dict[str, str] = {}
        host = self.headers.get("Host") or f"{fake.host}:{fake.port}"
        if path.startswith("/api/environments/"):
            path = "/api/projects/" + path[len("/api/environments/"):]
            extra = {"Deprecation": "true", "Sunset": SUNSET,
                     "Link": f'<http://{host}{path}>; rel="successor-version"'}
        req = Request(method, self.path, path, dict(param_list), param_list, host, body)
        if path.startswith("/_fake/"):
            self.respond(method, *self.run(lambda: fake.admin(req)))
            return
        fault, rng = (None, None)
        if fake.faults is not None:
            fault, rng = fake.faults.pick(fake.next_request_number())
            if fault:
                with fake._lock:
                    fake.fault_counts[fault] += 1
        if fault == "drop":
            fake.log(method, self.path, 0)
            self.close_connection = True
            return
        if fault == "slow":
            time.sleep(fake.faults.slow_seconds if fake.faults else 0)
        if fault == "5xx" and rng is not None:
            status = rng.choice((500, 502, 503))
            if status == 502:
                self.respond(method, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                             {"Content-Type": "text/html"})
            elif status == 503:
                self.respond(method, 503, ApiError(503, "server_error", "database_unavailable",
                                                   "Database is unavailable, please try again.").body(),
                             {"Retry-After": "1"})
            else:
                self.respond(method, 500, ApiError(500, "server_error", "error", "A server error occurred.").body(), {})
            return
        if fault == "429":
            self.respond(method, 429, ApiError(429, "throttled_error", "throttled", throttled_detail(1)).body(), {})
            return
        status, payload, headers = self.run(lambda: self.serve(req, method))
        self.respond(method, status, payload, {**extra, **headers}, fault if status == 200 else None)

    def serve(self, req: Request, method: str) -> tuple[int, bytes, dict[str, str]]:
        fake = self.fake
        route = fake.route(method, req.path)
        if method not in route.methods:
            raise ApiError(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')
        req.key = fake.authenticate(req, self.headers)
        req.org_id = route.org_id
        fake.authorize(req, route, req.key)
        fake.throttle(req.key, route, req)
        return route.handler(req)

    def run(self, fn: Callable[[], tuple[int, bytes, dict[str, str]]]) -> tuple[int, bytes, dict[str, str]]:
        try:
            return fn()
        except ApiError as exc:
            return exc.status, exc.body(), exc.headers
        except Exception as exc:  # a bug in the fake must still answer like PostHog's 500
            import traceback

            traceback.print_exc()
            return 500, ApiError(500, "server_error", "error", f"A server error occurred. ({exc!r})").body(), {}

    def respond(self, method: str, status: int, body: bytes, headers: dict[str, str],
                fault: str | None = None) -> None:
        self.fake.log(method, self.path, status)
        if fault == "truncated_json":
            body = body[: len(body) // 2]
        self.send_response(status)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "drop_mid_body":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
