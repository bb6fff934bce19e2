"""`posthog-pipeline demo`: the whole pipeline against the bundled local PostHog, no credentials needed."""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from fake_posthog import FakePostHog, World
from pipelines.runner import DEFAULT_DATASET, RunOptions, run
from posthog_source.config import load_settings
from reports.html_page import format_duration, write_html
from reports.models import format_report_text, run_report

log = logging.getLogger("pipelines")


def run_demo(duckdb_path: str, events: int = 300_000, seed: int = 1, html_path: str | None = None) -> int:
    """Generate a PostHog-like world, serve it on 127.0.0.1, load everything into `duckdb_path` and report."""
    target = Path(duckdb_path).resolve()
    html = Path(html_path).resolve() if html_path else target.with_name(target.stem + "_report.html")
    started = time.monotonic()
    log.info("generating %s events over 4 projects (seed %s)...", f"{events:,}", seed)
    world = World.generate(seed=seed, events=events, now=None)
    workdir = Path(tempfile.mkdtemp(prefix="posthog-demo-"))
    if target.exists():
        log.info("replacing the previous demo file %s", target)
        target.unlink()
    try:
        with FakePostHog(world) as server:
            log.info("local PostHog at %s; loading into %s", server.url, target)
            run(RunOptions(
                pipeline_name="posthog_demo",
                duckdb_path=str(target),
                pipelines_dir=str(workdir),
                settings=load_settings(  # the user's other [sources.posthog] settings apply, as in a run
                    api_key=world.keys["full"],
                    host=server.url,
                    start_date="2020-01-01",  # before any generated event; empty years cost one count query
                    ingestion_lag=0,
                ),
            ))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"\nloaded into {target} in {elapsed:.1f} s")
    print_table_totals(str(target))
    print_highlights(str(target))
    report = run_report(str(target), DEFAULT_DATASET)
    write_html(report, str(html))
    print()
    print(format_report_text(report, max_rows=5))
    print(f"\nHTML report written to {html}")
    print(f"report again: {shlex.quote(sys.executable)} -m pipelines report --duckdb {shlex.quote(str(target))}")
    print(f"explore:      {explore_command(target)}")
    return 0


def explore_command(target: Path) -> str:
    """A command that works wherever the demo ran: this Python (which has duckdb) listing the tables, rather than
    a `duckdb` command line that may not be installed."""
    query = ("SELECT schema_name, table_name, estimated_size AS rows FROM duckdb_tables() "
             "WHERE table_name NOT LIKE '_dlt%' ORDER BY 1, 2")
    code = (f"import duckdb; duckdb.connect({json.dumps(str(target))}, read_only=True)"
            f".sql({json.dumps(query)}).show(max_rows=100)")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def print_table_totals(duckdb_path: str) -> None:
    with duckdb.connect(duckdb_path, read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE '_dlt%' "
            "ORDER BY table_name", [DEFAULT_DATASET]).fetchall()]
        print("rows per table:")
        for table in tables:
            (count,) = con.execute(f'SELECT count(*) FROM "{DEFAULT_DATASET}"."{table}"').fetchone()
            print(f"  {table:<24}{count:>12,}")


def print_highlights(duckdb_path: str) -> None:
    """Sessions and cohorts in one line each: the report's per-day tables start with the oldest (sparse,
    late-arriving) days, so this says up front what the whole dataset holds."""
    with duckdb.connect(duckdb_path, read_only=True) as con:
        loaded = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [DEFAULT_DATASET]).fetchall()}
        if "sessions" in loaded:
            n, median, avg, bounce = con.execute(
                f"SELECT count(*), median(duration_seconds), avg(duration_seconds), avg(CAST(is_bounce AS INTEGER)) "
                f'FROM "{DEFAULT_DATASET}".sessions').fetchone()
            if n:
                rate = "-" if bounce is None else f"{bounce:.0%}"
                print(f"sessions: {n:,}, median duration {format_duration(median)}, average "
                      f"{format_duration(avg)}, bounce rate {rate}")
        if "cohort_people" in loaded:
            cohorts, members = con.execute(
                f'SELECT count(DISTINCT (project_id, cohort_id)), count(*) FROM "{DEFAULT_DATASET}".cohort_people'
            ).fetchone()
            print(f"cohorts with members: {cohorts:,}, {members:,} memberships (current; no history kept)")
