"""`events.person_id` in each persons-on-events mode (posthog_schema.json `persons_on_events`, from PostHog's
posthog/hogql/database/schema/events.py and database.py): the fake serves PostHog's default,
person_id_override_properties_joined, and can serve the others (`FakePostHog(persons_on_events_mode=...)`)."""

from __future__ import annotations

from typing import Any

import pytest

from fake_posthog.hogql import PERSON_SOURCES
from fake_posthog.rules import PERSONS_ON_EVENTS_MODES
from tests.helpers import read_rows, run_pipeline
from tests.integration.test_exactness import some_distinct_ids


def merged_world(server: Any) -> tuple[dict[str, Any], set[str]]:
    """Two persons merged by `$identify`: the merged one's old events, and what the merge returned."""
    world = server.world
    keep, merge = some_distinct_ids(world, 1, 2)
    merged = world.merge_persons(1, keep, merge)
    old = {e["uuid"] for e in world.truth_events(1, as_dicts=True)
           if e["event_person_id"] == merged["merged_person_id"]}
    assert old
    return merged, old


def test_every_mode_has_a_resolution() -> None:
    assert set(PERSON_SOURCES) == set(PERSONS_ON_EVENTS_MODES)


@pytest.mark.parametrize("mode", PERSONS_ON_EVENTS_MODES)
def test_the_connector_loads_person_id_as_the_team_s_mode_resolves_it(make_fake_server, tmp_path, mode):
    """After a merge, old events show the kept person by default and when the mode is disabled (the distinct id's
    current person), and the person they were ingested with when overrides are off."""
    server = make_fake_server(seed=41, events=2_000, persons_on_events_mode=mode)
    merged, old = merged_world(server)
    result = run_pipeline(server, tmp_path, resources=["events"])
    assert result.failed_tables == {}
    truth = {e["uuid"]: e["person_id"] for e in server.world.truth_events(1, as_dicts=True,
                                                                        persons_on_events_mode=mode)}
    loaded = {r["uuid"]: r["person_id"] for r in read_rows(tmp_path, "events") if r["project_id"] == 1}
    assert loaded == truth
    expected = merged["merged_person_id"] if PERSON_SOURCES[mode] == "stored" else merged["person_id"]
    assert {loaded[u] for u in old} == {expected}
