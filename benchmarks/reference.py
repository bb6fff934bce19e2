"""A plain reference extractor, written the simple way: HogQL keyset pages -> Arrow -> dlt -> DuckDB.

What a competent engineer writes in an afternoon: the connector's own plans (same windows, same byte-sized
LIMITs as raw_limit), one walk after another, each page parsed with orjson, turned into an Arrow table column
by column, and yielded to a dlt resource that appends into a fresh DuckDB file with dlt's defaults. No
merge, no state, no retries: it is the yardstick of "simple", not a usable connector.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dlt
import pyarrow as pa

from benchmarks.fake import peer_arguments
from benchmarks.raw_limit import Client, plans_for
from posthog_source import settings
from posthog_source.hogql import RowWidth, build_query

TS = pa.timestamp("us", tz="UTC")
NAMES = ("uuid", "event", "distinct_id", "person_id", "timestamp", "created_at", "properties", "elements_chain",
         "session_id")


def to_arrow(project: int, rows: list[list[Any]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array([project] * len(rows), pa.int64())]
    for name, values in zip(NAMES, columns, strict=True):
        array = pa.array(values, pa.string())
        arrays.append(array.cast(TS) if name in ("timestamp", "created_at") else array)
    return pa.Table.from_arrays(arrays, names=["project_id", *NAMES])


def main() -> int:
    parser = peer_arguments(__doc__)
    parser.add_argument("--duckdb", required=True)
    args = parser.parse_args()
    client = Client(args.url, args.key)
    width = RowWidth()
    plans = plans_for(args.url, args.key, [int(p) for p in args.projects.split(",")], args.start_date, width)

    @dlt.resource(name="events", write_disposition="append")
    def events() -> Iterator[pa.Table]:
        for plan in plans:
            after = plan.after
            while True:
                limit = width.limit(settings.HOGQL_MAX_ROWS)
                page, size = client.query_sized(plan.project.id, build_query(plan.table, plan.conditions, after,
                                                                             limit))
                rows = page["results"] or []
                width.observe(size, len(rows))
                if rows:
                    yield to_arrow(plan.project.id, rows)
                if len(rows) < limit:
                    break
                after = (datetime.fromisoformat(rows[-1][4]), rows[-1][0])

    pipeline = dlt.pipeline("reference_posthog", destination=dlt.destinations.duckdb(args.duckdb),
                            dataset_name="posthog")
    pipeline.run(events())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
