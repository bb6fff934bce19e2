from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

# ---------------------------------------------------------------------------------------------- fake PostHog
# A shared read-only world and server for tests that only read, and a factory for tests that mutate data
# or need special server settings (rate limits, faults): each factory call gets its own world and server.
from fake_posthog.server import FakePostHog
from fake_posthog.world import World

FAKE_NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)  # fixed anchor: generated data is identical each run


@pytest.fixture(scope="session")
def fake_world() -> World:
    """Read-only world (seed 7, 120k events): do not mutate it, use `make_fake_server` for that."""
    return World.generate(seed=7, events=120_000, now=FAKE_NOW)


@pytest.fixture(scope="session")
def fake_server_shared(fake_world: World) -> Iterator[FakePostHog]:
    """One server over `fake_world` for the whole session (no rate limits, no faults)."""
    with FakePostHog(fake_world) as server:
        yield server


@pytest.fixture
def fake_server(fake_world: World) -> Iterator[FakePostHog]:
    """A fresh server (own request log and counters) over the shared read-only world."""
    with FakePostHog(fake_world) as server:
        yield server


@pytest.fixture
def make_fake_server() -> Iterator[Callable[..., FakePostHog]]:
    """Factory: make_fake_server(seed=.., events=.., now=.., **server_kwargs) -> a started server over its
    own new world (server.world), stopped at the end of the test."""
    servers: list[FakePostHog] = []

    def make(seed: int = 7, events: int = 20_000, now: datetime | None = FAKE_NOW, **kwargs: Any) -> FakePostHog:
        server = FakePostHog(World.generate(seed=seed, events=events, now=now), **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def fake_client() -> Callable[..., Any]:
    """fake_client(server, key="full") -> a requests.Session sending that key (a name in world.keys, or a raw
    token; None sends no credentials)."""
    import requests

    def make(server: FakePostHog, key: str | None = "full") -> requests.Session:
        session = requests.Session()
        if key is not None:
            token = server.world.keys.get(key, key)
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    return make
