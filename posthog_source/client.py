"""The one HTTP client every resource shares: auth, timeouts, retries, 429 waits, PostHog's errors.

PostHog's error envelope is `{"type", "code", "detail", "attr"}` (posthog-api.md §5); each status we
act on becomes its own exception carrying PostHog's `detail`, so the CLI can print one clear line.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pendulum
import requests
from requests.adapters import HTTPAdapter

from posthog_source import settings
from posthog_source.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    PostHogSourceError,
    RateLimitWaitTooLong,
    TransientHTTPError,
)
from posthog_source.ratelimit import RateLimiter

logger = logging.getLogger("posthog_source")

_EXPECTED_AVAILABLE = re.compile(r"Expected available in (\d+(?:\.\d+)?) seconds?")
_MISSING_SCOPE = re.compile(r"missing required scope '([^']+)'")
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504, 512, 520, 521, 522, 524})


def parse_retry_wait(headers: Mapping[str, str], body: bytes) -> float | None:
    """Seconds PostHog asks us to wait: `Retry-After` if present, else the body's "Expected available in N
    seconds", else None (the caller backs off exponentially)."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, pendulum.parse(retry_after).diff(pendulum.now("UTC"), False).in_seconds())
            except Exception:  # noqa: BLE001 - an unparseable header falls back to the body
                pass
    match = _EXPECTED_AVAILABLE.search(body.decode("utf-8", "replace"))
    return float(match.group(1)) if match else None


def error_detail(body: bytes) -> str:
    """PostHog's `detail` from an error body, or a short excerpt of a body that is not the envelope."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "no details given"
    if isinstance(parsed, dict) and parsed.get("detail"):
        return str(parsed["detail"])
    return str(parsed)[:200]


def request_class(path: str) -> str:
    """Which of PostHog's throttle classes a path falls in (posthog-api.md §4)."""
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)
        self.limiter = limiter
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.backoff_base = backoff_base
        self._sleep = sleep
        self.stats = ClientStats()
        self._reached = False  # has the host ever answered? Until it has, connection errors fail fast
        self._stats_lock = threading.Lock()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "User-Agent": settings.USER_AGENT, "Accept": "application/json"}
        )

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

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL on our host. `next` links are re-based onto the configured origin so the key is
        never sent to another host, even when a proxy rewrote the link."""
        if path_or_url.startswith(("http://", "https://")):
            parts = urlsplit(path_or_url)
            return urlunsplit((self._origin.scheme, self._origin.netloc, parts.path, parts.query, ""))
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def close(self) -> None:
        self.session.close()

    # -- the retry loop -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        what: str = "",
        parse: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        """Send one request with retries; returns the parsed JSON of a 2xx. A body cut short by a dropped
        connection fails to parse and is retried like any other transient fault."""
        url = self.url_for(path_or_url)
        klass = request_class(urlsplit(url).path)
        what = what or urlsplit(url).path
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        for attempt in range(1, self.max_attempts + 1):
            problem: str
            wait: float | None = None
            try:
                response = self._send(klass, method, url, params, data, headers)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                problem = f"{type(exc).__name__}"
                if not self._reached and attempt >= 2 and isinstance(exc, requests.ConnectionError):
                    raise ConfigurationError(
                        f"cannot reach PostHog at {self.base_url} ({_reason(exc)}); check host "
                        "('us', 'eu' or your instance's URL) and the network"
                    ) from None
            else:
                self._reached = True
                status = response.status_code
                content = response.content
                if 200 <= status < 300:
                    try:
                        return parse(content)
                    except orjson.JSONDecodeError:
                        problem = "truncated response body"
                elif status == 429:
                    self._count(throttled=True)
                    wait = parse_retry_wait(response.headers, content)
                    self._wait_for_rate_limit(klass, wait, attempt, what)
                    continue
                elif status in _TRANSIENT_STATUSES:
                    problem = f"HTTP {status}"
                    wait = parse_retry_wait(response.headers, content) if status == 503 else None
                else:
                    raise _error_for(status, content, what)
            if attempt == self.max_attempts:
                raise TransientHTTPError(
                    f"PostHog kept failing on {what} ({problem}) after {attempt} attempts; "
                    "nothing was lost: run again later"
                )
            delay = wait if wait is not None else self._backoff(attempt)
            logger.info("%s on %s; retrying in %.1f s (attempt %d/%d)", problem, what, delay, attempt,
                        self.max_attempts)
            self._count(retry=True)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _send(
        self,
        klass: str,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        if self.limiter is None:
            response = self.session.request(method, url, params=params, data=data, headers=headers,
                                            timeout=self.timeout)
            response.content  # noqa: B018 - read the body inside the try of the caller
        else:
            with self.limiter.slot(klass):
                response = self.session.request(method, url, params=params, data=data, headers=headers,
                                                timeout=self.timeout)
                response.content  # noqa: B018 - the slot is held until the body has arrived
        self._count(klass=klass)
        return response

    def _wait_for_rate_limit(self, klass: str, wait: float | None, attempt: int, what: str) -> None:
        if wait is None:
            wait = self._backoff(attempt)
        if wait > self.max_rate_limit_wait:
            raise RateLimitWaitTooLong(
                f"PostHog rate-limited {what} for {wait:.0f} s, more than max_rate_limit_wait "
                f"({self.max_rate_limit_wait:.0f} s); stopped cleanly, run again later to continue"
            )
        until = pendulum.now("UTC").add(seconds=wait).format("HH:mm:ss")
        logger.warning("PostHog rate limit on %s: waiting %.0f s (until %s UTC)", what, wait, until)
        if self.limiter is not None:
            self.limiter.pause(klass, wait)
        with self._stats_lock:
            self.stats.waited_seconds += wait
        self._sleep(wait)

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


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, without the request's URL or headers."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    text = str(exc)
    for marker in ("Name or service not known", "Connection refused", "timed out", "No route to host",
                   "Temporary failure in name resolution", "certificate verify failed"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _error_for(status: int, content: bytes, what: str) -> PostHogSourceError:
    detail = error_detail(content)
    if status == 401:
        return AuthenticationError(
            f"PostHog rejected the API key ({detail}); set a valid personal API key (phx_...) in "
            "SOURCES__POSTHOG__API_KEY or .dlt/secrets.toml"
        )
    if status == 403:
        scope_match = _MISSING_SCOPE.search(detail)
        scope = scope_match.group(1) if scope_match else None
        hint = f"add the scope '{scope}' to the key" if scope else "check the key's scopes and projects"
        return PermissionDeniedError(f"PostHog refused {what}: {detail} ({hint})", scope=scope)
    if status == 404:
        return NotFoundError(f"PostHog has no {what}: {detail}")
    if status == 400:
        return BadRequestError(f"PostHog refused {what}: {detail}")
    return PostHogSourceError(f"PostHog answered HTTP {status} on {what}: {detail}")
