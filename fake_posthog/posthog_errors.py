"""A stand-in for PostHog's `posthog/hogql/errors.py`, which PostHog's HogQL parser (`hogql-parser` on PyPI)
imports when it loads. The class names and their bases are PostHog's (read at the commit named in
posthog_schema.json, `parser_errors_module`); the classes are ours and hold only a message and a position.
`rules.py` registers this module as `posthog.hogql.errors` when PostHog itself is not installed.
"""

from __future__ import annotations

from typing import Any


class BaseHogQLError(Exception):
    def __init__(self, message: str, *, start: int | None = None, end: int | None = None, node: Any = None,
                 **_: Any) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end
        self.node = node


class ExposedHogQLError(BaseHogQLError):
    """An error whose message PostHog shows to the user (400)."""


class InternalHogQLError(BaseHogQLError):
    """An error PostHog treats as its own bug."""


class SyntaxError(ExposedHogQLError):  # noqa: A001 - PostHog's name
    pass


class QueryError(ExposedHogQLError):
    pass


class NotImplementedError(InternalHogQLError):  # noqa: A001 - PostHog's name
    pass


class ParsingError(InternalHogQLError):
    pass


class ImpossibleASTError(InternalHogQLError):
    pass


class ResolutionError(InternalHogQLError):
    pass
