"""`posthog-pipeline`: run, backfill, check, demo and report from the command line.

Exit codes: 0 success; 2 bad input or configuration; 3 authentication or permission; 1 anything else.
An error is one line on stderr (a traceback only with --debug), and the API key is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.runtime.collector import NullCollector

from pipelines.runner import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    RunOptions,
    default_duckdb_file,
    run,
)
from posthog_source import ALL_TABLES, build_client
from posthog_source.catalogue import ENDPOINTS
from posthog_source.config import load_settings, parse_instant, parse_project_ids
from posthog_source.errors import PostHogSourceError
from posthog_source.projects import discover_projects

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_AUTH = 0, 1, 2, 3
# A destination or working folder that cannot be written: bad configuration, not a crash.
_UNWRITABLE = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS})
_KEY_PATTERN = re.compile(r"(ph[xcs]_)[A-Za-z0-9_\-]{6,}")

log = logging.getLogger("posthog_source")


def scrub(text: str) -> str:
    """Last line of defence: whatever we print, a PostHog key in it is masked."""
    return _KEY_PATTERN.sub(r"\1***", text)


class _ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _QuietDlt(logging.Filter):
    """dlt warns about columns that were null in one load and about arrow/JSON hint differences; both are
    expected here (JSON columns arrive as strings), so users see them only with --debug."""

    NOISE = ("did not receive any data", "when merging arrow schema with dlt schema", "is identical to the dataset")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(part in record.getMessage() for part in self.NOISE)


def setup_logging(debug: bool) -> None:
    if not debug:
        logging.getLogger("dlt").addFilter(_QuietDlt())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    for name in ("posthog_source", "pipelines"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.propagate = False


# -- commands --------------------------------------------------------------------------------------
def _source_args(args: argparse.Namespace) -> dict[str, Any]:
    """Only what was given on the command line; the rest comes from dlt config (toml / env)."""
    source_args: dict[str, Any] = {}
    if getattr(args, "projects", None):
        source_args["project_ids"] = parse_project_ids(args.projects)
    for name in ("start_date", "end_date"):
        value = getattr(args, name, None)
        if value:
            parse_instant(value, name)  # fail early with a clear message
            source_args[name] = value
    if getattr(args, "full_refresh", False):
        source_args["full_refresh"] = True
    if getattr(args, "workers", None):
        source_args["workers"] = args.workers
    return source_args


def _run_options(args: argparse.Namespace) -> RunOptions:
    resources_arg = getattr(args, "resources", None)
    resources = [r.strip() for r in resources_arg.split(",") if r.strip()] if resources_arg else None
    return RunOptions(
        resources=resources,
        pipeline_name=args.pipeline_name,
        destination=args.destination,
        dataset_name=args.dataset_name,
        source_args=_source_args(args),
        table_format=args.table_format,
        progress=dlt.progress.log(10, logger=sys.stderr, dump_system_stats=False) if args.progress else NullCollector(),
    )


def cmd_run(args: argparse.Namespace) -> int:
    result = run(_run_options(args))
    print_row_counts(result.rows_extracted, "rows loaded this run")
    return EXIT_OK


def print_row_counts(counts: dict[str, int], title: str) -> None:
    print(title + ":")
    if not counts:
        print("  (nothing new)")
    width = max((len(t) for t in counts), default=0)
    for table in sorted(counts):
        print(f"  {table:<{width}}  {counts[table]:>10,}")


def cmd_backfill(args: argparse.Namespace) -> int:
    from pipelines.backfill import backfill

    options = _run_options(args)
    options.source_args.pop("start_date", None)
    options.source_args.pop("end_date", None)
    totals = backfill(
        options,
        args.start_date,
        args.end_date,
        args.window,
        args.workers or 4,
        handover_pipeline=None if args.no_handover else args.handover_pipeline,
    )
    print_row_counts(totals, "rows loaded by this backfill")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Verifies host, key, scopes and projects without loading anything."""
    config = load_settings(project_ids=args.projects)
    client = build_client(config)
    key_info = client.get("/api/personal_api_keys/@current/", what="the API key's details")
    projects = discover_projects(client, config.project_ids)
    scopes = set(key_info.get("scopes") or ["*"])
    print(f"host: {client.base_url}")
    print(f"key: '{key_info.get('label', '')}' with scopes {', '.join(sorted(scopes))}")
    print(f"projects ({len(projects)}):")
    for project, _ in projects:
        print(f"  {project.id}  {project.name}  (time zone {project.timezone})")
    needed = {e.table: e.scope for e in ENDPOINTS} | {t: "query" for t in ("events", "persons", "person_distinct_ids")}
    missing = {t: s for t, s in needed.items() if not _scope_allows(scopes, s)}
    readable = [t for t in ALL_TABLES if t not in missing]
    print(f"readable: {', '.join(readable)}")
    for table, scope in sorted(missing.items()):
        print(f"not readable: {table} (add the scope '{scope}:read' to the key)")
    return EXIT_OK


def _scope_allows(scopes: set[str], scope_object: str) -> bool:
    return "*" in scopes or f"{scope_object}:read" in scopes or f"{scope_object}:write" in scopes


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    return run_demo(args.duckdb, events=args.events, seed=args.seed, html_path=args.html)


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import format_report_text, run_report

    result = run_report(
        args.duckdb or default_duckdb_file(),
        args.dataset_name,
        project_id=args.project,
        html_path=args.html,
        tz=args.tz,
    )
    print(format_report_text(result))
    if args.html:
        print(f"\nHTML report: {args.html}")
    return EXIT_OK


# -- errors ----------------------------------------------------------------------------------------
def explain(exc: BaseException) -> tuple[int, str]:
    """Exit code and one line for any failure, looking through the wrappers dlt puts around errors."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        todo.extend([getattr(current, "exception", None), current.__cause__, current.__context__])
    for error in chain:
        if isinstance(error, PostHogSourceError):
            return error.exit_code, str(error)
    for error in chain:
        name = type(error).__name__
        text = str(error)
        if name == "ConfigFieldMissingException":
            return EXIT_BAD_INPUT, (
                "the PostHog API key is not configured; set SOURCES__POSTHOG__API_KEY or "
                "api_key under [sources.posthog] in .dlt/secrets.toml"
                if "api_key" in text
                else f"missing configuration: {text.splitlines()[0]}"
            )
        if type(error).__module__.split(".")[0] in ("tomlkit", "tomllib", "toml") or "TomlDecodeError" in name:
            return EXIT_BAD_INPUT, f"a .dlt config file has a syntax error ({text.splitlines()[0]}); fix it"
        if "Could not set lock" in text or "Conflicting lock" in text:
            return EXIT_BAD_INPUT, (
                "the DuckDB file is in use by another process; close it (or wait for the other run) and try again"
            )
        if isinstance(error, OSError) and error.errno in _UNWRITABLE:
            return EXIT_BAD_INPUT, (
                f"cannot write {error.filename} ({error.strerror}); check the path and its permissions"
            )
        if "read-only" in text.lower() or "Permission denied" in text or "readonly" in text.lower():
            return EXIT_BAD_INPUT, f"cannot write to the destination ({text.splitlines()[0]}); check the path"
        if name == "ConnectionError" or name.endswith("ConnectionError"):
            return EXIT_BAD_INPUT, "cannot reach the PostHog host; check host (us, eu or your URL) and the network"
    first = chain[-1] if chain else exc
    return (
        EXIT_ERROR,
        f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''} (rerun with --debug)",
    )


# -- verify (exit 4 when PostHog and the destination differ) --------------------------------------------
EXIT_DIFFERENCES = 4


def cmd_verify(args: argparse.Namespace) -> int:
    """Per project and UTC day, PostHog's event counts against the destination's; --repair re-reads what differs."""
    from pipelines.verify import VerifyOptions, format_repair, format_report, verify_and_repair

    options = _run_options(args)
    start = parse_instant(options.source_args.pop("start_date", None), "start_date")  # the range checked,
    end = parse_instant(options.source_args.pop("end_date", None), "end_date")  # not the source's bounds
    outcome = verify_and_repair(VerifyOptions(options, start, end, repair=args.repair))
    print(format_report(outcome.first))
    if outcome.repair is not None:
        print(format_repair(outcome.repair))
    if outcome.after is not None:
        print(format_report(outcome.after, "after repair"))
    return EXIT_OK if outcome.equal else EXIT_DIFFERENCES


def add_verify_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    verify_parser = commands.add_parser("verify", help="compare PostHog's event counts per day with the destination")
    common(verify_parser)
    verify_parser.add_argument("--start-date", help="first instant compared (default: the destination's first day)")
    verify_parser.add_argument("--end-date", help="end of the comparison (default: now minus ingestion_lag)")
    verify_parser.add_argument("--repair", action="store_true",
                               help="re-read the differing project-days, remove what PostHog no longer holds")
    verify_parser.set_defaults(handler=cmd_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posthog-pipeline", description="Load PostHog into a warehouse with dlt.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--projects", help="comma list of project ids (default: every project the key reads)")
        sub.add_argument("--destination", default="duckdb", help="any dlt destination (default duckdb)")
        sub.add_argument("--dataset-name", default=DEFAULT_DATASET)
        sub.add_argument("--table-format", choices=("delta", "iceberg"),
                         help="filesystem destination: write Delta or Iceberg tables instead of parquet files")
        sub.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
        sub.add_argument("--workers", type=int, help="parallel HogQL walks (default 4, within PostHog's limits)")
        sub.add_argument("--progress", action="store_true", help="log dlt progress every 10 s")

    run_parser = commands.add_parser("run", help="incremental run of every (or the chosen) table")
    common(run_parser)
    run_parser.add_argument("--resources", help=f"comma list of tables to load (default all): {', '.join(ALL_TABLES)}")
    run_parser.add_argument("--start-date", help="first run's lower bound for events (ISO date)")
    run_parser.add_argument("--end-date", help="upper bound: makes the run a stateless window")
    run_parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="re-read events from start_date and all persons (merge, nothing dropped)",
    )
    run_parser.set_defaults(handler=cmd_run)

    backfill_parser = commands.add_parser("backfill", help="load a range of events in parallel windows, resumable")
    common(backfill_parser)
    backfill_parser.set_defaults(pipeline_name=f"{DEFAULT_PIPELINE_NAME}_backfill")
    backfill_parser.add_argument("--start-date", required=True, help="first event timestamp to load (ISO date)")
    backfill_parser.add_argument("--end-date", help="end of the range (default: now, then hand over)")
    backfill_parser.add_argument("--window", default="1d", help="window size: 6h, 1d, 7d... (default 1d)")
    backfill_parser.add_argument(
        "--handover-pipeline",
        default=DEFAULT_PIPELINE_NAME,
        help="pipeline whose incremental runs continue after a backfill to now",
    )
    backfill_parser.add_argument("--no-handover", action="store_true", help="do not start the incremental cursor")
    backfill_parser.set_defaults(handler=cmd_backfill)

    check_parser = commands.add_parser("check", help="verify host, key, scopes and projects")
    check_parser.add_argument("--projects")
    check_parser.set_defaults(handler=cmd_check)

    demo_parser = commands.add_parser("demo", help="everything against the bundled local PostHog, no credentials")
    demo_parser.add_argument("--duckdb", default="posthog_demo.duckdb", help="DuckDB file to write")
    demo_parser.add_argument("--events", type=int, default=300_000)
    demo_parser.add_argument("--seed", type=int, default=1)
    demo_parser.add_argument("--html", help="where to write the HTML report (default: next to the DuckDB file)")
    demo_parser.set_defaults(handler=cmd_demo)

    report_parser = commands.add_parser("report", help="run the sql/ models on the DuckDB file and show them")
    report_parser.add_argument(
        "--duckdb", help=f"DuckDB file to read (default: as `run` writes, {DEFAULT_DUCKDB_FILE})"
    )
    report_parser.add_argument("--dataset-name", default=DEFAULT_DATASET)
    report_parser.add_argument("--project", type=int, help="only this project id")
    report_parser.add_argument("--tz", default="UTC", help="time zone that days and weeks are cut in")
    report_parser.add_argument("--html", help="also write a self-contained HTML page with charts")
    report_parser.set_defaults(handler=cmd_report)
    add_verify_parser(commands, common)
    return parser


def release_memory_promptly() -> None:
    """Arrow's default allocator (mimalloc) keeps freed pages for reuse; pages of 50,000 events come and go,
    so the system allocator keeps a long run's memory flat at no measurable cost in speed."""
    with contextlib.suppress(AttributeError, NotImplementedError):  # a build without it keeps its default
        pa.set_memory_pool(pa.system_memory_pool())


def main(argv: Sequence[str] | None = None) -> int:
    release_memory_promptly()
    args = build_parser().parse_args(argv)
    setup_logging(args.debug)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted; nothing loaded was damaged and the next run continues", file=sys.stderr)
        return 130
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        if isinstance(exc, SystemExit):
            raise
        code, message = explain(exc)
        if args.debug:
            print(scrub("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(f"error: {scrub(message)}", file=sys.stderr)
        return code
