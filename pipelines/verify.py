"""`posthog-pipeline verify [--repair]`: is the destination exact? Proven against PostHog's own counts.

Per project and UTC day of `timestamp`, PostHog's event count (one grouped HogQL count per project, bounded on
`timestamp`, PostHog's partition key, so it scans two columns of the range only) is compared with the
destination's count, read through dlt (`pipeline.sql_client()` for SQL destinations, `pipeline.dataset()` for
parquet files). Persons are compared by count per project. Nothing is written unless `repair` is asked:
then each differing project-day is re-read (a stateless window run merged on (project_id, uuid), which adds
what is missing), the rows PostHog no longer holds are deleted (their uuids are found by comparing the day's
uuids on both sides), and the check runs again.

A count per day cannot see a day where one row is missing and another is extra; such a day is rare (an
extra row needs a deletion in PostHog on the same day as a loss in the destination) and `--repair` fixes it
whenever that day differs in count.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pendulum

from pipelines.destinations import lake
from pipelines.destinations.duckdb import default_duckdb_file
from pipelines.runner import (
    RunOptions,
    committed_resources_state,
    destination_lock,
    make_pipeline,
    run,
)
from posthog_source import hogql, settings
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings, check_range
from posthog_source.errors import ConfigurationError
from posthog_source.hogql import range_condition, string_literal
from posthog_source.projects import Project, discover_projects

log = logging.getLogger("pipelines")

# Rows of one comparison slice when repairing: PostHog's uuids of a slice are held in memory (about 100 bytes
# each), so a day larger than this is cut into equal time slices.
REPAIR_SLICE_ROWS = 500_000
UUID_PAGE_SIZE = settings.HOGQL_MAX_ROWS  # uuids per HogQL query (PostHog's maximum page)
_DELETE_CHUNK = 1_000  # uuids per DELETE statement

DayKey = tuple[int, date]  # (project_id, UTC day)


@dataclass(frozen=True, order=True)
class DayDifference:
    """One project-day whose event counts differ."""

    project_id: int
    day: date
    posthog: int
    destination: int

    @property
    def difference(self) -> int:
        """Destination minus PostHog: negative means events are missing, positive means extra rows."""
        return self.destination - self.posthog


@dataclass(frozen=True, order=True)
class PersonsDifference:
    project_id: int
    posthog: int
    destination: int

    @property
    def difference(self) -> int:
        return self.destination - self.posthog


def diff_counts(posthog: Mapping[DayKey, int], destination: Mapping[DayKey, int]) -> list[DayDifference]:
    """The project-days whose counts differ, sorted by project and day. A day absent on one side counts 0 there
    (PostHog's grouped count omits empty days, and so does the destination's)."""
    keys = set(posthog) | set(destination)
    return sorted(
        DayDifference(project_id, day, posthog.get((project_id, day), 0), destination.get((project_id, day), 0))
        for project_id, day in keys
        if posthog.get((project_id, day), 0) != destination.get((project_id, day), 0)
    )


def diff_person_counts(posthog: Mapping[int, int], destination: Mapping[int, int]) -> list[PersonsDifference]:
    keys = set(posthog) | set(destination)
    return sorted(
        PersonsDifference(p, posthog.get(p, 0), destination.get(p, 0))
        for p in keys
        if posthog.get(p, 0) != destination.get(p, 0)
    )


# -- what the pipeline has promised to hold ----------------------------------------------------------
@dataclass(frozen=True)
class Promise:
    """What the last committed run of a project promised to hold, from its marks (committed with the data):
    every event ingested before `watermark` minus `ingestion_overlap` (a row can become queryable after its
    `created_at`: the next run reads that stretch again), except those ingested since `late_since` whose
    `timestamp` is before `late_before` (older than `max_lateness` at that run): they wait for the late sweep."""

    watermark: pendulum.DateTime
    settled: pendulum.DateTime  # watermark minus the overlap
    late_since: pendulum.DateTime
    late_before: pendulum.DateTime
    next_sweep: pendulum.DateTime | None  # at or after this instant, the next run sweeps


@dataclass(frozen=True)
class DayCounts:
    """PostHog's events of one project-day, by what the pipeline promised of them."""

    promised: int  # ingested before the watermark's overlap, not waiting for the sweep: must be in the destination
    waiting: int = 0  # in the overlap, or old and ingested since the last sweep: loaded or not, either is right
    later: int = 0  # ingested at or after the watermark: the next run reads them

    @property
    def most(self) -> int:
        return self.promised + self.waiting


@dataclass
class Pending:
    """Rows the destination does not hold yet, on purpose (reported, never a difference)."""

    ingested_after: int = 0  # events ingested after the last run's watermark (ingestion_lag included)
    waiting_for_sweep: int = 0  # events in the last run's overlap, or older than max_lateness since the sweep
    next_sweep: pendulum.DateTime | None = None
    persons_new: int = 0  # persons created after the last run
    persons_deleted: int = 0  # persons PostHog deleted or merged away, removed by the next sweep

    def __bool__(self) -> bool:
        return bool(self.ingested_after or self.waiting_for_sweep or self.persons_new or self.persons_deleted)


def _instant(value: Any) -> pendulum.DateTime | None:
    return pendulum.parse(str(value)).in_timezone("UTC") if value else None  # type: ignore[union-attr]


def promises(marks: Mapping[str, Any], config: SourceSettings) -> dict[int, Promise]:
    """Each project's promise, from the events marks the destination holds (none for stateless windows)."""
    found: dict[int, Promise] = {}
    for project, value in (marks.get("created_at_watermark") or {}).items():
        watermark = _instant(value)
        if watermark is None:
            continue
        swept_to = _instant((marks.get("late_swept_to") or {}).get(project)) or watermark
        swept_at = _instant((marks.get("late_swept_at") or {}).get(project))
        found[int(project)] = Promise(watermark, watermark - config.ingestion_overlap,
                                      swept_to - config.ingestion_overlap,
                                      watermark - config.max_lateness,
                                      swept_at + config.late_sweep if swept_at is not None else None)
    return found


def judge_days(posthog: Mapping[DayKey, DayCounts], destination: Mapping[DayKey, int],
               pending: Pending) -> list[DayDifference]:
    """The project-days that really differ: fewer rows than promised, or more than PostHog holds (rows
    ingested after the last run may be there already: a repair or a backfill reads them). What lies between is
    pending by design and is added to `pending`."""
    differences = []
    for key in sorted(set(posthog) | set(destination)):
        counts, held = posthog.get(key, DayCounts(0)), destination.get(key, 0)
        if held < counts.promised:
            differences.append(DayDifference(key[0], key[1], counts.promised, held))
        elif held > counts.most + counts.later:
            differences.append(DayDifference(key[0], key[1], counts.most + counts.later, held))
        else:
            pending.waiting_for_sweep += max(0, counts.most - held)
            pending.ingested_after += counts.later - max(0, held - counts.most)
    return differences


@dataclass
class VerifyOptions:
    """`run` names the pipeline, destination and dataset as `posthog-pipeline run` would, and carries the
    source's settings (api_key, host, project_ids, ingestion_lag...), its client factory and its clock. The
    range compared is `start_date`/`end_date` here, not the settings' bounds."""

    run: RunOptions = field(default_factory=RunOptions)
    start_date: pendulum.DateTime | None = None  # default: the first UTC day the destination holds
    end_date: pendulum.DateTime | None = None  # default: now minus ingestion_lag
    repair: bool = False
    # Compare with what the pipeline has promised to hold (its committed marks); False compares with every
    # row PostHog holds (rows the pipeline leaves for later then show as differences).
    promised: bool = True
    # uuids per HogQL query, and rows per time slice of a day compared uuid by uuid when repairing: PostHog's
    # page and what memory allows by default; a test makes them small so one day spans many of each.
    uuid_page_size: int = UUID_PAGE_SIZE
    repair_slice_rows: int = REPAIR_SLICE_ROWS


@dataclass
class VerifyReport:
    start: pendulum.DateTime
    end: pendulum.DateTime
    project_ids: list[int]
    days_compared: int
    events: list[DayDifference]
    persons: list[PersonsDifference] | None  # None: the destination has no persons table
    queries: int  # HogQL queries sent to PostHog
    read_bytes: int | None  # bytes PostHog reports having read, when it reports them
    notes: list[str] = field(default_factory=list)
    pending: Pending = field(default_factory=Pending)  # rows left for later on purpose: not differences

    @property
    def equal(self) -> bool:
        return not self.events and not self.persons


@dataclass
class RepairSummary:
    windows_reread: int = 0
    rows_loaded: int = 0
    rows_deleted: int = 0
    queries: int = 0  # uuid queries sent by the repair itself
    # The re-read runs use their own client: one count query per window plus one per page of 50,000 events
    # (a page that comes back full costs one more query to learn it was the last).
    reread_queries: int = 0
    projects_persons: int = 0  # projects whose persons (and distinct ids) were re-read whole
    persons_reread: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class VerifyOutcome:
    first: VerifyReport
    repair: RepairSummary | None = None
    after: VerifyReport | None = None

    @property
    def equal(self) -> bool:
        return (self.after or self.first).equal


# -- PostHog side ----------------------------------------------------------------------------------
class _PostHog:
    """The verify's HogQL queries, each named `posthog-dlt verify ...`, forced past PostHog's result cache."""

    def __init__(self, client: PostHogClient, uuid_page_size: int = UUID_PAGE_SIZE) -> None:
        self.client = client
        self.uuid_page_size = uuid_page_size
        self.queries = 0
        self.read_bytes: int | None = None

    def query(self, project: Project, query: str, name: str) -> dict[str, Any]:
        response = self.client.post(hogql.query_path(project), hogql.query_body(query, f"verify {name}"),
                                    what=f"{name} of project {project.id}")
        self.queries += 1
        read = _read_bytes(response)
        if read is not None:
            self.read_bytes = (self.read_bytes or 0) + read
        return response

    def events_per_day(self, project: Project, lo: pendulum.DateTime, hi: pendulum.DateTime,
                       promise: Promise | None = None) -> dict[DayKey, DayCounts]:
        """Events per UTC day of `timestamp`; with a promise, split by what it promised (one query either way,
        reading two columns of the range)."""
        if promise is None:
            counts = hogql.count_by_day(self.client, project, range_condition("timestamp", lo, hi),
                                        "verify events per day")
            self.queries += 1
            return {(project.id, day.date()): DayCounts(n) for day, n in counts}
        before = hogql.utc_literal(promise.watermark)
        late = (f"created_at >= {hogql.utc_literal(promise.late_since)} AND "
                f"timestamp < {hogql.utc_literal(promise.late_before)}")
        waiting = f"(created_at >= {hogql.utc_literal(promise.settled)} OR ({late}))"
        query = (f"SELECT toString(toDate(toTimeZone(timestamp, 'UTC'))) AS day, "
                 f"countIf(created_at < {before} AND NOT {waiting}) AS promised, "
                 f"countIf(created_at < {before} AND {waiting}) AS waiting, "
                 f"countIf(created_at >= {before}) AS later FROM events "
                 f"WHERE {' AND '.join(range_condition('timestamp', lo, hi))} GROUP BY day ORDER BY day "
                 f"LIMIT {settings.HOGQL_MAX_ROWS}")
        rows = self.query(project, query, "events per day by promise").get("results") or []
        return {(project.id, pendulum.parse(str(day)).date()): DayCounts(int(a), int(b), int(c))
                for day, a, b, c in rows}

    def persons(self, project: Project) -> int:
        rows = self.query(project, "SELECT count() FROM persons", "persons count").get("results") or [[0]]
        return int(rows[0][0])

    def persons_by_promise(self, project: Project, watermark: pendulum.DateTime) -> tuple[int, int, int]:
        """Persons created before the last run, all persons, and persons ever deleted (merged away included)."""
        rows = self.query(project, f"SELECT countIf(created_at < {hogql.utc_literal(watermark)}), count() "
                                   "FROM persons", "persons count").get("results") or [[0, 0]]
        deleted = self.query(project, "SELECT count(DISTINCT id) FROM raw_persons WHERE is_deleted = 1",
                             "deleted persons count").get("results") or [[0]]
        return int(rows[0][0] or 0), int(rows[0][1] or 0), int(deleted[0][0] or 0)  # or 0: no rows at all

    def uuids(self, project: Project, lo: pendulum.DateTime,
              hi: pendulum.DateTime) -> Iterator[tuple[str, pendulum.DateTime]]:
        """Every event uuid of the project in [lo, hi) with its `timestamp`, in keyset pages on the uuid (no
        OFFSET with a personal key), each query bounded on `timestamp`."""
        bounds = range_condition("timestamp", lo, hi)
        page_size = self.uuid_page_size
        after: str | None = None
        while True:
            where = bounds + ([f"toString(uuid) > {string_literal(after)}"] if after is not None else [])
            response = self.query(
                project,
                f"SELECT toString(uuid) AS uuid, toString(toTimeZone(timestamp, 'UTC')) AS ts FROM events "
                f"WHERE {' AND '.join(where)}"
                f" ORDER BY toString(uuid) ASC LIMIT {page_size}",
                "event uuids",
            )
            rows = response.get("results") or []
            for uuid, instant in rows:
                yield str(uuid), pendulum.parse(str(instant), tz="UTC").in_timezone("UTC")  # type: ignore[union-attr]
            effective = min(page_size, int(response.get("limit") or page_size))
            if not rows or (len(rows) < effective and not response.get("hasMore")):
                return
            after = str(rows[-1][0])


def _read_bytes(response: Mapping[str, Any]) -> int | None:
    """Bytes PostHog read for a query, from the response's `query_status.query_progress.bytes_read` (PostHog's
    ClickhouseQueryProgress) when it is there; None when it is not reported."""
    status = response.get("query_status")
    progress = status.get("query_progress") if isinstance(status, Mapping) else None
    value = progress.get("bytes_read") if isinstance(progress, Mapping) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# -- destination side ------------------------------------------------------------------------------
class _Destination:
    """The destination's counts in SQL that DuckDB and PostgreSQL both read (and dlt's dataset access, which
    runs DuckDB over parquet files). Parquet files are append-only (merges become appends), so there rows are
    counted by distinct key."""

    def __init__(self, fetch: Callable[[str], Sequence[Sequence[Any]]], table: Callable[[str], str],
                 append_only: bool, tables: set[str] | None = None) -> None:
        self._fetch = fetch
        self._table = table
        self.append_only = append_only
        self._tables = tables  # known table names (dataset access); None: ask the database

    def has_table(self, name: str) -> bool:
        if self._tables is not None:
            return name in self._tables
        try:
            self._fetch(f"SELECT 1 FROM {self._table(name)} WHERE 1 = 0")
        except Exception as exc:  # noqa: BLE001 - dlt raises DatabaseUndefinedRelation, wrapped variously
            if "Undefined" in type(exc).__name__ or "does not exist" in str(exc) or "not found" in str(exc).lower():
                return False
            raise
        return True

    def min_timestamp(self, project_ids: Sequence[int]) -> pendulum.DateTime | None:
        rows = self._fetch(f'SELECT min("timestamp") FROM {self._table("events")} WHERE {_in(project_ids)}')
        value = rows[0][0] if rows else None
        return pendulum.instance(value).in_timezone("UTC") if value is not None else None

    def events_per_day(self, project_ids: Sequence[int], lo: pendulum.DateTime,
                       hi: pendulum.DateTime) -> dict[DayKey, int]:
        counted = "count(DISTINCT uuid)" if self.append_only else "count(*)"
        rows = self._fetch(
            f"""SELECT project_id, CAST("timestamp" AT TIME ZONE 'UTC' AS DATE) AS day, {counted}
            FROM {self._table("events")} WHERE {_in(project_ids)} AND {_between(lo, hi)} GROUP BY 1, 2"""
        )
        return {(int(p), _as_date(day)): int(n) for p, day, n in rows}

    def persons(self, project_ids: Sequence[int]) -> dict[int, int]:
        table = self._table("persons")
        if self.append_only:  # parquet files: the reading rule (snapshots, latest row per key, no flagged rows)
            files = f"(SELECT *, CAST(NULL AS VARCHAR) AS filename FROM {table})"
            table = f"({lake.current_rows_sql(files, ['project_id', 'id'], True, True)})"
        rows = self._fetch(
            f"SELECT project_id, count(DISTINCT id) FROM {table} AS current_persons"
            f" WHERE {_in(project_ids)} AND id IS NOT NULL GROUP BY 1"
        )
        return {int(p): int(n) for p, n in rows}

    def uuids(self, project_id: int, lo: pendulum.DateTime, hi: pendulum.DateTime) -> set[str]:
        rows = self._fetch(
            f"SELECT uuid FROM {self._table('events')} WHERE project_id = {int(project_id)} AND {_between(lo, hi)}"
        )
        return {str(r[0]) for r in rows}


def _in(project_ids: Sequence[int]) -> str:
    return f"project_id IN ({', '.join(str(int(p)) for p in project_ids)})"


def _instant_sql(instant: pendulum.DateTime) -> str:
    """A timestamptz literal DuckDB and PostgreSQL read alike (built from an instant, never from user text)."""
    text = instant.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss.SSSSSS")
    return f"CAST('{text}+00:00' AS TIMESTAMP WITH TIME ZONE)"


def _between(lo: pendulum.DateTime, hi: pendulum.DateTime) -> str:
    return f'"timestamp" >= {_instant_sql(lo)} AND "timestamp" < {_instant_sql(hi)}'


def _as_date(value: Any) -> date:
    """A DATE as the database driver returns it (a date, or text from some drivers)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pendulum.parse(str(value)).date()


class _Opened:
    """The destination opened through dlt for one verify or repair."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        if options.destination == "duckdb":
            path = options.duckdb_path or default_duckdb_file()
            if not os.path.exists(path):
                raise ConfigurationError(
                    f"no destination data: the DuckDB file {path} does not exist; run `posthog-pipeline run` "
                    "first (or point DESTINATION__DUCKDB__CREDENTIALS at your file)"
                )
        self.pipeline = make_pipeline(options)
        self._client: Any = None

    def __enter__(self) -> _Destination:
        if self.options.destination == "filesystem":
            if not self.pipeline.default_schema_name:
                self._restore_schema()
            dataset = self.pipeline.dataset()
            tables = set(dataset.tables)

            def fetch_dataset(sql: str) -> Sequence[Sequence[Any]]:
                return dataset.query(sql).fetchall()

            return _Destination(fetch_dataset, lambda name: name, append_only=True, tables=tables)
        self._client = self.pipeline.sql_client()
        client = self._client.__enter__()

        def fetch_sql(sql: str) -> Sequence[Sequence[Any]]:
            return client.execute_sql(sql) or []

        return _Destination(fetch_sql, client.make_qualified_table_name, append_only=False)

    def _restore_schema(self) -> None:
        """Parquet files are read through the schema dlt stored beside them: a machine without the pipeline's
        local folder restores it first (only the local folder is written)."""
        try:
            self.pipeline.sync_destination()
        except Exception as exc:  # noqa: BLE001 - nothing stored there: said as such below
            log.debug("could not restore the pipeline's schema from the destination: %s", exc)

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.__exit__(*exc)
            self._client = None

    @property
    def sql_client(self) -> Any:
        return self._client


# -- verify ----------------------------------------------------------------------------------------
def _settings(options: RunOptions) -> SourceSettings:
    return options.source_settings()


def _client(options: RunOptions) -> PostHogClient:
    return options.client_factory(_settings(options))


def _projects(client: PostHogClient, options: RunOptions) -> list[Project]:
    return [project for project, _ in discover_projects(client, _settings(options).project_ids)]


def _days(lo: pendulum.DateTime, hi: pendulum.DateTime) -> int:
    """UTC calendar days that [lo, hi) touches."""
    first = lo.in_timezone("UTC").date()
    last = (hi.in_timezone("UTC") - timedelta(microseconds=1)).date()
    return max(0, (last - first).days + 1)


def _range(options: VerifyOptions, destination: _Destination, ids: Sequence[int], where: str,
           has_events: bool) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """[start, end) compared: --start-date, else the configured start_date, else the destination's first UTC
    day; --end-date, else now minus ingestion_lag (what a run at this moment would have loaded)."""
    config = _settings(options.run)
    end = options.end_date or options.run.clock() - config.ingestion_lag
    start = options.start_date or config.start_date
    if start is None and has_events:
        first = destination.min_timestamp(ids)
        if first is None:
            raise ConfigurationError(
                f"no destination data: {where} holds no events of projects {_list(ids)}; run "
                "`posthog-pipeline run` first, or give --start-date to compare anyway"
            )
        start = first.start_of("day")
    start = start or end
    if has_events:
        check_range(start, end)
    return start, end


def _compare_events(posthog: _PostHog, destination: _Destination, projects: Sequence[Project],
                    start: pendulum.DateTime, end: pendulum.DateTime, promised: Mapping[int, Promise],
                    pending: Pending) -> list[DayDifference]:
    """One grouped count on the destination, one per project on PostHog, compared day by day: against what
    the pipeline promised to hold where its marks say (rows it leaves for later are pending, not missing)."""
    theirs = destination.events_per_day([p.id for p in projects], start, end)
    differences: list[DayDifference] = []
    for project in projects:
        promise = promised.get(project.id)
        ours = posthog.events_per_day(project, start, end, promise)
        mine = {k: n for k, n in theirs.items() if k[0] == project.id}
        found = judge_days(ours, mine, pending)
        if promise is not None and promise.next_sweep is not None:
            pending.next_sweep = min(pending.next_sweep or promise.next_sweep, promise.next_sweep)
        total = sum(c.most + c.later for c in ours.values())
        log.info("verify: project %d (%s): %d days, PostHog %s events (%s promised), destination %s, %d days differ",
                 project.id, project.name, _days(start, end), f"{total:,}",
                 f"{sum(c.promised for c in ours.values()):,}", f"{sum(mine.values()):,}", len(found))
        differences += found
    return differences


def _compare_persons(posthog: _PostHog, destination: _Destination, projects: Sequence[Project],
                     marks: Mapping[str, Any], lateness: timedelta, pending: Pending) -> list[PersonsDifference]:
    """Persons per project: those created before the last run's lateness bound must all be there (a person's
    `created_at` is the time of the event that created it, which may arrive late); persons created since, and
    deleted ones the next sweep removes (at most as many as PostHog ever deleted), are pending. A project
    without a watermark in `marks` (or no promise asked for: empty marks) is compared with every person."""
    theirs = destination.persons([p.id for p in projects])
    differences: list[PersonsDifference] = []
    for project in projects:
        held = theirs.get(project.id, 0)
        watermark = _instant(marks.get(str(project.id)))
        if watermark is None:
            total = posthog.persons(project)
            if held != total:
                differences.append(PersonsDifference(project.id, total, held))
            continue
        promised, total, deleted = posthog.persons_by_promise(project, watermark - lateness)
        if held < promised:
            differences.append(PersonsDifference(project.id, promised, held))
        elif held > total + deleted:
            differences.append(PersonsDifference(project.id, total + deleted, held))
        else:
            pending.persons_new += max(0, total - held)
            pending.persons_deleted += max(0, held - total)
    log.info("verify: persons of %d projects compared, %d differ", len(projects), len(differences))
    return differences


def verify(options: VerifyOptions, client: PostHogClient | None = None) -> VerifyReport:
    """Compare once; read-only. Raises ConfigurationError (exit 2) when the destination holds no data."""
    client = client or _client(options.run)
    queries_before = client.stats.by_class.get("query", 0)
    posthog = _PostHog(client)
    projects = _projects(client, options.run)
    if not projects:
        raise ConfigurationError("this key can read no PostHog project; check project_ids and the key's access")
    ids = [p.id for p in projects]
    where = f"destination '{options.run.destination}', dataset '{options.run.dataset_name}'"
    notes: list[str] = []
    with _Opened(options.run) as destination:
        has_events, has_persons = destination.has_table("events"), destination.has_table("persons")
        if not has_events and not has_persons:
            raise ConfigurationError(
                f"no destination data: {where} has no events or persons table; run `posthog-pipeline run` "
                "first, or check --destination, --dataset-name and --pipeline-name"
            )
        start, end = _range(options, destination, ids, where, has_events)
        pending = Pending()
        config = _settings(options.run)
        # the marks committed with the destination's data, read once (events' and persons')
        committed = committed_resources_state(options.run) if options.promised else {}
        events: list[DayDifference] = []
        if has_events:
            promised = promises(committed.get("events") or {}, config)
            events = _compare_events(posthog, destination, projects, start, end, promised, pending)
        else:
            notes.append(f"{where} has no events table: events not compared")
        persons: list[PersonsDifference] | None = None
        if has_persons:
            persons_marks = (committed.get("persons") or {}).get("events_watermark") or {}
            persons = _compare_persons(posthog, destination, projects, persons_marks, config.max_lateness, pending)
        else:
            notes.append(f"{where} has no persons table: persons not compared")
    return VerifyReport(
        start=start, end=end, project_ids=ids, days_compared=_days(start, end) * len(projects) if has_events else 0,
        events=events, persons=persons, queries=client.stats.by_class.get("query", 0) - queries_before,
        read_bytes=posthog.read_bytes, notes=notes, pending=pending,
    )


# -- repair ----------------------------------------------------------------------------------------
# Missing events closer than this in `timestamp` are re-read by one window.
REPAIR_GAP = timedelta(minutes=10)


def windows_around(instants: Iterable[pendulum.DateTime],
                   gap: timedelta = REPAIR_GAP) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """[first, last + 1 µs) windows that hold every instant, one per run of instants less than `gap` apart."""
    windows: list[tuple[pendulum.DateTime, pendulum.DateTime]] = []
    for instant in sorted(instants):
        if windows and instant - windows[-1][1] < gap:
            windows[-1] = (windows[-1][0], instant.add(microseconds=1))
        else:
            windows.append((instant, instant.add(microseconds=1)))
    return windows


def _slices(lo: pendulum.DateTime, hi: pendulum.DateTime, rows: int,
            slice_rows: int = REPAIR_SLICE_ROWS) -> list[tuple[pendulum.DateTime, pendulum.DateTime]]:
    """[lo, hi) cut into equal time slices of about `slice_rows` rows each."""
    parts = max(1, math.ceil(rows / slice_rows))
    step = (hi - lo) / parts
    edges = [lo + step * i for i in range(parts)] + [hi]
    return [(pendulum.instance(a), pendulum.instance(b)) for a, b in zip(edges, edges[1:], strict=False)]


def repair(options: VerifyOptions, report: VerifyReport, client: PostHogClient | None = None) -> RepairSummary:
    """Compare the uuids of each differing project-day, delete the destination's rows PostHog no longer holds,
    re-read the minutes around the missing ones; the persons (and distinct ids) of each project whose count
    differs are read whole, which replaces that project's rows (deleted persons leave)."""
    client = client or _client(options.run)
    posthog = _PostHog(client, options.uuid_page_size)
    summary = RepairSummary()
    _restore_local_state(options.run)
    config = _settings(options.run)
    windows = _remove_extra_rows(options, report, posthog, summary)
    # What is missing is re-read in the few minutes around it, not whole days (a day of a busy project is tens of
    # windows of queries; a handful of rows lost from it costs one small read).
    for project_id, lo, hi in windows:
        log.info("repair: re-reading events of project %d, timestamp [%s, %s)", project_id, lo.isoformat(),
                 hi.isoformat())
        result = run(dataclasses.replace(
            options.run, resources=["events"], extra_resources=(), isolate_failures=False,
            settings=dataclasses.replace(config, project_ids=(project_id,), start_date=lo, end_date=hi,
                                         full_refresh=False),
        ))
        loaded = result.rows_extracted.get("events", 0)
        summary.windows_reread += 1
        summary.rows_loaded += loaded
        summary.reread_queries += 1 + loaded // settings.HOGQL_MAX_ROWS + 1
    for difference in report.persons or []:  # each differing project's persons read whole, replacing its rows
        log.info("repair: re-reading every person of project %d", difference.project_id)
        result = run(dataclasses.replace(
            options.run, resources=["persons", "person_distinct_ids"], extra_resources=(), isolate_failures=False,
            settings=dataclasses.replace(config, project_ids=(difference.project_id,), full_refresh=False,
                                         persons_full_refresh=True),
        ))
        summary.persons_reread += result.rows_extracted.get("persons", 0)
        summary.projects_persons += 1
    summary.queries = posthog.queries
    return summary


def _remove_extra_rows(options: VerifyOptions, report: VerifyReport, posthog: _PostHog,
                       summary: RepairSummary) -> list[tuple[int, pendulum.DateTime, pendulum.DateTime]]:
    """For each differing project-day, the uuids on both sides: the destination's rows PostHog no longer holds
    are deleted; returns the windows around the events the destination misses."""
    projects = {p.id: p for p in _projects(posthog.client, options.run)}
    windows: list[tuple[int, pendulum.DateTime, pendulum.DateTime]] = []
    opened = _Opened(options.run)
    with opened as destination:
        undeletable = 0
        for d in report.events:
            day_start = pendulum.datetime(d.day.year, d.day.month, d.day.day, tz="UTC")
            lo, hi = max(report.start, day_start), min(report.end, day_start.add(days=1))
            extra: list[str] = []
            missing: list[pendulum.DateTime] = []
            for a, b in _slices(lo, hi, max(d.posthog, d.destination), options.repair_slice_rows):
                theirs = dict(posthog.uuids(projects[d.project_id], a, b))
                held = destination.uuids(d.project_id, a, b)
                extra += sorted(held - theirs.keys())
                missing += [instant for uuid, instant in theirs.items() if uuid not in held]
            windows += [(d.project_id, w_lo, w_hi) for w_lo, w_hi in windows_around(missing)]
            if not extra:
                continue
            if destination.append_only:
                undeletable += len(extra)
                continue
            _delete(opened, options.run, d.project_id, extra)
            log.info("repair: project %d, %s: removed %d events PostHog no longer holds", d.project_id,
                     d.day.isoformat(), len(extra))
            summary.rows_deleted += len(extra)
        if undeletable:
            summary.notes.append(
                f"{undeletable} events that PostHog no longer holds stay in the parquet files: files are "
                "append-only, so --repair can add missing events there but not remove rows; reload the "
                "dataset from scratch (a new --dataset-name) to drop them"
            )
    return windows


def _restore_local_state(options: RunOptions) -> None:
    """A repair on a machine without the pipeline's local folder first restores its state and schema from the
    destination, so the re-read runs cannot store an older state over the one the scheduled runs keep."""
    pipeline = make_pipeline(options)
    if not pipeline.default_schema_name:
        try:
            pipeline.sync_destination()
        except Exception as exc:  # noqa: BLE001 - nothing stored yet: the runs start from scratch, stateless
            log.debug("no pipeline state to restore from the destination: %s", exc)


def _delete(opened: _Opened, options: RunOptions, project_id: int, uuids: Sequence[str]) -> None:
    """Delete the rows of (project_id, uuid) in one transaction, under the destination's write lock."""
    client = opened.sql_client
    table = client.make_qualified_table_name("events")
    with destination_lock(opened.pipeline, options), client.begin_transaction():
        for i in range(0, len(uuids), _DELETE_CHUNK):
            chunk = list(uuids[i:i + _DELETE_CHUNK])
            client.execute_sql(
                f"DELETE FROM {table} WHERE project_id = %s AND uuid IN ({', '.join(['%s'] * len(chunk))})",
                project_id, *chunk,
            )


def verify_and_repair(options: VerifyOptions) -> VerifyOutcome:
    """What the CLI runs: verify; with `repair`, repair what differs and verify the same range again."""
    client = _client(options.run)
    first = verify(options, client)
    outcome = VerifyOutcome(first)
    if options.repair and not first.equal:
        outcome.repair = repair(options, first, client)
        again = dataclasses.replace(options, start_date=first.start, end_date=first.end)
        outcome.after = verify(again, client)
    return outcome


# -- output ----------------------------------------------------------------------------------------
def _list(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{n:,} B"


def format_report(report: VerifyReport, title: str = "verify") -> str:
    """The differing days as a table, then persons, notes and a one-line summary with the cost."""
    lines: list[str] = []
    if report.events:
        lines.append(f"{'project':>8}  {'day':<10}  {'PostHog':>12}  {'destination':>12}  {'difference':>11}")
        for d in report.events:
            lines.append(f"{d.project_id:>8}  {d.day.isoformat():<10}  {d.posthog:>12,}  {d.destination:>12,}"
                         f"  {d.difference:>+11,}")
    for p in report.persons or []:
        lines.append(f"persons of project {p.project_id}: PostHog {p.posthog:,}, destination {p.destination:,} "
                     f"({p.difference:+,})")
    lines += [f"note: {n}" for n in report.notes]
    lines += _pending_lines(report.pending)
    cost = f"{report.queries} queries sent to PostHog"
    if report.read_bytes is not None:
        cost += f", {_bytes(report.read_bytes)} read"
    persons = "" if report.persons is None else f", persons of {len(report.project_ids)} projects compared" + (
        f" ({len(report.persons)} differ)" if report.persons else "")
    lines.append(
        f"{title}: {report.days_compared} project-days compared (timestamp [{report.start.isoformat()}, "
        f"{report.end.isoformat()}), projects {_list(report.project_ids)}), {len(report.events)} differ{persons}; "
        f"{cost}"
    )
    return "\n".join(lines)


def _pending_lines(pending: Pending) -> list[str]:
    """Rows the destination does not hold yet on purpose, each with when it will."""
    lines = []
    if pending.ingested_after:
        lines.append(f"pending: {pending.ingested_after:,} events ingested after the last run (or inside "
                     "ingestion_lag): the next run loads them")
    if pending.waiting_for_sweep:
        when = (f"next sweep at {pending.next_sweep.isoformat()} or the first run after it"
                if pending.next_sweep is not None else "the next late sweep")
        lines.append(f"pending: {pending.waiting_for_sweep:,} events not loaded yet that the next run reads again "
                     f"(ingested in its ingestion_overlap) or the late sweep reads (older than max_lateness, "
                     f"ingested since the last sweep; {when})")
    if pending.persons_new:
        lines.append(f"pending: {pending.persons_new:,} persons created or changed since the last run: the next run "
                     "loads them")
    if pending.persons_deleted:
        lines.append(f"pending: {pending.persons_deleted:,} persons PostHog deleted or merged away: removed at the "
                     "next late sweep")
    return lines


def format_repair(summary: RepairSummary) -> str:
    lines = [f"note: {n}" for n in summary.notes]
    if summary.projects_persons:
        lines.append(f"repair: persons of {summary.projects_persons} project(s) re-read whole "
                     f"({summary.persons_reread:,} persons loaded)")
    lines.append(f"repair: {summary.windows_reread} windows re-read ({summary.rows_loaded:,} events loaded), "
                 f"{summary.rows_deleted:,} events removed; {summary.queries} uuid queries and about "
                 f"{summary.reread_queries} re-read queries sent to PostHog")
    return "\n".join(lines)
