"""dlt resources for every REST endpoint of the catalogue, built by one factory, and `projects`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.resource import DltResource

from posthog_source.catalogue import Endpoint, Level
from posthog_source.client import PostHogClient
from posthog_source.errors import PermissionDeniedError
from posthog_source.failures import TableFailures, guarded
from posthog_source.projects import Project, ProjectCatalog
from posthog_source.rest import parse_api_instant, shape_rows, walk_pages
from posthog_source.snapshot import SENTINEL_HINTS, SNAPSHOT_DISPOSITION, sentinel_row

logger = logging.getLogger("posthog_source")

Rows = list[dict[str, Any]]


def _column_hints(endpoint: Endpoint) -> TTableSchemaColumns:
    hints: TTableSchemaColumns = {
        name: {"data_type": "timestamp", "timezone": True} for name in endpoint.instants
    }
    if endpoint.level is Level.PROJECT:
        hints["project_id"] = {"data_type": "bigint", "nullable": False}
        hints.update(SENTINEL_HINTS)
    return hints


def metadata_resource(client: PostHogClient, endpoint: Endpoint, catalog: ProjectCatalog,
                      failures: TableFailures | None = None) -> DltResource:
    """A snapshot of one endpoint. Project tables are replaced project by project (snapshot.py), so edits and
    deletions show and a run over some projects leaves the others alone."""
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
            yield from guarded(endpoint.table, lambda: _organization_pages(client, endpoint), failures)
        else:
            projects = catalog.projects()
            yield from guarded(endpoint.table, lambda: _project_pages(client, endpoint, projects), failures)

    return snapshot


def _organization_pages(client: PostHogClient, endpoint: Endpoint) -> Iterator[Rows]:
    seen: set[tuple[Any, ...]] = set()
    for page in walk_pages(client, endpoint, None):
        yield shape_rows(page, endpoint, None, seen)


def _project_pages(client: PostHogClient, endpoint: Endpoint, projects: Sequence[Project]) -> Iterator[Rows]:
    """Each project's list as PostHog shows it. Organisation-scoped annotations appear in every project of
    their organisation (their `scope` says so): PostHog does not say which project created one, so each
    project keeps its own copy under its `project_id` rather than one being picked as the owner."""
    for project in projects:
        seen: set[tuple[Any, ...]] = set()
        first = True
        try:
            for page in _raw_pages(client, endpoint, project):
                rows = shape_rows(page, endpoint, project.id, seen)
                if first:  # only once the project proved readable, so a refused project keeps its old rows
                    rows.insert(0, sentinel_row(project.id, endpoint.sentinel_key))
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


def projects_resource(catalog: ProjectCatalog) -> DltResource:
    """The projects the run reads, as PostHog describes them (a short form: no `created_at` in lists)."""

    @dlt.resource(name="projects", primary_key="id", write_disposition="replace",
                  columns={"created_at": {"data_type": "timestamp", "timezone": True}})
    def project_rows() -> Iterator[Rows]:
        rows = []
        for _, row in catalog.discovered():
            row = dict(row)
            if isinstance(row.get("created_at"), str):
                row["created_at"] = parse_api_instant(row["created_at"])
            rows.append(row)
        yield rows

    return project_rows
