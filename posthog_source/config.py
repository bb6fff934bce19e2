"""The source's settings, parsed once: hosts, project ids, dates and durations. Each error says what to do."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import dlt
import pendulum

from posthog_source import settings
from posthog_source.errors import AuthenticationError, ConfigurationError

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def personal_key_help(host: str | None = None) -> str:
    """Where a personal API key is made, on the user's own PostHog (docs/posthog-api.md, "Keys and scopes")."""
    base = (host or settings.HOST_SHORTCUTS[settings.DEFAULT_HOST]).rstrip("/")
    return (f"create a personal API key (phx_...) in PostHog under Settings > Personal API keys "
            f"({base}/settings/user-api-keys) and set it as SOURCES__POSTHOG__API_KEY or api_key in "
            ".dlt/secrets.toml")
_HOSTNAME = re.compile(r"[A-Za-z0-9.-]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


def check_api_key(api_key: str | None, host: str | None = None) -> str:
    """The key, stripped; a missing key or a project token is refused before any request is sent (naming where
    `host`, the user's PostHog, makes personal keys)."""
    key = str(api_key or "").strip()
    if not key:
        raise ConfigurationError(
            "no PostHog API key; set SOURCES__POSTHOG__API_KEY or api_key in .dlt/secrets.toml "
            "(a personal API key, phx_...)"
        )
    if key.startswith("phc_"):
        raise AuthenticationError(
            "the API key is a project token (phc_...), which only sends events to PostHog; " + personal_key_help(host)
        )
    return key


def resolve_host(host: str | None) -> str:
    """`us`, `eu` or a full base URL -> base URL without trailing slash. Plain http is refused unless
    the host is loopback, because the personal API key travels in a header. A host ending in /api is the
    most common mistake (the API's paths already start with /api), so it is named."""
    text = str(host or settings.DEFAULT_HOST).strip()
    if text.lower() in settings.HOST_SHORTCUTS:
        return settings.HOST_SHORTCUTS[text.lower()]
    try:
        parts = urlsplit(text)
        hostname = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts, hostname = urlsplit(""), ""
    valid_name = _HOSTNAME.fullmatch(hostname) or (":" in hostname and _IPV6.fullmatch(hostname))
    if parts.scheme not in ("http", "https") or not valid_name:
        raise ConfigurationError(
            f"host '{text}' is not a valid URL; use 'us', 'eu' or a base URL such as https://posthog.example.com"
        )
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise ConfigurationError(
            f"host '{text}' uses plain http; the API key would travel unencrypted. Use https:// "
            "(http is allowed only for localhost)"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"host '{text}' must not carry a query string or fragment")
    path = parts.path.rstrip("/")
    if path.split("/")[-1].lower() == "api":
        bare = f"{parts.scheme}://{parts.netloc}{path[: -len('/api')]}"
        raise ConfigurationError(
            f"host '{text.rstrip('/')}' ends in /api; set host to the base URL without /api, such as {bare}"
        )
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_loopback(hostname: str) -> bool:
    if hostname in settings.LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_list(value: str | int | Iterable[Any], name: str) -> list[Any]:
    """Every list setting, one way: a TOML or JSON list (`[1, 2]`, `["$browser", "seats:int"]`, also as an env
    var's text), a comma list (`1,2`, `$browser,seats:int`) or one value."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                raise ConfigurationError(
                    f"{name} '{text}' is not a list; write it as a comma list (a,b) or a list such as "
                    '["a", "b"]') from None
            return list(parsed)
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return list(value)


def parse_project_ids(value: str | int | Iterable[str | int] | None) -> list[int] | None:
    """`"1,2"`, `[1, 2]`, `3` or None (every project the key can read) -> sorted unique ids."""
    if value is None or value == "" or value == []:
        return None
    items = parse_list(value, "project_ids")
    ids: set[int] = set()
    for item in items:
        text = str(item).strip().strip("'\"")
        if not text.isdigit() or int(text) <= 0:
            raise ConfigurationError(
                f"project id '{item}' is not a number; project ids are the numbers in PostHog's URLs "
                "(/project/12345), given as a comma list such as 123,456"
            )
        ids.add(int(text))
    return sorted(ids)


def parse_instant(value: str | datetime | None, name: str) -> pendulum.DateTime | None:
    """An ISO date or date-time -> UTC instant. A value without an offset is read as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = pendulum.instance(value)
    else:
        try:
            parsed = pendulum.parse(str(value).strip(), tz="UTC")
        except Exception as exc:  # noqa: BLE001 - pendulum raises several types
            raise ConfigurationError(
                f"{name} '{value}' is not a date; use ISO 8601 such as 2024-01-31 or 2024-01-31T12:00:00Z"
            ) from exc
        if not isinstance(parsed, pendulum.DateTime):
            if isinstance(parsed, pendulum.Date):
                parsed = pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
            else:
                raise ConfigurationError(f"{name} '{value}' is not a date; use ISO 8601 such as 2024-01-31")
    return parsed.in_timezone("UTC")


def parse_duration(value: str | int | float, name: str, allow_zero: bool = False) -> float:
    """`90s`, `10m`, `6h`, `1d`, `2w` or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif allow_zero and str(value).strip() == "0":
        seconds = 0.0
    else:
        match = _DURATION.match(str(value).lower())
        if not match:
            raise ConfigurationError(f"{name} '{value}' is not a duration; use e.g. 30m, 6h, 1d or 2w")
        seconds = float(int(match.group(1)) * _DURATION_SECONDS[match.group(2)])
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be positive, got '{value}'")
    return seconds


def check_range(start: pendulum.DateTime | None, end: pendulum.DateTime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ConfigurationError(
            f"end_date {end.to_iso8601_string()} is not after start_date {start.to_iso8601_string()}; "
            "swap them or widen the range"
        )


# -- the settings of one source, parsed once ----------------------------------------------------------
@dataclass(frozen=True)
class SourceSettings:
    """Every setting of the source, validated and typed once (from dlt config, env vars and CLI flags).

    The source, `backfill`, `check` and `verify` all take this object; nothing downstream parses a string
    again. Instants are UTC `pendulum.DateTime`s, durations `timedelta`s.
    """

    api_key: str = field(repr=False)
    host: str = settings.HOST_SHORTCUTS[settings.DEFAULT_HOST]
    project_ids: tuple[int, ...] | None = None
    start_date: pendulum.DateTime | None = None  # None: the project's whole history
    end_date: pendulum.DateTime | None = None  # set: a stateless window (backfills, repairs)
    ingestion_lag: timedelta = timedelta(seconds=settings.DEFAULT_INGESTION_LAG_SECONDS)
    max_lateness: timedelta = timedelta(seconds=settings.DEFAULT_MAX_LATENESS_SECONDS)
    ingestion_overlap: timedelta = timedelta(seconds=settings.DEFAULT_INGESTION_OVERLAP_SECONDS)
    late_sweep: timedelta = timedelta(seconds=settings.DEFAULT_LATE_SWEEP_SECONDS)
    window: timedelta = timedelta(seconds=settings.DEFAULT_WINDOW_SECONDS)
    page_size: int = settings.HOGQL_MAX_ROWS
    page_bytes: int = settings.DEFAULT_PAGE_BYTES
    promoted_properties: tuple[str, ...] = ()
    workers: int = settings.DEFAULT_WORKERS
    persons_full_refresh: bool = False
    full_refresh: bool = False
    # A backfill's hand-over: the first incremental run stores at most this watermark, so events ingested
    # while the backfill ran (late arrivals into windows already done) are read by the next run.
    handover_watermark: pendulum.DateTime | None = None
    max_rate_limit_wait: timedelta = timedelta(seconds=settings.DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS)
    rate_limits: Mapping[str, Sequence[tuple[int, float]]] | None = None  # None: PostHog's; {}: off
    rate_limit_time_scale: float = 1.0
    query_concurrency: int = settings.DEFAULT_QUERY_CONCURRENCY
    request_timeout: timedelta = timedelta(seconds=settings.READ_TIMEOUT_SECONDS)

    @classmethod
    def parse(cls, **values: Any) -> SourceSettings:
        """Validate raw values (strings from TOML, env vars or the command line, or typed values) into
        settings. Unknown names and bad values raise ConfigurationError with one line saying what to do;
        values that are None take the default."""
        unknown = sorted(set(values) - set(SETTING_NAMES))
        if unknown:
            raise ConfigurationError(
                f"unknown setting {', '.join(unknown)}; known settings: {', '.join(SETTING_NAMES)}"
            )
        given = {k: v for k, v in values.items() if v is not None}
        host = resolve_host(given.get("host"))
        api_key = check_api_key(given.get("api_key"), host)
        start = parse_instant(given.get("start_date"), "start_date")
        end = parse_instant(given.get("end_date"), "end_date")
        check_range(start, end)
        if start is not None and start > pendulum.now("UTC"):
            raise ConfigurationError(
                f"start_date {start.to_iso8601_string()} is in the future; give a date in the past "
                "(or leave it out to load the whole history)"
            )
        promoted = parse_list(given.get("promoted_properties") or (), "promoted_properties")
        rate_limits = given.get("rate_limits")
        return cls(
            api_key=api_key,
            host=host,
            project_ids=_tuple_or_none(parse_project_ids(given.get("project_ids"))),
            start_date=start,
            end_date=end,
            ingestion_lag=_duration(given, "ingestion_lag", settings.DEFAULT_INGESTION_LAG_SECONDS, allow_zero=True),
            max_lateness=_duration(given, "max_lateness", settings.DEFAULT_MAX_LATENESS_SECONDS),
            ingestion_overlap=_duration(given, "ingestion_overlap", settings.DEFAULT_INGESTION_OVERLAP_SECONDS,
                                        allow_zero=True),
            late_sweep=_duration(given, "late_sweep", settings.DEFAULT_LATE_SWEEP_SECONDS, allow_zero=True),
            window=_duration(given, "window", settings.DEFAULT_WINDOW_SECONDS),
            page_size=min(positive_int(given.get("page_size", settings.HOGQL_MAX_ROWS), "page_size"),
                          settings.HOGQL_MAX_ROWS),
            page_bytes=positive_int(given.get("page_bytes", settings.DEFAULT_PAGE_BYTES), "page_bytes"),
            promoted_properties=tuple(str(p).strip() for p in promoted),
            workers=positive_int(given.get("workers", settings.DEFAULT_WORKERS), "workers"),
            persons_full_refresh=parse_bool(given.get("persons_full_refresh", False), "persons_full_refresh"),
            full_refresh=parse_bool(given.get("full_refresh", False), "full_refresh"),
            handover_watermark=parse_instant(given.get("handover_watermark"), "handover_watermark"),
            max_rate_limit_wait=_duration(given, "max_rate_limit_wait",
                                          settings.DEFAULT_MAX_RATE_LIMIT_WAIT_SECONDS),
            rate_limits=None if rate_limits is None else _rate_limits(rate_limits),
            rate_limit_time_scale=_positive_float(given.get("rate_limit_time_scale", 1.0), "rate_limit_time_scale"),
            query_concurrency=positive_int(given.get("query_concurrency", settings.DEFAULT_QUERY_CONCURRENCY),
                                           "query_concurrency"),
            request_timeout=_duration(given, "request_timeout", settings.READ_TIMEOUT_SECONDS),
        )


# The names `SourceSettings.parse` accepts: the `[sources.posthog]` keys (api_key is the only secret).
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SourceSettings))


def _duration(given: Mapping[str, Any], name: str, default_seconds: float, allow_zero: bool = False) -> timedelta:
    value = given.get(name, default_seconds)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return timedelta(seconds=parse_duration(value, name, allow_zero=allow_zero))


def _tuple_or_none(ids: list[int] | None) -> tuple[int, ...] | None:
    return None if ids is None else tuple(ids)


def positive_int(value: Any, name: str) -> int:
    """A whole number above zero, or a ConfigurationError naming the setting."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0 or (isinstance(value, float) and not value.is_integer()):
        raise ConfigurationError(f"{name} must be a positive whole number, got '{value}'")
    return number


def _positive_float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if number <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got '{value}'")
    return number


def parse_bool(value: Any, name: str) -> bool:
    """true/false, yes/no, 1/0 (TOML booleans or env-var strings)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", ""):
        return False
    raise ConfigurationError(f"{name} must be true or false, got '{value}'")


def _rate_limits(value: Any) -> dict[str, list[tuple[int, float]]]:
    """`{"query": [[240, 60], [2400, 3600]], ...}`; `{}` turns client-side budgeting off."""
    if not isinstance(value, Mapping):
        raise ConfigurationError("rate_limits must be a table such as {query = [[240, 60], [2400, 3600]]}, or {}")
    parsed: dict[str, list[tuple[int, float]]] = {}
    for name, pairs in value.items():
        try:
            parsed[str(name)] = [(int(n), float(seconds)) for n, seconds in pairs]
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"rate_limits.{name} must be a list of [requests, seconds] pairs, got '{pairs}'"
            ) from None
    return parsed


def load_settings(**given: Any) -> SourceSettings:
    """Settings from what was given (command-line flags; None = not given) over dlt's configuration:
    `[sources.posthog]` in .dlt/config.toml and secrets.toml, or SOURCES__POSTHOG__* env vars."""
    values: dict[str, Any] = {}
    for name in SETTING_NAMES:
        value = given.get(name)
        if value is None:
            provider = dlt.secrets if name == "api_key" else dlt.config
            value = provider.get(f"sources.posthog.{name}")
        values[name] = value
    return SourceSettings.parse(**values)
