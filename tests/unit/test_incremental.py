"""The one ingestion cursor (posthog_source/incremental.py): positions read, decided on, staged and committed,
with the clock passed in (no patching of pendulum.now)."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthog_source.config import SourceSettings
from posthog_source.incremental import EVENTS_KEYS, IngestionCursor, Position

KEY = "phx_" + "a" * 40
NOW = pendulum.datetime(2026, 12, 5, 12, tz="UTC")


def config(**values: Any) -> SourceSettings:
    return SourceSettings.parse(api_key=KEY, ingestion_lag="5m", ingestion_overlap="1h", max_lateness="7d",
                                late_sweep="1d", **values)


def test_a_first_run_has_no_position_and_stages_one_at_the_horizon() -> None:
    state: dict[str, Any] = {}
    cursor = IngestionCursor(EVENTS_KEYS, config(), NOW, state)
    assert cursor.position(1) == Position() and cursor.since(1) is None and cursor.sweep_due(1)
    staged = cursor.advance(1, swept=True)
    assert staged == Position(NOW.subtract(minutes=5), NOW.subtract(minutes=5), NOW)
    assert cursor.position(1) == Position()  # nothing is written before the commit
    cursor.commit()
    assert IngestionCursor(EVENTS_KEYS, config(), NOW, state).position(1) == staged


@given(st.integers(0, 72), st.integers(0, 72), st.booleans())
def test_reads_start_at_the_watermark_minus_the_overlap_and_sweeps_when_due(hours_since_sweep, lag_of_sweep, swept):
    watermark = NOW.subtract(hours=2)
    swept_to = watermark.subtract(hours=lag_of_sweep)
    state: dict[str, Any] = {}
    first = IngestionCursor(EVENTS_KEYS, config(), NOW.subtract(hours=hours_since_sweep), state)
    first.stage(7, Position(watermark, swept_to, NOW.subtract(hours=hours_since_sweep)))
    first.commit()
    cursor = IngestionCursor(EVENTS_KEYS, config(), NOW, state)
    assert cursor.since(7) == watermark.subtract(hours=1)
    assert cursor.sweep_due(7) == (hours_since_sweep >= 24)
    assert cursor.sweep_from(7) == min(swept_to, watermark).subtract(hours=1) <= cursor.since(7)
    new = cursor.advance(7, swept=swept)
    assert new.watermark == cursor.hi
    kept = (swept_to, NOW.subtract(hours=hours_since_sweep))
    assert (new.swept_to, new.swept_at) == ((cursor.hi, NOW) if swept else kept)


def test_a_full_refresh_sweeps_as_a_first_run_but_keeps_what_it_reads_from() -> None:
    state: dict[str, Any] = {}
    old = IngestionCursor(EVENTS_KEYS, config(), NOW, state)
    old.stage(1, Position(NOW.subtract(days=1), NOW.subtract(days=2), NOW.subtract(days=2)))
    old.commit()
    cursor = IngestionCursor(EVENTS_KEYS, config(full_refresh=True), NOW, state)
    assert cursor.position(1).watermark == NOW.subtract(days=1)
    assert cursor.advance(1, swept=False) == Position(cursor.hi, None, None)  # nothing of the old sweep kept


def test_a_watermark_given_caps_the_sweep_mark() -> None:
    cursor = IngestionCursor(EVENTS_KEYS, config(), NOW, {})
    handover = NOW.subtract(hours=3)
    assert cursor.advance(2, swept=True, watermark=handover) == Position(handover, handover, NOW)


@pytest.mark.parametrize("damaged", ["not a mapping", 5])
def test_damaged_state_is_one_clear_error(damaged: Any) -> None:
    from posthog_source.errors import PostHogSourceError

    with pytest.raises(PostHogSourceError, match="--full-refresh"):
        IngestionCursor(EVENTS_KEYS, config(), NOW, {"created_at_watermark": damaged})
