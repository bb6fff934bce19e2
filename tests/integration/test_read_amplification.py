"""First runs read what they load (issue 22): slices of the events sort key, each about one page, so the
bytes PostHog meters (fake_posthog/cost.py, pinned to PostHog's sort key) stay close to the bytes loaded,
on days too big for one page too. Exactness is checked on the same runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.fake import LOADED_EVENT_COLUMNS
from pipelines.cli import main as cli_main
from tests.helpers import read_rows, run_pipeline
from tests.integration.test_events import assert_events_exact
from tests.integration.test_query_shapes import process_settings_restored

# The suite's small worlds stand in for big ones by making pages small: 1,500 rows a page makes days of
# several thousand events "too big for one page", as 50,000-event days are with PostHog's 50,000-row pages.
PAGE_ROWS = 1_500


def amplification(server, workdir) -> tuple[float, float, int]:
    loaded = read_rows(workdir, "events")
    per_team: dict[int, int] = {}
    for row in loaded:
        per_team[row["project_id"]] = per_team.get(row["project_id"], 0) + 1
    loaded_bytes = sum(n * sum(server.cost.column_bytes(team)[c] for c in LOADED_EVENT_COLUMNS)
                       for team, n in per_team.items())
    return (server.read_bytes_by_key["full"] / loaded_bytes, server.rows_scanned_by_key["full"] / len(loaded),
            len(loaded))


@pytest.mark.parametrize("burst", [0, 9_000])
def test_a_first_run_reads_about_what_it_loads(make_fake_server, tmp_path, burst):
    """With a burst, one day holds 9,000 more events from few people: the day is cut by event names, the
    biggest events by ranges of cityHash64(distinct_id)."""
    server = make_fake_server(seed=31, events=24_000)
    if burst:
        server.world.add_events(1, burst, late_by=timedelta(days=30))
    run_pipeline(server, tmp_path, resources=["events"], page_size=PAGE_ROWS)
    assert_events_exact(server.world, tmp_path)
    by_bytes, by_rows, rows = amplification(server, tmp_path)
    print(f"{rows:,} events: bytes read / loaded {by_bytes:.2f}, rows scanned / loaded {by_rows:.2f}")
    assert by_bytes <= 1.3
    # the per-day count scans every row once more (two narrow columns), the finer counts of big days part of
    # them, the slices about once: 6.1x before slices
    assert by_rows <= 2.5


def test_a_backfill_reads_about_what_it_loads(make_fake_server, tmp_path, monkeypatch):
    server = make_fake_server(seed=32, events=20_000)
    burst_at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    server.world.add_events(2, 6_000, late_by=datetime.now(UTC) - burst_at)
    monkeypatch.chdir(tmp_path)
    for name, value in {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
                        "SOURCES__POSTHOG__PAGE_SIZE": str(PAGE_ROWS), "SOURCES__POSTHOG__INGESTION_LAG": "0",
                        "DLT_DATA_DIR": str(tmp_path / "dlt"),
                        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "warehouse.duckdb"),
                        "RUNTIME__INTERCEPT_SIGNALS": "false"}.items():
        monkeypatch.setenv(name, value)
    with process_settings_restored():
        assert cli_main(["backfill", "--start-date", "2026-02-01", "--end-date", "2026-03-20"]) == 0
    lo, hi = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC)
    loaded = [(r["project_id"], r["uuid"]) for r in read_rows(tmp_path, "events")]
    expected = {(p["id"], e["uuid"]) for p in server.world.projects
                for e in server.world.truth_events(p["id"], as_dicts=True) if lo <= e["timestamp"] < hi}
    assert len(loaded) == len(set(loaded)) and set(loaded) == expected
    by_bytes, by_rows, rows = amplification(server, tmp_path)
    print(f"{rows:,} events: bytes read / loaded {by_bytes:.2f}, rows scanned / loaded {by_rows:.2f}")
    assert by_bytes <= 1.3
