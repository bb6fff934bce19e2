"""`python -m benchmarks`: start the fake PostHog, run every system side by side, write RESULTS.md and a chart.

Scenarios (each on its own fake server, so its counters and rate limits are its own):
- compare: ours, Airbyte, dlt rest_api and the raw limit in alternation, `--rounds` times; after each of
  ours, a second run on the same pipeline dir (noop: nothing new).
- airbyte_uncapped: Airbyte against a server whose /events/ page cap is lifted (its speed when not lossy).
- scaling: ours at 5x the events (time per event and peak memory should stay flat).
- budget: PostHog's rate limits, time-compressed; ours told the same time scale; Airbyte too.
- latency: 300 ms added per request by a local proxy; ours versus Airbyte.
`--only` takes scenario names and/or system names (ours, airbyte, rest_api, raw_limit).
`--report-only` measures nothing: it re-renders RESULTS.md and the chart from .work/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.fake import FakeOptions, FakeServer
from benchmarks.procs import BenchError
from benchmarks.proxy import LatencyProxy
from benchmarks.report import machine, write_report
from benchmarks.runners import RUNNERS, WORK, Result, Runner, Target, measure

SCENARIOS = ("compare", "airbyte_uncapped", "scaling", "budget", "latency")
HERE = Path(__file__).resolve().parent


@dataclass
class Plan:
    events: int
    rounds: int
    scale_factor: int
    time_scale: float
    latency_seconds: float
    scenarios: tuple[str, ...]
    systems: tuple[str, ...]
    quick: bool


class Bench:
    """Runs the chosen scenarios, collecting every Result (a failed run is reported and skipped)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.results: list[Result] = []
        self.errors: list[str] = []

    def runners(self, *names: str) -> list[Runner]:
        return [RUNNERS[n] for n in names if n in self.plan.systems]

    def run(self, runner: Runner, server: FakeServer, target: Target, scenario: str, round_: int,
            keep_from: Path | None = None) -> Result | None:
        workdir = keep_from or WORK / "runs" / scenario / runner.name
        try:
            result = measure(runner, server, target, workdir, scenario, keep=keep_from is not None)
        except BenchError as exc:
            message = f"{scenario}/{runner.name} round {round_}: {exc}"
            print("  FAILED " + message, file=sys.stderr, flush=True)
            self.errors.append(message)
            return None
        self.results.append(result)
        print(f"  {scenario:<17} {runner.name:<10} round {round_}: {result.wall_seconds:7.1f} s "
              f"{result.events_per_second:9.0f} ev/s {result.peak_tree_rss_mb:6.0f} MB "
              f"rows {result.rows}/{result.truth} distinct {result.distinct} req {result.requests} "
              f"429s {result.throttled}" + (f" exit {result.returncode}" if result.returncode else ""), flush=True)
        return result

    def rounds(self, server: FakeServer, target: Target, scenario: str, runners: Sequence[Runner],
               after: Callable[[Runner, int], None] | None = None) -> None:
        """Every runner once per round, the order rotated each round so no system always goes first."""
        for round_ in range(1, self.plan.rounds + 1):
            shift = (round_ - 1) % max(1, len(runners))
            for runner in list(runners[shift:]) + list(runners[:shift]):
                self.run(runner, server, target, scenario, round_)
                if after is not None:
                    after(runner, round_)

    def server(self, label: str, **options: object) -> FakeServer:
        opts = FakeOptions(events=self.plan.events, **options)  # type: ignore[arg-type]
        print(f"[{label}] generating {opts.events:,} events ...", flush=True)
        return FakeServer(opts, WORK / "logs" / label)

    def compare(self) -> None:
        with self.server("compare") as server:
            target = Target(server.url, server.key)
            ours = RUNNERS["ours"]

            def noop(runner: Runner, round_: int) -> None:
                if runner is ours:  # nothing new since: requests and seconds of an incremental run
                    self.run(ours, server, target, "noop", round_, keep_from=WORK / "runs" / "compare" / "ours")

            self.rounds(server, target, "compare", self.runners("ours", "airbyte", "rest_api", "raw_limit"), noop)

    def airbyte_uncapped(self) -> None:
        with self.server("airbyte_uncapped", events_max_limit=100_000) as server:
            self.rounds(server, Target(server.url, server.key), "airbyte_uncapped", self.runners("airbyte"))

    def scaling(self) -> None:
        events = self.plan.events * self.plan.scale_factor
        print(f"[scaling] generating {events:,} events ...", flush=True)
        with FakeServer(FakeOptions(events=events), WORK / "logs" / "scaling") as server:
            self.rounds(server, Target(server.url, server.key), "scaling", self.runners("ours"))

    def budget(self) -> None:
        scale = self.plan.time_scale
        with self.server("budget", rate_limits=True, time_scale=scale) as server:
            self.rounds(server, Target(server.url, server.key, time_scale=scale), "budget",
                        self.runners("ours", "airbyte"))

    def latency(self) -> None:
        with self.server("latency") as server, LatencyProxy(server.url, self.plan.latency_seconds) as proxy:
            self.rounds(server, Target(proxy.url, server.key), "latency", self.runners("ours", "airbyte"))


def parse_args(argv: Sequence[str] | None) -> Plan | None:
    """The plan to run, or None for --report-only."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, help="events generated (default 1,000,000; --quick 100,000)")
    parser.add_argument("--rounds", type=int, help="rounds per scenario, medians reported (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 100k events, 1 round")
    parser.add_argument("--only", default="", help=f"comma list of scenarios ({', '.join(SCENARIOS)}) "
                                                   f"and/or systems ({', '.join(RUNNERS)})")
    parser.add_argument("--scale-factor", type=int, default=5, help="scaling scenario: this many times --events")
    parser.add_argument("--time-scale", type=float, default=60.0, help="budget scenario: rate-limit time compression")
    parser.add_argument("--latency-ms", type=float, default=300.0, help="latency scenario: delay added per request")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: re-render RESULTS.md and the chart from .work/results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        return None
    chosen = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = chosen - set(SCENARIOS) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown --only name(s): {', '.join(sorted(unknown))}")
    events = args.events or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    if events <= 0 or rounds <= 0 or args.scale_factor <= 0 or args.time_scale <= 0:
        parser.error("--events, --rounds, --scale-factor and --time-scale must be positive")
    return Plan(events, rounds, args.scale_factor, args.time_scale, args.latency_ms / 1000,
                tuple(s for s in SCENARIOS if s in chosen) or SCENARIOS,
                tuple(r for r in RUNNERS if r in chosen) or tuple(RUNNERS), args.quick)


def report_only() -> int:
    """RESULTS.md and the chart again from the last run's results.json (e.g. after the report's text changed)."""
    path = WORK / "results.json"
    if not path.exists():
        print(f"no {path}: run the benchmark first", file=sys.stderr)
        return 2
    data = json.loads(path.read_text())
    plan = Plan(**{**data["plan"], "scenarios": tuple(data["plan"]["scenarios"]),
                   "systems": tuple(data["plan"]["systems"])})
    results = [Result(**r) for r in data["results"]]
    if not results:
        print(f"{path} holds no results", file=sys.stderr)
        return 2
    out_dir = WORK / "quick" if plan.quick else HERE
    write_report(plan, results, data["errors"], out_dir, data.get("elapsed_seconds", float("nan")),
                 finished=data.get("finished_utc"), machine_line=data.get("machine"))
    print(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'events_per_second.png'} from {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    if plan is None:
        return report_only()
    bench = Bench(plan)
    started = time.monotonic()
    try:
        if "airbyte" in plan.systems:
            RUNNERS["airbyte"].prepare()
        for scenario in plan.scenarios:
            try:
                getattr(bench, scenario)()
            except BenchError as exc:  # one broken scenario must not lose the others
                print(f"error in {scenario}: {exc}", file=sys.stderr)
                bench.errors.append(f"{scenario}: {exc}")
            except Exception as exc:  # noqa: BLE001 - report, go on, still write partial results
                traceback.print_exc()
                bench.errors.append(f"{scenario}: {exc!r}")
    except KeyboardInterrupt:
        print("interrupted; writing what was measured", file=sys.stderr)
    elapsed = time.monotonic() - started
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    machine_line = machine()
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps({"plan": asdict(plan), "results": [asdict(r) for r in bench.results],
                                                   "errors": bench.errors, "elapsed_seconds": elapsed,
                                                   "finished_utc": finished, "machine": machine_line}, indent=1))
    if bench.results:
        out_dir = WORK / "quick" if plan.quick else HERE  # a smoke run never overwrites the published results
        write_report(plan, bench.results, bench.errors, out_dir, elapsed, finished=finished, machine_line=machine_line)
        print(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'events_per_second.png'}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
