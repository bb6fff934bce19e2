"""dagster-dlt's `@dlt_assets` over our source, materialised in-process against the fake server into DuckDB:
two events partitions hold exactly the events of their two UTC days (and re-running one adds nothing), the
other assets equal the server's truth, and the code location loads without sending a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posthog_source import ALL_TABLES
from tests.helpers import read_rows
from tests.integration.test_events import assert_events_exact, assert_persons_exact
from tests.integration.test_exactness import assert_cohort_people_exact, assert_sessions_exact
from tests.integration.test_metadata import assert_tables_match_server

pytestmark = pytest.mark.orchestration
dg = pytest.importorskip("dagster", reason="the orchestration extra is not installed")
pytest.importorskip("dagster_dlt", reason="the orchestration extra is not installed")
from orchestration import dagster_defs  # noqa: E402

DAYS = ["2026-02-03", "2026-02-10"]


class DaysOfWorld:
    """The fake's world seen through a few UTC days of event `timestamp`: what those partitions must hold."""

    def __init__(self, world: Any, days: list[str]) -> None:
        self.world, self.projects = world, world.projects
        self.windows = [(start, start + timedelta(days=1))
                        for start in (datetime.fromisoformat(d).replace(tzinfo=UTC) for d in days)]

    def truth_events(self, project_id: int, as_dicts: bool = True) -> list[dict[str, Any]]:
        return [e for e in self.world.truth_events(project_id, as_dicts=as_dicts)
                if any(lo <= e["timestamp"] < hi for lo, hi in self.windows)]


def definitions(server: Any, tmp_path: Any) -> dg.Definitions:
    return dagster_defs.build_definitions(
        source_args={"api_key": server.world.keys["full"], "host": server.url, "ingestion_lag": "0",
                     "start_date": "2025-06-01"},
        duckdb_path=str(tmp_path / "warehouse.duckdb"), pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_one_asset_per_table_and_the_code_location_loads_without_a_request(make_fake_server, tmp_path):
    server = make_fake_server(seed=11, events=500)
    before = len(server.request_log)
    defs = definitions(server, tmp_path)
    graph = defs.resolve_asset_graph()
    assert {tuple(key.path) for key in graph.get_all_asset_keys()} == {("posthog", t) for t in ALL_TABLES}
    events = defs.resolve_assets_def(dg.AssetKey(["posthog", "events"]))
    assert isinstance(events.partitions_def, dg.DailyPartitionsDefinition)
    tables = defs.resolve_assets_def(dg.AssetKey(["posthog", "persons"]))
    assert tables.partitions_def is None and len(tables.keys) == len(ALL_TABLES) - 1
    assert len(server.request_log) == before, "loading the definitions must not call PostHog"


def test_without_an_api_key_the_code_location_says_what_to_set(monkeypatch):
    from posthog_source.errors import ConfigurationError

    monkeypatch.delenv("SOURCES__POSTHOG__API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SOURCES__POSTHOG__API_KEY"):
        dagster_defs.build_definitions()


def test_two_events_partitions_and_the_table_assets_are_exact(make_fake_server, tmp_path):
    server = make_fake_server(seed=11, events=4_000)
    defs = definitions(server, tmp_path)
    events = defs.resolve_assets_def(dg.AssetKey(["posthog", "events"]))
    tables = defs.resolve_assets_def(dg.AssetKey(["posthog", "persons"]))

    for day in [*DAYS, DAYS[0]]:  # the first day twice: a re-materialised partition merges, no duplicates
        result = dg.materialize([events], partition_key=day)
        assert result.success
    expected = DaysOfWorld(server.world, DAYS)
    in_days = sum(len(expected.truth_events(p["id"])) for p in expected.projects)
    assert 50 < in_days < sum(len(server.world.truth_events(p["id"])) for p in server.world.projects)
    assert_events_exact(expected, tmp_path)
    materialized = result.asset_materializations_for_node("posthog_events")
    assert [m.asset_key.path for m in materialized] == [["posthog", "events"]]
    assert materialized[0].partition == DAYS[0]

    result = dg.materialize([tables])
    assert result.success
    keys = {tuple(m.asset_key.path) for m in result.asset_materializations_for_node("posthog_tables")}
    assert keys == {("posthog", t) for t in dagster_defs.OTHER_TABLES}
    world = server.world
    assert_tables_match_server(world, tmp_path)
    assert_persons_exact(world, tmp_path)
    assert_sessions_exact(world, tmp_path)
    assert_cohort_people_exact(world, tmp_path)
    assert {p["id"] for p in read_rows(tmp_path, "projects")} == {p["id"] for p in world.projects}
