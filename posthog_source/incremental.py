"""The one ingestion cursor of every incremental resource (events, persons, distinct ids, sessions).

PostHog's rows arrive by ingestion time (`created_at`), whatever their event `timestamp`. Per project, a resource
keeps in its dlt state where it has read to and when it last swept for very late events:
- `watermark`: ingestion time read up to. A run reads `created_at` in [watermark - ingestion_overlap,
  now - ingestion_lag): a row can become queryable after its `created_at` (the overlap reads it again, merged on
  the key) and rows still being ingested wait (the lag);
- `swept_at` / `swept_to`: when (wall clock) the last late sweep ran and up to which ingestion time. Between
  sweeps, reads are bounded on `timestamp` too (older than `max_lateness` is left out: partitions pruned); at
  most every `late_sweep` a run also reads what was ingested since the last sweep, whatever its timestamp.
Each resource decides what to read from a project's `Position` (its own queries differ); this object reads the
committed positions, stages the new ones, and commits them only after the resource's last page (dlt stores
resource state with the rows of the same load, so a mark is durable exactly when the rows it covers are).
The clock is read once per run, here: from the clock of the run in progress (`run_clock`), the real one unless
a caller (the pipeline's `RunOptions.clock`, a test running "tomorrow") set another for the length of its run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass

import pendulum

from posthog_source.config import SourceSettings
from posthog_source.watermarks import Marks

Clock = Callable[[], pendulum.DateTime]


def utc_now() -> pendulum.DateTime:
    """The real clock, in UTC: the default of every run."""
    return pendulum.now("UTC")


# The clock of the extract in progress. A context variable rather than a parameter of each resource: the
# resources are dlt generators that dlt starts long after the source is built, and a caller that runs them
# (`pipelines.runner.run`) sets the clock around exactly that extract; library users get the real one.
_RUN_CLOCK: ContextVar[Clock] = ContextVar("posthog_source_run_clock", default=utc_now)


@contextlib.contextmanager
def run_clock(clock: Clock) -> Iterator[None]:
    """Make `clock` the one every cursor reads while the block runs (the extract of one run)."""
    token = _RUN_CLOCK.set(clock)
    try:
        yield
    finally:
        _RUN_CLOCK.reset(token)


def current_time() -> pendulum.DateTime:
    """Now, by the clock of the run in progress (the real one outside `run_clock`), in UTC."""
    return _RUN_CLOCK.get()().in_timezone("UTC")


@dataclass(frozen=True)
class Position:
    """One project's cursor: ingested up to `watermark`; swept for very late events up to `swept_to`
    (ingestion time) at wall-clock `swept_at`. All None: the project was never read (a first run)."""

    watermark: pendulum.DateTime | None = None
    swept_to: pendulum.DateTime | None = None
    swept_at: pendulum.DateTime | None = None


@dataclass(frozen=True)
class StateKeys:
    """The names a resource stores its marks under (kept as they were, so existing pipelines continue)."""

    watermark: str
    swept_to: str
    swept_at: str


EVENTS_KEYS = StateKeys("created_at_watermark", "late_swept_to", "late_swept_at")
# persons, person_distinct_ids and sessions: the watermark of the events whose persons/sessions they re-read
EVENTS_OF_KEYS = StateKeys("events_watermark", "swept_to", "swept_at")


class IngestionCursor:
    """The positions of one resource's projects in this run: read, decided on, staged, committed."""

    def __init__(self, keys: StateKeys, config: SourceSettings, now: pendulum.DateTime | None = None,
                 state: MutableMapping[str, object] | None = None) -> None:
        self.config = config
        self.now = now or current_time()
        self.hi = self.now - config.ingestion_lag  # ingested before this is read by this run
        self._marks = (Marks(keys.watermark, state), Marks(keys.swept_to, state), Marks(keys.swept_at, state))

    def position(self, project_id: int) -> Position:
        """The committed position (a resource reads a project whole when its watermark is None, and under
        --full-refresh whatever it is)."""
        watermark, swept_to, swept_at = (marks.get(project_id) for marks in self._marks)
        return Position(watermark, swept_to, swept_at)

    def since(self, project_id: int) -> pendulum.DateTime | None:
        """Where this run's ingestion read starts: the watermark minus the overlap (None: a first run)."""
        watermark = self.position(project_id).watermark
        return watermark - self.config.ingestion_overlap if watermark is not None else None

    def sweep_due(self, project_id: int) -> bool:
        """A late sweep is due: never swept, or `late_sweep` has passed since the last one."""
        swept_at = self.position(project_id).swept_at
        return swept_at is None or self.now - swept_at >= self.config.late_sweep

    def sweep_from(self, project_id: int) -> pendulum.DateTime | None:
        """Where a sweep reads from: what was ingested since the last sweep (minus the overlap); never later
        than this run's own ingestion read."""
        position = self.position(project_id)
        if position.watermark is None:
            return None
        return min(position.swept_to or position.watermark, position.watermark) - self.config.ingestion_overlap

    def advance(self, project_id: int, swept: bool, watermark: pendulum.DateTime | None = None) -> Position:
        """Stage the project's next position: read up to `watermark` (default: this run's horizon), and with
        `swept` a sweep at this run's clock up to the same point. Committed by `commit`."""
        old = Position() if self.config.full_refresh else self.position(project_id)
        mark = watermark or self.hi
        new = Position(mark, min(self.hi, mark) if swept else old.swept_to, self.now if swept else old.swept_at)
        self.stage(project_id, new)
        return new

    def stage(self, project_id: int, position: Position) -> None:
        """Stage a position decided elsewhere (the events plan); fields left None keep what is stored."""
        for marks, value in zip(self._marks, (position.watermark, position.swept_to, position.swept_at),
                                strict=True):
            if value is not None:
                marks.stage(project_id, value)

    def commit(self) -> None:
        """Write the staged positions: call after the resource's last page was yielded."""
        for marks in self._marks:
            marks.commit()
