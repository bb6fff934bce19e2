"""`persons` and `person_distinct_ids`: who the events belong to, kept current the way PostHog changes them.

In PostHog a person changes through events: `$set`/`$set_once`/`$unset` properties, merges on `$identify`,
`$create_alias` and `$merge_dangerously` (docs/posthog-api.md). HogQL's `persons` has no change time, so an
incremental run re-reads, besides the persons created since the last run, every person *of the events
ingested since then* (a sub-query over those events, bounded on `timestamp` like the events' own read), and
the distinct ids of those persons and events, merged on the key. Deleting a person emits no event, so:
- persons deleted (or merged away) in PostHog are removed at most every `late_sweep` (one query over the ids
  of deleted persons in `raw_persons`), and by a full refresh;
- `person_distinct_ids` is re-read whole at the same pace (two narrow columns), so ids of deleted persons go.
A first run, a full refresh and a new project read the table whole and replace each project's rows.
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
from posthog_source.hogql import HogQLTable, RowWidth, range_condition, table_pages
from posthog_source.incremental import EVENTS_OF_KEYS, IngestionCursor
from posthog_source.parallel import interleave
from posthog_source.projects import Project, ProjectCatalog
from posthog_source.snapshot import (
    SENTINEL_HINTS,
    SNAPSHOT_DISPOSITION,
    arrow_snapshot,
    deletions,
    replacing_projects,
    with_sentinel_column,
)

logger = logging.getLogger("posthog_source")

Producer = Callable[[], Iterator[pa.Table]]


def events_since(config: SourceSettings, lo: pendulum.DateTime, hi: pendulum.DateTime, column: str) -> str:
    """`SELECT <column> FROM events` ingested in [lo, hi), bounded on `timestamp` as the events' own read
    is (PostHog partitions by it), for use in `... IN (<this>)`."""
    skew = timedelta(hours=settings.FUTURE_TIMESTAMP_SKEW_HOURS)
    bounds = (range_condition("created_at", lo, hi)
              + range_condition("timestamp", lo - config.max_lateness, hi + skew))
    return f"SELECT {column} FROM events WHERE {' AND '.join(bounds)}"


class _Run:
    """What one run of a persons-like resource decides: read whole (replace each project) or by change; its
    positions are the ingestion cursor's (posthog_source/incremental.py)."""

    def __init__(self, config: SourceSettings, projects: Sequence[Project], full: bool) -> None:
        self.projects = projects
        self.cursor = IngestionCursor(EVENTS_OF_KEYS, config)
        self.hi = self.cursor.hi
        self.whole = full or any(self.cursor.position(p.id).watermark is None for p in projects)

    def since(self, project: Project) -> pendulum.DateTime:
        return self.cursor.since(project.id) or self.hi  # every project has a watermark unless `whole`

    def sweep_due(self, project: Project) -> bool:
        return self.cursor.sweep_due(project.id)

    def finish(self, swept: set[int]) -> None:
        for project in self.projects:
            self.cursor.advance(project.id, swept=self.whole or project.id in swept)
        self.cursor.commit()


def _pages(client: PostHogClient, project: Project, table: HogQLTable, conditions: Sequence[str],
           config: SourceSettings, width: RowWidth, label: str) -> Iterator[pa.Table]:
    return table_pages(client, project, table, conditions, config.page_size, label, width)


def _emit(producers: list[Producer], config: SourceSettings, whole: bool) -> Iterator[pa.Table]:
    first = True
    for item in interleave(producers, config.workers):
        yield replacing_projects(item, whole) if first else item
        first = False


PERSON_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "id": {"data_type": "text", "nullable": False},
    "created_at": {"data_type": "timestamp", "timezone": True},
    "properties": {"data_type": "json"},
    "is_identified": {"data_type": "bool"},
    **SENTINEL_HINTS,
}


def persons_resource(client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings,
                     failures: TableFailures | None = None) -> DltResource:
    """Persons: new ones, those whose events arrived since the last run, deleted ones at sweep pace."""

    @dlt.resource(name="persons", primary_key=("project_id", "id"), columns=PERSON_COLUMNS,
                  write_disposition=SNAPSHOT_DISPOSITION)
    def persons() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from guarded("persons", lambda: read(projects), failures)

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        run = _Run(config, projects, config.full_refresh or config.persons_full_refresh)
        width = RowWidth(config.page_bytes)
        schema = with_sentinel_column(hogql.PERSONS.schema.empty_table()).schema
        producers: list[Producer] = []
        swept: set[int] = set()
        for project in projects:
            if run.whole:
                logger.info("reading persons: project %s (all)", project.id)
                producers.append(_whole(client, project, config, width))
                continue
            since = run.since(project)
            touched = (f"(created_at >= {hogql.utc_literal(since)} OR "
                       f"id IN ({events_since(config, since, run.hi, 'person_id')}))")
            label = f"project {project.id} created or with events since {since.isoformat()}"
            logger.info("reading persons: %s", label)
            producers.append(_changed(client, project, hogql.PERSONS_BY_ID, [touched], config, width, label))
            if run.sweep_due(project):
                swept.add(project.id)
                producers.append(_deleted(client, project, config, schema))
        yield from _emit(producers, config, run.whole)
        run.finish(swept)

    return persons


def _whole(client: PostHogClient, project: Project, config: SourceSettings, width: RowWidth) -> Producer:
    def run() -> Iterator[pa.Table]:
        pages = _pages(client, project, hogql.PERSONS_BY_ID, (), config, width, f"project {project.id} (all)")
        yield from arrow_snapshot(pages, project.id, hogql.PERSONS.schema, ["id"])

    return run


def _changed(client: PostHogClient, project: Project, table: HogQLTable, conditions: Sequence[str],
             config: SourceSettings, width: RowWidth, label: str) -> Producer:
    def run() -> Iterator[pa.Table]:
        for page in _pages(client, project, table, conditions, config, width, label):
            yield with_sentinel_column(page)

    return run


def _deleted(client: PostHogClient, project: Project, config: SourceSettings, schema: pa.Schema) -> Producer:
    """Ids of persons PostHog deleted (or merged away): rows that delete them from `persons`."""

    def run() -> Iterator[pa.Table]:
        found = 0
        for page in _pages(client, project, hogql.DELETED_PERSONS, ["is_deleted = 1"], config, RowWidth(),
                           f"project {project.id} deleted"):
            found += page.num_rows
            yield deletions(page, schema)
        logger.info("persons: project %s has %d deleted persons, removed if loaded", project.id, found)

    return run


DISTINCT_ID_COLUMNS: TTableSchemaColumns = {
    "project_id": {"data_type": "bigint", "nullable": False},
    "distinct_id": {"data_type": "text", "nullable": False},
    **SENTINEL_HINTS,
}


def person_distinct_ids_resource(
    client: PostHogClient, catalog: ProjectCatalog, config: SourceSettings, failures: TableFailures | None = None
) -> DltResource:
    """Every distinct id and its person: by change between sweeps, whole at sweep pace."""

    @dlt.resource(name="person_distinct_ids", primary_key=("project_id", "distinct_id"),
                  columns=DISTINCT_ID_COLUMNS, write_disposition=SNAPSHOT_DISPOSITION)
    def person_distinct_ids() -> Iterator[pa.Table]:
        projects = catalog.projects()
        yield from guarded("person_distinct_ids", lambda: read(projects), failures)

    def read(projects: Sequence[Project]) -> Iterator[pa.Table]:
        full = config.full_refresh or config.persons_full_refresh
        run = _Run(config, projects, full)
        run.whole = run.whole or any(run.sweep_due(p) for p in projects)
        width = RowWidth(config.page_bytes)
        table = hogql.PERSON_DISTINCT_IDS
        producers: list[Producer] = []
        for project in projects:
            if run.whole:
                logger.info("reading person_distinct_ids: project %s (all)", project.id)
                pages = _pages(client, project, table, (), config, width, f"project {project.id} (all)")
                producers.append(_snapshot_of(pages, project, table))
                continue
            since = run.since(project)
            changed = (
                f"(distinct_id IN ({events_since(config, since, run.hi, 'distinct_id')}) OR "
                f"person_id IN ({events_since(config, since, run.hi, 'person_id')}) OR "
                f"person_id IN (SELECT id FROM persons WHERE created_at >= {hogql.utc_literal(since)}))"
            )
            label = f"project {project.id} of persons changed since {since.isoformat()}"
            logger.info("reading person_distinct_ids: %s", label)
            producers.append(_changed(client, project, table, [changed], config, width, label))
        yield from _emit(producers, config, run.whole)
        run.finish({p.id for p in projects} if run.whole else set())

    return person_distinct_ids


def _snapshot_of(pages: Iterator[pa.Table], project: Project, table: HogQLTable) -> Producer:
    def run() -> Iterator[pa.Table]:
        yield from arrow_snapshot(pages, project.id, table.schema, [table.tie_breaker])

    return run
