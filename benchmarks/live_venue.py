"""The loopback venue for bench_live.py, in a process of its own (pinned to a CPU by its parent).

    python benchmarks/live_venue.py VENUE.toml DATASET [START_AFTER_S]

As `lockstep venue serve`, with one difference that a full-speed benchmark needs: the feed starts
START_AFTER_S (default 2 s) after a client has logged in to order entry (the live node binds its feed socket
before it logs in, and builds its session after), so the node sees the feed from its first
message, ready for it, instead of catching up through retransmission or finding a backlog of
datagrams that came while it started. Prints the bound addresses as one JSON line, then the
run's summary as another.
"""
from __future__ import annotations

import json
import sys
import time

from lockstep.net import READABLE, EventLoop
from lockstep.venue.loopback.config import load_venue_config
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.trading import OrderEntry

LOGIN_TIMEOUT_S = 60
START_AFTER_S = 2.0


def main(config: str, dataset: str, start_after_s: float = START_AFTER_S) -> None:
    cfg = load_venue_config(config, dataset=dataset)
    with LoopbackVenue(cfg) as venue:
        order_entry = OrderEntry(venue.feed)
        venue.attach(order_entry)
        print(json.dumps(venue.addresses), flush=True)
        loop = EventLoop(1)
        loop.add(order_entry.fileno(), READABLE, 0)
        end = time.monotonic() + LOGIN_TIMEOUT_S
        start: float | None = None
        while start is None or time.monotonic() < start:
            if start is None and order_entry.summary()["logins"] >= 1:
                start = time.monotonic() + start_after_s
            if time.monotonic() > end:
                raise SystemExit(f"no login within {LOGIN_TIMEOUT_S} s")
            if loop.wait(10):
                order_entry.on_readable()
            order_entry.tick()
        print(json.dumps(venue.run(handle_signals=True)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:4]))
