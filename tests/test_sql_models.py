"""Every SQL model against answers computed BY HAND from tests/data/report_fixture.sql.

The fixture's header explains who is who; the comments next to each expectation show the working.
Project 1 spans the US DST change (2024-03-10 07:00 UTC), project 2 reuses project 1's distinct ids
and session id for other persons, so any join that forgets project_id changes the numbers.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reports.models import (
    ReportError,
    default_funnel_steps,
    format_report_text,
    load_models,
    open_dataset,
    run_model,
    run_report,
)

FIXTURE = Path(__file__).parent / "data" / "report_fixture.sql"
NY = "America/New_York"
STEPS = ["$pageview", "signed_up", "purchase"]
D = date


def T(day: int, hour: int, minute: int = 0) -> datetime:  # noqa: N802 - reads like a literal
    """An instant in March 2024, UTC."""
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def build_db(path: Path, schema: str = "posthog") -> str:
    con = duckdb.connect(str(path))
    sql = FIXTURE.read_text().replace("posthog.", f"{schema}.").replace("SCHEMA posthog", f"SCHEMA {schema}")
    con.execute(sql)
    con.close()
    return str(path)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_db(tmp_path_factory.mktemp("sql") / "fixture.duckdb")


@pytest.fixture(scope="module")
def dataset(db_path: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, set[str]]]:
    con, present = open_dataset(db_path)
    for model in load_models():
        if model.is_base_view:
            run_model(con, model, {}, present)
    yield con, present
    con.close()


def run(dataset: tuple[duckdb.DuckDBPyConnection, set[str]], name: str, **params: Any) -> list[tuple]:
    """Rows of one model with the fixture's default parameters overridden by ``params``."""
    con, present = dataset
    model = next(m for m in load_models() if m.name == name)
    values = {"project_id": None, "tz": "UTC", "funnel_steps": STEPS, "window_days": 7, "top_n": 10, **params}
    result = run_model(con, model, values, present)
    assert result.skipped is None
    return result.rows


def test_model_headers_declare_exactly_the_parameters_they_use() -> None:
    models = load_models()
    assert [m.name for m in models] == [
        "_person_events", "active_users", "event_volume", "top_events", "top_pages", "retention_weekly",
        "funnel", "feature_flag_exposure", "sessions", "session_channels", "cohort_sizes", "persons",
    ]
    for model in models:
        body = "\n".join(line.split("--")[0] for line in model.sql.splitlines())
        body = re.sub(r"'(?:[^']|'')*'", "''", body)  # '$pageview' is data, not a parameter
        used = set(re.findall(r"\$([a-z_][a-z0-9_]*)", body))
        assert used == set(model.params), model.name
        assert model.title and model.answers and model.requires, model.name


def test_active_users_utc(dataset) -> None:
    assert run(dataset, "active_users") == [
        (1, "day", D(2024, 3, 4), 1),  # pa
        (1, "day", D(2024, 3, 5), 1),  # pb
        (1, "day", D(2024, 3, 6), 1),  # pa
        (1, "day", D(2024, 3, 10), 1),  # pc (anon-9, via events.person_id)
        (1, "day", D(2024, 3, 11), 2),  # pa 03:30, pb 04:30
        (1, "day", D(2024, 3, 18), 1),  # pb
        (1, "day", D(2024, 3, 19), 2),  # pb, ghost
        (1, "day", D(2024, 3, 20), 1),  # pb
        (1, "week", D(2024, 3, 4), 3),  # pa, pb, pc
        (1, "week", D(2024, 3, 11), 2),  # pa, pb
        (1, "week", D(2024, 3, 18), 2),  # pb, ghost
        (1, "month", D(2024, 3, 1), 4),  # pa, pb, pc, ghost
        (2, "day", D(2024, 3, 4), 1),  # qa
        (2, "day", D(2024, 3, 5), 1),  # qb (anon-1 and bob)
        (2, "day", D(2024, 3, 13), 1),  # qb
        (2, "week", D(2024, 3, 4), 2),
        (2, "week", D(2024, 3, 11), 1),
        (2, "month", D(2024, 3, 1), 2),
    ]


def test_active_users_new_york_across_dst(dataset) -> None:
    # EST (-5) before 2024-03-10 07:00 UTC, EDT (-4) after: e07/e08 04:00/04:30Z -> 03-09 local,
    # e09 05:00Z -> 03-10 00:00 local, e10 03-11 03:30Z -> 03-10 23:30 local (week of 03-04),
    # e11 03-11 04:30Z -> 03-11 00:30 local (a fixed -5 offset would say 03-10).
    rows = run(dataset, "active_users", tz=NY, project_id=1)
    assert rows == [
        (1, "day", D(2024, 3, 4), 1),
        (1, "day", D(2024, 3, 5), 1),
        (1, "day", D(2024, 3, 6), 1),
        (1, "day", D(2024, 3, 9), 1),  # pc
        (1, "day", D(2024, 3, 10), 2),  # pc, pa
        (1, "day", D(2024, 3, 11), 1),  # pb
        (1, "day", D(2024, 3, 18), 1),
        (1, "day", D(2024, 3, 19), 2),
        (1, "day", D(2024, 3, 20), 1),
        (1, "week", D(2024, 3, 4), 3),
        (1, "week", D(2024, 3, 11), 1),  # only pb: pa's purchase moved to the week before
        (1, "week", D(2024, 3, 18), 2),
        (1, "month", D(2024, 3, 1), 4),
    ]


def test_event_volume_utc_and_new_york(dataset) -> None:
    assert run(dataset, "event_volume", project_id=2) == [
        (2, D(2024, 3, 4), "$pageview", 1),
        (2, D(2024, 3, 4), "purchase", 1),
        (2, D(2024, 3, 5), "$pageview", 1),
        (2, D(2024, 3, 5), "signed_up", 1),
        (2, D(2024, 3, 13), "$feature_flag_called", 1),
    ]
    utc = run(dataset, "event_volume", project_id=1)
    assert utc[5:10] == [
        (1, D(2024, 3, 10), "$pageview", 1),
        (1, D(2024, 3, 10), "purchase", 1),
        (1, D(2024, 3, 10), "signed_up", 1),
        (1, D(2024, 3, 11), "$pageview", 1),
        (1, D(2024, 3, 11), "purchase", 1),
    ]
    assert run(dataset, "event_volume", project_id=1, tz=NY) == [
        (1, D(2024, 3, 4), "$pageview", 2),
        (1, D(2024, 3, 4), "signed_up", 1),
        (1, D(2024, 3, 5), "$feature_flag_called", 1),
        (1, D(2024, 3, 5), "$pageview", 1),
        (1, D(2024, 3, 6), "$feature_flag_called", 2),
        (1, D(2024, 3, 9), "$pageview", 1),
        (1, D(2024, 3, 9), "purchase", 1),
        (1, D(2024, 3, 10), "purchase", 1),
        (1, D(2024, 3, 10), "signed_up", 1),
        (1, D(2024, 3, 11), "$pageview", 1),
        (1, D(2024, 3, 18), "$pageview", 1),
        (1, D(2024, 3, 19), "$autocapture", 1),
        (1, D(2024, 3, 19), "signed_up", 1),
        (1, D(2024, 3, 20), "purchase", 1),
    ]
    assert sum(r[3] for r in utc) == 16


def test_top_events(dataset) -> None:
    assert run(dataset, "top_events") == [
        (1, 1, "$pageview", 6, 3),  # e01 e03 e04 e08 e11 e14: pa, pb, pc
        (1, 2, "$feature_flag_called", 3, 2),  # ties broken by name
        (1, 3, "purchase", 3, 3),
        (1, 4, "signed_up", 3, 3),
        (1, 5, "$autocapture", 1, 1),
        (2, 1, "$pageview", 2, 2),
        (2, 2, "$feature_flag_called", 1, 1),
        (2, 3, "purchase", 1, 1),
        (2, 4, "signed_up", 1, 1),
    ]
    top_two = run(dataset, "top_events", top_n=2, project_id=1)
    assert [r[2] for r in top_two] == ["$pageview", "$feature_flag_called"]


def test_top_pages(dataset) -> None:
    assert run(dataset, "top_pages") == [
        (1, 1, "/", 3, 2),  # e01 pa, e04 pb, e14 pb
        (1, 2, "/pricing", 2, 2),  # e03 (query string dropped) pa, e08 ($pathname) pc
        (1, 3, "/docs", 1, 1),  # fragment dropped
        (2, 1, "/", 1, 1),
        (2, 2, "/app", 1, 1),
    ]


def test_retention_weekly(dataset) -> None:
    # UTC: cohort 03-04 = pa, pb, pc; week+1: pa (e10), pb (e11); week+2: pb. Cohort 03-18 = ghost.
    assert run(dataset, "retention_weekly") == [
        (1, D(2024, 3, 4), 0, 3, 3, 1.0),
        (1, D(2024, 3, 4), 1, 3, 2, 2 / 3),
        (1, D(2024, 3, 4), 2, 3, 1, 1 / 3),
        (1, D(2024, 3, 18), 0, 1, 1, 1.0),
        (2, D(2024, 3, 4), 0, 2, 2, 1.0),  # qa, qb
        (2, D(2024, 3, 4), 1, 2, 1, 0.5),  # qb on 03-13
    ]
    # New York: pa's only week-of-03-11 event (e10) falls on Sunday 03-10 local.
    assert run(dataset, "retention_weekly", tz=NY, project_id=1) == [
        (1, D(2024, 3, 4), 0, 3, 3, 1.0),
        (1, D(2024, 3, 4), 1, 3, 1, 1 / 3),
        (1, D(2024, 3, 4), 2, 3, 1, 1 / 3),
        (1, D(2024, 3, 18), 0, 1, 1, 1.0),
    ]


def test_funnel_counts_ordered_steps_within_the_window(dataset) -> None:
    # 7 days: pa e01 -> e02 -> e10 (6d17h later); pb only from its THIRD start, e14 -> e15 -> e17;
    # pc e08 -> e09, its purchase e07 came before; ghost never viewed a page.
    assert run(dataset, "funnel", window_days=7) == [
        (1, 1, "$pageview", 3, 1.0, 1.0),
        (1, 2, "signed_up", 3, 1.0, 1.0),
        (1, 3, "purchase", 2, 2 / 3, 2 / 3),
        (2, 1, "$pageview", 2, 1.0, 1.0),  # qa e21, qb e23
        (2, 2, "signed_up", 1, 0.5, 0.5),  # qb e24
        (2, 3, "purchase", 0, 0.0, 0.0),  # qa bought BEFORE signing up (never signed up)
    ]
    # 6 days: pa's purchase is now out of its window.
    assert [r[3] for r in run(dataset, "funnel", window_days=6, project_id=1)] == [3, 3, 1]


def test_funnel_step_order_and_repeated_steps(dataset) -> None:
    assert run(dataset, "funnel", project_id=1, funnel_steps=["signed_up", "purchase"]) == [
        (1, 1, "signed_up", 3, 1.0, 1.0),
        (1, 2, "purchase", 2, 2 / 3, 2 / 3),  # pa, pb; pc purchased before signing up
    ]
    # The same event name twice needs two different events: pa e01+e03, pb e04+e11, pc one view only.
    twice = run(dataset, "funnel", project_id=1, funnel_steps=["$pageview", "$pageview"])
    assert [r[3] for r in twice] == [3, 2]


def test_default_funnel_steps(dataset) -> None:
    con, _ = dataset
    # custom events: purchase 4, signed_up 4 (tie -> by name)
    assert default_funnel_steps(con, None) == ["$pageview", "purchase", "signed_up"]


def test_feature_flag_exposure(dataset) -> None:
    assert run(dataset, "feature_flag_exposure") == [
        (1, "new-checkout", "control", 1, 2, T(6, 9), T(6, 9, 30)),  # pa twice
        (1, "new-checkout", "test", 1, 1, T(5, 12, 30), T(5, 12, 30)),  # pb
        (2, "new-checkout", "true", 1, 1, T(13, 9), T(13, 9)),  # boolean flag, qb
    ]


def test_persons(dataset) -> None:
    assert run(dataset, "persons") == [
        (1, "pa", ["alice", "anon-1"], True, T(4, 10), T(11, 3, 30), 6),
        (1, "pb", ["bob"], True, T(5, 12), T(20, 8), 6),
        (1, "pc", ["anon-9"], False, T(10, 4), T(10, 5), 3),
        (1, "ghost", ["ghost"], None, T(19, 8, 5), T(19, 8, 5), 1),
        (1, "pz", ["zed"], False, None, None, 0),
        (2, "qa", ["alice"], True, T(4, 11), T(4, 11, 30), 2),
        (2, "qb", ["anon-1", "bob"], True, T(5, 9), T(13, 9), 3),
    ]


def test_sessions(dataset) -> None:
    # From PostHog's sessions table, not the events: s9 and t4 count though their events were not loaded.
    assert run(dataset, "sessions") == [
        (1, D(2024, 3, 4), 1, 1, 2, 1200.0, 1200.0, 1200, 0.0),  # s1 anon-1 -> pa, 2 pageviews, no bounce
        (1, D(2024, 3, 5), 1, 1, 1, 1800.0, 1800.0, 1800, 0.0),  # s2
        (1, D(2024, 3, 6), 1, 1, 0, 1800.0, 1800.0, 1800, None),  # s3: no pageview, bounce unknown
        (1, D(2024, 3, 10), 1, 1, 1, 3600.0, 3600.0, 3600, 0.0),  # s4 anon-9 (unmapped: its own person)
        (1, D(2024, 3, 11), 3, 3, 4, 400 / 3, 0.0, 400, 0.5),  # s5 pa (NULL), s6 pb (bounce), s9 pz (not)
        (1, D(2024, 3, 20), 1, 1, 0, 0.0, 0.0, 0, None),  # s8
        (2, D(2024, 3, 4), 1, 1, 1, 1800.0, 1800.0, 1800, 0.0),  # project 2's own s1
        (2, D(2024, 3, 5), 2, 1, 2, 300.0, 300.0, 600, 0.5),  # t2 anon-1 and t4 bob: both qb here
        (2, D(2024, 3, 13), 1, 1, 0, 0.0, 0.0, 0, None),
    ]
    assert [(r[1], r[2], r[6]) for r in run(dataset, "sessions", tz=NY, project_id=1)] == [
        (D(2024, 3, 4), 1, 1200.0),
        (D(2024, 3, 5), 1, 1800.0),
        (D(2024, 3, 6), 1, 1800.0),
        (D(2024, 3, 9), 1, 3600.0),  # s4 starts 03-09 23:00 EST
        (D(2024, 3, 10), 1, 0.0),  # s5 03-10 23:30 EDT
        (D(2024, 3, 11), 2, 200.0),  # s6 00:30 EDT (a fixed -5 offset would say 03-10) and s9
        (D(2024, 3, 20), 1, 0.0),
    ]


def test_session_channels(dataset) -> None:
    assert run(dataset, "session_channels") == [
        (1, 1, "Direct", 3, 3 / 8, 1000.0, 1200.0, 0.0),  # s1 1200 (no bounce), s3 1800, s5 0 (both NULL)
        (1, 2, "Organic Search", 3, 3 / 8, 2200 / 3, 400.0, 1 / 3),  # s2 1800, s6 0 (bounce), s9 400
        (1, 3, "Email", 1, 1 / 8, 0.0, 0.0, None),  # ties by name
        (1, 4, "Paid Search", 1, 1 / 8, 3600.0, 3600.0, 0.0),
        (2, 1, "Direct", 2, 0.5, 300.0, 300.0, 0.5),  # t2 600, t4 0 (bounce)
        (2, 2, "Referral", 1, 0.25, 1800.0, 1800.0, 0.0),
        (2, 3, "Unknown", 1, 0.25, 0.0, 0.0, None),  # t3 has no channel
    ]
    top_two = run(dataset, "session_channels", top_n=2, project_id=1)
    assert [(r[2], r[4]) for r in top_two] == [("Direct", 3 / 8), ("Organic Search", 3 / 8)]  # shares of all 8


def test_cohort_sizes(dataset) -> None:
    assert run(dataset, "cohort_sizes") == [
        (1, 102, "Beta testers", True, 3, 3, None),  # static: never calculated
        (1, 101, "Paying customers", False, 2, 2, T(20, 0)),
        (1, 105, None, None, 1, None, None),  # members, no cohorts row
        (1, 103, "Churned", False, 0, 0, T(20, 0)),  # no members; deleted 104 left out
        (2, 101, "Beta users", False, 2, 1, T(13, 12)),  # PostHog's count lags; same id as project 1's
    ]


def test_project_filter_isolates_projects(dataset) -> None:
    """Each model's project-2 run equals the project-2 rows of the all-projects run (and vice versa)."""
    for model in load_models():
        if model.is_base_view:
            continue
        everything = run(dataset, model.name)
        for pid in (1, 2):
            expected = [r for r in everything if r[0] == pid]
            assert run(dataset, model.name, project_id=pid) == expected, model.name
    assert run(dataset, "event_volume", project_id=3) == []


def test_only_events_loaded_without_person_columns(tmp_path: Path, db_path: str) -> None:
    """No person tables, no person_id/session_id columns: persons fall back to the distinct id."""
    path = tmp_path / "events_only.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"ATTACH '{db_path}' AS fx (READ_ONLY)")
    con.execute("CREATE SCHEMA posthog")
    con.execute('CREATE TABLE posthog.events AS SELECT project_id, uuid, event, distinct_id, "timestamp", '
                "properties FROM fx.posthog.events")
    con.close()
    result = run_report(str(path), funnel_steps=STEPS)
    monthly = [(r["project_id"], r["active_users"]) for r in result.models["active_users"].dicts()
               if r["grain"] == "month"]
    assert monthly == [(1, 5), (2, 3)]  # anon-1 alice bob anon-9 ghost | alice anon-1 bob
    assert result.models["sessions"].skipped == "table(s) not loaded: sessions"
    assert result.models["cohort_sizes"].skipped == "table(s) not loaded: cohort_people"
    assert [r[1] for r in result.models["persons"].rows if r[0] == 2] == ["alice", "anon-1", "bob"]


def test_missing_events_table_skips_models(tmp_path: Path) -> None:
    path = tmp_path / "persons_only.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA posthog")
    con.execute("CREATE TABLE posthog.persons AS SELECT 1::BIGINT AS project_id, 'p' AS id")
    con.close()
    result = run_report(str(path))
    assert {name: r.skipped for name, r in result.models.items() if r.skipped != "table(s) not loaded: events"} == {
        "sessions": "table(s) not loaded: sessions",
        "session_channels": "table(s) not loaded: sessions",
        "cohort_sizes": "table(s) not loaded: cohort_people",
    }
    assert all(r.skipped for r in result.models.values())
    assert "skipped: table(s) not loaded: events" in format_report_text(result)


def test_sessions_and_cohorts_without_events_or_mappings(tmp_path: Path, db_path: str) -> None:
    """Only sessions and cohort_people loaded: their models run, persons are the distinct ids, names unknown."""
    path = tmp_path / "sessions_only.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"ATTACH '{db_path}' AS fx (READ_ONLY)")
    con.execute("CREATE SCHEMA posthog")
    con.execute("CREATE TABLE posthog.sessions AS SELECT * EXCLUDE (pageview_count) FROM fx.posthog.sessions")
    con.execute("CREATE TABLE posthog.cohort_people AS SELECT * FROM fx.posthog.cohort_people")
    con.close()
    result = run_report(str(path), project_id=2)
    assert result.models["top_events"].skipped == "table(s) not loaded: events"
    days = [(r["day"], r["sessions"], r["persons"], r["pageviews"]) for r in result.models["sessions"].dicts()]
    assert days == [(D(2024, 3, 4), 1, 1, 0), (D(2024, 3, 5), 2, 2, 0), (D(2024, 3, 13), 1, 1, 0)]  # anon-1, bob
    assert result.models["cohort_sizes"].rows == [(2, 101, None, None, 2, None, None)]
    everyone = run_report(str(path)).models["cohort_sizes"].rows
    assert [(r[1], r[4]) for r in everyone if r[0] == 1] == [(102, 3), (101, 2), (104, 1), (105, 1)]


def test_file_named_like_the_dataset(tmp_path: Path, db_path: str) -> None:
    """dlt names the file after the pipeline: posthog.duckdb holding schema posthog must not be ambiguous."""
    path = tmp_path / "posthog.duckdb"
    shutil.copy(db_path, path)
    rows = run_report(str(path), project_id=2).models["top_pages"].rows
    assert rows == [(2, 1, "/", 1, 1), (2, 2, "/app", 1, 1)]


def test_custom_dataset_name(tmp_path: Path) -> None:
    path = build_db(tmp_path / "custom.duckdb", schema="ph_prod")
    result = run_report(path, dataset="ph_prod", project_id=2, funnel_steps=STEPS)
    assert result.project_names == {1: "Acme", 2: "Beta"}
    assert result.models["top_pages"].rows == [(2, 1, "/", 1, 1), (2, 2, "/app", 1, 1)]
    with pytest.raises(ReportError, match="No PostHog tables in schema 'posthog'"):
        run_report(path)


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        ("missing", {}, "No DuckDB file at"),
        ("empty_file", {}, "No PostHog tables in schema 'posthog'"),
        ("empty_tables", {}, "No PostHog data in schema 'posthog'"),
        ("fixture", {"project_id": 99}, "No PostHog data for project 99"),
        ("fixture", {"tz": "Mars/Olympus"}, "Unknown time zone"),
        ("fixture", {"funnel_steps": []}, "Funnel steps must be"),
    ],
)
def test_report_errors_are_one_line_and_say_what_to_do(
    tmp_path: Path, setup: str, kwargs: dict[str, Any], message: str
) -> None:
    path = tmp_path / "db.duckdb"
    if setup == "fixture":
        build_db(path)
    elif setup != "missing":
        con = duckdb.connect(str(path))
        if setup == "empty_tables":
            con.execute("CREATE SCHEMA posthog")
            con.execute("CREATE TABLE posthog.events (project_id BIGINT, uuid VARCHAR)")
        con.close()
    with pytest.raises(ReportError, match=message) as info:
        run_report(str(path), **kwargs)
    text = str(info.value)
    assert "\n" not in text
    if setup != "fixture":
        assert "posthog-pipeline demo" in text
    assert not path.exists() or setup != "missing"


def test_text_report_is_aligned_and_short(db_path: str) -> None:
    text = format_report_text(run_report(db_path, funnel_steps=STEPS, window_days=7), max_rows=3)
    assert "== Funnel ($pageview -> signed_up -> purchase, within 7 days)" in text
    assert "... 15 more rows" in text  # active users: 18 rows
    block = text.split("== Top pages\n")[1].split("\n\n")[0].splitlines()
    assert block[0] == "project_id  rank  page      pageviews  visitors"
    assert block[2] == "         1     1  /                 3         2"
    assert len({len(line) for line in block[:2]}) == 1
