"""A per-day count PostHog gives up on (its execution time, 504) is counted again in halves
(posthog_source/events.py count_days): a first run over a project too big to count at once loads exactly, and
so does the incremental run after it."""

from __future__ import annotations

import logging

from tests.helpers import fast_retries, run_pipeline
from tests.integration.test_events import assert_events_exact


def test_a_count_too_big_for_posthog_is_counted_in_parts(make_fake_server, tmp_path, caplog):
    server = make_fake_server(seed=43, events=8_000)
    with server.world.lock:
        (biggest,) = server.world.con.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM events GROUP BY team_id)").fetchone()
    # a third of a project's events per query: the counts over all of it time out, its pages (600 rows) fit
    server.execution_limit_rows = biggest // 3
    with caplog.at_level(logging.INFO, logger="posthog_source"):
        run_pipeline(server, tmp_path, resources=["events"], page_size=600, client_factory=fast_retries)
    assert server.timeout_count > 0, "no count was too large: nothing was split"
    assert "counting in two parts" in caplog.text
    assert_events_exact(server.world, tmp_path)
    server.world.add_events(1, 300)
    run_pipeline(server, tmp_path, resources=["events"], page_size=600, client_factory=fast_retries)
    assert_events_exact(server.world, tmp_path)
