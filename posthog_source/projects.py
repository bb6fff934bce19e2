"""Which projects a run reads: the configured ones, or every project the key can see.

Discovery is lazy: the source is built without any HTTP (so dlt's tools, `with_resources` and Dagster's
`@dlt_assets` work offline), and the first resource that runs asks PostHog once for everybody.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from posthog_source.catalogue import Endpoint, Level
from posthog_source.client import PostHogClient
from posthog_source.errors import ConfigurationError, NotFoundError, PermissionDeniedError
from posthog_source.rest import walk_pages


@dataclass(frozen=True)
class Project:
    """A PostHog project (its primary environment shares the id) as the resources need it."""

    id: int
    name: str
    timezone: str
    organization_id: str | None


class ProjectCatalog:
    """The run's projects, discovered on first use, once, whichever resource (thread) asks first."""

    def __init__(self, client: PostHogClient, wanted: Sequence[int] | None) -> None:
        self._client = client
        self._wanted = list(wanted) if wanted is not None else None
        self._lock = threading.Lock()
        self._found: list[tuple[Project, dict[str, Any]]] | None = None

    def discovered(self) -> list[tuple[Project, dict[str, Any]]]:
        """Projects with the API objects PostHog returned for them."""
        with self._lock:
            if self._found is None:
                self._found = discover_projects(self._client, self._wanted)
            return self._found

    def projects(self) -> list[Project]:
        return [project for project, _ in self.discovered()]


def discover_projects(client: PostHogClient, wanted: list[int] | None) -> list[tuple[Project, dict[str, Any]]]:
    """Projects with their API objects. A key scoped to some projects (or organisations) is respected:
    PostHog refuses organisation endpoints to project-scoped keys (docs/posthog-api.md, "Keys and scopes")."""
    key_info = client.get("/api/personal_api_keys/@current/", what="the API key's details")
    if wanted is None:
        scoped_teams = key_info.get("scoped_teams") or []
        if scoped_teams:
            wanted = sorted(int(t) for t in scoped_teams)
        else:
            rows = _projects_of_organizations(client, key_info.get("scoped_organizations") or None)
            return [(_project(row), row) for row in sorted(rows, key=lambda r: int(r["id"]))]
    found = []
    for project_id in wanted:
        try:
            row = client.get(f"/api/projects/{project_id}/", what=f"project {project_id}")
        except NotFoundError as exc:
            raise ConfigurationError(
                f"project {project_id} does not exist or this key cannot see it; check project_ids "
                "(run `posthog-pipeline check` to list readable projects)"
            ) from exc
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                f"this API key may not read project {project_id}; give the key access to it or remove it "
                "from project_ids",
                scope=exc.scope,
            ) from exc
        found.append((_project(row), row))
    return found


def _projects_of_organizations(client: PostHogClient, organization_ids: list[str] | None) -> list[dict[str, Any]]:
    if organization_ids is None:
        organization_ids = [org["id"] for org in _all_pages(client, "/api/organizations/", "organizations")]
    rows: dict[int, dict[str, Any]] = {}
    for org_id in organization_ids:
        for row in _all_pages(client, f"/api/organizations/{org_id}/projects/", f"projects of {org_id}"):
            rows[int(row["id"])] = {"organization": org_id, **row}
    return list(rows.values())


def _all_pages(client: PostHogClient, path: str, what: str) -> list[dict[str, Any]]:
    endpoint = Endpoint(what, path, "organization", level=Level.ORGANIZATION)
    return [row for page in walk_pages(client, endpoint, None) for row in page]


def _project(row: dict[str, Any]) -> Project:
    organization = row.get("organization")
    if isinstance(organization, dict):
        organization = organization.get("id")
    return Project(
        id=int(row["id"]),
        name=str(row.get("name") or row["id"]),
        timezone=str(row.get("timezone") or "UTC"),
        organization_id=str(organization) if organization is not None else None,
    )
