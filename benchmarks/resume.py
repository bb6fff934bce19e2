"""Kill and resume at size: a first run of N realistic events (about 1 KB of properties each) SIGKILLed at each
kill point of the crash suite, then resumed to an exact result, with the memory settings users get; and a
run that replaces every loaded event (a full refresh after all of them changed) killed in its load (while the
new copies are appended, or between the batches that then delete the old ones), resumed by a plain run.

    python -m benchmarks.resume [--events 300000] [--only pages:3,after:extract] [--keep]

Each case: a fresh working folder and DuckDB file; the CLI (tests/reliability/cli_wrapper.py) kills itself at
the point, deterministically; the next run must exit 0 and leave every event once, none missing, values equal.
Peak RSS is the summed RSS of the CLI's process tree (benchmarks/procs.py), for the killed run and the resume,
next to an uninterrupted run of the same data. The fake runs in this process (its memory is not counted).
The test suite runs every kill point on small data, and the 1 KB events under a proportionally small DuckDB
limit (tests/reliability/test_crash.py); this is the size check. It takes about 5 minutes, so `./dev bench` does
not run it: `.venv/bin/python -m benchmarks.resume` (a full run rewrites benchmarks/RESUME.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from benchmarks.procs import run_measured
from fake_posthog.server import FakePostHog
from fake_posthog.world import World
from pipelines.destinations.duckdb import DUCKDB_LOADER_CONFIG

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "resume"
WRAPPER = ROOT / "tests" / "reliability" / "cli_wrapper.py"
NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)
START_DATE = "2025-06-01"
RUN = ["run", "--resources", "events"]
# Windows of 14 days, two at a time: 7 windows cover the fake's 90 days, so "between" and "within" both exist.
BACKFILL = ["backfill", "--start-date", "2025-12-01", "--end-date", "2026-03-16", "--window", "14d",
            "--workers", "2", "--no-handover"]
# (name, command, kill point): the points of tests/reliability/test_crash.py, scaled to 50,000-row pages.
# Several points: killed again at each (the case: half-way through the pages, then after the last one).
CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("mid-extract", RUN, ("pages:3",)),
    ("after extract", RUN, ("after:extract",)),
    ("during normalize", RUN, ("during:normalize",)),
    ("after normalize", RUN, ("after:normalize",)),
    ("during load", RUN, ("during:load",)),
    ("twice", RUN, ("pages:3", "after:extract")),
    ("backfill between batches", BACKFILL, ("backfill:1",)),
    ("backfill within a batch", BACKFILL, ("pages:3",)),
]
# Kills of a run that replaces loaded events: after a complete first run every event changes, then a full
# refresh re-reads them all and is killed in its load: while the new copies are appended, or once the old
# copies are (partly) deleted after them; the resume is a plain run, which loads what is pending and keeps the
# newest copy of each key. Batches of 4 row groups, so that a table of this size deletes in several (users get
# 64: pipelines/destinations/duckdb.py DELETE_BATCH_ROW_GROUPS).
REFRESH = [*RUN, "--full-refresh"]
MERGE_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("merge: between delete batches", REFRESH, ("deleting:2",)),
    ("merge: appended not yet noted", REFRESH, ("committed:events",)),
    ("merge: during load", REFRESH, ("during:load",)),
]
MERGE_OPTIONS = ["--delete-batch-row-groups", "4"]


def pad_properties(world: World, target_bytes: int = 1024) -> float:
    """Grow every event's properties JSON to about `target_bytes` with a `padding` string property (still valid
    JSON; the other properties are kept). Returns the mean size after."""
    with world.lock:
        world.con.execute(
            "UPDATE events SET properties = left(properties, length(properties) - 1) || "
            "',\"padding\":\"' || array_to_string(list_transform("
            "range(greatest(0, (? - length(properties) - 14) // 32)), x -> md5(uuid || x::VARCHAR)), '') || '\"}'",
            [target_bytes],
        )
        return float(world.con.execute("SELECT avg(length(properties)) FROM events").fetchone()[0])


@dataclass
class Case:
    name: str
    kill_at: str
    killed_code: int
    killed_peak_mb: float
    resume_code: int
    resume_peak_mb: float
    resume_seconds: float
    exact: str


def env_for(workdir: Path, server: FakePostHog) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__"))}
    env.update({
        "DLT_DATA_DIR": str(workdir / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "warehouse.duckdb"),
        "SOURCES__POSTHOG__START_DATE": START_DATE,
        "SOURCES__POSTHOG__INGESTION_LAG": "0",
        "SOURCES__POSTHOG__HOST": server.url,
        "SOURCES__POSTHOG__API_KEY": server.world.keys["full"],
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "PYTHONPATH": str(ROOT),
    })
    return env


def check_exact(world: World, workdir: Path) -> str:
    """'exact', or what differs: every (project_id, uuid) once, none missing or extra, and for every event the
    same timestamp, created_at and properties (as JSON values) as the fake holds."""
    answer = world.con.execute(
        "SELECT team_id AS project_id, uuid, epoch_us(timestamp) AS ts, epoch_us(created_at) AS ca, "
        "md5(json(properties)::VARCHAR) AS props FROM events"
    ).arrow()
    truth = answer.read_all() if hasattr(answer, "read_all") else answer  # DuckDB 1.4 answers with a reader
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        con.register("truth", truth)
        dupes = con.execute("SELECT count(*) - count(DISTINCT (project_id, uuid)) FROM posthog.events").fetchone()[0]
        loaded = ("SELECT project_id, uuid, epoch_us(timestamp), epoch_us(created_at), "
                  "md5(json(properties)::VARCHAR) FROM posthog.events")
        missing = con.execute(f"SELECT count(*) FROM (SELECT * FROM truth EXCEPT {loaded})").fetchone()[0]
        extra = con.execute(f"SELECT count(*) FROM ({loaded} EXCEPT SELECT * FROM truth)").fetchone()[0]
    if dupes or missing or extra:
        return f"{dupes} duplicated, {missing} missing or different, {extra} extra"
    return "exact"


def run_case(world: World, server: FakePostHog, name: str, command: list[str], kill_points: tuple[str, ...],
             log_dir: Path) -> Case:
    workdir = WORK / "runs" / name.replace(" ", "_").replace(":", "").replace(",", "")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = env_for(workdir, server)
    options: list[str] = []
    if command is REFRESH:  # a loaded table whose every event then changes
        first = run_measured([sys.executable, "-m", "pipelines", *RUN], env, log_dir, f"{name}-first",
                             timeout=1800, check=False, cwd=workdir)
        if first.returncode != 0:
            return Case(name, ",".join(kill_points), 0, 0.0, first.returncode, 0.0, 0.0, "first run failed")
        with world.lock:
            world.con.execute("UPDATE events SET properties = json_merge_patch(properties, json_object('merged', "
                              "coalesce(json_extract(properties, '$.merged')::INTEGER, 0) + 1))")
        options = MERGE_OPTIONS
    killed_code, killed_peak = 0, 0.0
    for n, kill_at in enumerate(kill_points):
        killed = run_measured([sys.executable, str(WRAPPER), "--kill-at", kill_at, *options, "--", *command], env,
                              log_dir, f"{name}-killed-{n}", timeout=1800, check=False, cwd=workdir)
        killed_code, killed_peak = killed.returncode, max(killed_peak, killed.peak_tree_rss_mb)
    resume = RUN if command is REFRESH else command
    resumed = run_measured([sys.executable, str(WRAPPER), *options, "--", *resume], env, log_dir, f"{name}-resume",
                           timeout=1800, check=False, cwd=workdir)
    exact = check_exact(world, workdir) if resumed.returncode == 0 else "resume failed"
    return Case(name, ",".join(kill_points) or "-", killed_code, round(killed_peak), resumed.returncode,
                round(resumed.peak_tree_rss_mb), round(resumed.wall_seconds, 1), exact)


def write_report(results: list[Case], total: int, mean: float) -> None:
    """benchmarks/RESUME.md: the table of the last full run (every case)."""
    lines = [
        "# Kill and resume at size",
        "",
        f"`python -m benchmarks.resume`: {total:,} events with properties of {mean:.0f} bytes on average, loaded into",
        f"DuckDB with the settings users get (the loader's {DUCKDB_LOADER_CONFIG['memory_limit']} limit, "
        f"{DUCKDB_LOADER_CONFIG['threads']} threads), SIGKILLed at each point, then resumed.",
        "Peak RSS: summed over the CLI's process tree. Exact: every event once, none missing, values equal.",
        f"Machine: {os.cpu_count()} cores; measured {datetime.now(UTC):%Y-%m-%d}.",
        "",
        "| case | kill point(s) | killed run peak RSS | resume peak RSS | resume time | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in results:
        killed = f"{c.killed_peak_mb} MB" if c.kill_at != "-" else "-"
        lines.append(f"| {c.name} | `{c.kill_at}` | {killed} | {c.resume_peak_mb} MB | {c.resume_seconds} s | "
                     f"{c.exact} |")
    plain = next((c for c in results if c.name == "uninterrupted"), None)
    if plain is not None:
        above = [c.name for c in results if c.kill_at != "-" and c.resume_peak_mb > plain.resume_peak_mb]
        exact = sum(c.exact == "exact" for c in results)
        lines += ["", f"Reading it: {exact} of {len(results)} cases exact; "
                  + (f"every resume peaks at or below the uninterrupted run ({plain.resume_peak_mb} MB)."
                     if not above else f"resumes above the uninterrupted run's {plain.resume_peak_mb} MB: "
                     + ", ".join(above) + ".")
                  + " The merge cases first load every event, change them all at the fake, then kill a "
                  "`--full-refresh` run in its load (appending the new copies, or deleting the old ones after "
                  "them, in batches of 4 row groups); the resume is a plain run."]
    (ROOT / "benchmarks" / "RESUME.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--bytes", type=int, default=1024, help="properties size per event")
    parser.add_argument("--only", help="comma list of kill points or case names")
    parser.add_argument("--keep", action="store_true", help="keep the working folders")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    world = World.generate(seed=1, events=args.events, now=NOW)
    mean = pad_properties(world, args.bytes)
    total = world.con.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"world: {total} events, properties {mean:.0f} bytes on average "
          f"({time.perf_counter() - started:.0f} s to generate)", flush=True)
    wanted = set(args.only.split(",")) if args.only else None
    cases: list[tuple[str, list[str], tuple[str, ...]]] = [("uninterrupted", RUN, ())]
    cases += [("uninterrupted backfill", BACKFILL, ()), *CASES, *MERGE_CASES]
    results = []
    log_dir = WORK / "logs"
    with FakePostHog(world) as server:
        for name, command, points in cases:
            if wanted and not points and command is BACKFILL and not any("backfill" in w for w in wanted):
                continue
            if wanted and points and name not in wanted and ",".join(points) not in wanted:
                continue
            case = run_case(world, server, name, command, points, log_dir)
            results.append(case)
            print(f"  {case.name:<26} kill {case.kill_at:<26} killed run {case.killed_peak_mb:5.0f} MB "
                  f"(exit {case.killed_code}) resume {case.resume_peak_mb:5.0f} MB {case.resume_seconds:6.1f} s "
                  f"exit {case.resume_code}: {case.exact}", flush=True)
    (WORK / "results.json").write_text(json.dumps([asdict(c) for c in results], indent=2))
    if not wanted:
        write_report(results, total, mean)
    if not args.keep:
        shutil.rmtree(WORK / "runs", ignore_errors=True)
    failed = [c for c in results if c.resume_code != 0 or c.exact != "exact"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
