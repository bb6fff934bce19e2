"""The generic dlt answer: `rest_api_source` configured for PostHog's /events/ as peers.md describes.

Run as a subprocess by the harness: `python -m benchmarks.rest_api_peer --url U --key K ...`. Defaults
everywhere else (no tuning a typical user would not do), one resource per project into DuckDB.
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source

from benchmarks.fake import peer_arguments


def project_source(url: str, key: str, project: int, start_date: str) -> Any:
    return rest_api_source({
        "client": {
            "base_url": f"{url}/api/projects/{project}/",
            "auth": {"type": "bearer", "token": key},
            "paginator": {"type": "json_link", "next_url_path": "next"},
        },
        "resource_defaults": {"endpoint": {"data_selector": "results"}},
        "resources": [{
            "name": f"events_{project}",
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": "events/",
                "params": {
                    "after": "{incremental.start_value}",
                    "orderBy": '["timestamp"]',
                    "limit": 1000,
                },
                "incremental": {"cursor_path": "timestamp", "initial_value": start_date},
            },
        }],
    }, name=f"posthog_{project}")


def main() -> int:
    parser = peer_arguments(__doc__)
    parser.add_argument("--duckdb", required=True)
    args = parser.parse_args()
    pipeline = dlt.pipeline("rest_api_posthog", destination=dlt.destinations.duckdb(args.duckdb),
                            dataset_name="posthog")
    sources = [project_source(args.url, args.key, int(p), args.start_date) for p in args.projects.split(",")]
    pipeline.run(sources)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
