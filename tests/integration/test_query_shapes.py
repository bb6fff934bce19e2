"""Every HogQL query shape the connector sends, judged by PostHog's own rules.

One fake records every query text it receives while the connector is driven through each of its modes: a first
run of every table, an incremental run with new and very late events and the late sweep, a run with the
ingestion overlap, a full refresh, a stateless window, a window split in halves, a backfill, verify and
verify --repair, persons and distinct ids after a merge and a deletion, sessions re-read after they grew,
cohort membership after a recalculation, and `check`. Every run must succeed: the fake answers 400 to what
PostHog refuses (fake_posthog/rules.py), which fails the table. Then every recorded text is judged again in
every persons-on-events mode PostHog has (the fake serves one), and the texts are reduced to shapes (literals
and numbers as `?`), listed with `-s`, and checked to cover each family the connector is known to send.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pendulum
import pyarrow as pa
import pytest

from fake_posthog import rules
from fake_posthog.server import FakePostHog
from fake_posthog.world import World
from pipelines.backfill import backfill
from pipelines.cli import main as cli_main
from pipelines.runner import RunOptions, RunResult
from pipelines.verify import VerifyOptions, verify_and_repair
from posthog_source.catalogue import HOGQL_TABLES
from posthog_source.config import load_settings
from tests.conftest import FAKE_NOW
from tests.helpers import fast_retries, run_pipeline

PAGE_SIZE = 250  # small pages: every table is read in more than one keyset page
HOGQL = list(HOGQL_TABLES)
# Tables PostHog must be asked for, seen in a FROM of some query (subqueries included).
EXPECTED_TABLES = {"events", "persons", "raw_persons", "person_distinct_ids", "sessions", "cohort_people",
                   "static_cohort_people"}
# Distinct shapes measured when this test was written: 34, then 36 with verify's counts by promise (4 of them
# `check`'s LIMIT 0 probes). Fewer than this means a mode stopped being driven.
MIN_SHAPES = 34


# -- shapes ----------------------------------------------------------------------------------------------
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_NUMBER = re.compile(r"(?<![\w$.])\d+(?:\.\d+)?(?![\w])")
_SPACE = re.compile(r"\s+")


def shape(text: str) -> str:
    """A query with every string literal and number as `?` and whitespace collapsed."""
    return _SPACE.sub(" ", _NUMBER.sub("?", _STRING.sub("?", text))).strip()


_parse = rules.parse


@cache
def parsed(text: str) -> dict[str, Any]:
    """PostHog's AST of `text`, parsed once (PostHog's parser takes tens of milliseconds a query)."""
    return _parse(text)


def tables_in(tree: Any) -> set[str]:
    """Names of the tables in every FROM / JOIN of PostHog's AST, subqueries included."""
    found: set[str] = set()
    if isinstance(tree, dict):
        table = tree.get("table") if tree.get("node") == "JoinExpr" else None
        if isinstance(table, dict) and table.get("node") == "Field":
            found.add(".".join(str(part) for part in table["chain"]))
        for value in tree.values():
            found |= tables_in(value)
    elif isinstance(tree, list):
        for item in tree:
            found |= tables_in(item)
    return found


def test_shape_reduces_literals_numbers_and_whitespace():
    text = ("SELECT toString(uuid) FROM events WHERE created_at >= toDateTime64('2026-01-01 00:00:00.000000', 6, "
            "'UTC') AND\n  toString(uuid) > 'it\\'s' ORDER BY created_at ASC LIMIT 250")
    assert shape(text) == ("SELECT toString(uuid) FROM events WHERE created_at >= toDateTime64(?, ?, ?) AND "
                           "toString(uuid) > ? ORDER BY created_at ASC LIMIT ?")


# -- driving the connector -------------------------------------------------------------------------------
def succeeded(result: RunResult, what: str) -> RunResult:
    assert result.failed_tables == {}, f"{what}: {result.failed_tables}"
    return result


def run_ok(server: FakePostHog, workdir: Path, what: str, **args: Any) -> RunResult:
    args.setdefault("page_size", PAGE_SIZE)
    return succeeded(run_pipeline(server, workdir, **args), what)


def first_distinct_ids(world: World, team_id: int, n: int) -> list[str]:
    by_person: dict[str, str] = {}
    for row in world.truth_distinct_ids(team_id):
        by_person.setdefault(row["person_id"], row["distinct_id"])
    return list(by_person.values())[:n]


def delete_destination_events(workdir: Path, team_id: int, n: int) -> None:
    """Lose `n` events of the project's busiest generated day (before FAKE_NOW) from the destination."""
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        day = con.execute("SELECT CAST(timestamp AS DATE) AS d FROM posthog.events WHERE project_id = ? "
                          "AND timestamp < ? GROUP BY d ORDER BY count(*) DESC, d LIMIT 1",
                          [team_id, FAKE_NOW]).fetchone()[0]
        uuids = [r[0] for r in con.execute(
            "SELECT uuid FROM posthog.events WHERE project_id = ? AND CAST(timestamp AS DATE) = ? ORDER BY uuid "
            "LIMIT ?", [team_id, day, n]).fetchall()]
        con.execute(f"DELETE FROM posthog.events WHERE project_id = ? AND uuid IN ({', '.join('?' * len(uuids))})",
                    [team_id, *uuids])


@contextlib.contextmanager
def process_settings_restored() -> Iterator[None]:
    """`main()` sets up the process for a command line (loggers that do not propagate, Arrow's memory pool):
    undone afterwards, so later tests in this process (caplog) see the loggers as they were."""
    loggers = [logging.getLogger(name) for name in ("posthog_source", "pipelines", "dlt")]
    saved = [(lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate) for lg in loggers]
    pool = pa.default_memory_pool()
    try:
        yield
    finally:
        for lg, handlers, filters, level, propagate in saved:
            lg.handlers[:], lg.filters[:], lg.level, lg.propagate = handlers, filters, level, propagate
        pa.set_memory_pool(pool)


def drive_every_mode(server: FakePostHog, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = server.world
    main = root / "main"

    # a first run of every table (REST ones too); then new and very late events (20 days: beyond
    # max_lateness, so only the late sweep reads them, due at every run with "0"), persons merged, deleted,
    # created and changed, read by an incremental run at the sweep
    # a heavy user first: 600 pageviews of one person within an hour, more than one slice of the sort key holds
    # (slices.py), so its cityHash64(distinct_id) range is read in several keyset pages
    world.add_session_events(1, world.truth_sessions(1)[0]["session_id"], 600, gap_seconds=5, at=FAKE_NOW)
    run_ok(server, main, "first run")
    world.add_events(1, 400)
    world.add_events(1, 30, late_by=timedelta(days=20))
    world.add_events(2, 10, late_by=timedelta(days=3))
    keep, merge = first_distinct_ids(world, 1, 2)
    world.merge_persons(1, keep, merge)
    world.delete_person(1, world.truth_persons(1)[5]["id"])
    world.add_persons(2, 5)
    world.update_person_properties(2, world.truth_persons(2)[0]["id"], {"plan": "it's \\ ünïcode"})
    run_ok(server, main, "incremental run at the late sweep", resources=HOGQL, late_sweep="0")

    # a session that grows and a cohort recalculated, read between sweeps with the ingestion overlap
    live = set(world.add_events(1, 60))
    live_sessions = {e["session_id"] for e in world.truth_events(1, as_dicts=True) if e["uuid"] in live}
    session = next(s for s in world.truth_sessions(1) if s["session_id"] in live_sessions)
    world.add_session_events(1, session["session_id"], 3)
    dynamic = next(c for c in world.visible_objects("cohorts", 1) if not c["is_static"]
                   and any(m["cohort_id"] == c["id"] for m in world.truth_cohort_people(1)))
    assert world.recalculate_cohort(1, dynamic["id"])["left"]
    run_ok(server, main, "incremental run with the overlap", resources=HOGQL, ingestion_overlap="1h")

    # persons re-read whole in pages small enough that there is more than one, then a full refresh
    run_ok(server, main, "persons full refresh", resources=["persons", "person_distinct_ids"],
           persons_full_refresh=True, page_size=60)
    run_ok(server, main, "full refresh", resources=HOGQL, full_refresh=True)

    # verify finds events lost from the destination; verify --repair re-reads those days and pages the uuids
    delete_destination_events(main, 1, 4)
    options = VerifyOptions(RunOptions(
        pipeline_name="posthog", duckdb_path=str(main / "warehouse.duckdb"), pipelines_dir=str(main / "pipelines"),
        settings=load_settings(api_key=world.keys["full"], host=server.url, ingestion_lag="0", page_size=PAGE_SIZE)),
        uuid_page_size=10)  # more than one uuid page per day
    assert not verify_and_repair(options).equal
    options.repair = True
    repaired = verify_and_repair(options)
    assert repaired.repair is not None and repaired.repair.windows_reread >= 1
    assert repaired.after is not None and not repaired.after.events

    # a stateless window of every HogQL table, and a backfill of two windows
    run_ok(server, root / "window", "stateless window", resources=HOGQL, start_date="2026-02-01",
           end_date="2026-02-15")
    backfill_dir = root / "backfill"
    totals = backfill(RunOptions(
        pipeline_name="posthog_backfill", duckdb_path=str(backfill_dir / "warehouse.duckdb"),
        pipelines_dir=str(backfill_dir / "pipelines"),
        settings=load_settings(api_key=world.keys["full"], host=server.url, ingestion_lag="0", page_size=PAGE_SIZE,
                               workers=2),
    ), pendulum.datetime(2026, 3, 1), pendulum.datetime(2026, 3, 15), timedelta(days=7))
    assert totals.get("events", 0) > 0

    # check, as a user runs it
    check_dir = root / "check"
    check_dir.mkdir()
    monkeypatch.chdir(check_dir)
    for name, value in {"SOURCES__POSTHOG__API_KEY": world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
                        "DLT_DATA_DIR": str(check_dir / "dlt"),
                        "DESTINATION__DUCKDB__CREDENTIALS": str(check_dir / "warehouse.duckdb"),
                        "RUNTIME__INTERCEPT_SIGNALS": "false"}.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), process_settings_restored():
        assert cli_main(["check"]) == 0
    assert "not readable" not in out.getvalue(), out.getvalue()  # the full key reads every table


def drive_a_split_window(server: FakePostHog, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stateless window of events PostHog finds too large: the reader splits it in halves until they fit.

    The fake's limit is on rows scanned, and the per-day count that plans the window scans as many rows as the
    window, so no limit lets the count through and stops the window. The limit is applied to the keyset pages
    only: the reader splits windows, not its count (a count PostHog times out fails the events table)."""
    lo, hi = "2026-03-01", "2026-03-09"
    with server.world.lock:
        per_day = server.world.con.execute(
            "SELECT team_id, CAST(timezone('UTC', timestamp) AS DATE) AS d, count(*) FROM events "
            "WHERE timestamp >= ?::TIMESTAMPTZ AND timestamp < ?::TIMESTAMPTZ GROUP BY ALL",
            [f"{lo} 00:00:00+00", f"{hi} 00:00:00+00"]).fetchall()
    busiest_day = max(n for _, _, n in per_day)
    busiest_window = max(sum(n for t, _, n in per_day if t == team) for team, _, _ in per_day)
    limit = 2 * busiest_day  # two whole UTC days fit, eight do not
    assert limit < busiest_window

    judge = server.judge

    def limit_pages_only(text: str) -> None:
        server.execution_limit_rows = None if "count() AS n" in text else limit
        judge(text)

    monkeypatch.setattr(server, "judge", limit_pages_only)

    result = run_ok(server, workdir, "split window", resources=["events"], start_date=lo, end_date=hi, workers=1,
                    client_factory=fast_retries)
    assert server.timeout_count > 0, "no window was too large: nothing was split"
    assert result.rows_extracted.get("events") == sum(n for _, _, n in per_day)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Every HogQL text the connector sent while driven through every mode (each run succeeded)."""
    root = tmp_path_factory.mktemp("query_shapes")
    main_server = FakePostHog(World.generate(seed=31, events=6_000, now=FAKE_NOW), record_queries=True).start()
    split_server = FakePostHog(World.generate(seed=32, events=6_000, now=FAKE_NOW), record_queries=True).start()
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            drive_every_mode(main_server, root, monkeypatch)
        with pytest.MonkeyPatch.context() as monkeypatch:
            drive_a_split_window(split_server, root / "split", monkeypatch)
        assert main_server.queries_seen is not None and split_server.queries_seen is not None
        yield [*main_server.queries_seen, *split_server.queries_seen]
    finally:
        main_server.stop()
        split_server.stop()


# -- the judgement ---------------------------------------------------------------------------------------
def test_every_query_passes_posthogs_rules_in_every_persons_on_events_mode(recorded, monkeypatch):
    monkeypatch.setattr(rules, "parse", parsed)  # rules.judge parses each text once for all the modes
    refused = []
    for text in sorted(set(recorded)):
        for mode in rules.PERSONS_ON_EVENTS_MODES:
            try:
                rules.judge(text, mode)
            except rules.PostHogRefusal as exc:
                refused.append(f"[{mode}] {exc}: {text}")
    assert not refused, "PostHog would refuse:\n" + "\n".join(refused)


def test_the_shapes_cover_every_query_family(recorded):
    shapes: dict[str, int] = {}
    for text in recorded:
        shapes[shape(text)] = shapes.get(shape(text), 0) + 1
    print(f"\n{len(recorded)} HogQL queries in {len(shapes)} shapes:")
    for text in sorted(shapes):
        print(f"{shapes[text]:6d}  {text}")

    tables = set().union(*(tables_in(parsed(text)) for text in set(recorded)))
    assert tables >= EXPECTED_TABLES, f"tables never read: {sorted(EXPECTED_TABLES - tables)}"
    events_page = "SELECT toString(uuid), event, distinct_id, toString(person_id), timestamp, created_at"
    families = {
        "events per day": lambda s: "count() AS n FROM events" in s and "GROUP BY day" in s,
        "events per day and event": lambda s: "event AS k0, count() AS n FROM events" in s,
        "events per day, event and distinct_id hash": lambda s: "bitShiftRight(cityHash64(distinct_id), ?) AS k1" in s,
        "events slice of a range of event names": lambda s: s.startswith(events_page) and "AND event < ?" in s,
        "events slice of a distinct_id hash range": lambda s: s.startswith(events_page)
        and "AND event = ? AND cityHash64(distinct_id) >= ?" in s,
        # the sweep's count has the incremental count's shape: a timestamp range and a created_at range
        "late events per day (sweep)": lambda s: "count() AS n FROM events WHERE timestamp >= toDateTime64(?, ?, ?) "
        "AND timestamp < toDateTime64(?, ?, ?) AND created_at >= toDateTime64(" in s,
        "sessions per day": lambda s: "count() AS n FROM sessions" in s and "GROUP BY day" in s,
        "events keyset page on created_at": lambda s: s.startswith(events_page)
        and "(created_at > toDateTime64(?, ?, ?) OR (created_at = " in s
        and "ORDER BY created_at ASC, toString(uuid) ASC" in s,
        "events keyset page on timestamp": lambda s: s.startswith(events_page)
        and "(timestamp > toDateTime64(?, ?, ?) OR (timestamp = " in s
        and "ORDER BY timestamp ASC, toString(uuid) ASC" in s,
        "sessions of events ingested (between sweeps)": lambda s: "FROM sessions WHERE session_id IN (SELECT" in s
        and "`$start_timestamp` >= toDateTime64(" in s,
        "sessions of events ingested (sweep)": lambda s: "FROM sessions WHERE session_id IN (SELECT" in s
        and "`$start_timestamp`" not in s.split(" FROM sessions ")[1],
        "sessions keyset page": lambda s: "FROM sessions" in s and "toString(session_id) > ?" in s,
        "persons whole": lambda s: s.endswith("FROM persons ORDER BY toString(id) LIMIT ?"),
        "persons keyset page": lambda s: "FROM persons WHERE toString(id) > ?" in s,
        "persons of events": lambda s: "FROM persons WHERE (created_at >= toDateTime64(" in s
        and " OR id IN (SELECT person_id FROM events WHERE" in s,
        "deleted persons": lambda s: "FROM raw_persons WHERE is_deleted = ?" in s,
        "distinct ids whole": lambda s: s.endswith("FROM person_distinct_ids ORDER BY distinct_id LIMIT ?"),
        "distinct ids keyset page": lambda s: "FROM person_distinct_ids WHERE distinct_id > ?" in s,
        "distinct ids of changed persons": lambda s: "FROM person_distinct_ids WHERE (distinct_id IN (SELECT" in s
        and "person_id IN (SELECT id FROM persons" in s,
        "dynamic cohorts": lambda s: "FROM cohort_people" in s,
        "dynamic cohorts keyset page": lambda s: "FROM cohort_people WHERE (cohort_id > ?" in s,
        "static cohorts": lambda s: "FROM static_cohort_people" in s,
        "verify persons count": lambda s: s.endswith("count() FROM persons"),
        "verify deleted persons count": lambda s: "FROM raw_persons WHERE is_deleted = ?" in s and "count(" in s,
        "verify events by promise": lambda s: "countIf(created_at < toDateTime64(" in s and "FROM events" in s,
        "verify uuid page": lambda s: "SELECT toString(uuid) AS uuid, toString(toTimeZone(timestamp" in s
        and "toString(uuid) > ?" in s,
    }
    missing = [name for name, matches in families.items() if not any(matches(s) for s in shapes)]
    assert not missing, f"{len(shapes)} shapes, none of the families {missing}"
    assert len(shapes) >= MIN_SHAPES, f"only {len(shapes)} distinct query shapes (expected at least {MIN_SHAPES})"
