"""`sessions` and `cohort_people`: two HogQL tables users ask for that PostHog computes from other data.

- `sessions` (one row per `session_id`) is aggregated from events, so a session changes while its events
  arrive. The first run reads every session in windows of `$start_timestamp` (sized by a per-day count);
  later runs re-read the sessions of the events ingested since the last run (plus the overlap), merged on
  (project_id, session_id). A session starts at most a day before its events (PostHog cuts sessions at 24 h),
  so the re-read is bounded on `$start_timestamp` as well; at the late sweep's pace, the sessions of very
  late events (older than `max_lateness`) are re-read too.
- `cohort_people` is each cohort's membership as PostHog last calculated it: dynamic cohorts from
  `cohort_people` at each cohort's newest `version` (older versions linger until PostHog cleans them up),
  static cohorts from `static_cohort_people`. It is a snapshot per project, so people who left a cohort
  disappear.
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
from posthog_source.hogql import RowWidth, range_condition, table_pages, utc_literal
from posthog_source.parallel import interleave
from posthog_source.persons import events_since
from posthog_source.projects import Project, ProjectCatalog
from posthog_source.snapshot import (
    SENTINEL_HINTS,
    SNAPSHOT_DISPOSITION,
    UPSERT_DISPOSITION,
    arrow_snapshot,
    skip_when_denied,
)
from posthog_source.watermarks import Marks
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


def sessions_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings) -> DltResource:
    @dlt.resource(name="sessions", primary_key=("project_id", "session_id"), columns=SESSION_COLUMNS,
                  write_disposition=UPSERT_DISPOSITION)
    def sessions() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from skip_when_denied("sessions", lambda: read(projects))

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        marks = Marks("events_watermark")
        swept = Marks("swept_at")
        swept_to = Marks("swept_to")
        now = pendulum.now("UTC")
        hi = now - config.ingestion_lag
        width = RowWidth(config.page_bytes)
        producers: list[Producer] = []
        for project in projects:
            mark = None if config.full_refresh else marks.get(project.id)
            if mark is None:
                producers += _windows(client, project, config, hi, width)
                swept.stage(project.id, now)
                swept_to.stage(project.id, hi)
            else:
                since = mark - config.ingestion_overlap
                touched = (f"session_id IN ({events_since(config, since, hi, '`$session_id`')})",
                           f"`$start_timestamp` >= {utc_literal(since - config.max_lateness - MAX_SESSION)}")
                label = f"project {project.id} with events ingested since {since.isoformat()}"
                producers.append(_walk(client, project, touched, config, width, label))
                last = swept.get(project.id)
                if last is None or now - last >= config.late_sweep:  # sessions of very late events
                    frm = (swept_to.get(project.id) or mark) - config.ingestion_overlap
                    # disjoint from the read above (one row per key in a load): sessions starting before it
                    late = (f"session_id IN (SELECT `$session_id` FROM events WHERE "
                            f"{' AND '.join(range_condition('created_at', frm, hi))} AND timestamp < "
                            f"{utc_literal(since - config.max_lateness)})",
                            f"`$start_timestamp` < {utc_literal(since - config.max_lateness - MAX_SESSION)}")
                    producers.append(_walk(client, project, late, config, width,
                                           f"project {project.id} sweep: sessions of very late events"))
                    swept.stage(project.id, now)
                    swept_to.stage(project.id, hi)
            if config.end_date is None:
                marks.stage(project.id, hi)
        yield from interleave(producers, config.workers)
        for staged in (marks, swept, swept_to):
            staged.commit()

    return sessions


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
# Cohorts named in one membership query (each adds a condition to its text).
COHORTS_PER_QUERY = 100


def cohort_people_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings) -> DltResource:
    @dlt.resource(name="cohort_people", primary_key=("project_id", "cohort_id", "person_id"),
                  columns=COHORT_PEOPLE_COLUMNS, merge_key="project_id", write_disposition=SNAPSHOT_DISPOSITION)
    def cohort_people() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from skip_when_denied("cohort_people", lambda: read(projects))

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        yield from interleave([_membership(client, project, config) for project in projects], config.workers)

    return cohort_people


def _membership(client: PostHogClient, project: Project, config: SourceSettings) -> Producer:
    def run() -> Iterator[pa.Table]:
        versions = client.post(
            hogql.query_path(project),
            hogql.query_body("SELECT cohort_id, max(version) FROM cohort_people GROUP BY cohort_id "
                             f"ORDER BY cohort_id LIMIT {settings.HOGQL_MAX_ROWS}", "cohort versions"),
            what=f"cohort versions of project {project.id}",
        ).get("results") or []
        keys = ["cohort_id", "person_id"]
        yield from arrow_snapshot(_members(client, project, config, versions), project.id,
                                  hogql.COHORT_PEOPLE.schema, keys)

    return run


def _members(client: PostHogClient, project: Project, config: SourceSettings,
             versions: Sequence[Sequence[int]]) -> Iterator[pa.Table]:
    """Dynamic cohorts at their newest version (COHORTS_PER_QUERY per query), then static cohorts."""
    width = RowWidth(config.page_bytes)
    walks = []
    for first in range(0, len(versions), COHORTS_PER_QUERY):
        chunk = versions[first:first + COHORTS_PER_QUERY]
        which = " OR ".join(f"(cohort_id = {int(c)} AND version = {int(v)})" for c, v in chunk)
        label = f"project {project.id} cohorts {chunk[0][0]}..{chunk[-1][0]}"
        walks.append((hogql.COHORT_PEOPLE, [f"({which})"], label))
    walks.append((hogql.STATIC_COHORT_PEOPLE, [], f"project {project.id} static cohorts"))
    for table, conditions, label in walks:
        logger.info("reading cohort_people: %s", label)
        yield from table_pages(client, project, table, conditions, config.page_size, label, width)
