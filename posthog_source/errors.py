"""Errors that carry a message meant for people, and the exit code the CLI gives each kind."""

from __future__ import annotations


class PostHogSourceError(Exception):
    """Base of every error this source raises on purpose. `str(error)` is one line for the user."""

    exit_code = 1


class ConfigurationError(PostHogSourceError):
    """Bad input or configuration: the user must change a setting."""

    exit_code = 2


class AuthenticationError(PostHogSourceError):
    """HTTP 401: the key is missing, wrong, or not a personal API key."""

    exit_code = 3


class PermissionDeniedError(PostHogSourceError):
    """HTTP 403: the key is valid but lacks a scope or access to a project."""

    exit_code = 3

    def __init__(self, message: str, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class NotFoundError(PostHogSourceError):
    """HTTP 404: unknown project or endpoint."""

    exit_code = 2


class BadRequestError(PostHogSourceError):
    """HTTP 400: PostHog refused the request (for HogQL: the query)."""


class RateLimitWaitTooLong(PostHogSourceError):
    """PostHog asked us to wait longer than the configured maximum; the run stops cleanly."""


class TransientHTTPError(PostHogSourceError):
    """5xx, timeouts and broken connections that outlived every retry."""


class QueryTooLargeError(PostHogSourceError):
    """HogQL 504/512/513 twice in a row: ClickHouse ran out of time or memory on this query. Retrying the
    same query does not help; a caller that can (events windows) splits it and tries the halves."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class QuotaExceededError(PostHogSourceError):
    """HTTP 402: the organisation's plan or query quota refuses the request; waiting or a plan change helps."""
