"""One table never sinks a run: a table PostHog refuses, or whose reads keep failing, is set aside and named,
and every other table loads and commits its state.

How it works (the runner, pipelines/runner.py, does the second half):
- every resource reads under `guarded`: a refusal (400: a field or table this PostHog does not have, as an
  older self-hosted instance without `sessions`), a read that failed after its retries, an endpoint PostHog
  does not serve (404) or a query too big even in halves ends that resource: its error is recorded in the
  run's `TableFailures` and the resource stops yielding. Its marks are not committed (they are committed only
  after a resource's last page), so its state does not advance and the next run reads the same range again;
- after the extract, the runner withdraws every file the failed resources wrote from the load package, so a
  snapshot that failed on its second page neither wipes nor half-replaces what the destination holds;
- the run ends with exit 5 (pipelines/errors.py), one line per failed table, after the others loaded.
What is not a table's fault still stops the run as before: a bad key (exit 3), bad settings (exit 2), the
rate-limit wait or the organisation's quota running out, the destination failing (exit 1).
Without a `TableFailures` (a library user running the source with plain dlt) errors propagate as dlt's do:
nothing of the run is loaded, which is consistent too, because no step here can withdraw files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from posthog_source.errors import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    PostHogSourceError,
    QueryTooLargeError,
    TransientHTTPError,
)

logger = logging.getLogger("posthog_source")

# A table's own failures. A PostHogSourceError of exactly the base class is one of ours about an answer
# (a next link seen twice, a column type we cannot read): that table's too.
_TABLE_ERRORS = (BadRequestError, NotFoundError, QueryTooLargeError, TransientHTTPError)


def is_table_failure(exc: BaseException) -> bool:
    return isinstance(exc, _TABLE_ERRORS) or type(exc) is PostHogSourceError


def advice(exc: BaseException) -> str:
    """What a user does about a table's failure, by its kind."""
    if isinstance(exc, BadRequestError):
        return ("your PostHog refuses this table's query (an older self-hosted version may not have it): "
                "leave it out with --exclude, or upgrade PostHog")
    if isinstance(exc, TransientHTTPError):
        return "PostHog kept failing; the next run retries it"
    if isinstance(exc, NotFoundError):
        return "your PostHog does not serve this endpoint: leave it out with --exclude"
    return "the next run retries it; rerun with --debug for details"


class TableFailures:
    """The tables that failed in one run, with PostHog's message (shared by the resources' threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}

    def record(self, table: str, exc: BaseException) -> None:
        line = f"{table}: {exc}; {advice(exc)}"
        with self._lock:
            self._failed.setdefault(table, line)
        logger.error("table %s failed and keeps what the destination had: %s", table, exc)

    @property
    def failed(self) -> dict[str, str]:
        """Table -> one line saying what failed and what to do."""
        with self._lock:
            return dict(self._failed)


def guarded(table: str, pages: Callable[[], Iterator[Any]], failures: TableFailures | None) -> Iterator[Any]:
    """Read one resource: a table the key may not read is reported by name, once, and skipped; a table's own
    failure is recorded in `failures` (and ends the resource) when the run isolates tables, else raised."""
    try:
        yield from pages()
    except PermissionDeniedError as exc:
        scope = f"; add the scope '{exc.scope}' to the key to load it" if exc.scope else ""
        logger.warning("skipped %s: %s%s", table, exc, scope)
    except PostHogSourceError as exc:
        if failures is None or not is_table_failure(exc):
            raise
        failures.record(table, exc)
