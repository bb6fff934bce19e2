"""`sessions` and `cohort_people`: two HogQL tables users ask for that PostHog computes from other data.

- `sessions` (one row per `session_id`) is aggregated from events, so a session changes while its events
  arrive. The first run reads every session in windows of `$start_timestamp` (sized by a per-day count);
  later runs re-read the sessions of the events ingested since the last run (plus the overlap), merged on
  (project_id, session_id). A session starts at most a day before its events (PostHog cuts sessions at 24 h),
  so the re-read is bounded on `$start_timestamp` as well; at the late sweep's pace, the sessions of every
  event ingested since the last sweep are re-read, whatever its age (`_touched`). Only events whose
  `$session_id` is a UUIDv7 (what PostHog's SDKs send) have a session row: PostHog keys the table by it.
- `cohort_people` is each cohort's membership as PostHog last calculated it: dynamic cohorts from HogQL's
  `cohort_people`, which keeps only each cohort's current version itself (older versions linger in
  `raw_cohort_people` until PostHog cleans them up), static cohorts from `static_cohort_people`. It is a
  snapshot per project, so people who left a cohort disappear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

import dlt
import pendulum
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from posthog_source import hogql, settings
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings
from posthog_source.failures import TableFailures, guarded
from posthog_source.hogql import RowWidth, range_condition, table_pages, utc_literal
from posthog_source.incremental import EVENTS_OF_KEYS, IngestionCursor
from posthog_source.parallel import interleave
from posthog_source.persons import events_since
from posthog_source.projects import Project, ProjectCatalog
from posthog_source.snapshot import (
    SENTINEL_HINTS,
    SNAPSHOT_DISPOSITION,
    UPSERT_DISPOSITION,
    arrow_snapshot,
)
from posthog_source.windows import group_windows, split_windows

logger = logging.getLogger("posthog_source")

Producer = Callable[[], Iterator[pa.Table]]
SESSION_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "session_id": {"data_type": "text", "nullable": False},
    "start_timestamp": {"data_type": "timestamp", "timezone": True},
    "end_timestamp": {"data_type": "timestamp", "timezone": True},
}
# PostHog ends a session after 24 hours, whatever happens in it.
MAX_SESSION = timedelta(hours=24)


def sessions_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings,
                      failures: TableFailures | None = None) -> DltResource:
    @dlt.resource(name="sessions", primary_key=("project_id", "session_id"), columns=SESSION_COLUMNS,
                  write_disposition=UPSERT_DISPOSITION)
    def sessions() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from guarded("sessions", lambda: read(projects), failures)

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        cursor = IngestionCursor(EVENTS_OF_KEYS, config)
        width = RowWidth(config.page_bytes)
        producers: list[Producer] = []
        for project in projects:
            position = cursor.position(project.id)
            if config.full_refresh or position.watermark is None:
                producers += _windows(client, project, config, cursor.hi, width)
                sweep = True
            else:
                sweep = cursor.sweep_due(project.id)
                conditions, label = _touched(project, cursor, position.watermark, sweep)
                producers.append(_walk(client, project, conditions, config, width, label))
            if config.end_date is None:  # a stateless window (a backfill's) leaves the cursor as it is
                cursor.advance(project.id, swept=sweep)
        yield from interleave(producers, config.workers)
        cursor.commit()

    return sessions


def _touched(project: Project, cursor: IngestionCursor, watermark: pendulum.DateTime,
             sweep: bool) -> tuple[tuple[str, ...], str]:
    """Which sessions an incremental run re-reads: those of the events ingested since it last looked.

    - Between sweeps: the events ingested since the watermark (minus the overlap) whose `timestamp` is within
      `max_lateness` of it (the bound the events' own read has, so partitions are pruned). Their sessions
      start at most MAX_SESSION before them, which bounds `$start_timestamp` too.
    - When the late sweep is due: the events ingested since the last sweep, whatever their `timestamp`, in
      one read (so no session is read twice in one load, and none falls between two bounds: a session joined
      by a very late event may start on either side of any bound on `timestamp`).
    A session that a very late event joined is therefore re-read by the next sweep at the latest."""
    config, hi = cursor.config, cursor.hi
    since = watermark - config.ingestion_overlap
    if not sweep:
        conditions = (f"session_id IN ({events_since(config, since, hi, '`$session_id`')})",
                      f"`$start_timestamp` >= {utc_literal(since - config.max_lateness - MAX_SESSION)}")
        return conditions, f"project {project.id} with events ingested since {since.isoformat()}"
    frm = cursor.sweep_from(project.id) or since
    ingested = " AND ".join(range_condition("created_at", frm, hi))
    conditions = (f"session_id IN (SELECT `$session_id` FROM events WHERE {ingested})",)
    return conditions, f"project {project.id} sweep: sessions of every event ingested since {frm.isoformat()}"


def _walk(client: PostHogClient, project: Project, conditions: Sequence[str], config: SourceSettings,
          width: RowWidth, label: str) -> Producer:
    def run() -> Iterator[pa.Table]:
        logger.info("reading sessions: %s", label)
        yield from table_pages(client, project, hogql.SESSIONS, conditions, config.page_size, label, width)

    return run


def _windows(client: PostHogClient, project: Project, config: SourceSettings, hi: pendulum.DateTime,
             width: RowWidth) -> list[Producer]:
    """A first read of every session, in windows of `$start_timestamp` that follow a per-day count."""
    start = "`$start_timestamp`"
    counts = hogql.count_by_day(client, project, range_condition(start, config.start_date, config.end_date or hi),
                                "sessions per day", table="sessions", instant=start)
    if not counts:
        return []
    lo = config.start_date or counts[0][0]
    top = config.end_date or hi
    buckets = split_windows(lo, top, config.window.total_seconds())
    producers = []
    for w_lo, w_hi in group_windows(buckets, counts, settings.WINDOW_TARGET_ROWS):
        label = f"project {project.id} started [{w_lo.isoformat()}, {w_hi.isoformat()})"
        producers.append(_walk(client, project, range_condition(start, w_lo, w_hi), config, width, label))
    return producers


COHORT_PEOPLE_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "cohort_id": {"data_type": "bigint", "nullable": False},
    "person_id": {"data_type": "text", "nullable": False},
    **SENTINEL_HINTS,
}


def cohort_people_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings,
                           failures: TableFailures | None = None) -> DltResource:
    @dlt.resource(name="cohort_people", primary_key=("project_id", "cohort_id", "person_id"),
                  columns=COHORT_PEOPLE_COLUMNS, merge_key="project_id", write_disposition=SNAPSHOT_DISPOSITION)
    def cohort_people() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from guarded("cohort_people", lambda: read(projects), failures)

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        yield from interleave([_membership(client, project, config) for project in projects], config.workers)

    return cohort_people


def _membership(client: PostHogClient, project: Project, config: SourceSettings) -> Producer:
    """Dynamic cohorts from `cohort_people`, which PostHog already serves at each cohort's current version
    (calculated, non-deleted cohorts only; it has no `version` column: posthog/hogql/database/schema/
    cohort_people.py), then static cohorts from `static_cohort_people`. One snapshot of the project."""

    def run() -> Iterator[pa.Table]:
        width = RowWidth(config.page_bytes)

        def pages() -> Iterator[pa.Table]:
            for table, kind in ((hogql.COHORT_PEOPLE, "dynamic"), (hogql.STATIC_COHORT_PEOPLE, "static")):
                label = f"project {project.id} {kind} cohorts"
                logger.info("reading cohort_people: %s", label)
                yield from table_pages(client, project, table, (), config.page_size, label, width)

        yield from arrow_snapshot(pages(), project.id, hogql.COHORT_PEOPLE.schema, ["cohort_id", "person_id"])

    return run
