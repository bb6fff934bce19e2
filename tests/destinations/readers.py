"""Read back what landed in a destination as rows shaped like tests.helpers.read_rows gives them from DuckDB
(JSON columns as text, instants as aware UTC datetimes), so the integration suite's exactness checks apply."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from posthog_source.snapshot import SENTINEL_COLUMN

Rows = list[dict[str, Any]]
Reader = Callable[[str], Rows]  # table name -> its rows


def _duckdb_rows(sql: str, **relations: Any) -> Rows:
    """Through DuckDB, like tests.helpers.read_rows, so values come back as the same Python types."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for name, relation in relations.items():
            con.register(name, relation)
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def parquet_reader(bucket: Path, dataset: str = "posthog") -> Reader:
    """Plain parquet files: dlt writes each table as files under <bucket>/<dataset>/<table>/. Files are
    append-only, so the snapshot tables' sentinel rows (deletion markers elsewhere) are there too: a reader of
    such files drops them, as this one does (docs/destinations.md)."""

    def read(table: str) -> Rows:
        pattern = str(bucket / dataset / table / "*.parquet")
        rows = _duckdb_rows(f"SELECT * FROM read_parquet('{pattern}', union_by_name = true)")
        return [row for row in rows if not row.get(SENTINEL_COLUMN)]

    return read


def views_reader(bucket: Path, dataset: str = "posthog") -> Reader:
    """Plain parquet files read the documented way: through the views the run writes with the data
    (`<bucket>/<dataset>/_posthog_views.sql`, pipelines/destinations/lake.py), which return each table's current
    rows."""
    from pipelines.destinations.lake import VIEWS_FILE

    def read(table: str) -> Rows:
        views = (bucket / dataset / VIEWS_FILE).read_text()
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(views)
            cursor = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return read


def delta_reader(bucket: Path, dataset: str = "posthog") -> Reader:
    """Delta tables read with the deltalake package (DuckDB's delta extension would need a download)."""
    from deltalake import DeltaTable

    def read(table: str) -> Rows:
        landed = DeltaTable(str(bucket / dataset / table)).to_pyarrow_dataset().to_table()
        return _duckdb_rows("SELECT * FROM landed", landed=landed)

    return read


def postgres_reader(dsn: str, dataset: str = "posthog") -> Reader:
    """JSON columns kept as text (psycopg2 would parse them), the session in UTC."""
    import psycopg2
    import psycopg2.extras

    def read(table: str) -> Rows:
        with contextlib.closing(psycopg2.connect(dsn)) as connection, connection.cursor() as cursor:
            psycopg2.extras.register_default_json(cursor, loads=lambda text: text)
            psycopg2.extras.register_default_jsonb(cursor, loads=lambda text: text)
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute(f'SELECT * FROM "{dataset}"."{table}"')
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return read
