"""Authentication, scopes, scoped keys, 404s and the account endpoints (posthog-api.md §1, §5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from fake_posthog.server import LIST_ENDPOINTS, FakePostHog
from fake_posthog.world import KeyInfo

Client = Callable[..., requests.Session]


def envelope(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def test_missing_credentials_401(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server_shared, None).get(fake_server_shared.url + "/api/projects/1/cohorts/")
    assert r.status_code == 401
    assert r.json() == envelope("authentication_error", "not_authenticated",
                                "Authentication credentials were not provided.")
    assert r.headers["WWW-Authenticate"].startswith("Bearer resource_metadata=")


@pytest.mark.parametrize("token", ["phx_not_a_real_key", "project_token"])
def test_wrong_key_and_project_token_401(fake_server_shared: FakePostHog, fake_client: Client, token: str) -> None:
    r = fake_client(fake_server_shared, token).get(fake_server_shared.url + "/api/projects/1/cohorts/")
    assert r.status_code == 401
    assert r.json() == envelope("authentication_error", "authentication_failed",
                                "Personal API key found in request Authorization header is invalid.")


def test_key_in_query_string_is_accepted_and_named_in_errors(fake_server_shared: FakePostHog) -> None:
    url = fake_server_shared.url + "/api/projects/1/cohorts/"
    good = requests.get(url, params={"personal_api_key": fake_server_shared.world.keys["full"]})
    assert good.status_code == 200
    bad = requests.get(url, params={"personal_api_key": "phx_nope"})
    assert bad.json()["detail"] == "Personal API key found in request query string is invalid."


@pytest.mark.parametrize(("path", "scope"), [("feature_flags", "feature_flag"),
                                             ("session_recordings", "session_recording")])
def test_missing_scope_403(fake_server_shared: FakePostHog, fake_client: Client, path: str, scope: str) -> None:
    session = fake_client(fake_server_shared, "limited")
    r = session.get(f"{fake_server_shared.url}/api/projects/1/{path}/")
    assert r.status_code == 403
    assert r.json() == envelope("authentication_error", "permission_denied",
                                f"API key missing required scope '{scope}:read'")
    assert session.get(f"{fake_server_shared.url}/api/projects/1/cohorts/").status_code == 200


def test_query_scope_covers_events_and_query(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared, "no_query")
    for method, path in (("GET", "events/"), ("POST", "query/")):
        r = session.request(method, f"{fake_server_shared.url}/api/projects/1/{path}",
                            json={"query": {"kind": "HogQLQuery", "query": "select 1"}})
        assert r.status_code == 403
        assert r.json()["detail"] == "API key missing required scope 'query:read'"


def test_every_endpoint_maps_to_its_scope_object(make_fake_server: Callable[..., FakePostHog],
                                                 fake_client: Client) -> None:
    server = make_fake_server(events=1000)
    server.world.key_info["phx_only_org"] = KeyInfo("phx_only_org", "org only", ["organization:read"])
    session = fake_client(server, "phx_only_org")
    expected = {path: e.scope for path, e in LIST_ENDPOINTS.items()}
    expected |= {"persons": "person", "events": "query"}
    for path, scope in expected.items():
        r = session.get(f"{server.url}/api/projects/1/{path}/", params={"group_type_index": 0})
        assert r.status_code == 403, path
        assert r.json()["detail"] == f"API key missing required scope '{scope}:read'", path
    assert session.get(server.url + "/api/organizations/").status_code == 200
    write = KeyInfo("phx_write", "write implies read", ["cohort:write"])
    server.world.key_info[write.key] = write
    assert fake_client(server, write.key).get(server.url + "/api/projects/1/cohorts/").status_code == 200


def test_scoped_teams_key(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared, "scoped")
    url = fake_server_shared.url
    assert session.get(url + "/api/projects/1/cohorts/").status_code == 200
    other = session.get(url + "/api/projects/2/cohorts/")
    assert other.status_code == 403
    assert other.json() == envelope("authentication_error", "permission_denied",
                                    "API key does not have access to the requested project: ID 2.")
    for path in ("/api/projects/", "/api/organizations/", "/api/users/@me/"):
        r = session.get(url + path)
        assert r.status_code == 403, path
        assert r.json()["detail"] == "API keys with scoped projects are only supported on project-based endpoints."
    current = session.get(url + "/api/personal_api_keys/@current/").json()
    assert current["scoped_teams"] == [1]
    assert fake_server_shared.world.projects_for_key(fake_server_shared.world.keys["scoped"]) == [1]


def test_scoped_organizations_key(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    world = fake_server_shared.world
    session = fake_client(fake_server_shared, "org_scoped")
    org_a, org_b = (o["id"] for o in world.organizations)
    assert session.get(fake_server_shared.url + "/api/projects/3/cohorts/").status_code == 200
    r = session.get(fake_server_shared.url + "/api/projects/1/cohorts/")
    assert r.status_code == 403
    assert r.json()["detail"] == f"API key does not have access to the requested organization: ID {org_a}."
    assert session.get(f"{fake_server_shared.url}/api/organizations/{org_b}/projects/").status_code == 200
    assert session.get(f"{fake_server_shared.url}/api/organizations/{org_a}/projects/").status_code == 403
    assert world.projects_for_key(world.keys["org_scoped"]) == [3, 4]


@pytest.mark.parametrize("project", ["999", "abc"])
def test_unknown_project_404(fake_server_shared: FakePostHog, fake_client: Client, project: str) -> None:
    r = fake_client(fake_server_shared).get(f"{fake_server_shared.url}/api/projects/{project}/feature_flags/")
    assert r.status_code == 404
    assert r.json() == {"type": "invalid_request", "code": "not_found", "detail": "Project not found.", "attr": None}


@pytest.mark.parametrize("key", ["full", None])
def test_unknown_path_404(fake_server_shared: FakePostHog, fake_client: Client, key: str | None) -> None:
    for path in ("/api/projects/1/nonsense/", "/api/whatever", "/nothing"):
        r = fake_client(fake_server_shared, key).get(fake_server_shared.url + path)
        assert r.status_code == 404
        assert r.json() == envelope("invalid_request", "not_found", "Endpoint not found.")


def test_current_key_me_organizations_and_projects(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    world, url = fake_server_shared.world, fake_server_shared.url
    session = fake_client(fake_server_shared)
    current = session.get(url + "/api/personal_api_keys/@current/").json()
    assert {"label", "scopes", "scoped_teams", "scoped_organizations"} <= current.keys()
    assert current["scopes"] == ["*"]
    me = session.get(url + "/api/users/@me/").json()
    assert me["organization"]["id"] == world.organizations[0]["id"]
    assert me["team"]["id"] == 1
    orgs = session.get(url + "/api/organizations/").json()
    assert orgs["count"] == 2 and {o["id"] for o in orgs["results"]} == {o["id"] for o in world.organizations}
    org_b = world.organizations[1]["id"]
    assert session.get(f"{url}/api/organizations/{org_b}/").json()["name"] == world.organizations[1]["name"]
    in_b = session.get(f"{url}/api/organizations/{org_b}/projects/").json()
    assert [p["id"] for p in in_b["results"]] == [3, 4]
    # /api/projects/ only lists the user's current organisation: projects 3 and 4 are missing.
    assert [p["id"] for p in session.get(url + "/api/projects/").json()["results"]] == [1, 2]
    zones = {p: session.get(f"{url}/api/projects/{p}/").json()["timezone"] for p in (1, 2, 3, 4)}
    assert zones[1] == "UTC" and zones[2].startswith("America/") and zones[3] == "Asia/Kolkata"
    assert session.get(url + "/api/projects/@current/").json()["id"] == 1


def test_environments_prefix_is_rewritten_with_deprecation_headers(fake_server_shared: FakePostHog,
                                                                    fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    old = session.get(fake_server_shared.url + "/api/environments/1/cohorts/?limit=5")
    new = session.get(fake_server_shared.url + "/api/projects/1/cohorts/?limit=5")
    assert old.status_code == 200 and old.json()["results"] == new.json()["results"]
    assert old.headers["Deprecation"] == "true"
    assert old.headers["Sunset"] == "Fri, 31 Jul 2026 00:00:00 GMT"
    assert 'rel="successor-version"' in old.headers["Link"] and "/api/projects/1/cohorts/" in old.headers["Link"]
    assert "Deprecation" not in new.headers


def test_trailing_slash_optional(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    session = fake_client(fake_server_shared)
    for path in ("/api/projects/1/cohorts", "/api/projects", "/api/users/@me", "/api/projects/1/groups_types"):
        with_slash = session.get(fake_server_shared.url + path + "/")
        without = session.get(fake_server_shared.url + path)
        assert with_slash.status_code == without.status_code == 200
        a, b = with_slash.json(), without.json()
        # Links keep the path as requested; the data is the same.
        assert (a["results"] == b["results"]) if isinstance(a, dict) and "results" in a else a == b


def test_method_not_allowed(fake_server_shared: FakePostHog, fake_client: Client) -> None:
    r = fake_client(fake_server_shared).get(fake_server_shared.url + "/api/projects/1/query/")
    assert r.status_code == 405
    assert r.json()["type"] == "invalid_request" and r.json()["code"] == "method_not_allowed"
