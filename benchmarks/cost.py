"""What our runs cost PostHog: queries and read bytes of a first run, an hourly incremental run, a late sweep
and a `verify`, on a project of about 1M events, measured by the fake's read meter (rows scanned × width of
the columns read; `timestamp` bounds prune to the days touched, `created_at` alone prunes nothing).

    python -m benchmarks.cost [--events 1000000] [--out benchmarks/COST.md]

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

from fake_posthog.server import FakePostHog
from fake_posthog.world import World
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


def _measure(server: FakePostHog, step: str, action: object) -> Cost:
    before = (server.query_count_by_key["full"], server.read_bytes_by_key["full"], server.rows_scanned_by_key["full"])
    started = time.monotonic()
    loaded = action()  # type: ignore[operator]
    return Cost(step, server.query_count_by_key["full"] - before[0], server.read_bytes_by_key["full"] - before[1],
                server.rows_scanned_by_key["full"] - before[2], int(loaded or 0), time.monotonic() - started)


def measure(events: int, workdir: Path) -> tuple[list[Cost], int]:
    world = World.generate(seed=1, events=events, now=datetime.now(UTC), property_padding=600)
    per_hour = max(1, events // (90 * 24))
    costs: list[Cost] = []
    with FakePostHog(world) as server:
        args = {"api_key": world.keys["full"], "host": server.url, "ingestion_lag": "0"}

        def load(**extra: object) -> int:
            result = run(RunOptions(resources=["events"], pipeline_name="cost", duckdb_path=str(workdir / "w.duckdb"),
                                    pipelines_dir=str(workdir / "p"),
                                    settings=load_settings(**args, **extra)))
            return sum(result.rows_extracted.values())

        costs.append(_measure(server, "first run (whole history)", load))
        world.add_events(1, per_hour, created_at=datetime.now(UTC))
        costs.append(_measure(server, f"hourly incremental run ({per_hour:,} new events)", load))
        world.add_events(1, 40, late_by=timedelta(days=20))
        world.add_events(2, 40, late_by=timedelta(days=60))
        world.add_events(1, per_hour, created_at=datetime.now(UTC))
        costs.append(_measure(server, f"incremental run with the late sweep ({per_hour:,} new, 80 very late)",
                              lambda: load(late_sweep="0")))
        options = VerifyOptions(RunOptions(pipeline_name="cost", duckdb_path=str(workdir / "w.duckdb"),
                                           pipelines_dir=str(workdir / "p"),
                                           settings=load_settings(**args)), None, None, False)
        costs.append(_measure(server, "verify (every day of every project)", lambda: verify(options) and 0))
        total = sum(world.stats()["events"].values())
    return costs, total


def render(costs: list[Cost], total: int) -> str:
    lines = [
        "# What a run costs PostHog",
        "",
        f"Measured by `python -m benchmarks.cost` on {datetime.now(UTC):%Y-%m-%d} with the fake's read meter, "
        f"{total:,} events of about 1 KB in 4 projects. PostHog's read budget is 20 GB/h per team "
        "(480 GB burst), its query budget 2,400 queries/h.",
        "",
        "| step | queries | read bytes | rows scanned | events loaded | share of an hour's read budget |",
        "|---|---|---|---|---|---|",
    ]
    for cost in costs:
        lines.append(f"| {cost.step} | {cost.queries} | {cost.read_bytes / 1e6:,.1f} MB | {cost.rows_scanned:,} | "
                     f"{cost.rows_loaded:,} | {cost.read_bytes / 20e9:.3%} |")
    lines += ["", "Scale to your project: the hourly run scans the days of `max_lateness` (+1) of `timestamp` "
              "(partition-pruned), the sweep the `created_at` and `timestamp` columns of the whole project once "
              "per `late_sweep`, verify two columns of the days compared. See README, \"What it costs PostHog\"."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(Path(__file__).with_name("COST.md")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posthog-cost-") as scratch:
        costs, total = measure(args.events, Path(scratch))
    text = render(costs, total)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
