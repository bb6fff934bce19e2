"""What a run shows on a terminal: a bar per table, counted in rows, with the total where the count queries know
it, and log lines written above the bars instead of through them.

dlt's own tqdm collector counts "it", takes a total only when a bar is made (our count queries may come after a
table's first page), and its bars share the terminal with log lines that cut through them. This collector
keeps dlt's protocol (one bar per table and step, closed when the step ends, so the summary prints on a clean
screen) and fixes those three; `LinesAboveBars` is the logging handler that goes with it.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import IO

from dlt.common.runtime.collector import Collector
from tqdm import tqdm

# dlt's own counters beside the tables' rows (extract counts resources, normalize files, load jobs).
_UNITS = {"Resources": " resources", "Files": " files", "Items": " items", "Jobs": " jobs"}


class TableBars(Collector):
    """One tqdm bar per table of the running step: `events: 42%|████    | 50.2k/120k rows [00:03, 16.1k rows/s]`;
    a table whose total no query counted shows its rows and rate only."""

    def __init__(self, file: IO[str] | None = None, columns: int = 100) -> None:
        self.file = file or sys.stderr
        self.columns = columns
        self.step = ""
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def update(self, name: str, inc: int = 1, total: int | None = None, inc_total: int | None = None,
               message: str | None = None, label: str = "") -> None:
        key = f"{name}[{label}]" if label else name
        with self._lock:
            bar = self._bars.get(key)
            if bar is None:
                bar = tqdm(desc=f"{self.step}: {key}", total=total, leave=False, unit=_UNITS.get(name, " rows"),
                           file=self.file, ncols=self.columns, dynamic_ncols=False, colour="green")
                self._bars[key] = bar
            elif total is not None and total != bar.total:
                bar.total = total
            if inc_total:
                bar.total = (bar.total or 0) + inc_total
            if message:
                bar.set_postfix_str(message, refresh=False)
            bar.update(inc)
            bar.refresh()

    def _start(self, step: str) -> None:
        self.step = step.split()[0] if step else ""
        self._bars = {}

    def _stop(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()


class LinesAboveBars(logging.Handler):
    """Writes each log line above the bars (tqdm clears them, prints the line, draws them again)."""

    def __init__(self, file: IO[str] | None = None) -> None:
        super().__init__()
        self.file = file or sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.file)
        except Exception:  # noqa: BLE001 - logging must never raise (as logging.StreamHandler)
            self.handleError(record)
