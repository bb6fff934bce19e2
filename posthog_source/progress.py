"""Progress of a table against the total its count queries announced.

On a terminal, dlt's collector of the running pipeline (the CLI uses dlt's tqdm collector) gets the total, so
its bar shows rows read / total, rate and time left; extraction advances it page by page. In a log, one line
per finished window carries the same figures (logger `posthog_source.progress`, which the CLI silences when a
bar is shown).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import dlt

logger = logging.getLogger("posthog_source.progress")


class Progress:
    """Rows read of one table in this run, of `total` expected, over `windows` walks."""

    def __init__(self, table: str, total: int, windows: int, clock: type[time.monotonic] | None = None) -> None:
        self.table = table
        self.total = total
        self.windows = windows
        self._clock = clock or time.monotonic
        self._started = self._clock()
        self._lock = threading.Lock()
        self.read = 0
        self.done = 0
        # The bar, when dlt runs this resource inside a pipeline; outside one (dlt tools) there is none to set.
        with contextlib.suppress(Exception):
            dlt.current.pipeline().collector.update(table, inc=0, total=total)

    def rows(self, n: int) -> None:
        with self._lock:
            self.read += n

    def finish(self) -> None:
        """The table's last page was read: its bar ends at what was read (the count queries may have counted
        rows a page then left out, or fewer than arrived while reading), so it reaches 100 %."""
        with contextlib.suppress(Exception):
            dlt.current.pipeline().collector.update(self.table, inc=0, total=self.read)

    def window_done(self) -> str:
        """Count a finished window and log its line; returns the line."""
        with self._lock:
            self.done += 1
            read, done = self.read, self.done
        elapsed = max(self._clock() - self._started, 1e-6)
        rate = read / elapsed
        share = f" ({read / self.total:.1%})" if self.total else ""
        left = max(self.total - read, 0)
        eta = f", about {_duration(left / rate)} left" if rate > 0 and left else ""
        line = (f"{self.table}: window {done}/{self.windows} done; {read:,} of {self.total:,} rows{share}, "
                f"{rate:,.0f} rows/s{eta}")
        logger.info(line)
        return line


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
