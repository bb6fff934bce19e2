"""RESULTS.md and events_per_second.png from the measured runs: medians and ratios, goals checked honestly."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.png import bar_chart
from benchmarks.runners import Result

HERE = Path(__file__).resolve().parent
SINCE_PREVIOUS = HERE / "since_previous.md"  # hand-written: what changed in the connector since the last published run
QUERY_BUDGET_PER_HOUR = 2400  # PostHog's HogQL budget per key (posthog-api.md §4)
ROWS_PER_QUERY = 50_000
EVENTS_BUDGET_PER_HOUR, ROWS_PER_EVENTS_PAGE = 1200, 1000  # /events/: analytics budget, page cap


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as fh:
        mem_kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average at the end {load}")


def med(results: Sequence[Result], value: Callable[[Result], float]) -> float:
    return statistics.median(value(r) for r in results) if results else float("nan")


def pick(results: Sequence[Result], scenario: str, system: str) -> list[Result]:
    return [r for r in results if r.scenario == scenario and r.system == system]


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # noqa: PLR0124 - NaN check


def ratio(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{a / b:.2f}×"  # noqa: PLR0124


class Report:
    def __init__(self, plan: Any, results: Sequence[Result], errors: Sequence[str], elapsed: float,
                 finished: str | None = None, machine_line: str | None = None) -> None:
        self.plan, self.results, self.errors, self.elapsed = plan, results, errors, elapsed
        self.finished = finished or f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        self.machine_line = machine_line or machine()
        self.lines: list[str] = []
        self.goals: list[tuple[str, str, bool | None]] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def eps(self, scenario: str, system: str) -> float:
        return med(pick(self.results, scenario, system), lambda r: r.events_per_second)

    def goal(self, text: str, measured: str, met: bool | None) -> None:
        self.goals.append((text, measured, met))

    def systems_table(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """rows: (label, scenario, system); ratio column is ours (same scenario's `ours`, else compare) / system."""
        self.add("| system | runs | wall s (median) | events/s (median) | peak RSS MB (median / max) | rows / truth "
                 "| distinct | delivered | requests | 429s | ours ÷ it |",
                 "|---|---|---|---|---|---|---|---|---|---|---|")
        for label, scenario, system in rows:
            runs = pick(self.results, scenario, system)
            if not runs:
                continue
            ours = self.eps(scenario, "ours") if pick(self.results, scenario, "ours") else self.eps("compare", "ours")
            truth = runs[0].truth
            failed = sum(1 for r in runs if r.returncode)
            self.add(f"| {label} | {len(runs)}{f' ({failed} failed)' if failed else ''} "
                     f"| {fmt(med(runs, lambda r: r.wall_seconds), 1)} "
                     f"| {fmt(med(runs, lambda r: r.events_per_second))} "
                     f"| {fmt(med(runs, lambda r: r.peak_tree_rss_mb))} / {fmt(max(r.peak_tree_rss_mb for r in runs))} "
                     f"| {fmt(med(runs, lambda r: r.rows))} / {truth:,} | {fmt(med(runs, lambda r: r.distinct))} "
                     f"| {100 * med(runs, lambda r: r.distinct) / truth:.2f} % "
                     f"| {fmt(med(runs, lambda r: r.requests))} "
                     f"| {fmt(med(runs, lambda r: r.throttled))} "
                     f"| {'—' if system == 'ours' else ratio(ours, self.eps(scenario, system))} |")
        self.add("")

    def build(self) -> str:
        plan = self.plan
        self.add("# Benchmarks", "",
                 f"Run finished {self.finished} UTC on {self.machine_line}.",
                 f"{plan.events:,} generated events (seed 1; the 2 projects of the key's organisation hold 96 %), "
                 f"{plan.rounds} round(s) per scenario, systems alternated (order rotated each round); the whole run "
                 f"took {fmt(self.elapsed / 60, 1)} min. Reproduce with `./dev bench` (`python -m benchmarks --help`).",
                 "The machine is shared with other work, so absolute numbers move; ratios of alternated runs are "
                 "the figures to quote. Events/s counts *distinct* events delivered, so a lossy system scores only "
                 "what it delivered; peak RSS is the summed RSS of the process tree, sampled every 50 ms.", "")
        self.compare()
        self.scaling()
        self.budget()
        self.latency()
        self.noop()
        self.add("## Goals", "", "| goal | measured | met |", "|---|---|---|")
        for text, measured, met in self.goals:
            self.add(f"| {text} | {measured} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
        self.add("")
        self.caveats()
        if SINCE_PREVIOUS.exists():
            self.add("## What changed since the previous run", "", SINCE_PREVIOUS.read_text().strip(), "")
        if self.errors:
            self.add("## Errors during the run", "", *[f"- {e}" for e in self.errors], "")
        return "\n".join(self.lines) + "\n"

    def caveats(self) -> None:
        """What the figures do not say; the numbers quoted are taken from this run."""
        items = []
        capped = pick(self.results, "compare", "airbyte")
        if capped:
            share = 100 * med(capped, lambda r: r.distinct / r.truth)
            items.append(
                "**Airbyte is lossy here, so its events/s is not like for like.** `source-posthog` asks `/events/` "
                f"for `limit=10000` and steps `offset` by 10,000; PostHog (and the fake) silently cap a page at 1,000 "
                f"rows, Airbyte reads the short page as the end of its 30-day slice and moves on, so it delivered "
                f"{share:.2f} % of the rows. Events/s counts distinct rows delivered, so the ratio against it is "
                f"the ratio of useful throughput, not of request speed.")
        uncapped = pick(self.results, "airbyte_uncapped", "airbyte")
        if uncapped:
            failed = sum(1 for r in uncapped if r.returncode)
            share = 100 * med(uncapped, lambda r: r.distinct / r.truth)
            outcome = (f"{failed} of {len(uncapped)} runs failed that way, with {share:.2f} % of the rows"
                       if failed else f"no run failed here ({share:.2f} % of the rows): every slice stayed under it")
            items.append(
                f"**Airbyte with the cap lifted** (a server that honours `limit=10000`, which PostHog does not) "
                f"still cannot read a 30-day slice of more than 50,000 events: its `offset` then passes 50,000, "
                f"which PostHog refuses (`Offset is deprecated. Max supported offset value is 50000`, HTTP 400); "
                f"{outcome}. That row shows its speed when not capped, not a usable configuration.")
        budget = pick(self.results, "budget", "ours")
        if budget:
            truth = budget[0].truth
            text = (f"**The budget goal is measured as rows per request at {self.plan.events:,} events**, not as a "
                    "sustained hour against the limiter: at this size a run needs a few dozen queries, far below the "
                    "2,400/h budget, so the compressed-time run cannot reach the ceiling and the figure is a "
                    "projection. *Requests* counts every request the run made: the HogQL pages, the per-day count "
                    "query of each project and the REST calls that list the key's projects (those are on another "
                    f"budget). {truth:,} rows need at least {math.ceil(truth / ROWS_PER_QUERY)} pages of "
                    f"{ROWS_PER_QUERY:,} plus a count query per project, while 90 % of the ceiling allows at most "
                    f"{truth / (0.9 * ROWS_PER_QUERY):.1f} requests in all, so at this size the goal cannot be met "
                    "as measured even without a wasted query.")
            raw = pick(self.results, "compare", "raw_limit")
            if raw:  # the same planner's HogQL queries, and nothing else
                queries = med(raw, lambda r: r.requests)
                share = 100 * truth / queries / ROWS_PER_QUERY
                text += (f" The raw limit, which sends exactly the connector's HogQL queries, made {queries:.0f}; "
                         f"counting only those, ours reaches {truth / queries:,.0f} rows per query, {share:.0f} % "
                         "of the ceiling.")
            items.append(text + " The 429 count is the fake's own (rate limits on, same time scale told to the "
                         "client).")
        if pick(self.results, "compare", "rest_api"):
            items.append(
                "dlt `rest_api` reads the same `/events/` endpoint with its `next` links (1,000 rows per request), "
                "which skip rows sharing the boundary timestamp, hence its small loss.")
        items.append(
            "Every figure is a median of alternated rounds on a 2-CPU machine that the fake server shares with the "
            "client (the fake's DuckDB rendering is part of every system's wall time); the raw limit is measured "
            "on the same machine and so includes the fake's cost too.")
        self.add("## Caveats", "", *[f"- {item}" for item in items], "")

    def compare(self) -> None:
        self.add("## Side by side: every event of both projects into a fresh destination", "",
                 "ours: `posthog-pipeline run --resources events` into DuckDB; airbyte: `source-posthog read` "
                 "(events stream) to a file; rest_api: dlt `rest_api_source` on `/events/` into DuckDB; raw_limit: "
                 "the connector's own HogQL pages fetched and parsed with orjson, nothing written; "
                 "airbyte (cap lifted): against a server whose `/events/` honours `limit=10000`.", "")
        self.systems_table([("ours", "compare", "ours"), ("airbyte", "compare", "airbyte"),
                            ("airbyte (cap lifted)", "airbyte_uncapped", "airbyte"),
                            ("dlt rest_api", "compare", "rest_api"), ("raw limit", "compare", "raw_limit")])
        ours = self.eps("compare", "ours")
        for system, target, text in (("airbyte", 5.0, "≥ 5× Airbyte's events/s"),
                                     ("rest_api", 20.0, "≥ 20× dlt rest_api's events/s")):
            other = self.eps("compare", system)
            self.goal(text, ratio(ours, other), None if other != other else ours >= target * other)  # noqa: PLR0124
        raw = self.eps("compare", "raw_limit")
        self.goal("≥ 50 % of the raw limit", "n/a" if raw != raw else f"{100 * ours / raw:.0f} %",  # noqa: PLR0124
                  None if raw != raw else ours >= 0.5 * raw)  # noqa: PLR0124
        runs = pick(self.results, "compare", "ours")
        if runs:
            lossless = all(r.distinct == r.truth == r.rows for r in runs)
            self.goal("ours delivers every event exactly once", "yes" if lossless else "rows or distinct ≠ truth",
                      lossless)

    def scaling(self) -> None:
        small, big = pick(self.results, "compare", "ours"), pick(self.results, "scaling", "ours")
        if not small or not big:
            return
        us = [med(runs, lambda r: 1e6 * r.wall_seconds / max(1, r.distinct)) for runs in (small, big)]
        mb = [med(runs, lambda r: r.peak_tree_rss_mb) for runs in (small, big)]
        self.add(f"## Scaling: ours at {small[0].truth:,} and {big[0].truth:,} events", "",
                 "| events | µs per event (median) | peak RSS MB (median) |", "|---|---|---|",
                 f"| {small[0].truth:,} | {us[0]:.1f} | {mb[0]:.0f} |",
                 f"| {big[0].truth:,} | {us[1]:.1f} | {mb[1]:.0f} |",
                 f"| ratio | {us[1] / us[0]:.2f} | {mb[1] / mb[0]:.2f} |", "")
        flat = us[1] / us[0]
        self.goal("time per event flat from 1× to 5× events", f"ratio {flat:.2f}", flat <= 1.2)
        self.goal("peak memory flat (ratio ≤ 1.2) and < 500 MB", f"ratio {mb[1] / mb[0]:.2f}, max "
                  f"{max(r.peak_tree_rss_mb for r in big):.0f} MB",
                  mb[1] / mb[0] <= 1.2 and max(r.peak_tree_rss_mb for r in big + small) < 500)

    def budget(self) -> None:
        scale = self.plan.time_scale
        rows = [(s, pick(self.results, "budget", s)) for s in ("ours", "airbyte")]
        if not any(runs for _, runs in rows):
            return
        ceiling = QUERY_BUDGET_PER_HOUR * ROWS_PER_QUERY
        self.add(f"## API budget: PostHog's rate limits on, time compressed {scale:g}× (ours told the same)", "",
                 f"Ceiling: {QUERY_BUDGET_PER_HOUR} HogQL queries/h × {ROWS_PER_QUERY:,} rows = {ceiling / 1e6:.0f}M "
                 f"rows/h (`/events/`: {EVENTS_BUDGET_PER_HOUR} × {ROWS_PER_EVENTS_PAGE} = "
                 f"{EVENTS_BUDGET_PER_HOUR * ROWS_PER_EVENTS_PAGE / 1e6:.1f}M rows/h). "
                 "*Rows per budget-hour* = rows per request × the hourly budget of the endpoint it uses: what the "
                 "client reaches once the budget, not "
                 "the server, is the limit. *Rows per simulated hour* = rows ÷ (wall time × time scale); at this "
                 "size a run needs far fewer queries than the budget holds, so that figure is bound by the server's "
                 "speed, not the budget.", "",
                 "| system | wall s | distinct rows | requests | rows per request | rows per budget-hour "
                 "| share of 120M/h | rows per simulated hour | 429s served |", "|---|---|---|---|---|---|---|---|---|")
        for system, runs in rows:
            if not runs:
                continue
            per_request = med(runs, lambda r: r.distinct / max(1, r.requests))
            budget = QUERY_BUDGET_PER_HOUR if system == "ours" else EVENTS_BUDGET_PER_HOUR
            per_hour = per_request * budget
            simulated = med(runs, lambda r: r.distinct / (r.wall_seconds * scale / 3600))
            self.add(f"| {system} | {fmt(med(runs, lambda r: r.wall_seconds), 1)} "
                     f"| {fmt(med(runs, lambda r: r.distinct))} / {runs[0].truth:,} "
                     f"| {fmt(med(runs, lambda r: r.requests))} | {per_request:,.0f} | {per_hour / 1e6:.2f}M "
                     f"| {100 * per_hour / ceiling:.1f} % | {simulated / 1e6:.2f}M "
                     f"| {fmt(med(runs, lambda r: r.throttled))} (max {max(r.throttled for r in runs)}) |")
            if system == "ours":
                throttled = max(r.throttled for r in runs)
                self.goal("≥ 90 % of the API-budget ceiling, no 429s", f"{100 * per_hour / ceiling:.0f} %, "
                          f"{throttled} 429s", per_hour >= 0.9 * ceiling and throttled == 0)
        self.add("")

    def latency(self) -> None:
        if not pick(self.results, "latency", "ours"):
            return
        self.add(f"## Latency: {self.plan.latency_seconds * 1000:.0f} ms added to every request (local proxy)", "")
        self.systems_table([("ours", "latency", "ours"), ("airbyte", "latency", "airbyte")])

    def noop(self) -> None:
        runs = pick(self.results, "noop", "ours")
        if not runs:
            return
        self.add("## No-op incremental run (ours, second run on the same pipeline, nothing new)", "",
                 "| runs | wall s (median) | requests (median) | rows loaded |", "|---|---|---|---|",
                 f"| {len(runs)} | {med(runs, lambda r: r.wall_seconds):.1f} | {med(runs, lambda r: r.requests):.0f} "
                 f"| {med(runs, lambda r: r.distinct):,.0f} (table total after the run) |", "")


def write_report(plan: Any, results: Sequence[Result], errors: Sequence[str], out_dir: Path, elapsed: float,
                 finished: str | None = None, machine_line: str | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "RESULTS.md").write_text(Report(plan, results, errors, elapsed, finished, machine_line).build())
    bars = []
    for label, scenario, system in (("ours", "compare", "ours"), ("airbyte", "compare", "airbyte"),
                                    ("airbyte cap lifted", "airbyte_uncapped", "airbyte"),
                                    ("dlt rest_api", "compare", "rest_api"), ("raw limit", "compare", "raw_limit")):
        runs = pick(results, scenario, system)
        if runs:
            eps = med(runs, lambda r: r.events_per_second)
            share = med(runs, lambda r: r.distinct / r.truth)
            digits = 1 if share < 0.1 else 0  # 0.8 %, not 1 %
            lossy = "" if share >= 0.999 else f" ({100 * share:.{digits}f}% of rows)"
            bars.append((label, eps, f"{eps:,.0f}/s{lossy}"))
    if bars:
        bar_chart(out_dir / "events_per_second.png",
                  f"distinct events/s, median of {plan.rounds}, {plan.events:,} events", bars)
