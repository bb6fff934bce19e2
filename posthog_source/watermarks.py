"""Per-project instants kept in a resource's dlt state (watermarks, sweep marks), committed with the data.

dlt stores resource state in the same load package as the rows, so a mark is durable exactly when the rows
it covers are: a run killed before its load leaves the old marks, and the next run reads the same range
again (merged on the key, so nothing doubles). Marks are staged while a resource runs and written to the
state only after its last row was yielded.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import dlt
import pendulum

from posthog_source.errors import PostHogSourceError


class Marks:
    """One named map `project id -> UTC instant` in the current resource's state."""

    def __init__(self, name: str, state: MutableMapping[str, object] | None = None) -> None:
        state = dlt.current.resource_state() if state is None else state
        stored = state.setdefault(name, {})
        if not isinstance(stored, dict):
            raise PostHogSourceError(
                f"the pipeline state's '{name}' is damaged; run once with --full-refresh to rebuild it"
            )
        self._stored: dict[str, str] = stored
        self._staged: dict[str, str] = {}

    def get(self, project_id: int) -> pendulum.DateTime | None:
        value = self._stored.get(str(project_id))
        return pendulum.parse(value).in_timezone("UTC") if value else None  # type: ignore[union-attr]

    def stage(self, project_id: int, instant: pendulum.DateTime) -> None:
        self._staged[str(project_id)] = instant.in_timezone("UTC").isoformat()

    def commit(self) -> None:
        """Write the staged marks: call after the last row of the run was yielded."""
        self._stored.update(self._staged)
        self._staged.clear()
