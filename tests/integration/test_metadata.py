"""Every metadata table, loaded from the fake server into DuckDB, equals the server's ground truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pendulum
import pytest

from fake_posthog.server import INSIGHT_BASIC_FIELDS
from posthog_source.catalogue import ENDPOINTS, Endpoint, Level
from tests.helpers import read_rows, run_pipeline

PROJECT_ENDPOINTS = [e for e in ENDPOINTS if e.level is Level.PROJECT]


def expected_rows(world: Any, endpoint: Endpoint) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What the table must hold: every visible object of every project's list, keyed like the table.
    Organisation annotations appear in every project's list of their organisation, and so in the table."""
    expected: dict[tuple[Any, ...], dict[str, Any]] = {}
    for project in world.projects:
        for row in world.visible_objects(endpoint.table, project["id"]):
            owner = project["id"]
            if endpoint.table == "insights":  # read with basic=true, PostHog's light serializer
                row = {k: v for k, v in row.items() if k in INSIGHT_BASIC_FIELDS}
            full = {"project_id": owner, **row}
            expected[tuple(full[c] for c in endpoint.primary_key)] = full
    return expected


def loaded_rows(workdir: Any, endpoint: Endpoint) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = read_rows(workdir, endpoint.table)
    return {tuple(r[c] for c in endpoint.primary_key): r for r in rows}


def assert_same_values(expected: dict[str, Any], loaded: dict[str, Any], endpoint: Endpoint) -> None:
    for name, value in expected.items():
        actual = loaded.get(name)
        if isinstance(value, dict | list):
            assert (json.loads(actual) if isinstance(actual, str) else actual) == value, name
        elif isinstance(value, str) and (name in endpoint.instants or isinstance(actual, datetime)):
            assert actual == pendulum.parse(value), name  # same instant, stored as a UTC timestamp
        else:
            assert actual == value, (endpoint.table, name, value, actual)
    assert loaded.get("_posthog_sentinel") is None


def assert_tables_match_server(world: Any, workdir: Any, tables: Sequence[str] | None = None) -> None:
    for endpoint in PROJECT_ENDPOINTS:
        if tables is not None and endpoint.table not in tables:
            continue
        expected = expected_rows(world, endpoint)
        loaded = loaded_rows(workdir, endpoint)
        assert set(loaded) == set(expected), endpoint.table
        for key, row in expected.items():
            assert_same_values(row, loaded[key], endpoint)


@pytest.fixture
def server(make_fake_server):
    return make_fake_server(seed=11, events=2_000)


def test_every_metadata_table_matches_the_server(server, tmp_path):
    result = run_pipeline(server, tmp_path, resources=["projects", "organizations",
                                                        *[e.table for e in PROJECT_ENDPOINTS]])
    world = server.world
    assert_tables_match_server(world, tmp_path)

    # Multi-page tables really were multi-page, deleted rows are absent.
    counts = {e.table: len(read_rows(tmp_path, e.table)) for e in PROJECT_ENDPOINTS}
    # "rows loaded this run" counts stored rows: not the sentinel row each project sends (before: group_types 7
    # for 3 stored)
    assert {t: result.rows_extracted.get(t, 0) for t in counts} == counts
    assert counts["feature_flags"] > 200 and counts["annotations"] > 1000 and counts["session_recordings"] > 50
    assert counts["groups"] > 100
    projects = read_rows(tmp_path, "projects")
    assert sorted(p["id"] for p in projects) == sorted(p["id"] for p in world.projects)
    assert {o["id"] for o in read_rows(tmp_path, "organizations")} == {o["id"] for o in world.organizations}

    # Organisation annotations: under every project of their organisation, each project once.
    annotations = read_rows(tmp_path, "annotations")
    org_scoped = [(a["project_id"], a["id"]) for a in annotations if a["scope"] == "organization"]
    assert org_scoped and len(set(org_scoped)) == len(org_scoped)


def test_an_organization_annotation_made_in_any_project_shows_under_every_project_of_its_organization(
    make_fake_server, tmp_path
):
    """PostHog's list does not say which project created an org-scoped annotation, so none is picked as
    its owner: one created in project 2 is in project 1's list too, and both keep it (project 3 is in the
    other organisation and does not)."""
    server = make_fake_server(seed=11, events=2_000)
    made = server.world.add_object("annotations", 2, scope="organization", content="release 4.2")
    run_pipeline(server, tmp_path, resources=["annotations"])
    holders = sorted(a["project_id"] for a in read_rows(tmp_path, "annotations") if a["id"] == made["id"])
    assert holders == [1, 2]
    rows = [a for a in read_rows(tmp_path, "annotations") if a["id"] == made["id"]]
    assert all(a["scope"] == "organization" and a["content"] == "release 4.2" for a in rows)


def test_second_run_shows_edits_and_deletions(server, tmp_path):
    tables = [e.table for e in PROJECT_ENDPOINTS]
    run_pipeline(server, tmp_path, resources=tables)
    world = server.world
    flags = world.visible_objects("feature_flags", 1)
    world.edit_object("feature_flags", 1, flags[0]["id"], name="renamed flag", active=False)
    world.delete_object("feature_flags", 1, flags[1]["id"])
    world.add_object("feature_flags", 2, key="brand-new-flag")
    cohorts = world.visible_objects("cohorts", 1)
    world.delete_object("cohorts", 1, cohorts[0]["id"])
    # Every survey of project 2 deleted: the table must lose all of project 2's surveys.
    for survey in world.visible_objects("surveys", 2):
        world.delete_object("surveys", 2, survey["id"])
    recordings = world.visible_objects("session_recordings", 1)
    world.delete_object("session_recordings", 1, recordings[0]["id"])

    run_pipeline(server, tmp_path, resources=tables)
    assert_tables_match_server(world, tmp_path)
    surveys = read_rows(tmp_path, "surveys")
    assert not [s for s in surveys if s["project_id"] == 2]
    assert [s for s in surveys if s["project_id"] != 2]
    loaded_flags = {f["id"]: f for f in read_rows(tmp_path, "feature_flags") if f["project_id"] == 1}
    assert loaded_flags[flags[0]["id"]]["name"] == "renamed flag"
    assert flags[1]["id"] not in loaded_flags


def test_run_over_one_project_leaves_the_others_alone(server, tmp_path):
    run_pipeline(server, tmp_path, resources=["feature_flags"])
    before = {(r["project_id"], r["id"]) for r in read_rows(tmp_path, "feature_flags")}
    server.world.delete_object("feature_flags", 1, server.world.visible_objects("feature_flags", 1)[0]["id"])
    run_pipeline(server, tmp_path, resources=["feature_flags"], project_ids=[2])
    after = {(r["project_id"], r["id"]) for r in read_rows(tmp_path, "feature_flags")}
    assert after == before  # project 1 was not read, so its rows are untouched


def test_resources_the_key_may_not_read_are_skipped_by_name(server, tmp_path, caplog):
    tables = [e.table for e in PROJECT_ENDPOINTS]
    run_pipeline(server, tmp_path, key="limited", resources=tables)
    assert "skipped feature_flags" in caplog.text and "feature_flag:read" in caplog.text
    assert "skipped session_recordings" in caplog.text and "session_recording:read" in caplog.text
    for endpoint in PROJECT_ENDPOINTS:
        if endpoint.table in ("feature_flags", "session_recordings"):
            continue
        assert set(loaded_rows(tmp_path, endpoint)) == set(expected_rows(server.world, endpoint)), endpoint.table
