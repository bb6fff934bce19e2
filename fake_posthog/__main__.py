"""`python -m fake_posthog`: serve a generated world until SIGTERM/SIGINT.

Prints one JSON line {"url": ..., "keys": {...}} on stdout once the server accepts connections, so a
parent process (the demo, benchmarks, Airbyte side-by-side runs) can read the URL and keys from it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime

import orjson

from .faults import FaultConfig
from .rules import PERSONS_ON_EVENTS_MODES
from .server import FakePostHog
from .world import World


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fake_posthog", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--now", help="ISO instant anchoring generated dates (default: the real now)")
    parser.add_argument("--rate-limits", action="store_true", help="enforce PostHog's rate limits")
    parser.add_argument("--time-scale", type=float, default=1.0, help="divide every rate-limit window by this")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429 responses")
    parser.add_argument("--events-max-limit", type=int, default=1000, help="silent cap on /events/ limit")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that meet a fault")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--fat-share", type=float, default=0.0,
                        help="share of events turned into 10-50 KB $exception / $ai_generation events")
    parser.add_argument("--property-padding", type=int, default=0,
                        help="bytes of `$padding` added to every event's properties (wide-row benchmarks)")
    parser.add_argument("--persons-on-events-mode", choices=PERSONS_ON_EVENTS_MODES, default=PERSONS_ON_EVENTS_MODES[0],
                        help="the team's mode, which decides what events.person_id is (default: PostHog's default)")
    parser.add_argument("--missing-tables", default="",
                        help="comma list of HogQL tables this PostHog lacks (an older self-hosted one: sessions)")
    parser.add_argument("--read-budget-gb-per-hour", type=float, default=20.0,
                        help="the read budget's refill (PostHog#95375: 20 GB/h free, x10 paid)")
    parser.add_argument("--read-budget-capacity-hours", type=float, default=24.0,
                        help="hours of refill the read budget holds (PostHog: 24)")
    args = parser.parse_args(argv)

    now = datetime.fromisoformat(args.now) if args.now else None
    world = World.generate(seed=args.seed, events=args.events, now=now, fat_share=args.fat_share,
                           property_padding=args.property_padding)
    faults = FaultConfig.uniform(args.fault_rate, seed=args.fault_seed) if args.fault_rate > 0 else None
    server = FakePostHog(world, host=args.host, port=args.port, rate_limits=args.rate_limits,
                         time_scale=args.time_scale, faults=faults, retry_after_header=args.retry_after,
                         events_max_limit=args.events_max_limit,
                         read_budget_bytes_per_hour=args.read_budget_gb_per_hour * 1e9,
                         read_budget_capacity_hours=args.read_budget_capacity_hours,
                         persons_on_events_mode=args.persons_on_events_mode,
                         missing_tables={t.strip() for t in args.missing_tables.split(",") if t.strip()}).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sys.stdout.write(orjson.dumps({"url": server.url, "keys": world.keys}).decode() + "\n")
    sys.stdout.flush()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
