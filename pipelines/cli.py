"""`posthog-pipeline`: run, backfill, check, verify, demo and report from the command line.

An error is one line on stderr (a traceback only with --debug), and the API key is never printed: how a
failure becomes an exit code and that line, and the table of exit codes, live in pipelines/errors.py.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import difflib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import dlt
import pyarrow as pa
from dlt.common.destination import Destination
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.extract.resource import DltResource

from pipelines.destinations.duckdb import DEFAULT_DUCKDB_FILE, default_duckdb_file
from pipelines.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_TABLES_FAILED,
    ScrubbingFormatter,
    explain,
    scrub,
)
from pipelines.runner import (
    DEFAULT_DATASET,
    DEFAULT_PIPELINE_NAME,
    RunOptions,
    apply_destination_hints,
    run,
    state_origin,
    validate_resources,
)
from pipelines.terminal import LinesAboveBars, TableBars
from posthog_source import ALL_TABLES, SETTING_NAMES, hogql, settings, source_from_settings
from posthog_source.catalogue import ENDPOINTS, HOGQL_TABLES
from posthog_source.client import PostHogClient
from posthog_source.config import SourceSettings, load_settings, parse_duration, parse_instant
from posthog_source.errors import ConfigurationError
from posthog_source.projects import Project, discover_projects

SECTION = "sources.posthog"
ENV_PREFIX = "SOURCES__POSTHOG__"

log = logging.getLogger("posthog_source")


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
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    for name in ("posthog_source", "pipelines"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.propagate = False


# -- configuration checks --------------------------------------------------------------------------
def unknown_config_keys(known: set[str]) -> list[tuple[str, str | None]]:
    """Keys under [sources.posthog] in .dlt/config.toml and .dlt/secrets.toml, and SOURCES__POSTHOG__* env
    vars, that are not in `known`, each with the closest known key (or None). dlt ignores such keys without a
    word, so a misspelled `strat_date` would silently read the whole default range."""
    found: dict[str, None] = {}
    settings_dir = Path(dlt.current.run_context().settings_dir)
    for name in ("config.toml", "secrets.toml"):
        section = _toml_section(settings_dir / name)
        for key, value in section.items():
            if key == "posthog" and isinstance(value, dict):  # [sources.posthog.posthog]: dlt's source-name level
                found.update(dict.fromkeys(value))
            else:
                found[key] = None
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].split("__", 1)[0].lower()
            if key:
                found[key] = None
    unknown = [key for key in found if key not in known]
    return [(key, next(iter(difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)), None))
            for key in unknown]


def _toml_section(path: Path) -> dict[str, Any]:
    """[sources.posthog] of one toml file; a missing or broken file counts as empty (dlt reports syntax errors
    itself, with their line)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    section = data.get("sources", {}).get("posthog", {}) if isinstance(data.get("sources"), dict) else {}
    return section if isinstance(section, dict) else {}


def misspelled_sections() -> list[str]:
    """Sections and env var prefixes that look like [sources.posthog] but are not (`[source.posthog]`,
    `SOURCE__POSTHOG__HOST`): dlt reads nothing from them, so their settings would be ignored without a word."""
    found: list[str] = []
    settings_dir = Path(dlt.current.run_context().settings_dir)
    for name in ("config.toml", "secrets.toml"):
        try:
            data = tomllib.loads((settings_dir / name).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        for top, value in data.items():
            if top != "sources" and isinstance(value, dict) and "posthog" in value and \
                    difflib.get_close_matches(top, ["sources"], n=1, cutoff=0.7):
                found.append(f"[{top}.posthog] in .dlt/{name}")
    prefixes = {name.upper().split("__POSTHOG__", 1)[0] for name in os.environ if "__POSTHOG__" in name.upper()}
    for prefix in sorted(prefixes - {"SOURCES", "DESTINATION"}):
        if difflib.get_close_matches(prefix, ["SOURCES"], n=1, cutoff=0.7):
            found.append(f"{prefix}__POSTHOG__* environment variables")
    return found


def warn_unknown_config_keys(known: set[str] | None = None) -> None:
    """One warning line per unknown key, naming the closest known one, and per misspelled section."""
    for key, closest in unknown_config_keys(known if known is not None else set(SETTING_NAMES)):
        hint = f"; did you mean '{closest}'?" if closest else ""
        log.warning("unknown setting '%s' under [%s] is ignored%s", key, SECTION, hint)
    for where in misspelled_sections():
        log.warning("%s are ignored: the section is [%s] (environment variables %s...)", where, SECTION, ENV_PREFIX)


def check_writable_folder(folder: Path, what: str, setting: str) -> None:
    """Create `folder` if needed and prove a file can be written in it, so an unwritable output is found
    before an hour of extracting, and the error names the folder, the OS error and the setting to change."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if folder.exists() and not folder.is_dir():
            reason = "it is a file, not a folder"
        raise ConfigurationError(
            f"cannot write to the folder {folder} for {what} ({reason}); choose a writable path with {setting}"
        ) from None


def check_destination(options: RunOptions) -> None:
    """What can be known about the destination without extracting: its folders and required settings."""
    pipelines_dir = Path(options.pipelines_dir or get_dlt_pipelines_dir()).absolute()
    check_writable_folder(pipelines_dir, "dlt's pipeline state", "DLT_DATA_DIR")
    if options.destination == "duckdb":
        path = Path(options.duckdb_path or default_duckdb_file()).absolute()
        check_writable_folder(path.parent, f"the DuckDB file {path.name}", "DESTINATION__DUCKDB__CREDENTIALS")
    elif options.destination == "filesystem":
        bucket_url = dlt.config.get("destination.filesystem.bucket_url")
        if not bucket_url:
            raise ConfigurationError(
                "the filesystem destination needs a bucket_url; set DESTINATION__FILESYSTEM__BUCKET_URL (a folder, "
                "s3://..., gs://..., az://...) or bucket_url under [destination.filesystem] in .dlt/config.toml"
            )
        parts = urlsplit(str(bucket_url))
        if parts.scheme in ("", "file"):
            folder = Path(parts.path if parts.scheme == "file" else str(bucket_url)).absolute()
            check_writable_folder(folder, "the filesystem destination", "DESTINATION__FILESYSTEM__BUCKET_URL")


def tables_refused_by_table_format(resources: Iterable[DltResource], destination: str, table_format: str) -> list[str]:
    """Tables whose merge strategy the destination cannot apply in `table_format` (Delta and Iceberg on the
    filesystem destination upsert, but cannot delete-insert the snapshot tables)."""
    caps = Destination.from_reference(destination).capabilities()
    allowed = list(caps.supported_merge_strategies or [])
    if caps.merge_strategies_selector is not None:
        allowed = list(caps.merge_strategies_selector(allowed, table_schema={"table_format": table_format}))
    refused = []
    for resource in resources:
        disposition = resource.write_disposition
        if isinstance(disposition, dict):
            kind, strategy = disposition.get("disposition"), disposition.get("strategy", "delete-insert")
        else:
            kind, strategy = disposition, "delete-insert"
        if kind == "merge" and strategy not in allowed:
            refused.append(resource.name)
    return refused


def check_table_format(options: RunOptions) -> None:
    if not options.table_format:
        return
    source = source_from_settings(options.source_settings())
    apply_destination_hints(source, options)
    chosen = options.resources or list(source.resources)
    resources = [source.resources[name] for name in chosen if name in source.resources]
    refused = tables_refused_by_table_format(resources, options.destination, options.table_format)
    if refused:
        working = [name for name in source.resources if name not in
                   tables_refused_by_table_format(source.resources.values(), options.destination,
                                                  options.table_format)]
        raise ConfigurationError(
            f"--table-format {options.table_format} cannot load {', '.join(refused)} (snapshot tables are "
            f"replaced project by project, which {options.table_format} tables here cannot do); use "
            f"--resources with tables that append, upsert or replace: {','.join(working)}"
        )


def preflight(options: RunOptions) -> None:
    """Bad configuration found before extracting: a bad host or key, an unwritable output, a destination
    setting missing, a table format the chosen tables cannot use."""
    validate_resources(options.resources)  # the settings were parsed (and checked) once, by `_run_options`
    check_destination(options)
    check_table_format(options)


# -- commands --------------------------------------------------------------------------------------
def source_settings(args: argparse.Namespace, source_range: bool = True) -> SourceSettings:
    """The source's settings, parsed once: what was given on the command line over dlt config (toml / env).
    `source_range=False`: the command's --start-date/--end-date are its own range (backfill, verify), not
    the source's bounds."""
    given: dict[str, Any] = {"project_ids": getattr(args, "projects", None) or None,
                             "workers": getattr(args, "workers", None)}
    if source_range:
        given.update(start_date=getattr(args, "start_date", None) or None,
                     end_date=getattr(args, "end_date", None) or None)
    if getattr(args, "full_refresh", False):
        given["full_refresh"] = True
    return load_settings(**given)


def progress_collector(log_dlt_counters: bool) -> Collector:
    """On a terminal, a bar per table (dlt's tqdm collector; the events total comes from the count queries),
    and the per-window progress lines are left to the bar; in a log, those lines (one per finished window)
    and, with --progress, dlt's counters every 10 s."""
    if log_dlt_counters:
        return dlt.progress.log(10, logger=sys.stderr, dump_system_stats=False)
    if sys.stderr.isatty():
        logging.getLogger("posthog_source.progress").setLevel(logging.WARNING)
        above = LinesAboveBars(sys.stderr)  # log lines go above the bars, never through them
        for name in ("posthog_source", "pipelines"):
            logger = logging.getLogger(name)
            if logger.handlers:
                above.setFormatter(logger.handlers[0].formatter)
            logger.handlers[:] = [above]
        # tqdm draws nothing on a terminal that reports no width (some CI pseudo-terminals): give it one.
        return TableBars(sys.stderr, shutil.get_terminal_size((100, 24)).columns)
    return NullCollector()


def _table_list(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def chosen_resources(args: argparse.Namespace) -> list[str] | None:
    """--resources (default every table) without --exclude; None means every table."""
    resources = _table_list(getattr(args, "resources", None))
    excluded = _table_list(getattr(args, "exclude", None))
    if not excluded:
        return resources or None
    validate_resources(excluded)
    kept = [table for table in (resources or ALL_TABLES) if table not in excluded]
    if not kept:
        raise ConfigurationError("--exclude leaves no table to load; exclude fewer tables")
    return kept


def _run_options(args: argparse.Namespace, source_range: bool = True) -> RunOptions:
    resources = validate_resources(chosen_resources(args))
    return RunOptions(
        resources=resources,
        pipeline_name=args.pipeline_name,
        destination=args.destination,
        dataset_name=args.dataset_name,
        settings=source_settings(args, source_range),
        table_format=args.table_format,
        progress=progress_collector(args.progress),
    )


def cmd_run(args: argparse.Namespace) -> int:
    warn_unknown_config_keys()
    options = _run_options(args)
    preflight(options)
    result = run(options)
    if getattr(args, "start_date", None) and not args.full_refresh and result.state_origin != "none":
        log.warning("--start-date %s was not used: this pipeline continues from its watermark (state found %s); "
                    "load older events with `posthog-pipeline backfill --start-date %s`, or re-read everything "
                    "with --full-refresh", args.start_date,
                    "locally" if result.state_origin == "local" else "in the destination", args.start_date)
    if result.rows_of_interrupted_run:
        print_row_counts(result.rows_of_interrupted_run, "rows of the interrupted run, loaded first")
    print_row_counts(result.rows_extracted, "rows loaded this run")
    return report_failed_tables(result.failed_tables)


def report_failed_tables(failed: dict[str, str]) -> int:
    """One line per table that failed (the others loaded and committed): exit 5, else 0."""
    if not failed:
        return EXIT_OK
    for table in sorted(failed):
        print(f"error: table {scrub(failed[table])}", file=sys.stderr)
    print(f"error: {len(failed)} table{'s' if len(failed) > 1 else ''} failed and kept what the destination had; "
          "every other table loaded; the next run retries them", file=sys.stderr)
    return EXIT_SOME_TABLES_FAILED


def print_row_counts(counts: dict[str, int], title: str) -> None:
    print(title + ":")
    if not counts:
        print("  (nothing new)")
    width = max((len(t) for t in counts), default=0)
    for table in sorted(counts):
        print(f"  {table:<{width}}  {counts[table]:>10,}")


def cmd_backfill(args: argparse.Namespace) -> int:
    from pipelines.backfill import backfill

    warn_unknown_config_keys()
    options = _run_options(args, source_range=False)
    preflight(options)
    start = parse_instant(args.start_date, "start_date")
    if start is None:
        raise ConfigurationError("backfill needs --start-date (ISO date such as 2024-01-01)")
    totals = backfill(
        options,
        start,
        parse_instant(args.end_date, "end_date"),
        timedelta(seconds=parse_duration(args.window, "window")) if args.window else options.source_settings().window,
        handover_pipeline=None if args.no_handover else args.handover_pipeline,
    )
    print_row_counts(totals, "rows loaded by this backfill")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Verifies host, key, scopes and projects without loading anything."""
    warn_unknown_config_keys()
    options = RunOptions(pipeline_name=args.pipeline_name, destination=args.destination,
                         dataset_name=args.dataset_name, settings=load_settings(project_ids=args.projects))
    config = options.source_settings()
    client = options.client_factory(config)
    key_info = client.get("/api/personal_api_keys/@current/", what="the API key's details")
    projects = discover_projects(client, config.project_ids)
    scopes = set(key_info.get("scopes") or ["*"])
    print(f"host: {client.base_url}")
    print(f"key: '{key_info.get('label', '')}' with scopes {', '.join(sorted(scopes))}")
    print(f"projects ({len(projects)}):")
    for project, _ in projects:
        print(f"  {project.id}  {project.name}  (time zone {project.timezone})")
    needed = {e.table: e.scope for e in ENDPOINTS} | {t: "query" for t in HOGQL_TABLES}
    missing = {t: s for t, s in needed.items() if not _scope_allows(scopes, s)}
    readable = [t for t in ALL_TABLES if t not in missing]
    print(f"readable: {', '.join(readable)}")
    for table, scope in sorted(missing.items()):
        print(f"not readable: {table} (add the scope '{scope}:read' to the key)")
    if "query" not in {s for t, s in missing.items()}:
        probe_hogql_tables(client, [project for project, _ in projects])
    origin = state_origin(options)
    where = {"local": "in the local pipeline folder", "destination": "in the destination (restored by the next run)",
             "none": "none yet: the next run is a first run"}[origin]
    print(f"state of pipeline '{args.pipeline_name}' ({args.destination}): {where}")
    return EXIT_OK


def probe_hogql_tables(client: PostHogClient, projects: Sequence[Project]) -> None:
    """Whether this PostHog serves each HogQL table a run reads (an older self-hosted one may lack `sessions`):
    one LIMIT 0 query per table and project, which PostHog resolves but which reads no rows."""
    tables = sum(len(t) for t in hogql.TABLES_OF_RESOURCE.values())
    print(f"HogQL tables ({tables} LIMIT 0 queries per project, reading no rows):")
    for project in projects:
        refused = {name: why for name in hogql.TABLES_OF_RESOURCE
                   if (why := hogql.refusal(client, project, name)) is not None}
        readable = [name for name in hogql.TABLES_OF_RESOURCE if name not in refused]
        print(f"  project {project.id}: readable: {', '.join(readable) or 'none'}")
        for name, why in refused.items():
            print(f"  project {project.id}: not readable: {name} ({why}); a run loads the other tables and exits 5, "
                  f"or leave it out with --exclude {name}")


def _scope_allows(scopes: set[str], scope_object: str) -> bool:
    return "*" in scopes or f"{scope_object}:read" in scopes or f"{scope_object}:write" in scopes


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    if importlib.util.find_spec("hogql_parser") is None:
        raise ConfigurationError("the demo's local PostHog judges queries with PostHog's HogQL parser, which is not "
                                 "installed; install it with: pip install 'posthog-dlt[demo]'")
    target = Path(args.duckdb).absolute()
    check_writable_folder(target.parent, f"the DuckDB file {target.name}", "--duckdb")
    if args.html:
        check_writable_folder(Path(args.html).absolute().parent, "the HTML report", "--html")
    return run_demo(args.duckdb, events=args.events, seed=args.seed, html_path=args.html)


def cmd_report(args: argparse.Namespace) -> int:
    from reports.html_page import write_html
    from reports.models import format_report_text, run_report

    if args.html:
        check_writable_folder(Path(args.html).absolute().parent, "the HTML report", "--html")
    result = run_report(args.duckdb or default_duckdb_file(), args.dataset_name, project_id=args.project, tz=args.tz)
    print(format_report_text(result))
    if args.html:
        write_html(result, args.html)
        print(f"\nHTML report written to {Path(args.html).absolute()}")
    return EXIT_OK


# -- verify (exit 4 when PostHog and the destination differ) --------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    """Per project and UTC day, PostHog's event counts against the destination's; --repair re-reads what differs."""
    from pipelines.verify import VerifyOptions, format_repair, format_report, verify_and_repair

    options = _run_options(args, source_range=False)
    start = parse_instant(args.start_date, "start_date")  # the range checked, not the source's bounds
    end = parse_instant(args.end_date, "end_date")
    outcome = verify_and_repair(VerifyOptions(options, start, end, repair=args.repair, promised=not args.every_row))
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
    verify_parser.add_argument("--every-row", action="store_true",
                               help="compare with every row PostHog holds, not only what the last run promised "
                                    "(rows left for the next run or the late sweep then count as differences)")
    verify_parser.set_defaults(handler=cmd_verify)


# -- the parser ------------------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse with whole option names only (no `--start-dat`) and a one-line error, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got '{text}'")
    return value


def package_version() -> str:
    """The installed version of posthog-dlt (and dlt's, which decides the state and schema formats)."""
    try:
        ours = importlib.metadata.version("posthog-dlt")
    except importlib.metadata.PackageNotFoundError:
        ours = "unknown (not installed)"
    return f"{ours} (dlt {importlib.metadata.version('dlt')})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="posthog-pipeline", description="Load PostHog into a warehouse with dlt.")
    debug_help = "show tracebacks and debug logs"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        # also after the command; SUPPRESS keeps a --debug given before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
        return sub

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--projects", help="comma list of project ids (default: every project the key reads)")
        sub.add_argument("--destination", default="duckdb", help="any dlt destination (default duckdb)")
        sub.add_argument("--dataset-name", default=DEFAULT_DATASET)
        sub.add_argument("--table-format", choices=("delta", "iceberg"),
                         help="filesystem destination: write Delta or Iceberg tables instead of parquet files")
        sub.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
        sub.add_argument("--workers", type=positive_int,
                         help=f"parallel HogQL walks (default {settings.DEFAULT_WORKERS}, or the `workers` setting; "
                              "PostHog runs 3 queries of a team at once)")
        sub.add_argument("--progress", action="store_true",
                         help="also log dlt's own counters every 10 s (a terminal shows a bar by default)")

    _add_run_and_backfill(command, common)
    _add_check_demo_report(command)
    add_verify_parser(commands, common)
    return parser


Command = Callable[[str, str], argparse.ArgumentParser]
Common = Callable[[argparse.ArgumentParser], None]


def _add_run_and_backfill(command: Command, common: Common) -> None:
    run_parser = command("run", "incremental run of every (or the chosen) table")
    common(run_parser)
    run_parser.add_argument("--resources", help=f"comma list of tables to load (default all): {', '.join(ALL_TABLES)}")
    run_parser.add_argument("--exclude", help="comma list of tables to leave out (for example sessions)")
    run_parser.add_argument("--start-date", help="first run's lower bound for events (ISO date)")
    run_parser.add_argument("--end-date", help="upper bound: makes the run a stateless window")
    run_parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="re-read events from start_date and all persons (merge, nothing dropped)",
    )
    run_parser.set_defaults(handler=cmd_run)

    backfill_parser = command("backfill", "load a range of events in parallel windows, resumable")
    common(backfill_parser)
    backfill_parser.set_defaults(pipeline_name=f"{DEFAULT_PIPELINE_NAME}_backfill")
    backfill_parser.add_argument("--start-date", required=True, help="first event timestamp to load (ISO date)")
    backfill_parser.add_argument("--end-date", help="end of the range (default: now, then hand over)")
    window = settings.duration_text(settings.DEFAULT_WINDOW_SECONDS)
    backfill_parser.add_argument("--window", help=f"window size: 6h, 1d, 7d... (default {window}, or the `window` "
                                                  "setting)")
    backfill_parser.add_argument(
        "--handover-pipeline",
        default=DEFAULT_PIPELINE_NAME,
        help="pipeline whose incremental runs continue after a backfill to now",
    )
    backfill_parser.add_argument("--no-handover", action="store_true", help="do not start the incremental cursor")
    backfill_parser.set_defaults(handler=cmd_backfill)


def _add_check_demo_report(command: Command) -> None:
    check_parser = command("check", "verify host, key, scopes and projects")
    check_parser.add_argument("--projects")
    check_parser.add_argument("--destination", default="duckdb", help="where to look for the pipeline's state")
    check_parser.add_argument("--dataset-name", default=DEFAULT_DATASET)
    check_parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
    check_parser.set_defaults(handler=cmd_check)

    demo_parser = command("demo", "everything against the bundled local PostHog, no credentials")
    demo_parser.add_argument("--duckdb", default="posthog_demo.duckdb", help="DuckDB file to write")
    demo_parser.add_argument("--events", type=positive_int, default=300_000)
    demo_parser.add_argument("--seed", type=int, default=1)
    demo_parser.add_argument("--html", help="where to write the HTML report (default: next to the DuckDB file)")
    demo_parser.set_defaults(handler=cmd_demo)

    report_parser = command("report", "run the sql/ models on the DuckDB file and show them")
    report_parser.add_argument(
        "--duckdb", help=f"DuckDB file to read (default: as `run` writes, {DEFAULT_DUCKDB_FILE})"
    )
    report_parser.add_argument("--dataset-name", default=DEFAULT_DATASET)
    report_parser.add_argument("--project", type=int, help="only this project id")
    report_parser.add_argument("--tz", default="UTC", help="time zone that days and weeks are cut in")
    report_parser.add_argument("--html", help="also write a self-contained HTML page with charts")
    report_parser.set_defaults(handler=cmd_report)


# glibc's mallopt parameter for the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8


def release_memory_promptly() -> None:
    """Keep a long run's memory flat: what a page allocates is handed back, not kept for reuse.

    - Arrow's default allocator (mimalloc) keeps freed pages; the system allocator does not, at no
      measurable cost in speed.
    - glibc gives each thread that allocates under contention an arena of its own, and an arena's freed
      memory serves only its threads: four walks each kept the high-water mark of their own pages. With one
      arena, 1.44M events peaked at 379 MiB extracting and 432 MiB loading, against 450-462 and 472-518
      with the default, in the same CPU time (the GIL serialises the walks' allocations anyway). Set before
      any walk thread exists; other allocators (musl, macOS) are left alone.
    """
    with contextlib.suppress(AttributeError, NotImplementedError):  # a build without it keeps its default
        pa.set_memory_pool(pa.system_memory_pool())
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 1)


def let_interrupts_through() -> None:
    """dlt catches the first SIGINT of its normalize and load steps, drains, and may then finish with exit 0
    as if nothing happened. We let Ctrl-C raise KeyboardInterrupt everywhere instead (dlt still waits for
    running load jobs), so every interrupt ends the same way: one line and exit 130, state resumable."""
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")


def main(argv: Sequence[str] | None = None) -> int:
    release_memory_promptly()
    let_interrupts_through()
    debug = False
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        setup_logging(debug)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        code, message = explain(exc)
        if debug and code != EXIT_INTERRUPTED:
            print(scrub("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(message if code == EXIT_INTERRUPTED else f"error: {scrub(message)}", file=sys.stderr)
        return code
