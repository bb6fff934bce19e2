"""The ceiling: fetch exactly the HogQL keyset pages the connector fetches, parse them, write nothing.

Plans come from the connector's own planner (same windows, same queries, same byte-sized LIMITs) and run on
the same number of parallel walks; each walk keeps one persistent http.client connection and parses with
orjson. Whatever this reaches, no client of this server can beat on this machine.
Prints {"rows", "distinct", "queries"} as JSON.
"""

from __future__ import annotations

import http.client
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import pendulum

from benchmarks.fake import peer_arguments
from posthog_source import build_client, settings
from posthog_source.config import SourceSettings
from posthog_source.events import HogQLCounts, QueryPlan, plan_events
from posthog_source.hogql import RowWidth, build_query
from posthog_source.incremental import Position
from posthog_source.projects import Project

WORKERS = 4  # parallel walks: more than the connector's default (2), this server's ceiling


class Client:
    """POST a HogQL query over one keep-alive connection per thread."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.local = threading.local()
        self.queries = 0
        self.lock = threading.Lock()

    def query(self, project: int, hogql: str) -> dict[str, Any]:
        return self.query_sized(project, hogql)[0]

    def query_sized(self, project: int, hogql: str) -> tuple[dict[str, Any], int]:
        """The parsed answer and the size of its body (for byte-sized pages)."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        body = orjson.dumps({"query": {"kind": "HogQLQuery", "query": hogql}, "refresh": "force_blocking"})
        conn.request("POST", f"/api/projects/{project}/query/", body, self.headers)
        response = conn.getresponse()
        payload = response.read()
        with self.lock:
            self.queries += 1
        if response.status != 200:
            raise RuntimeError(f"query of project {project} answered {response.status}: {payload[:300]!r}")
        return orjson.loads(payload), len(payload)


def walk(client: Client, plan: QueryPlan, width: RowWidth) -> tuple[int, bool]:
    """Every row of one plan; returns (rows, keys strictly increasing), the latter proving no duplicates."""
    rows, after, increasing = 0, None, True
    last_key: tuple[str, str] | None = None
    while True:
        limit = width.limit(settings.HOGQL_MAX_ROWS)
        answer, size = client.query_sized(plan.project.id, build_query(plan.table, plan.conditions, after, limit))
        page = answer["results"] or []
        width.observe(size, len(page))
        rows += len(page)
        if page:
            first = (page[0][4], page[0][0])
            increasing = increasing and (last_key is None or _instant(first[0]) > _instant(last_key[0])
                                         or (first[0] == last_key[0] and first[1] > last_key[1]))
            last_key = (page[-1][4], page[-1][0])
        if len(page) < limit:
            return rows, increasing
        assert last_key is not None
        after = (_instant(last_key[0]), last_key[1])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def plans_for(url: str, key: str, projects: Sequence[int], start_date: str, width: RowWidth) -> list[QueryPlan]:
    """The connector's own plan: its counts and slices, asked through its client (planning is a few small
    queries; the pages are what this benchmark times)."""
    config = SourceSettings.parse(api_key=key, host=url, start_date=start_date, workers=WORKERS)
    counts = HogQLCounts(build_client(config), width, settings.HOGQL_MAX_ROWS)
    plans: list[QueryPlan] = []
    now = pendulum.now("UTC")
    for project_id in projects:
        planned = plan_events(Project(project_id, str(project_id), "UTC", None), Position(), config, now, counts)
        plans.extend(planned.plans)
    return plans


def main() -> int:
    parser = peer_arguments(__doc__)
    args = parser.parse_args()
    client = Client(args.url, args.key)
    width = RowWidth()  # the connector's byte-sized pages (its default page_bytes), shared by the walks
    plans = plans_for(args.url, args.key, [int(p) for p in args.projects.split(",")], args.start_date, width)
    with ThreadPoolExecutor(WORKERS) as pool:
        walks = list(pool.map(lambda plan: walk(client, plan, width), plans))
    rows = sum(r for r, _ in walks)
    exact = all(ok for _, ok in walks)
    sys.stdout.write(orjson.dumps({"rows": rows, "distinct": rows if exact else -1, "queries": client.queries,
                                   "plans": len(plans)}).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
