"""Run the SQL models of ``sql/`` over a loaded PostHog dataset and present them.

One runner serves every model: each ``sql/*.sql`` file declares in its header the parameters it
binds (``$project_id``, ``$tz``, ...) and the tables it needs, so adding a model is adding a file.
The DuckDB file is attached READ ONLY inside an in-memory database; the loaded tables are exposed
there as views with the columns the models expect (a column dlt never created reads as NULL), and a
missing optional table as an empty stand-in. A model whose required table was not loaded is
reported as skipped instead of failing the whole report.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from posthog_source.errors import ConfigurationError

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

#: Report order; any other model file in ``sql/`` follows, alphabetically.
MODEL_ORDER = (
    "active_users",
    "event_volume",
    "top_events",
    "top_pages",
    "retention_weekly",
    "funnel",
    "feature_flag_exposure",
    "sessions",
    "session_channels",
    "cohort_sizes",
    "persons",
)

#: Columns the models rely on, per loaded table, with the type they are read as.
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "events": {
        "project_id": "BIGINT",
        "uuid": "VARCHAR",
        "event": "VARCHAR",
        "distinct_id": "VARCHAR",
        "person_id": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "properties": "JSON",
        "session_id": "VARCHAR",
    },
    "persons": {
        "project_id": "BIGINT",
        "id": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
        "properties": "JSON",
        "is_identified": "BOOLEAN",
    },
    "person_distinct_ids": {"project_id": "BIGINT", "distinct_id": "VARCHAR", "person_id": "VARCHAR"},
    "projects": {"id": "BIGINT", "name": "VARCHAR", "timezone": "VARCHAR"},
    "sessions": {
        "project_id": "BIGINT",
        "session_id": "VARCHAR",
        "distinct_id": "VARCHAR",
        "start_timestamp": "TIMESTAMPTZ",
        "end_timestamp": "TIMESTAMPTZ",
        "duration_seconds": "BIGINT",
        "entry_current_url": "VARCHAR",
        "end_current_url": "VARCHAR",
        "pageview_count": "BIGINT",
        "autocapture_count": "BIGINT",
        "is_bounce": "BOOLEAN",
        "channel_type": "VARCHAR",
    },
    "cohort_people": {"project_id": "BIGINT", "cohort_id": "BIGINT", "person_id": "VARCHAR"},
    "cohorts": {
        "project_id": "BIGINT",
        "id": "BIGINT",
        "name": "VARCHAR",
        "is_static": "BOOLEAN",
        "count": "BIGINT",
        "last_calculation": "TIMESTAMPTZ",
        "deleted": "BOOLEAN",
    },
}

#: Tables whose rows make a report worth running (projects and cohorts alone are metadata).
DATA_TABLES = ("events", "persons", "person_distinct_ids", "sessions", "cohort_people")
DEFAULT_WINDOW_DAYS = 14
DEFAULT_TOP_N = 10
_ATTACHED = "posthog_src"
_HINT = "run `posthog-pipeline demo` or `posthog-pipeline run` first"


class ReportError(ConfigurationError):
    """The report cannot be produced; the one-line message says what to do about it (exit code 2)."""


@dataclass(frozen=True)
class Model:
    """One SQL file: its header metadata and its text."""

    name: str
    title: str
    answers: str
    params: tuple[str, ...]
    requires: tuple[str, ...]
    optional: tuple[str, ...]
    sql: str

    @property
    def is_base_view(self) -> bool:
        """Files starting with ``_`` define views shared by the models, not report sections."""
        return self.name.startswith("_")


@dataclass
class ModelResult:
    """Rows of one model, or why it was skipped."""

    name: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    skipped: str | None = None

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name (handy in tests and templates)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class ReportResult:
    """Everything one report run produced, in model order."""

    duckdb_path: str
    dataset: str
    project_id: int | None
    tz: str
    funnel_steps: list[str]
    window_days: int
    models: dict[str, ModelResult]
    project_names: dict[int, str] = field(default_factory=dict)

    def project_ids(self) -> list[int]:
        """Projects that appear in any model's output (or the one asked for)."""
        ids = {self.project_id} if self.project_id is not None else set()
        for result in self.models.values():
            if "project_id" in result.columns:
                ids.update(row["project_id"] for row in result.dicts())
        return sorted(ids)


_HEADER_KEY = re.compile(r"^--\s*(title|answers|params|requires|optional):\s*(.*)$")
_PARAM_LINE = re.compile(r"^--\s+\$([a-z_][a-z0-9_]*)\b")
_CONTINUATION = re.compile(r"^--\s{2,}(\S.*)$")


def parse_model(path: Path) -> Model:
    """Read a model file's header: ``-- key: value`` lines, ``--   $name ...`` lines under params."""
    meta: dict[str, str] = {}
    params: list[str] = []
    current = None
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        if match := _HEADER_KEY.match(line):
            current, value = match.groups()
            meta[current] = value.strip()
        elif current == "params" and (match := _PARAM_LINE.match(line)):
            params.append(match.group(1))
        elif current == "answers" and (match := _CONTINUATION.match(line)):
            meta["answers"] += " " + match.group(1).strip()

    def names(key: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in meta.get(key, "").split(",") if n.strip())

    return Model(
        name=path.stem,
        title=meta.get("title", path.stem),
        answers=meta.get("answers", ""),
        params=tuple(params),
        requires=names("requires"),
        optional=names("optional"),
        sql=path.read_text(),
    )


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """All model files, base views first, then in report order."""
    models = [parse_model(p) for p in sorted(sql_dir.glob("*.sql"))]
    order = {name: i for i, name in enumerate(MODEL_ORDER)}
    return sorted(models, key=lambda m: (not m.is_base_view, order.get(m.name, len(order)), m.name))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def open_dataset(duckdb_path: str, dataset: str = "posthog") -> tuple[duckdb.DuckDBPyConnection, set[str]]:
    """Attach the file read-only and expose its tables under their plain names.

    Returns the connection and the set of PostHog tables actually loaded (present and non-empty or
    not). Raises ReportError when the file or the dataset holds no PostHog table.
    """
    if not Path(duckdb_path).is_file():
        raise ReportError(f"No DuckDB file at {duckdb_path}: {_HINT}.")
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH {_quote_literal(duckdb_path)} AS {_ATTACHED} (READ_ONLY)")
    except duckdb.Error as exc:
        con.close()
        first_line = str(exc).splitlines()[0]
        message = f"Cannot open {duckdb_path} read-only ({first_line}); is a pipeline writing it?"
        raise ReportError(message) from exc
    columns: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ?",
        [_ATTACHED, dataset],
    ).fetchall():
        columns.setdefault(table, set()).add(column)
    present = {t for t in EXPECTED_COLUMNS if t in columns}
    if not present & set(DATA_TABLES):
        con.close()
        raise ReportError(f"No PostHog tables in schema '{dataset}' of {duckdb_path}: {_HINT}.")
    for table, expected in EXPECTED_COLUMNS.items():
        if table in present:
            select = ", ".join(
                f"CAST({_quote_ident(c)} AS {t}) AS {_quote_ident(c)}" if c in columns[table]
                else f"CAST(NULL AS {t}) AS {_quote_ident(c)}"
                for c, t in expected.items()
            )
            source = f"{_ATTACHED}.{_quote_ident(dataset)}.{_quote_ident(table)}"
            con.execute(f"CREATE VIEW {_quote_ident(table)} AS SELECT {select} FROM {source}")
        else:
            typed = ", ".join(f"{_quote_ident(c)} {t}" for c, t in expected.items())
            con.execute(f"CREATE TABLE {_quote_ident(table)} ({typed})")
    return con, present


def run_model(
    con: duckdb.DuckDBPyConnection, model: Model, params: dict[str, Any], present: set[str]
) -> ModelResult:
    """Run one model with the parameters its header declares; skip it when a required table is absent."""
    missing = [t for t in model.requires if t not in present]
    if missing:
        return ModelResult(model.name, model.title, skipped=f"table(s) not loaded: {', '.join(missing)}")
    unknown = [p for p in model.params if p not in params]
    if unknown:
        raise ValueError(f"model {model.name} needs parameter(s) {unknown} that the runner does not provide")
    cursor = con.execute(model.sql, {p: params[p] for p in model.params})
    if model.is_base_view:
        return ModelResult(model.name, model.title)
    columns = [d[0] for d in cursor.description]
    return ModelResult(model.name, model.title, columns, cursor.fetchall())


def _check_inputs(tz: str, funnel_steps: Sequence[str] | None, window_days: int) -> None:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        message = f"Unknown time zone {tz!r}: use an IANA name such as 'UTC' or 'Europe/Paris'."
        raise ReportError(message) from exc
    bad_steps = funnel_steps is not None and not all(isinstance(s, str) and s for s in funnel_steps)
    if funnel_steps == [] or bad_steps:
        raise ReportError("Funnel steps must be a non-empty list of event names, e.g. $pageview,signed_up.")
    if window_days < 1:
        raise ReportError(f"The funnel window must be at least 1 day, not {window_days}.")


def default_funnel_steps(con: duckdb.DuckDBPyConnection, project_id: int | None) -> list[str]:
    """``$pageview`` then the two most frequent custom (non-``$``) events: a sensible first funnel."""
    rows = con.execute(
        """
        SELECT event FROM events
        WHERE NOT starts_with(event, '$') AND ($project_id IS NULL OR project_id = $project_id)
        GROUP BY event ORDER BY count(*) DESC, event LIMIT 2
        """,
        {"project_id": project_id},
    ).fetchall()
    return ["$pageview", *(r[0] for r in rows)]


def _has_data(con: duckdb.DuckDBPyConnection, present: set[str], project_id: int | None) -> bool:
    for table in sorted(present & set(DATA_TABLES)):
        row = con.execute(
            f"SELECT 1 FROM {table} WHERE $project_id IS NULL OR project_id = $project_id LIMIT 1",
            {"project_id": project_id},
        ).fetchone()
        if row:
            return True
    return False


def run_report(
    duckdb_path: str,
    dataset: str = "posthog",
    project_id: int | None = None,
    tz: str = "UTC",
    funnel_steps: list[str] | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    top_n: int = DEFAULT_TOP_N,
) -> ReportResult:
    """Run every model over the dataset and return the results; the caller prints them or writes the HTML
    page (``reports.html_page.write_html``), so this module needs nothing of the HTML one.

    Periods (days, weeks, months) are cut in ``tz``; instants stay UTC. Without ``funnel_steps`` the
    funnel is ``$pageview`` followed by the two most frequent custom events.
    """
    _check_inputs(tz, funnel_steps, window_days)
    con, present = open_dataset(duckdb_path, dataset)
    try:
        if not _has_data(con, present, project_id):
            where = f"for project {project_id} " if project_id is not None else ""
            raise ReportError(f"No PostHog data {where}in schema '{dataset}' of {duckdb_path}: {_HINT}.")
        steps = list(funnel_steps) if funnel_steps else default_funnel_steps(con, project_id)
        params = {
            "project_id": project_id,
            "tz": tz,
            "funnel_steps": steps,
            "window_days": window_days,
            "top_n": top_n,
        }
        results = {}
        for model in load_models():
            result = run_model(con, model, params, present)
            if not model.is_base_view:
                results[model.name] = result
        names = dict(con.execute("SELECT id, name FROM projects WHERE name IS NOT NULL").fetchall())
    finally:
        con.close()
    report = ReportResult(
        duckdb_path=duckdb_path,
        dataset=dataset,
        project_id=project_id,
        tz=tz,
        funnel_steps=steps,
        window_days=window_days,
        models=results,
        project_names=names,
    )
    return report


def format_value(value: Any) -> str:
    """Compact, stable text for one cell (instants in UTC ISO form, ratios to 3 decimals)."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.strftime("%Y-%m-%d %H:%M:%SZ")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    """Plain aligned table: numbers right-aligned, text left-aligned, long cells cut with '…'."""
    cells = [[format_value(v) for v in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(columns))
    ]
    widths = [max([len(col), *(len(row[i]) for row in cells)]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(r) for r in cells)])


def format_report_text(result: ReportResult, max_rows: int = 8) -> str:
    """The terminal form of a report: one short aligned table per model."""
    scope = f"project {result.project_id}" if result.project_id is not None else "all projects"
    out = [
        f"PostHog report: {result.duckdb_path} (schema {result.dataset}, {scope}, periods in {result.tz})",
    ]
    for res in result.models.values():
        out.append("")
        heading = res.title
        if res.name == "funnel":
            heading += f" ({' -> '.join(result.funnel_steps)}, within {result.window_days} days)"
        out.append(f"== {heading}")
        if res.skipped:
            out.append(f"skipped: {res.skipped}")
            continue
        if not res.rows:
            out.append("(no rows)")
            continue
        out.append(format_table(res.columns, res.rows[:max_rows]))
        if len(res.rows) > max_rows:
            out.append(f"... {len(res.rows) - max_rows} more rows")
    return "\n".join(out)
