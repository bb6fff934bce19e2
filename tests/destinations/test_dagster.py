"""The Dagster definitions run in-process against the fake server: two events partitions hold exactly the
events of their two days, and the table assets equal the server's truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import read_rows
from tests.integration.test_events import assert_events_exact
from tests.integration.test_metadata import assert_tables_match_server

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")
defs_module = pytest.importorskip("orchestration.dagster_defs")

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


def test_two_events_partitions_and_the_table_assets_are_exact(make_fake_server, tmp_path):
    server = make_fake_server(seed=11, events=20_000)
    resource = defs_module.PostHogPipeline(
        duckdb_path=str(tmp_path / "warehouse.duckdb"), pipelines_dir=str(tmp_path / "pipelines"),
        api_key=server.world.keys["full"], host=server.url, extra_source_args={"ingestion_lag": "0"},
    )
    for day in DAYS:
        result = dg.materialize([defs_module.posthog_events], partition_key=day, resources={"posthog": resource})
        assert result.success
    expected = DaysOfWorld(server.world, DAYS)
    assert sum(len(expected.truth_events(p["id"])) for p in expected.projects) > 200
    assert_events_exact(expected, tmp_path)

    result = dg.materialize([defs_module.posthog_tables], resources={"posthog": resource})
    assert result.success
    assert_tables_match_server(server.world, tmp_path)
    assert {p["id"] for p in read_rows(tmp_path, "projects")} == {p["id"] for p in server.world.projects}
