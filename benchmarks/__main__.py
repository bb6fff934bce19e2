"""`python -m benchmarks`: start the fake PostHog, run the systems side by side, write RESULTS.md and a chart.

Every server holds the stricter fake's realistic events (`--padding` bytes of `$padding` on every other
event: rows of about 1.5 KB in HogQL's JSON). Scenarios (each on its own fake server):
- compare: ours, the plain reference extractor and the raw client alternated `--rounds` times; after each
  of ours, a no-op run (nothing new) and a `--full-refresh` run that merges every event into the table
  that already holds them.
- scaling: ours, the raw client and the reference once at each of `--sizes` (default 1M and 5M events); a merge run of
  ours after the first size (the incremental-merge goal needs a table of >= 1M events).
- wide: ours and the raw client on events of about 20 KB (`--fat-share` of 10-50 KB `$exception` /
  `$ai_generation` events).
- budget: ours against PostHog's rate limits and a read budget smaller than the run (1 GB/h, 0.25 h held),
  time-compressed (`--time-scale`), at `--budget-events`.
- peers: Airbyte's source-posthog and dlt's rest_api on `/events/`, only when named in `--only` (Airbyte
  needs a network install; rest_api reads 1,000 rows per request and takes minutes).
`--only` takes scenario names and/or system names. `--report-only` re-renders RESULTS.md from
.work/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.fake import FakeOptions, FakeServer
from benchmarks.procs import BenchError
from benchmarks.report import machine, write_report
from benchmarks.runners import RUNNERS, WORK, Result, Runner, Target, measure

SCENARIOS = ("compare", "scaling", "wide", "budget", "peers")
PEERS = ("airbyte", "rest_api")
HERE = Path(__file__).resolve().parent


@dataclass
class Plan:
    events: int
    rounds: int
    sizes: tuple[int, ...]
    padding: int
    wide_events: int
    fat_share: float
    budget_events: int
    time_scale: float
    scenarios: tuple[str, ...]
    systems: tuple[str, ...]
    quick: bool
    notes: list[str] = field(default_factory=list)
    read_budget_gb_per_hour: float = 1.0
    read_budget_capacity_hours: float = 0.25


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
        print(f"  {scenario:<9} {runner.name:<10} round {round_}: {result.wall_seconds:7.1f} s "
              f"{result.events_per_second:8.0f} ev/s {result.peak_tree_rss_mb:6.0f} MiB "
              f"cpu {result.cpu_seconds:6.1f} s ({result.cpu_us_per_event:5.1f} µs/ev) "
              f"rows {result.rows}/{result.truth} distinct {result.distinct} queries {result.queries} "
              f"429s {result.throttled}" + (f" exit {result.returncode}" if result.returncode else ""), flush=True)
        return result

    def server(self, label: str, events: int, **options: object) -> FakeServer:
        opts = FakeOptions(events=events, property_padding=self.plan.padding, **options)  # type: ignore[arg-type]
        print(f"[{label}] generating {opts.events:,} events ...", flush=True)
        return FakeServer(opts, WORK / "logs" / label)

    def after_ours(self, server: FakeServer, target: Target, scenario: str, round_: int, name: str = "ours") -> None:
        """The second run on ours' pipeline: a no-op (nothing new), then every event merged again."""
        kept = WORK / "runs" / scenario / name
        if scenario == "compare" and name == "ours":
            self.run(RUNNERS["ours"], server, target, "noop", round_, keep_from=kept)
        self.run(RUNNERS[f"{name}_merge"], server, target, f"{scenario}_merge", round_, keep_from=kept)

    def compare(self) -> None:
        with self.server("compare", self.plan.events) as server:
            target = Target(server.url, server.key)
            runners = self.runners("ours", "reference", "raw_limit")
            for round_ in range(1, self.plan.rounds + 1):
                shift = (round_ - 1) % max(1, len(runners))  # no system always goes first
                for runner in runners[shift:] + runners[:shift]:
                    if self.run(runner, server, target, "compare", round_) and runner.name.startswith("ours"):
                        self.after_ours(server, target, "compare", round_, runner.name)

    def scaling(self) -> None:
        for i, size in enumerate(self.plan.sizes):
            with self.server(f"scaling_{size}", size) as server:
                target = Target(server.url, server.key)
                for runner in self.runners("raw_limit", "ours", "reference"):
                    if self.run(runner, server, target, f"scale_{size}", 1) and runner.name.startswith("ours") \
                            and i == 0:
                        self.after_ours(server, target, f"scale_{size}", 1, runner.name)

    def wide(self) -> None:
        with self.server("wide", self.plan.wide_events, fat_share=self.plan.fat_share) as server:
            target = Target(server.url, server.key)
            for runner in self.runners("raw_limit", "ours"):
                self.run(runner, server, target, "wide", 1)

    def budget(self) -> None:
        scale = self.plan.time_scale
        with self.server("budget", self.plan.budget_events, rate_limits=True, time_scale=scale,
                         read_budget_gb_per_hour=self.plan.read_budget_gb_per_hour,
                         read_budget_capacity_hours=self.plan.read_budget_capacity_hours) as server:
            for runner in self.runners("ours"):
                # one project: PostHog's read budget is a bucket per team, and the run must drain one
                self.run(runner, server, Target(server.url, server.key, time_scale=scale, projects=(1,)), "budget", 1)

    def peers(self) -> None:
        chosen = [n for n in PEERS if n in self.plan.systems]
        if not chosen:
            self.plan.notes.append("Airbyte and dlt rest_api were not run (name them in --only to run them).")
            return
        with self.server("peers", self.plan.events) as server:
            target = Target(server.url, server.key)
            for runner in self.runners(*chosen, "ours"):
                try:
                    runner.prepare()
                except BenchError as exc:
                    self.errors.append(f"peers/{runner.name}: cannot be run here: {exc}")
                    continue
                self.run(runner, server, target, "peers", 1)


def parse_args(argv: Sequence[str] | None) -> Plan | None:
    """The plan to run, or None for --report-only."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, help="events of the compare scenario (default 300,000; --quick 50,000)")
    parser.add_argument("--rounds", type=int, help="rounds of the compare scenario, medians reported (default 2)")
    parser.add_argument("--sizes", default="1000000,5000000", help="scaling scenario: event counts, comma list")
    parser.add_argument("--padding", type=int, default=1000, help="fake's --property-padding (realistic rows)")
    parser.add_argument("--wide-events", type=int, default=60_000, help="wide scenario: events (about 20 KB each)")
    parser.add_argument("--fat-share", type=float, default=0.6, help="wide scenario: share of 10-50 KB events")
    parser.add_argument("--budget-events", type=int, default=2_000_000, help="budget scenario: events")
    parser.add_argument("--time-scale", type=float, default=60.0, help="budget scenario: rate-limit time compression")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50k events, 1 round, small sizes")
    parser.add_argument("--only", default="", help=f"comma list of scenarios ({', '.join(SCENARIOS)}) "
                                                   f"and/or systems ({', '.join(RUNNERS)})")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: re-render RESULTS.md and the chart from .work/results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        return None
    chosen = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = chosen - set(SCENARIOS) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown --only name(s): {', '.join(sorted(unknown))}")
    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        parser.error("--sizes takes a comma list of event counts")
    events = args.events or (50_000 if args.quick else 300_000)
    rounds = args.rounds or (1 if args.quick else 2)
    if args.quick:
        sizes, wide, budget = tuple(min(s, 100_000) for s in sizes[:1]), min(args.wide_events, 5_000), 100_000
    else:
        wide, budget = args.wide_events, args.budget_events
    if events <= 0 or rounds <= 0 or any(s <= 0 for s in sizes) or args.time_scale <= 0:
        parser.error("--events, --rounds, --sizes and --time-scale must be positive")
    systems = tuple(r for r in RUNNERS if r in chosen) or tuple(r for r in RUNNERS if r not in PEERS)
    scenarios = tuple(s for s in SCENARIOS if s in chosen) or tuple(s for s in SCENARIOS if s != "peers")
    if any(p in chosen for p in PEERS) and "peers" not in scenarios:
        scenarios += ("peers",)
    return Plan(events, rounds, sizes, args.padding, wide, args.fat_share, budget, args.time_scale,
                scenarios, systems, args.quick)


def report_only() -> int:
    """RESULTS.md and the chart again from the last run's results.json (e.g. after the report's text changed)."""
    path = WORK / "results.json"
    if not path.exists():
        print(f"no {path}: run the benchmark first", file=sys.stderr)
        return 2
    data = json.loads(path.read_text())
    raw = data["plan"]
    plan = Plan(**{**raw, "sizes": tuple(raw["sizes"]), "scenarios": tuple(raw["scenarios"]),
                   "systems": tuple(raw["systems"])})
    results = [Result(**r) for r in data["results"]]
    if not results:
        print(f"{path} holds no results", file=sys.stderr)
        return 2
    out_dir = WORK / "quick" if plan.quick else HERE
    write_report(plan, results, data["errors"], out_dir, data.get("elapsed_seconds", float("nan")),
                 finished=data.get("finished_utc"), machine_line=data.get("machine"))
    print(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'events_per_second.png'} from {path}")
    return 0


def merge_results(previous: Path, plan: Plan, fresh: list[Result]) -> list[Result]:
    """Results of (scenario, system) pairs not re-run this time are kept from results.json (big runs are done
    one by one)."""
    if not previous.exists():
        return fresh
    rerun = {(r.scenario, r.system) for r in fresh}
    try:
        old = [Result(**r) for r in json.loads(previous.read_text())["results"]]
    except (ValueError, TypeError, KeyError):
        return fresh
    return [r for r in old if (r.scenario, r.system) not in rerun] + fresh


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    if plan is None:
        return report_only()
    bench = Bench(plan)
    started = time.monotonic()
    try:
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
    results_path = WORK / ("results-quick.json" if plan.quick else "results.json")
    results = merge_results(results_path, plan, bench.results)
    errors = bench.errors
    if results_path.exists():  # failures of pairs not re-run stay on record
        rerun = {f"{r.scenario}/{r.system} " for r in bench.results} | {e.split("round")[0] for e in bench.errors}
        old = json.loads(results_path.read_text()).get("errors", [])
        errors = [e for e in old if e.split("round")[0] not in rerun] + bench.errors
    results_path.write_text(json.dumps({"plan": asdict(plan), "results": [asdict(r) for r in results],
                                        "errors": errors, "elapsed_seconds": elapsed,
                                        "finished_utc": finished, "machine": machine_line}, indent=1))
    if results:
        out_dir = WORK / "quick" if plan.quick else HERE  # a smoke run never overwrites the published results
        write_report(plan, results, errors, out_dir, elapsed, finished=finished, machine_line=machine_line)
        print(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'events_per_second.png'}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
