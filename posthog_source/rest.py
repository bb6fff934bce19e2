"""One generic walker for every REST list endpoint of the catalogue, and the row shaping they share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pendulum

from posthog_source.catalogue import Endpoint, Level, Pagination
from posthog_source.client import PostHogClient
from posthog_source.errors import PostHogSourceError


def endpoint_path(endpoint: Endpoint, project_id: int | None) -> str:
    if endpoint.level is Level.ORGANIZATION:
        return endpoint.path
    return f"/api/projects/{project_id}/{endpoint.path}"


def walk_pages(
    client: PostHogClient, endpoint: Endpoint, project_id: int | None, extra_params: dict[str, Any] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield every page of one endpoint, whatever its pagination style.

    Never stops on a short page (PostHog returns short pages mid-list, issue #24787): only a null `next`
    or `has_next: false` ends a walk. A `next` link seen twice is an error, not an endless loop.
    """
    path = endpoint_path(endpoint, project_id)
    params: dict[str, Any] = {**endpoint.params, **(extra_params or {})}
    if endpoint.page_size is not None:
        params["limit"] = endpoint.page_size
    what = f"{endpoint.table} of project {project_id}" if project_id is not None else endpoint.table

    if endpoint.pagination is Pagination.BARE_LIST:
        yield list(client.get(path, params, what=what))
    elif endpoint.pagination is Pagination.HAS_NEXT:
        offset = 0
        while True:
            page = client.get(path, {**params, "offset": offset}, what=what)
            results = page.get("results") or []
            yield results
            if not page.get("has_next") or not results:
                return
            offset += len(results)
    else:
        url: str | None = path
        seen: set[str] = set()
        while url:
            page = client.get(url, params if url == path else None, what=what)
            yield page.get("results") or []
            url = page.get("next")
            if url in seen:
                raise PostHogSourceError(f"PostHog returned the same next link twice for {what}; stopped")
            if url:
                seen.add(url)


def shape_rows(
    rows: list[dict[str, Any]], endpoint: Endpoint, project_id: int | None, seen_keys: set[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """Add `project_id`, parse instants to UTC and drop rows already seen in this run (offset paging
    under concurrent writes repeats rows)."""
    shaped = []
    for row in rows:
        if project_id is not None:
            row = {"project_id": project_id, **row}
        key = tuple(row.get(column) for column in endpoint.primary_key)
        if key in seen_keys:
            continue
        seen_keys.add(key)
        for name in endpoint.instants:
            value = row.get(name)
            if isinstance(value, str) and value:
                row[name] = parse_api_instant(value)
        shaped.append(row)
    return shaped


def parse_api_instant(value: str) -> pendulum.DateTime | str:
    """REST instants carry an offset (`Z` or `+02:00`); they are stored as UTC. Unparseable values are
    kept as they came rather than dropped."""
    try:
        parsed = pendulum.parse(value, tz="UTC")
    except Exception:  # noqa: BLE001 - keep odd values visible instead of failing the table
        return value
    if isinstance(parsed, pendulum.DateTime):
        return parsed.in_timezone("UTC")
    if isinstance(parsed, pendulum.Date):
        return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
    return value
