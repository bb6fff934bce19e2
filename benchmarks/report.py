"""RESULTS.md and events_per_second.png from the measured runs: medians, ratios to the raw client, and the
goals of issue 12 checked honestly (met / not met, with the figure)."""

from __future__ import annotations

import os
import platform
import re
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.png import bar_chart
from benchmarks.runners import Result

HERE = Path(__file__).resolve().parent
PROFILE = HERE / "profile.md"  # where ours spends its CPU and memory (py-spy, DuckDB timings); hand-kept
SINCE_PREVIOUS = HERE / "since_previous.md"  # hand-written: what changed in the connector since the last run
ROWS_PER_QUERY = 50_000  # HogQL's largest page
RSS_GOAL_MIB = 600  # issue 22: 500 raised to 600 to leave room for loading beside the fetch
AMPLIFICATION_GOAL = 1.3  # bytes read ÷ bytes loaded (the columns loaded) on a first run and a backfill
NAN = float("nan")
# Ours with the loader settings runner.py now has (1 thread, 256 MB), measured before they landed; no longer run
# (ours is that now), shown while results.json holds them.
SYSTEMS = (("ours", ""),)  # systems of ours whose goals are judged (a variant under trial can be added)


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
    return statistics.median(value(r) for r in results) if results else NAN


def pick(results: Sequence[Result], scenario: str, system: str) -> list[Result]:
    return [r for r in results if r.scenario == scenario and r.system == system]


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # noqa: PLR0124 - NaN check


def pct(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{100 * a / b:.0f} %"  # noqa: PLR0124


def known(*values: float) -> bool:
    return all(v == v for v in values)  # noqa: PLR0124


def first_and_last(error: str) -> str:
    """An error's first line and, for a traceback, its last (the exception)."""
    lines = [line for line in error.splitlines() if line.strip()]
    return lines[0] + (f" … `{lines[-1].strip()[:200]}`" if len(lines) > 1 else "")


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

    def cpu(self, scenario: str, system: str) -> float:
        return med(pick(self.results, scenario, system), lambda r: r.cpu_us_per_event)

    def rss(self, scenario: str, system: str) -> float:
        runs = pick(self.results, scenario, system)
        return max(r.peak_tree_rss_mb for r in runs) if runs else NAN

    def goal(self, text: str, measured: str, met: bool | None) -> None:
        self.goals.append((text, measured, met))

    def table(self, rows: Sequence[tuple[str, str, str]], raw_scenario: str) -> None:
        """rows: (label, scenario, system); ratios against the raw client of `raw_scenario`."""
        raw_eps, raw_cpu = self.eps(raw_scenario, "raw_limit"), self.cpu(raw_scenario, "raw_limit")
        self.add("| system | runs | wall s | events/s | % of raw | peak RSS MiB (median / max) | CPU s "
                 "| CPU µs/event | × raw CPU | rows / truth | distinct | HogQL queries | 429s "
                 "| rows scanned ÷ loaded | bytes read ÷ loaded |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for label, scenario, system in rows:
            runs = pick(self.results, scenario, system)
            if not runs:
                continue
            failed = sum(1 for r in runs if r.returncode)
            eps, cpu = med(runs, lambda r: r.events_per_second), med(runs, lambda r: r.cpu_us_per_event)
            times = "—" if system == "raw_limit" else (f"{cpu / raw_cpu:.2f}×" if known(cpu, raw_cpu) else "n/a")
            distinct = fmt(med(runs, lambda r: r.distinct))
            self.add(f"| {label} | {len(runs)}{f' ({failed} failed)' if failed else ''} "
                     f"| {fmt(med(runs, lambda r: r.wall_seconds), 1)} | {fmt(eps)} | {pct(eps, raw_eps)} "
                     f"| {fmt(med(runs, lambda r: r.peak_tree_rss_mb))} / {fmt(max(r.peak_tree_rss_mb for r in runs))} "
                     f"| {fmt(med(runs, lambda r: r.cpu_seconds), 1)} | {fmt(cpu, 1)} "
                     f"| {times} | {fmt(med(runs, lambda r: r.rows))} / {runs[0].truth:,} | {distinct} "
                     f"| {fmt(med(runs, lambda r: r.queries))} | {max(r.throttled for r in runs)} "
                     f"| {fmt(med(runs, lambda r: r.rows_amplification), 2)} "
                     f"| {fmt(med(runs, lambda r: r.bytes_amplification), 2)} |")
        self.add("")

    def build(self) -> str:
        plan = self.plan
        self.add("# Benchmarks", "",
                 f"Run finished {self.finished} UTC on {self.machine_line}. Reproduce with `./dev bench` "
                 f"(`python -m benchmarks --help`); the whole run took {fmt(self.elapsed / 60, 1)} min.",
                 f"Data: the stricter fake's realistic events, `--property-padding {plan.padding}` (about 1.5 KB "
                 "per row in HogQL's JSON, 1.3 KB of properties on average), seed 1, the 2 projects of the key's "
                 "organisation. *raw* fetches the connector's own HogQL plans and byte-sized pages on 4 walks and "
                 "parses them with orjson, writing nothing: no client of this server can be faster here. "
                 "*reference* is a plain HogQL keyset → Arrow → dlt → DuckDB script (append, one walk after "
                 "another). Peak RSS is the summed RSS of the whole process tree sampled every 50 ms; CPU is user + "
                 "system seconds of the tree. The machine (2 CPUs) is shared with the fake server and with other "
                 "work, so wall times move; ratios of alternated runs and CPU per event are the figures to quote.",
                 "")
        self.compare()
        self.scaling()
        self.wide()
        self.budget()
        self.goals_section()
        for title, path in (("Where the time and memory go (profile)", PROFILE),
                            ("What changed since the previous run", SINCE_PREVIOUS)):
            if path.exists():
                self.add(f"## {title}", "", path.read_text().strip(), "")
        notes = list(getattr(plan, "notes", []) or [])
        if notes:
            self.add("## Notes", "", *[f"- {n}" for n in notes], "")
        if self.errors:
            self.add("## Errors during the run", "", *[f"- {first_and_last(e)}" for e in self.errors], "")
        return "\n".join(self.lines) + "\n"

    def compare(self) -> None:
        runs = pick(self.results, "compare", "ours")
        if not runs and not pick(self.results, "compare", "raw_limit"):
            return
        truth = (runs or pick(self.results, "compare", "raw_limit"))[0].truth
        self.add(f"## Side by side: {truth:,} events into an empty DuckDB ({self.plan.rounds} rounds, order rotated)",
                 "", "*ours, merge*: ours again on the same pipeline with `--full-refresh`: every event re-read "
                 "and merged into the table that already holds them.", "")
        self.table([("ours", "compare", "ours"), ("ours, merge into the full table", "compare_merge", "ours_merge"),
                    ("reference", "compare", "reference"), ("raw", "compare", "raw_limit"),
                    ("airbyte (lossy `/events/`)", "peers", "airbyte"), ("dlt rest_api", "peers", "rest_api")],
                   "compare")
        noop = pick(self.results, "noop", "ours")
        if noop:
            self.add(f"No-op incremental run (nothing new): {med(noop, lambda r: r.wall_seconds):.1f} s, "
                     f"{med(noop, lambda r: r.queries):.0f} HogQL queries, table still {noop[0].distinct:,} rows.", "")
        raw = self.eps("compare", "raw_limit")
        for system, suffix in SYSTEMS:
            ours, peak = self.eps("compare", system), self.rss("compare", system)
            if known(ours, raw):
                self.goal(f"≥ 75 % of raw events/s, first run into an empty DuckDB{suffix}", pct(ours, raw),
                          ours >= 0.75 * raw)
            reference = self.eps("compare", "reference")
            if known(ours, reference):
                self.goal(f"≥ 1.5× the reference's events/s{suffix}", f"{ours / reference:.2f}×",
                          ours >= 1.5 * reference)
            self.amplification_goal("compare", system, suffix, truth)
            if known(peak):
                self.goal(f"peak RSS < {RSS_GOAL_MIB} MiB at {truth:,} events{suffix}", f"{peak:.0f} MiB",
                          peak < RSS_GOAL_MIB)

    def scaling(self) -> None:
        measured = {int(r.scenario.split("_")[1]) for r in self.results if re.fullmatch(r"scale_\d+", r.scenario)}
        sizes = sorted(s for s in set(self.plan.sizes) | measured if pick(self.results, f"scale_{s}", "ours")
                       or pick(self.results, f"scale_{s}", "raw_limit"))  # sizes kept from earlier runs too
        if not sizes:
            return
        self.add("## Scaling: one run each at larger sizes (fresh fake server per size)", "")
        rows: list[tuple[str, str, str]] = []
        for size in sizes:
            rows += [(f"ours, {size:,}", f"scale_{size}", "ours"),
                     (f"ours, merge into the {size:,} table", f"scale_{size}_merge", "ours_merge"),
                     (f"reference, {size:,}", f"scale_{size}", "reference"),
                     (f"raw, {size:,}", f"scale_{size}", "raw_limit")]
        for size in sizes:
            self.add(f"### {size:,} events", "")
            self.table([r for r in rows if r[1].startswith(f"scale_{size}")], f"scale_{size}")
            for system, suffix in SYSTEMS:
                peak = self.rss(f"scale_{size}", system)
                ours, raw = self.eps(f"scale_{size}", system), self.eps(f"scale_{size}", "raw_limit")
                if known(ours, raw):
                    self.goal(f"≥ 75 % of raw events/s at {size:,} events{suffix}", pct(ours, raw), ours >= 0.75 * raw)
                reference = self.eps(f"scale_{size}", "reference")
                if known(ours, reference):
                    self.goal(f"≥ 1.5× the reference's events/s at {size:,} events{suffix}", f"{ours / reference:.2f}×",
                              ours >= 1.5 * reference)
                if known(peak):
                    self.goal(f"peak RSS < {RSS_GOAL_MIB} MiB at {size:,} events{suffix}", f"{peak:.0f} MiB",
                              peak < RSS_GOAL_MIB)
                self.amplification_goal(f"scale_{size}", system, suffix, size)
        first = sizes[0]
        raw = self.eps(f"scale_{first}", "raw_limit")
        for system, suffix in SYSTEMS:
            merge = self.eps(f"scale_{first}_merge", f"{system}_merge")
            if known(merge, raw):
                table_rows = pick(self.results, f"scale_{first}_merge", f"{system}_merge")[0].truth
                self.goal(f"≥ 60 % of raw for a run merging into a table of {table_rows:,} events{suffix}",
                          pct(merge, raw), merge >= 0.6 * raw if table_rows >= 900_000 else None)  # 1M made, 96 % read
            small, big = self.rss("compare", system), self.rss(f"scale_{sizes[-1]}", system)
            if known(small, big):
                self.goal(f"flat memory: peak RSS at {sizes[-1]:,} ÷ at {self.plan.events:,} ≤ 1.2{suffix}",
                          f"{big / small:.2f}", big / small <= 1.2)

    def wide(self) -> None:
        runs = pick(self.results, "wide", "ours") + pick(self.results, "wide", "raw_limit")
        if not runs:
            return
        self.add(f"## Wide events: about 20 KB each (`--fat-share {self.plan.fat_share}`: 10-50 KB `$exception` "
                 "and `$ai_generation` events)", "")
        self.table([("ours", "wide", "ours"), ("raw", "wide", "raw_limit")],
                   "wide")
        for system, suffix in SYSTEMS:
            peak = self.rss("wide", system)
            if known(peak):
                self.goal(f"peak RSS < {RSS_GOAL_MIB} MiB for 20 KB events{suffix}", f"{peak:.0f} MiB",
                          peak < RSS_GOAL_MIB)

    def amplification_goal(self, scenario: str, system: str, suffix: str, size: int) -> None:
        runs = pick(self.results, scenario, system)
        by_bytes = med(runs, lambda r: r.bytes_amplification)
        if known(by_bytes):
            by_rows = med(runs, lambda r: r.rows_amplification)
            self.goal(f"bytes read ≤ {AMPLIFICATION_GOAL}× bytes loaded, first run of {size:,} events{suffix}",
                      f"{by_bytes:.2f}× (rows scanned {by_rows:.2f}×)", by_bytes <= AMPLIFICATION_GOAL)

    def budget(self) -> None:
        measured = [(system, suffix, pick(self.results, "budget", system)[0]) for system, suffix in SYSTEMS
                    if pick(self.results, "budget", system)]
        if not measured:
            return
        plan = self.plan
        refill = plan.read_budget_gb_per_hour * 1e9 / 3600 * plan.time_scale  # bytes per real second
        capacity = plan.read_budget_gb_per_hour * 1e9 * plan.read_budget_capacity_hours
        truth = measured[0][2].truth
        self.add(f"## Read budget: a {truth:,}-event first run larger than PostHog's read reserve", "",
                 f"The fake meters every query's bytes read (PostHog#95375) with a bucket of "
                 f"{plan.read_budget_gb_per_hour:g} GB/h held for {plan.read_budget_capacity_hours:g} h "
                 f"({capacity / 1e9:.2f} GB), time compressed {plan.time_scale:g}× (a refill of "
                 f"{refill / 1e6:.1f} MB per real second), with PostHog's query-count limits on. The bucket is small "
                 "against the run so that the refill, not the reserve, decides its pace; the run reads one project "
                 "(the bucket is per team). Share of the refill rate: the refill the run used (bytes read − the "
                 "reserve it started with + the balance after its last query, so an overdraft counts against "
                 "it) ÷ (seconds from the first query to the last × refill per second).", "",
                 "| system | wall s | distinct / truth | bytes read | balance after the last query | query span s "
                 "| share of refill rate | 429s |", "|---|---|---|---|---|---|---|---|")
        for system, suffix, run in measured:
            span = run.query_span_seconds
            used = run.read_bytes - capacity + run.budget_end_bytes
            share = used / (span * refill) if span > 0 else NAN
            self.add(f"| {system} | {run.wall_seconds:.1f} | {run.distinct:,} / {run.truth:,} "
                     f"| {run.read_bytes / 1e9:.2f} GB | {run.budget_end_bytes / 1e6:,.1f} MB | {span:.1f} "
                     f"| {fmt(100 * share, 1)} % | {run.throttled} |")
            self.goal(f"a read larger than the reserve at ≥ 90 % of the refill rate, 0 × 429{suffix}",
                      f"{fmt(100 * share, 1)} %, {run.throttled} × 429",
                      share >= 0.9 and run.throttled == 0 if known(share) else None)
        self.add("")

    def goals_section(self) -> None:
        ours = [r for r in self.results if r.system.startswith("ours") and r.scenario != "noop"]
        if ours:
            exact = all(r.rows == r.distinct == r.truth for r in ours)
            self.goal("every run of ours delivers every event exactly once", f"{len(ours)} runs, "
                      + ("all exact" if exact else "some rows ≠ distinct ≠ truth"), exact)
        for error in self.errors:  # a run that failed meets nothing it was measuring
            self.goal(f"run completes: {error.split(':')[0]}", error.split(";")[0].split(":", 1)[-1].strip()[:120],
                      False)
        self.add("## Goals (issue 22)", "", "| goal | measured | met |", "|---|---|---|")
        for text, measured, met in self.goals:
            self.add(f"| {text} | {measured} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
        self.add("")


def write_report(plan: Any, results: Sequence[Result], errors: Sequence[str], out_dir: Path, elapsed: float,
                 finished: str | None = None, machine_line: str | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "RESULTS.md").write_text(Report(plan, results, errors, elapsed, finished, machine_line).build())
    bars = []
    for label, scenario, system in (("ours", "compare", "ours"), ("ours, merge", "compare_merge", "ours_merge"),
                                    ("reference", "compare", "reference"), ("raw", "compare", "raw_limit")):
        runs = pick(results, scenario, system)
        if runs:
            eps = med(runs, lambda r: r.events_per_second)
            mib = max(r.peak_tree_rss_mb for r in runs)
            bars.append((label, eps, f"{eps:,.0f}/s, {mib:,.0f} MiB"))
    if bars:
        bar_chart(out_dir / "events_per_second.png",
                  f"events/s (peak RSS), median of {plan.rounds}, {results[0].truth:,} events", bars)
