"""Fixtures for loading into real destinations: a PostgreSQL cluster owned by the session, and a switch that
points the integration suite's exactness checks at another destination's rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.destinations.postgres_server import PostgresCluster, PostgresUnavailable
from tests.destinations.readers import Reader
from tests.integration import test_events as events_checks
from tests.integration import test_exactness as exactness_checks
from tests.integration import test_metadata as metadata_checks


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Skipped with the reason when PostgreSQL cannot be had here; under CI=true that is a failure (`./dev
    test` installs it on CI, so a missing server there is a broken setup, not an excuse)."""
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required on CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_dsn(postgres_cluster: PostgresCluster) -> str:
    """A new empty database for this test."""
    return postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def check_rows_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[Reader], None]:
    """check_rows_from(reader): assert_events_exact, assert_persons_exact and assert_tables_match_server then
    read `reader(table)` instead of the DuckDB file (their `workdir` argument is ignored)."""

    def use(reader: Reader) -> None:
        def read_rows(workdir: object, table: str, dataset: str = "posthog") -> list[dict[str, object]]:
            return reader(table)

        for module in (events_checks, metadata_checks, exactness_checks):
            monkeypatch.setattr(module, "read_rows", read_rows)

    return use
