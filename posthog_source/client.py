"""The one HTTP client every resource shares: auth, timeouts, retries, 429 waits, PostHog's errors.

A request is three small steps (docs/posthog-api.md, "Limits and errors"):
1. `classify(answer)`: a response or a transport error becomes `Done(value)`, `Retry(after, reason, kind)` or
   `Raise(error)`. Pure: no sleeping, no counters, so every status PostHog sends has a unit test.
2. the wait: each kind of retry has its own budget. Transient faults (5xx, timeouts, dropped connections, cut
   bodies) share `max_attempts`; 429s never use those attempts, they wait as long as PostHog says, up to
   `max_rate_limit_wait` in total per request; a HogQL query that is too big (504/512/513) is tried once more,
   then `QueryTooLargeError` lets the caller split it.
3. the loop in `PostHogClient.request`, which sends, classifies and waits until Done or Raise.
PostHog's error envelope is `{"type", "code", "detail", "attr"}`; each status we act on becomes its own
exception carrying PostHog's `detail`, so the CLI can print one clear line.
"""

from __future__ import annotations

import contextlib
import email.utils
import enum
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pendulum
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import LocationParseError

from posthog_source import settings
from posthog_source.config import check_api_key, resolve_host
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
from posthog_source.ratelimit import BYTES_READ_HEADER, REMAINING_HEADER, RateLimiter, ReadBudgetPacer

logger = logging.getLogger("posthog_source")

_EXPECTED_AVAILABLE = re.compile(r"Expected available in (\d+(?:\.\d+)?) seconds?")
_MISSING_SCOPE = re.compile(r"missing required scope '([^']+)'")
_CONCURRENCY = "concurrency limit"
# ClickHouse gave up on a HogQL query: timeout, estimated time too long, memory limit
# (docs/posthog-api.md, "Limits and errors").
QUERY_TOO_LARGE_STATUSES = frozenset({504, 512, 513})
# A 429 that names no wait (the concurrency limit) or names 0 s still waits this long, so it cannot spin.
MIN_RATE_LIMIT_WAIT_SECONDS = 1.0


# -- step 1: classify --------------------------------------------------------------------------------
class RetryKind(enum.Enum):
    """Which budget a retry draws on."""

    TRANSIENT = "transient"  # 5xx, timeouts, dropped connections, cut bodies: max_attempts
    CONNECTION = "connection"  # no connection at all: like TRANSIENT, but a host never reached fails fast
    RATE_LIMIT = "rate_limit"  # 429: max_rate_limit_wait seconds in total, attempts untouched
    TOO_LARGE = "too_large"  # HogQL 504/512/513: one more try, then QueryTooLargeError


@dataclass(frozen=True)
class Done:
    """A 2xx whose body parsed: `value` is what `parse` returned."""

    value: Any


@dataclass(frozen=True)
class Retry:
    """Try again after `after` seconds (None: the client's exponential backoff). `reason` is for logs and
    for the error raised once the kind's budget is spent; `status` is the HTTP status, if any."""

    after: float | None
    reason: str
    kind: RetryKind = RetryKind.TRANSIENT
    status: int | None = None


@dataclass(frozen=True)
class Raise:
    """Stop: retrying cannot help. `error` carries one line for the user."""

    error: PostHogSourceError


Outcome = Done | Retry | Raise


def classify(
    answer: requests.Response | BaseException,
    what: str,
    parse: Callable[[bytes], Any] = orjson.loads,
    hogql: bool = False,
    now: datetime | None = None,
) -> Outcome:
    """What to do with one answer to a request for `what` ("feature_flags of project 2"). `answer` is the
    response or the transport error `requests` raised; `hogql` marks the query endpoint, where 504/512/513
    mean the query is too big rather than a passing fault."""
    if isinstance(answer, BaseException):
        return _classify_exception(answer, what)
    status = answer.status_code
    content = answer.content or b""
    if 200 <= status < 300:
        try:
            return Done(parse(content))
        except orjson.JSONDecodeError:
            if content.lstrip()[:1] == b"<":
                return Raise(ConfigurationError(
                    f"the host answered {what} with a web page, not PostHog's API; set host to PostHog's base "
                    "URL ('us', 'eu' or your instance, such as https://posthog.example.com)"
                ))
            return Retry(None, "response body cut short", status=status)
    if status == 429:
        detail = error_detail(content)
        if _CONCURRENCY in detail.lower():
            return Retry(None, "too many queries at once", RetryKind.RATE_LIMIT, status)
        return Retry(parse_retry_wait(answer.headers, content, now), "throttled", RetryKind.RATE_LIMIT, status)
    if status >= 500:
        after = parse_retry_wait(answer.headers, b"", now)  # 503 database_unavailable sends Retry-After: 1
        if hogql and status in QUERY_TOO_LARGE_STATUSES:
            return Retry(after, f"HTTP {status}: {_short_detail(content)}", RetryKind.TOO_LARGE, status)
        return Retry(after, f"HTTP {status}", status=status)
    return Raise(error_for(status, content, what))


def _classify_exception(error: BaseException, what: str) -> Outcome:
    if isinstance(error, requests.exceptions.InvalidHeader):
        return Raise(ConfigurationError(
            "the API key contains characters that cannot be sent (a space or line break?); paste the key again"
        ))
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema | LocationParseError):
        return Raise(ConfigurationError(
            "host is not a valid URL; use 'us', 'eu' or a base URL such as https://posthog.example.com"
        ))
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return Retry(None, "timed out", RetryKind.CONNECTION)
    if isinstance(error, requests.exceptions.Timeout):
        return Retry(None, "no answer within the read timeout")
    if isinstance(error, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return Retry(None, "connection dropped mid-answer")
    if isinstance(error, requests.ConnectionError):
        return Retry(None, connection_reason(error), RetryKind.CONNECTION)
    return Raise(PostHogSourceError(f"the request for {what} failed ({type(error).__name__}); rerun with --debug"))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` value: delay-seconds, an HTTP date (RFC 9110, `Wed, 21 Oct 2026 07:28:00
    GMT`) or an ISO 8601 instant; None when it is none of these. A date in the past means 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when: datetime | None = None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 9110 dates are GMT; an ISO instant without offset is read as UTC
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta) if math.isfinite(delta) else None


def parse_retry_wait(headers: Mapping[str, str], body: bytes, now: datetime | None = None) -> float | None:
    """Seconds PostHog asks us to wait: `Retry-After` if it parses, else the body's "Expected available in N
    seconds", else None (the caller backs off exponentially). PostHog sends the header only sometimes
    (docs/posthog-api.md, "Limits and errors")."""
    wait = parse_retry_after(headers.get("Retry-After"), now)
    if wait is not None:
        return wait
    match = _EXPECTED_AVAILABLE.search(body.decode("utf-8", "replace"))
    return float(match.group(1)) if match else None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    """A header's whole number, or None when it is absent or not a finite number."""
    try:
        value = float(headers[name])
    except (KeyError, TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None


_QUERY_TEAM = re.compile(r"/api/(?:projects|environments)/([^/]+)/query/?$")


def _query_team(url: str) -> str | None:
    """The project (team) a HogQL query's URL names: PostHog's read budget is per team."""
    match = _QUERY_TEAM.search(urlsplit(url).path)
    return match.group(1) if match else None


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def error_detail(body: bytes) -> str:
    """PostHog's `detail` from an error body, or a short excerpt of a body that is not the envelope."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "no details given"
    if isinstance(parsed, dict) and parsed.get("detail"):
        return str(parsed["detail"])
    return str(parsed)[:200]


def _short_detail(body: bytes) -> str:
    """The detail of a 5xx for a log line: PostHog's `detail`, or "no details" for an HTML error page."""
    if body.lstrip()[:1] == b"<" or not body.strip():
        return "no details"
    return " ".join(error_detail(body).split())[:160]


def error_for(status: int, content: bytes, what: str) -> PostHogSourceError:
    """The exception for a 4xx PostHog will not change its mind about, with what to do in one line."""
    detail = error_detail(content)
    code = str(_envelope(content).get("code") or "")
    if status == 401:
        if code == "not_authenticated":
            return AuthenticationError(
                f"PostHog received no API key ({detail}); if a proxy sits between, let it pass the "
                "Authorization header"
            )
        return AuthenticationError(
            f"PostHog rejected the API key ({detail}); set a valid personal API key (phx_...) in "
            "SOURCES__POSTHOG__API_KEY or .dlt/secrets.toml"
        )
    if status == 402:
        return QuotaExceededError(
            f"PostHog refused {what} for billing reasons ({detail}); check the organisation's plan and query "
            "quota in PostHog's billing settings, then run again"
        )
    if status == 403:
        scope_match = _MISSING_SCOPE.search(detail)
        if scope_match:  # the advice (add the scope) is added once, by whoever reports it (skip or CLI)
            return PermissionDeniedError(f"PostHog refused {what}: {detail}", scope=scope_match.group(1))
        if "requested project" in detail:
            hint = "give the key access to that project, or leave it out of project_ids"
        elif "does not support Personal API Key" in detail:
            hint = "PostHog does not serve this to personal API keys"
        else:
            hint = "check the key's scopes and projects"
        return PermissionDeniedError(f"PostHog refused {what}: {detail} ({hint})")
    if status == 404:
        return NotFoundError(f"PostHog found no {what} ({detail}); check host and project_ids")
    if status == 400:
        return BadRequestError(f"PostHog refused {what}: {detail}")
    return PostHogSourceError(f"PostHog answered HTTP {status} on {what}: {detail}")


_READ_CHUNK = 1 << 20


def read_body(response: requests.Response) -> None:
    """Read the whole body once, into one buffer of its announced length.

    `requests` keeps a list of the chunks it read and then joins them, so a 32 MB page briefly costs 64 MB;
    reading into one `bytearray` of Content-Length costs the page once (orjson parses a bytearray as is).
    Bodies without a length, or compressed ones, are read the usual way. A body that ends early (a dropped
    connection) raises `ChunkedEncodingError`, the transport error `classify` retries."""
    length = response.headers.get("Content-Length", "")
    if not length.isdigit() or response.headers.get("Content-Encoding") or response.raw is None:
        response.content  # noqa: B018 - requests' own read
        return
    body = bytearray(int(length))
    view = memoryview(body)
    got = 0
    try:
        while got < len(body):
            n = response.raw.readinto(view[got:got + _READ_CHUNK])
            if not n:
                break
            got += n
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        response.close()
        raise requests.exceptions.ChunkedEncodingError(f"body cut short: {type(exc).__name__}") from exc
    finally:
        view.release()
    if got < len(body):
        response.close()
        raise requests.exceptions.ChunkedEncodingError(f"body cut short: {got} of {len(body)} bytes")
    response._content = body  # type: ignore[assignment] - bytes-like; what `content` returns from now on
    response._content_consumed = True
    response.raw.release_conn()


def connection_reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, without the request's URL or headers."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    text = str(exc)
    for marker in ("Name or service not known", "Connection refused", "timed out", "No route to host",
                   "Temporary failure in name resolution", "certificate verify failed", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def request_class(path: str) -> str:
    """Which of PostHog's throttle classes a path falls in (docs/posthog-api.md, "Limits and errors")."""
    if path.rstrip("/").endswith("/query"):
        return "query"
    if any(part in path for part in settings.ANALYTICS_PATH_PARTS):
        return "analytics"
    return "crud"


@dataclass
class ClientStats:
    """What a run cost PostHog; shown in the run summary and used by benchmarks."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    by_class: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0  # what PostHog says our queries read (its read budget's unit), when it says


@dataclass
class _Tally:
    """What one request has used of each retry budget."""

    attempts: int = 0  # answers that were not 429s
    connection_failures: int = 0
    too_large: int = 0
    throttled: int = 0
    rate_limit_waited: float = 0.0


class PostHogClient:
    """Thin wrapper over one `requests.Session` for PostHog's private API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        limiter: RateLimiter | None = None,
        max_rate_limit_wait: float = settings.DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS,
        max_attempts: int = settings.MAX_ATTEMPTS,
        timeout: tuple[float, float] = (settings.CONNECT_TIMEOUT_SECONDS, settings.READ_TIMEOUT_SECONDS),
        backoff_base: float = settings.BACKOFF_BASE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
        pacer: ReadBudgetPacer | None = None,
    ) -> None:
        self.base_url = resolve_host(base_url)
        self._origin = urlsplit(self.base_url)
        self.limiter = limiter
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_attempts = max(1, max_attempts)
        self.timeout = timeout
        self.backoff_base = backoff_base
        self._sleep = sleep
        self.pacer = pacer
        self.stats = ClientStats()
        self._reached = False  # has the host ever answered? Until it has, connection errors fail fast
        self._stats_lock = threading.Lock()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({
            "Authorization": f"Bearer {check_api_key(api_key, self.base_url)}",
            "User-Agent": settings.USER_AGENT,
            "Accept": "application/json",
        })

    # -- public helpers -------------------------------------------------------------------------
    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, what: str = "") -> Any:
        """GET and parse JSON. `path_or_url` is relative to the host or an absolute `next` link."""
        return self.request("GET", path_or_url, params=params, what=what)

    def post(
        self, path: str, body: Mapping[str, Any], what: str = "", parse: Callable[[bytes], Any] = orjson.loads
    ) -> Any:
        """POST JSON. `parse` turns the response body into the result (a body it cannot parse, such as one cut
        short by a dropped connection, is retried like any transient fault)."""
        return self.request("POST", path, body=body, what=what, parse=parse)

    def retry_broken_answer(self, what: str, attempt: int) -> None:
        """A HogQL answer found cut short after part of it was read (answers are read slice by slice, so
        `classify` could not see it): wait as for any body cut short, or raise once `attempt` (answers in a
        row found broken) spends the request's attempts. The caller asks again from the last row it has."""
        self._wait(Retry(None, "response body cut short"), _Tally(attempts=attempt - 1), "query", what)

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL on our host. `next` links are re-based onto the configured origin so the key is
        never sent to another host, even when a proxy rewrote the link."""
        if path_or_url.startswith(("http://", "https://")):
            parts = urlsplit(path_or_url)
            return urlunsplit((self._origin.scheme, self._origin.netloc, parts.path, parts.query, ""))
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def close(self) -> None:
        self.session.close()

    # -- step 3: the loop -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        what: str = "",
        parse: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        """Send one request until PostHog answers it or a budget is spent; returns `parse` of a 2xx body."""
        url = self.url_for(path_or_url)
        klass = request_class(urlsplit(url).path)
        what = what or urlsplit(url).path
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        tally = _Tally()
        while True:
            outcome = classify(self._send(klass, method, url, params, data, headers), what, parse, klass == "query")
            if isinstance(outcome, Done):
                return outcome.value
            if isinstance(outcome, Raise):
                raise outcome.error
            self._wait(outcome, tally, klass, what)

    def _send(
        self,
        klass: str,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response | requests.RequestException | LocationParseError:
        """One HTTP exchange, body included (the limiter's slot is held until the body has arrived). A HogQL
        query also waits, inside its slot, for its team's read budget (`ReadBudgetPacer`), and its answer's
        figures reach the pacer before its place among the queries in flight is given up: in between, its
        debit would be neither in flight nor in the balance, and another query could spend it again (one of
        the ways four walks overdrew the bench's bucket; ratelimit.py has the others)."""
        team = _query_team(url) if klass == "query" and self.pacer is not None else None
        try:
            with self.limiter.slot(klass) if self.limiter is not None else nullcontext(), self._paced(team):
                response = self._exchange(method, url, params, data, headers)
                if klass == "query":
                    self._note_read(team, response.headers)
        except (requests.RequestException, LocationParseError) as exc:
            return exc
        self._reached = True
        self._count(klass=klass)
        return response

    def _paced(self, team: str | None) -> contextlib.AbstractContextManager[None]:
        """The read budget's wait for one query: logged when it is long, counted like a 429's wait, and bounded
        by `max_rate_limit_wait` (beyond it the run stops cleanly, as for a 429)."""
        if team is None or self.pacer is None:
            return nullcontext()
        waited = 0.0

        def sleep(seconds: float) -> None:
            nonlocal waited
            waited += seconds
            if waited > self.max_rate_limit_wait:
                raise RateLimitWaitTooLong(
                    f"PostHog's read budget of project {team} would need more than max_rate_limit_wait "
                    f"({self.max_rate_limit_wait:.0f} s) to refill for the next query; stopped cleanly, run "
                    "again later to continue")
            if seconds >= 1.0:
                logger.info("PostHog's read budget of project %s: waiting %.0f s for its refill (queries read "
                            "%.2f GB so far)", team, seconds, self.stats.bytes_read / 1e9)
            with self._stats_lock:
                self.stats.waited_seconds += seconds
            self._sleep(seconds)

        return self.pacer.query(team, sleep)

    def _note_read(self, team: str | None, headers: Mapping[str, str]) -> None:
        """PostHog's figures for the read budget, when it sends them: counted, and given to the pacer."""
        read, remaining = _header_int(headers, BYTES_READ_HEADER), _header_int(headers, REMAINING_HEADER)
        if read is not None:
            with self._stats_lock:
                self.stats.bytes_read += read
        if team is not None and self.pacer is not None and (read is not None or remaining is not None):
            self.pacer.observe(team, read, remaining)

    def _exchange(
        self, method: str, url: str, params: Mapping[str, Any] | None, data: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        response = self.session.request(method, url, params=params, data=data, headers=headers, timeout=self.timeout,
                                        stream=True)
        read_body(response)  # here, so a cut body is a transport error of this try
        return response

    # -- step 2: the wait -----------------------------------------------------------------------
    def _wait(self, retry: Retry, tally: _Tally, klass: str, what: str) -> None:
        """Sleep as `retry` asks, or raise when its kind's budget for this request is spent."""
        if retry.kind is RetryKind.RATE_LIMIT:
            self._wait_for_rate_limit(retry, tally, klass, what)
            return
        tally.attempts += 1
        if retry.kind is RetryKind.TOO_LARGE:
            tally.too_large += 1
            if tally.too_large >= 2:
                raise QueryTooLargeError(
                    f"PostHog could not finish {what} ({retry.reason}): the query reads too much at once; "
                    "a shorter window or smaller page_size helps",
                    status=retry.status or 0,
                )
        if retry.kind is RetryKind.CONNECTION and not self._reached:
            tally.connection_failures += 1
            if tally.connection_failures >= 2:
                raise ConfigurationError(
                    f"cannot reach PostHog at {self.base_url} ({retry.reason}); check host ('us', 'eu' or "
                    "your instance's URL) and the network"
                )
        if tally.attempts >= self.max_attempts:
            raise TransientHTTPError(
                f"PostHog kept failing on {what} ({retry.reason}) after {tally.attempts} attempts; "
                "nothing was lost: run again later"
            )
        delay = retry.after if retry.after is not None else self._backoff(tally.attempts)
        logger.info("%s on %s; retrying in %.1f s (attempt %d/%d)", retry.reason, what, delay, tally.attempts,
                    self.max_attempts)
        self._count(retry=True)
        self._sleep(delay)

    def _wait_for_rate_limit(self, retry: Retry, tally: _Tally, klass: str, what: str) -> None:
        tally.throttled += 1
        self._count(throttled=True)
        wait = retry.after if retry.after is not None else self._backoff(tally.throttled)
        wait = max(wait, MIN_RATE_LIMIT_WAIT_SECONDS)
        total = tally.rate_limit_waited + wait
        if total > self.max_rate_limit_wait:
            over = "" if tally.throttled == 1 else f" over {tally.throttled} answers"
            raise RateLimitWaitTooLong(
                f"PostHog rate-limited {what} for {total:.0f} s{over}, more than max_rate_limit_wait "
                f"({self.max_rate_limit_wait:.0f} s); stopped cleanly, run again later to continue"
            )
        tally.rate_limit_waited = total
        until = pendulum.now("UTC").add(seconds=wait).format("HH:mm:ss")
        why = "" if retry.reason == "throttled" else f" ({retry.reason})"
        read = f"; queries read {self.stats.bytes_read / 1e9:,.2f} GB so far" if self.stats.bytes_read else ""
        logger.warning("PostHog rate limit%s on %s: waiting %.0f s (until %s UTC)%s", why, what, wait, until, read)
        paused = None
        if self.limiter is not None and retry.reason == "throttled":
            paused = self.limiter.pause(klass, wait)  # every thread of this class holds back, not only this one
        with self._stats_lock:
            self.stats.waited_seconds += wait
        try:
            self._sleep(wait)
        finally:
            if paused is not None and self.limiter is not None:
                self.limiter.end_pause(klass, paused)

    def _backoff(self, attempt: int) -> float:
        delay = min(settings.BACKOFF_MAX_SECONDS, self.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)

    def _count(self, klass: str | None = None, retry: bool = False, throttled: bool = False) -> None:
        with self._stats_lock:
            if klass is not None:
                self.stats.requests += 1
                self.stats.by_class[klass] = self.stats.by_class.get(klass, 0) + 1
            self.stats.retries += retry
            self.stats.throttled += throttled
