"""A local PostHog-compatible API server for tests, the demo and benchmarks (see README.md)."""

from .faults import FaultConfig
from .ratelimit import RateLimitConfig
from .server import FakePostHog
from .world import World

__all__ = ["FakePostHog", "FaultConfig", "RateLimitConfig", "World"]
