"""`posthog-pipeline demo` end to end, in-process: the bundled fake, every resource, the report and its page.

Issue 13's bar: the demo loads sessions and cohort_people, and the report shows real session durations and
cohort sizes from them (not zero-second one-event sessions).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.demo import run_demo
from reports.models import run_report


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("demo")
    db, page = folder / "demo.duckdb", folder / "demo.html"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_demo(str(db), events=3000, seed=7, html_path=str(page)) == 0
    return db, page, out.getvalue()


def test_demo_loads_sessions_and_cohort_people_with_the_rest(demo: tuple[Path, Path, str]) -> None:
    db, _, printed = demo
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'posthog'").fetchall())
        (sessions, multi, longest) = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE pageview_count + autocapture_count > 1), max(duration_seconds) "
            "FROM posthog.sessions").fetchone()
        # only UUIDv7 session ids have a session in PostHog (posthog/models/raw_sessions/sessions_v2.py)
        (in_events,) = con.execute(
            "SELECT count(DISTINCT (project_id, session_id)) FROM posthog.events WHERE regexp_full_match("
            "session_id, '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}')").fetchone()
        members = con.execute("SELECT count(*) FROM posthog.cohort_people").fetchone()[0]
    for table in ("events", "persons", "sessions", "cohort_people", "cohorts"):
        assert counts.get(table, 0) > 0, table
    assert sessions == in_events  # every session of the loaded events, once
    assert multi > sessions / 4 and longest >= 60  # real sessions: several events over minutes
    assert members > 0
    line = re.search(r"^sessions: ([0-9,]+), median duration (.+), average (.+), bounce rate (\d+)%$",
                     printed, flags=re.M)
    assert line and int(line[1].replace(",", "")) == sessions and line[3] != "0s", printed[-2000:]
    assert f"{members:,} memberships (current; no history kept)" in printed


def test_demo_report_shows_session_durations_and_cohort_sizes(demo: tuple[Path, Path, str]) -> None:
    db, page, _ = demo
    report = run_report(str(db))
    days = report.models["sessions"].dicts()
    assert days and sum(d["median_duration_s"] > 0 for d in days) > len(days) / 2
    assert sum(d["sessions"] for d in days) == sum(c["sessions"] for c in report.models["session_channels"].dicts())
    cohorts = report.models["cohort_sizes"].dicts()
    with duckdb.connect(str(db), read_only=True) as con:
        (members,) = con.execute("SELECT count(*) FROM posthog.cohort_people").fetchone()
    assert cohorts and sum(c["members"] for c in cohorts) == members
    html = page.read_text()
    for title in ("Sessions per day", "Session duration", "Sessions by channel type", "Cohort sizes"):
        assert f"<h3>{title}</h3>" in html
