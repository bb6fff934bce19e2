"""What our runs cost PostHog: queries and read bytes of a first run, a backfill of the same history, an hourly
incremental run, a late sweep and a `verify`, measured by the fake's read meter (rows scanned × width of the
columns read, pruned as PostHog's events sort key prunes: whole UTC days of `timestamp`, then `event`, then
cityHash64(distinct_id); `created_at` alone prunes nothing). Each size has one day of more than 50,000 events.

    python -m benchmarks.cost [--sizes 300000,1000000,5000000] [--out benchmarks/COST.md]

The fake's world is anchored on the real clock, so an hour of new events (at the history's average rate),
late events (20 and 60 days old) and the sweep behave as they would on a live project.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum

from benchmarks.fake import LOADED_EVENT_COLUMNS
from fake_posthog.server import FakePostHog
from fake_posthog.world import World
from pipelines.backfill import backfill
from pipelines.runner import RunOptions, run
from pipelines.verify import VerifyOptions, verify
from posthog_source.config import load_settings


@dataclass
class Cost:
    step: str
    queries: int
    read_bytes: int
    rows_scanned: int
    rows_loaded: int
    seconds: float
    row_bytes: float  # an event row over the columns the connector loads: what a loaded event is worth

    @property
    def bytes_amplification(self) -> float:
        return self.read_bytes / (self.rows_loaded * self.row_bytes) if self.rows_loaded else float("nan")


# A day this much bigger than a page: slices must cut it by event names and distinct_id hashes.
BIG_DAY_EVENTS = 60_000


def _measure(server: FakePostHog, step: str, action: object) -> Cost:
    before = (server.query_count_by_key["full"], server.read_bytes_by_key["full"], server.rows_scanned_by_key["full"])
    started = time.monotonic()
    loaded = action()  # type: ignore[operator]
    return Cost(step, server.query_count_by_key["full"] - before[0], server.read_bytes_by_key["full"] - before[1],
                server.rows_scanned_by_key["full"] - before[2], int(loaded or 0), time.monotonic() - started,
                server.event_row_bytes(LOADED_EVENT_COLUMNS))


def measure(events: int, workdir: Path) -> tuple[list[Cost], int]:
    world = World.generate(seed=1, events=events, now=datetime.now(UTC), property_padding=600)
    # one day of > 50,000 events, ingested two days ago (not re-read by the later steps' ingestion overlap)
    world.add_events(1, BIG_DAY_EVENTS, created_at=datetime.now(UTC) - timedelta(days=2), late_by=timedelta(days=28))
    per_hour = max(1, events // (90 * 24))
    costs: list[Cost] = []
    with FakePostHog(world) as server:
        args = {"api_key": world.keys["full"], "host": server.url, "ingestion_lag": "0"}

        def options(name: str, **extra: object) -> RunOptions:
            return RunOptions(resources=["events"], pipeline_name=name, duckdb_path=str(workdir / f"{name}.duckdb"),
                              pipelines_dir=str(workdir / "p"), settings=load_settings(**args, **extra))

        def load(**extra: object) -> int:
            return sum(run(options("cost", **extra)).rows_extracted.values())

        def backfill_all() -> int:
            start = pendulum.instance(world.cursor().execute("SELECT min(timestamp) FROM events").fetchone()[0])
            totals = backfill(options("cost_backfill"), start.start_of("day"), None, timedelta(days=1))
            return totals.get("events", 0)

        costs.append(_measure(server, "first run (whole history)", load))
        costs.append(_measure(server, "backfill of the same history (1-day windows, 2 at a time)", backfill_all))
        world.add_events(1, per_hour, created_at=datetime.now(UTC))
        costs.append(_measure(server, f"hourly incremental run ({per_hour:,} new events)", load))
        world.add_events(1, 40, late_by=timedelta(days=20))
        world.add_events(2, 40, late_by=timedelta(days=60))
        world.add_events(1, per_hour, created_at=datetime.now(UTC))
        costs.append(_measure(server, f"incremental run with the late sweep ({per_hour:,} new, 80 very late)",
                              lambda: load(late_sweep="0")))
        verify_options = VerifyOptions(options("cost"), None, None, False)
        costs.append(_measure(server, "verify (every day of every project)", lambda: verify(verify_options) and 0))
        total = sum(world.stats()["events"].values())
    return costs, total


def render(measured: list[tuple[list[Cost], int]]) -> str:
    lines = [
        "# What a run costs PostHog",
        "",
        f"Measured by `python -m benchmarks.cost` on {datetime.now(UTC):%Y-%m-%d} with the fake's read meter "
        "(pinned to PostHog's events sort key, `fake_posthog/cost.py`), events of about 1 KB in 4 projects with "
        f"one day of {BIG_DAY_EVENTS:,} more. PostHog's read budget is 20 GB/h per team (480 GB held; ×10 paid), "
        "its query budget 2,400 queries/h. *Read ÷ loaded*: bytes read ÷ bytes of the rows loaded (the 9 columns "
        "the connector loads); the first run and the backfill read slices of the sort key, each about one page "
        "(`posthog_source/slices.py`). Before slices (2026-12-01, 1,000,884 events): a first run read 5,367.5 MB "
        "and scanned 6,140,050 rows, 6.1× the rows it loaded.",
    ]
    for costs, total in measured:
        lines += ["", f"## {total:,} events", "",
                  "| step | queries | read bytes | rows scanned | events loaded | read ÷ loaded "
                  "| share of an hour's read budget |", "|---|---|---|---|---|---|---|"]
        for cost in costs:
            ratio = cost.bytes_amplification
            lines.append(f"| {cost.step} | {cost.queries} | {cost.read_bytes / 1e6:,.1f} MB | {cost.rows_scanned:,} "
                         f"| {cost.rows_loaded:,} | {'—' if ratio != ratio else f'{ratio:.2f}×'} "  # noqa: PLR0124
                         f"| {cost.read_bytes / 20e9:.3%} |")
    lines += ["", "Scale to your project: a first run or backfill reads about its rows once (plus two narrow "
              "columns of every row for the counts); the hourly run scans the days of `max_lateness` (+1) of "
              "`timestamp` (partition-pruned), the sweep the `created_at` and `timestamp` columns of the whole "
              "project once per `late_sweep`, verify two columns of the days compared. See README, \"How events "
              "are read, and what it costs PostHog\"."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300000,1000000,5000000", help="events per measured world, comma list")
    parser.add_argument("--out", default=str(Path(__file__).with_name("COST.md")))
    args = parser.parse_args()
    measured = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        with tempfile.TemporaryDirectory(prefix="posthog-cost-") as scratch:
            measured.append(measure(size, Path(scratch)))
        print(f"measured {measured[-1][1]:,} events", flush=True)
    text = render(measured)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
