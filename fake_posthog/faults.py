"""Injected infrastructure faults, deterministic per (seed, request number).

The n-th non-admin request draws one number from a generator seeded with (seed, n), so the same
sequence of requests meets the same faults on every run. Variants:

- ``5xx``: 500 JSON server_error, 502 HTML from the load balancer, or 503 JSON with `Retry-After: 1`;
- ``drop``: the connection is closed without any response;
- ``drop_mid_body``: headers with the full Content-Length and half of the body are sent, then the
  connection is closed (the client sees an incomplete read);
- ``truncated_json``: a 200 whose body was cut in half by a proxy *and whose Content-Length matches the
  cut body*, so HTTP succeeds and only JSON parsing fails (the variant chosen for this fake);
- ``slow``: the answer is delayed by `slow_seconds` (to exercise client timeouts);
- ``429``: a throttled response without `Retry-After` (the body still says when to come back).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS = ("5xx", "drop", "drop_mid_body", "truncated_json", "slow", "429")


@dataclass(frozen=True)
class FaultConfig:
    """Probability of each fault per request (they add up; the rest is served normally)."""

    seed: int = 0
    rate_5xx: float = 0.0
    rate_drop: float = 0.0
    rate_drop_mid_body: float = 0.0
    rate_truncated_json: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_429: float = 0.0

    @classmethod
    def uniform(cls, rate: float, seed: int = 0, slow_seconds: float = 2.0) -> FaultConfig:
        """`rate` of all requests fail, spread over the kinds (half of them plain 5xx)."""
        return cls(seed=seed, rate_5xx=rate / 2, rate_drop=rate / 10, rate_drop_mid_body=rate / 10,
                   rate_truncated_json=rate / 10, rate_slow=rate / 10, rate_429=rate / 10,
                   slow_seconds=slow_seconds)

    def rates(self) -> tuple[float, ...]:
        return (self.rate_5xx, self.rate_drop, self.rate_drop_mid_body, self.rate_truncated_json,
                self.rate_slow, self.rate_429)

    def pick(self, request_number: int) -> tuple[str | None, random.Random]:
        """The fault for the n-th request (or None) and a generator for its details."""
        rng = random.Random(f"{self.seed}:{request_number}")
        draw = rng.random()
        acc = 0.0
        for kind, rate in zip(FAULT_KINDS, self.rates(), strict=True):
            acc += rate
            if draw < acc:
                return kind, rng
        return None, rng
