"""What the fake PostHog served: the event rows of every HogQL data query, recorded at the fake's query engine
(the real HTTP path is unchanged), so a test can tell how much a run read."""

from __future__ import annotations

from typing import Any

import pytest

import fake_posthog.hogql as fake_hogql


class ServedEvents:
    """Event uuids the fake returned to HogQL data queries (count queries have no uuid column)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.uuids: list[str] = []
        original = fake_hogql.execute_hogql

        def recording(con: Any, team_id: int, team_timezone: str, query: str, *more: Any) -> dict[str, Any]:
            result = original(con, team_id, team_timezone, query, *more)
            columns = [str(c) for c in result.get("columns") or []]
            if "FROM events" in query and columns and "uuid" in columns[0]:
                self.uuids.extend(str(row[0]) for row in result.get("results") or [])
            return result

        monkeypatch.setattr(fake_hogql, "execute_hogql", recording)

    def clear(self) -> None:
        self.uuids.clear()
