"""Validation of user input: hosts, project ids, dates and durations. Each error says what to do."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

import pendulum

from posthog_source import settings
from posthog_source.errors import ConfigurationError

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def resolve_host(host: str | None) -> str:
    """`us`, `eu` or a full base URL -> base URL without trailing slash. Plain http is refused unless
    the host is loopback, because the personal API key travels in a header."""
    host = (host or settings.DEFAULT_HOST).strip()
    if host.lower() in settings.HOST_SHORTCUTS:
        return settings.HOST_SHORTCUTS[host.lower()]
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"host '{host}' is not a URL; use 'us', 'eu' or a full base URL such as https://posthog.example.com"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"host '{host}' uses plain http; the API key would travel unencrypted. Use https:// "
            "(http is allowed only for localhost)"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"host '{host}' must not carry a query string or fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback(hostname: str) -> bool:
    if hostname in settings.LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_project_ids(value: str | int | Iterable[str | int] | None) -> list[int] | None:
    """`"1,2"`, `[1, 2]`, `3` or None (every project the key can read) -> sorted unique ids."""
    if value is None or value == "" or value == []:
        return None
    items: Iterable[str | int]
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value.strip("[] ")) if part]
    else:
        items = value
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
