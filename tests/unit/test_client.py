"""The HTTP client: `classify` for every status PostHog sends (posthog-api.md §4-5), `parse_retry_after` for
both date forms, and the loop against a scripted HTTP server on 127.0.0.1 (sleeps recorded, not slept)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson
import pytest
import requests

from posthog_source.client import (
    Done,
    PostHogClient,
    Raise,
    Retry,
    RetryKind,
    classify,
    parse_retry_after,
    parse_retry_wait,
)
from posthog_source.config import resolve_host
from posthog_source.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    PostHogSourceError,
    QueryTooLargeError,
    QuotaExceededError,
    RateLimitWaitTooLong,
    TransientHTTPError,
)
from posthog_source.ratelimit import RateLimiter
from tests.unit.stub_http import Answer, json_answer, posthog_error, stub_server

NOW = datetime(2026, 10, 21, 7, 0, 0, tzinfo=UTC)
THROTTLED = "Request was throttled. Expected available in {} seconds."
CONCURRENCY = "Exceeded maximum concurrency limit: 3 for key: api_per_team:1 and task: 5e0c"
QUERY = "/api/projects/1/query/"


def response(status: int, body: bytes | dict[str, Any] = b"{}", **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = orjson.dumps(body) if isinstance(body, dict) else body
    answer.headers.update(headers)
    return answer


def envelope(type_: str, code: str, detail: str) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": None}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(url: str, **kwargs: Any) -> tuple[PostHogClient, Sleeps]:
    sleeps = Sleeps()
    kwargs.setdefault("timeout", (2.0, 2.0))
    return PostHogClient(url, "phx_" + "k" * 30, sleep=sleeps, **kwargs), sleeps


# ------------------------------------------------------------------------------------------- classify
def test_2xx_is_done_with_the_parsed_body() -> None:
    assert classify(response(200, {"results": [1]}), "x") == Done({"results": [1]})
    assert classify(response(200, b"abc"), "x", parse=lambda b: b.upper()) == Done(b"ABC")


def test_a_cut_body_is_retried_and_a_web_page_is_a_wrong_host() -> None:
    cut = classify(response(200, b'{"results": [1, 2'), "x")
    assert isinstance(cut, Retry) and cut.kind is RetryKind.TRANSIENT and cut.after is None
    page = classify(response(200, b"<!DOCTYPE html><html>PostHog</html>"), "x")
    assert isinstance(page, Raise) and isinstance(page.error, ConfigurationError)
    assert "web page" in str(page.error)


@pytest.mark.parametrize(("status", "body", "error", "text"), [
    (400, envelope("validation_error", "invalid_input", "Offset is deprecated. Max supported offset value is 50000"),
     BadRequestError, "PostHog refused cohorts: Offset is deprecated"),
    (401, envelope("authentication_error", "authentication_failed",
                   "Personal API key found in request Authorization header is invalid."),
     AuthenticationError, "PostHog rejected the API key (Personal API key found"),
    (401, envelope("authentication_error", "not_authenticated", "Authentication credentials were not provided."),
     AuthenticationError, "PostHog received no API key (Authentication credentials were not provided.)"),
    (402, envelope("payment_required", "api_queries_quota_exceeded", "Query quota exceeded."),
     QuotaExceededError, "for billing reasons (Query quota exceeded.)"),
    (403, envelope("authentication_error", "permission_denied",
                   "API key does not have access to the requested project: ID 2."),
     PermissionDeniedError, "give the key access to that project, or leave it out of project_ids"),
    (403, envelope("authentication_error", "permission_denied", "This action does not support Personal API Key "
                   "access"), PermissionDeniedError, "PostHog does not serve this to personal API keys"),
    (404, envelope("invalid_request", "not_found", "Not found."), NotFoundError,
     "PostHog found no cohorts (Not found.); check host and project_ids"),
    (409, envelope("conflict", "conflict", "Conflict."), PostHogSourceError, "HTTP 409 on cohorts: Conflict."),
])
def test_client_errors_raise_with_posthogs_detail(status: int, body: dict[str, Any], error: type, text: str) -> None:
    outcome = classify(response(status, body), "cohorts")
    assert isinstance(outcome, Raise) and type(outcome.error) is error
    assert text in str(outcome.error) and "\n" not in str(outcome.error)


def test_missing_scope_names_the_scope_and_leaves_the_advice_to_the_reporter() -> None:
    body = envelope("authentication_error", "permission_denied", "API key missing required scope 'feature_flag:read'")
    outcome = classify(response(403, body), "feature_flags of project 1")
    assert isinstance(outcome, Raise) and isinstance(outcome.error, PermissionDeniedError)
    assert outcome.error.scope == "feature_flag:read"
    assert str(outcome.error).count("feature_flag:read") == 1  # said once; skip or CLI adds "add the scope"


def test_429_waits_as_long_as_posthog_says() -> None:
    body = envelope("throttled_error", "throttled", THROTTLED.format(2202))
    assert classify(response(429, body), "x") == Retry(2202.0, "throttled", RetryKind.RATE_LIMIT, 429)
    header = classify(response(429, body, **{"Retry-After": "30"}), "x")
    assert isinstance(header, Retry) and header.after == 30.0 and header.kind is RetryKind.RATE_LIMIT
    bare = classify(response(429, envelope("throttled_error", "throttled", "Request was throttled.")), "x")
    assert isinstance(bare, Retry) and bare.after is None and bare.kind is RetryKind.RATE_LIMIT


def test_the_concurrency_429_backs_off_as_a_rate_limit() -> None:
    outcome = classify(response(429, envelope("throttled_error", "throttled", CONCURRENCY)), "events", hogql=True)
    assert outcome == Retry(None, "too many queries at once", RetryKind.RATE_LIMIT, 429)


@pytest.mark.parametrize(("status", "body", "headers", "after"), [
    (500, envelope("server_error", "error", "A server error occurred."), {}, None),
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"}, None),
    (503, envelope("server_error", "database_unavailable", "Database is unavailable, please try again."),
     {"Retry-After": "1"}, 1.0),
    (520, b"", {}, None),
])
def test_server_errors_are_transient(status: int, body: Any, headers: dict[str, str], after: float | None) -> None:
    outcome = classify(response(status, body, **headers), "x", hogql=True)
    assert outcome == Retry(after, f"HTTP {status}", RetryKind.TRANSIENT, status)


@pytest.mark.parametrize("status", [504, 512, 513])
def test_hogql_timeouts_and_memory_limits_mean_the_query_is_too_big(status: int) -> None:
    body = envelope("server_error", "error", "Estimated query execution time is too long")
    outcome = classify(response(status, body), "events of project 1", hogql=True)
    assert isinstance(outcome, Retry) and outcome.kind is RetryKind.TOO_LARGE and outcome.status == status
    rest = classify(response(status, body), "persons of project 1", hogql=False)
    assert isinstance(rest, Retry) and rest.kind is RetryKind.TRANSIENT


def test_transport_errors() -> None:
    refused = classify(requests.ConnectionError("[Errno 111] Connection refused"), "x")
    assert refused == Retry(None, "connection refused", RetryKind.CONNECTION)
    assert classify(requests.exceptions.ReadTimeout(), "x") == Retry(None, "no answer within the read timeout")
    dropped = classify(requests.exceptions.ChunkedEncodingError(), "x")
    assert isinstance(dropped, Retry) and dropped.kind is RetryKind.TRANSIENT
    header = classify(requests.exceptions.InvalidHeader("Invalid return character in header: 'Bearer phx_1\\n'"), "x")
    assert isinstance(header, Raise) and isinstance(header.error, ConfigurationError)
    assert "phx_" not in str(header.error)


# ------------------------------------------------------------------------------------------- Retry-After
def test_retry_after_as_seconds_http_date_or_iso_date() -> None:
    later = NOW + timedelta(seconds=1680)
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", NOW) == 1680.0
    assert parse_retry_after(format_datetime(later, usegmt=True), NOW) == 1680.0
    assert parse_retry_after(later.isoformat(), NOW) == 1680.0
    assert parse_retry_after("2026-10-21T07:28:00Z", NOW) == 1680.0
    assert parse_retry_after("2026-10-21T07:28:00", NOW) == 1680.0  # no offset: UTC
    assert parse_retry_after("Wed, 21 Oct 2026 06:00:00 GMT", NOW) == 0.0  # in the past: go now


@pytest.mark.parametrize("value", [None, "", "soon", "inf", "nan", "Wed, 99 Oct 2026 07:28:00 GMT"])
def test_unreadable_retry_after_falls_back_to_the_body(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None
    headers = {"Retry-After": value} if value is not None else {}
    assert parse_retry_wait(headers, THROTTLED.format(7).encode(), NOW) == 7.0


def test_a_real_http_date_is_read_relative_to_now() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    wait = parse_retry_wait({"Retry-After": format_datetime(when, usegmt=True)}, b"")
    assert wait is not None and 100 < wait <= 120


# ------------------------------------------------------------------------------------------- the loop
def throttled(seconds: int | None = 1, **headers: str) -> Answer:
    detail = THROTTLED.format(seconds) if seconds is not None else "Request was throttled."
    return posthog_error(429, "throttled_error", "throttled", detail, **headers)


def test_a_server_that_always_answers_429_stops_with_rate_limit_wait_too_long() -> None:
    """Before the redesign a 429 on the last attempt left the loop: AssertionError("unreachable")."""
    with stub_server(throttled(1)) as server:
        api, sleeps = client(server.url, max_rate_limit_wait=10, max_attempts=3)
        with pytest.raises(RateLimitWaitTooLong, match=r"for 11 s over 11 answers, more than max_rate_limit_wait "
                                                         r"\(10 s\); stopped cleanly, run again later to continue"):
            api.get("/api/projects/1/cohorts/", what="cohorts of project 1")
    assert sleeps == [1.0] * 10 and len(server.requests) == 11  # far more than max_attempts: 429s use none


def test_429s_do_not_use_up_the_attempts_for_transient_faults() -> None:
    script = [throttled(2)] * 5 + [posthog_error(500, "server_error", "error", "A server error occurred.")] * 2
    with stub_server(*script, json_answer(200, {"ok": True})) as server:
        api, sleeps = client(server.url, max_attempts=3, backoff_base=0.5)
        assert api.get("/api/x/") == {"ok": True}
    assert sleeps[:5] == [2.0] * 5 and len(sleeps) == 7
    assert api.stats.throttled == 5 and api.stats.retries == 2 and api.stats.waited_seconds == 10.0


def test_one_wait_longer_than_the_maximum_stops_at_once() -> None:
    with stub_server(throttled(2200)) as server:
        api, sleeps = client(server.url, max_rate_limit_wait=600)
        with pytest.raises(RateLimitWaitTooLong, match=r"rate-limited events of project 1 for 2200 s, more than "
                                                         r"max_rate_limit_wait \(600 s\)"):
            api.post(QUERY, {}, what="events of project 1")
    assert sleeps == [] and len(server.requests) == 1


def test_retry_after_header_wins_and_a_date_is_understood() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    with stub_server(throttled(500, **{"Retry-After": soon}), json_answer(200, [])) as server:
        api, sleeps = client(server.url)
        assert api.get("/api/x/") == []
    assert len(sleeps) == 1 and 80 < sleeps[0] <= 90


def test_concurrency_429_and_a_429_without_a_wait_back_off() -> None:
    script = [posthog_error(429, "throttled_error", "throttled", CONCURRENCY), throttled(None)]
    with stub_server(*script, json_answer(200, {"results": []})) as server:
        api, sleeps = client(server.url, max_attempts=1, backoff_base=4.0)
        assert api.post(QUERY, {}) == {"results": []}
    assert len(sleeps) == 2 and 2.0 <= sleeps[0] <= 4.0 and 4.0 <= sleeps[1] <= 8.0


def test_a_429_pauses_the_class_for_other_threads_until_the_wait_is_over() -> None:
    limiter = RateLimiter({"query": [(100, 60.0)]}, {"query": 3})
    seen: list[float | None] = []
    with stub_server(throttled(50), json_answer(200, {})) as server:
        api = PostHogClient(server.url, "phx_" + "k" * 30, limiter=limiter,
                            sleep=lambda s: seen.append(limiter.delay("query")))
        api.post(QUERY, {})
    assert seen and seen[0] is not None and 49 < seen[0] <= 50  # others held back during the wait
    assert limiter.delay("query") == 0.0  # and free again after it


def test_transient_faults_stop_after_max_attempts() -> None:
    with stub_server(posthog_error(500, "server_error", "error", "A server error occurred.")) as server:
        api, sleeps = client(server.url, max_attempts=4)
        with pytest.raises(TransientHTTPError, match=r"PostHog kept failing on cohorts \(HTTP 500\) after 4 "
                                                     r"attempts; nothing was lost: run again later"):
            api.get("/api/projects/1/cohorts/", what="cohorts")
    assert len(server.requests) == 4 and len(sleeps) == 3


def test_503_waits_the_retry_after_it_sends() -> None:
    busy = posthog_error(503, "server_error", "database_unavailable", "Database is unavailable.",
                         **{"Retry-After": "1"})
    with stub_server(busy, json_answer(200, {"id": 1})) as server:
        api, sleeps = client(server.url)
        assert api.get("/api/x/") == {"id": 1}
    assert sleeps == [1.0]


@pytest.mark.parametrize("status", [504, 512, 513])
def test_a_query_too_big_is_tried_twice_then_raises_for_the_caller_to_split(status: int) -> None:
    with stub_server(posthog_error(status, "server_error", "error", "Query exceeded memory limit")) as server:
        api, _ = client(server.url)
        with pytest.raises(QueryTooLargeError, match="could not finish events of project 1") as raised:
            api.post(QUERY, {}, what="events of project 1")
    assert raised.value.status == status and len(server.requests) == 2


def test_a_rest_504_is_an_ordinary_transient_fault() -> None:
    with stub_server(Answer(504, b"<html>Gateway Time-out</html>"), json_answer(200, {"results": []})) as server:
        api, _ = client(server.url)
        assert api.get("/api/projects/1/persons/") == {"results": []}


@pytest.mark.parametrize("fault", [
    Answer(200, b'{"results": [[1, "a"], [2, "b"]], "hasMore": false}', cut=12),
    Answer(drop=True),
    Answer(200, b'{"results": []}', delay=1.0),  # outlasts the read timeout
])
def test_cut_bodies_dropped_connections_and_timeouts_are_retried(fault: Answer) -> None:
    with stub_server(fault, json_answer(200, {"results": [[1]]})) as server:
        api, sleeps = client(server.url, timeout=(2.0, 0.3))
        assert api.post(QUERY, {}) == {"results": [[1]]}
    assert len(sleeps) == 1 and api.stats.retries == 1


def test_a_host_that_never_answers_fails_fast_as_configuration() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api, sleeps = client(f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigurationError, match=rf"cannot reach PostHog at http://127\.0\.0\.1:{port} "
                                                 r"\(connection refused\)"):
        api.get("/api/personal_api_keys/@current/")
    assert len(sleeps) == 1


def test_4xx_is_not_retried() -> None:
    with stub_server(posthog_error(401, "authentication_error", "authentication_failed", "invalid")) as server:
        api, sleeps = client(server.url)
        with pytest.raises(AuthenticationError):
            api.get("/api/x/")
    assert len(server.requests) == 1 and sleeps == []


# ------------------------------------------------------------------------------------------- up-front checks
def test_a_project_token_is_refused_before_any_request() -> None:
    with stub_server(json_answer(200, {})) as server:
        with pytest.raises(AuthenticationError, match=r"project token \(phc_\.\.\.\).*create a personal API key "
                                                      r"\(phx_\.\.\.\) in PostHog under Settings > Personal API keys"):
            PostHogClient(server.url, "phc_" + "p" * 40)
        assert server.requests == []


@pytest.mark.parametrize(("host", "message"), [
    ("https://eu.posthog.com/api/", r"ends in /api; set host to the base URL without /api, such as "
                                    r"https://eu\.posthog\.com$"),
    ("https://ph.example.com/proxy/api", r"such as https://ph\.example\.com/proxy$"),
    ("https://x y", r"is not a valid URL"),
    ("https://ph.example.com:port", r"is not a valid URL"),
    ("ftp://ph.example.com", r"is not a valid URL"),
])
def test_bad_base_urls_are_refused_up_front(host: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_host(host)


def test_good_base_urls() -> None:
    assert resolve_host("https://us.posthog.com/") == "https://us.posthog.com"
    assert resolve_host("https://ph.example.com/posthog/") == "https://ph.example.com/posthog"
    assert resolve_host("http://[::1]:8000") == "http://[::1]:8000"
