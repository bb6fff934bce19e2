"""dlt resources for every REST endpoint of the catalogue, built by one factory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from posthog_source.catalogue import Endpoint, Level
from posthog_source.client import PostHogClient
from posthog_source.errors import PermissionDeniedError
from posthog_source.hogql import Project
from posthog_source.rest import (
    SENTINEL_COLUMN,
    SNAPSHOT_DISPOSITION,
    parse_api_instant,
    shape_rows,
    snapshot_sentinel,
    walk_pages,
)

logger = logging.getLogger("posthog_source")

Rows = list[dict[str, Any]]


def skip_when_denied(table: str, pages: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """A resource the key may not read is reported by name and skipped; the others still load."""
    try:
        yield from pages()
    except PermissionDeniedError as exc:
        scope = f"; add the scope '{exc.scope}' to the key to load it" if exc.scope else ""
        logger.warning("skipped %s: %s%s", table, exc, scope)


def _column_hints(endpoint: Endpoint) -> TTableSchemaColumns:
    hints: TTableSchemaColumns = {
        name: {"data_type": "timestamp", "timezone": True} for name in endpoint.instants
    }
    if endpoint.level is Level.PROJECT:
        hints["project_id"] = {"data_type": "bigint", "nullable": False}
        hints[SENTINEL_COLUMN] = {"data_type": "bool", "hard_delete": True}
    return hints


def metadata_resource(client: PostHogClient, endpoint: Endpoint, projects: Sequence[Project]) -> DltResource:
    """A snapshot of one endpoint. Project tables are replaced project by project (delete-insert on
    `project_id`), so edits and deletions show and a run over some projects leaves the others alone."""
    if endpoint.level is Level.ORGANIZATION:
        disposition: Any = "replace"
        merge_key = None
    else:
        disposition = SNAPSHOT_DISPOSITION
        merge_key = "project_id"

    @dlt.resource(name=endpoint.table, primary_key=endpoint.primary_key, merge_key=merge_key,
                  write_disposition=disposition, columns=_column_hints(endpoint))
    def snapshot() -> Iterator[Rows]:
        if endpoint.level is Level.ORGANIZATION:
            yield from skip_when_denied(endpoint.table, lambda: _organization_pages(client, endpoint))
        else:
            yield from skip_when_denied(endpoint.table, lambda: _project_pages(client, endpoint, projects))

    return snapshot


def _organization_pages(client: PostHogClient, endpoint: Endpoint) -> Iterator[Rows]:
    seen: set[tuple[Any, ...]] = set()
    for page in walk_pages(client, endpoint, None):
        yield shape_rows(page, endpoint, None, seen)


def _project_pages(client: PostHogClient, endpoint: Endpoint, projects: Sequence[Project]) -> Iterator[Rows]:
    organization_rows: dict[str | None, set[Any]] = {}
    for project in projects:
        seen: set[tuple[Any, ...]] = set()
        first = True
        try:
            for page in _raw_pages(client, endpoint, project):
                if endpoint.organization_rows_once:
                    page = _keep_organization_rows_once(
                        page, organization_rows.setdefault(project.organization_id, set())
                    )
                rows = shape_rows(page, endpoint, project.id, seen)
                if first:  # only once the project proved readable, so a refused project keeps its old rows
                    rows.insert(0, snapshot_sentinel(endpoint, project.id))
                    first = False
                yield rows
        except PermissionDeniedError as exc:
            if exc.scope:  # the key lacks the scope: no project will do, skip the resource
                raise
            logger.warning("skipped %s of project %s: %s", endpoint.table, project.id, exc)


def _raw_pages(client: PostHogClient, endpoint: Endpoint, project: Project) -> Iterator[Rows]:
    if not endpoint.per_group_type:
        yield from walk_pages(client, endpoint, project.id)
        return
    types_path = f"/api/projects/{project.id}/groups_types/"
    group_types = client.get(types_path, what=f"group types of project {project.id}")
    yielded = False
    for group_type in group_types:
        index = group_type["group_type_index"]
        for page in walk_pages(client, endpoint, project.id, {"group_type_index": index}):
            yielded = True
            yield page
    if not yielded:
        yield []


def _keep_organization_rows_once(page: Rows, seen_in_organization: set[Any]) -> Rows:
    """Organisation-scoped annotations come back in every project of the organisation; keep each once,
    under the first project (lowest id) that returns it."""
    kept = []
    for row in page:
        if row.get("scope") == "organization":
            if row.get("id") in seen_in_organization:
                continue
            seen_in_organization.add(row.get("id"))
        kept.append(row)
    return kept


def projects_resource(projects: Sequence[tuple[Project, dict[str, Any]]]) -> DltResource:
    @dlt.resource(name="projects", primary_key="id", write_disposition="replace",
                  columns={"created_at": {"data_type": "timestamp", "timezone": True}})
    def project_rows() -> Iterator[Rows]:
        rows = []
        for _, row in projects:
            row = dict(row)
            if isinstance(row.get("created_at"), str):
                row["created_at"] = parse_api_instant(row["created_at"])
            rows.append(row)
        yield rows

    return project_rows

