"""`lockstep live probe`: what this host costs a live node before any of the node's work.

Two floors, measured with the live node's own socket parts (runtime/host_probe.hpp):

- **stalls**: a thread pinned to the node's CPU reads the clock in a loop; each gap of at least
  `stall_threshold_us` is time the core spent elsewhere (interrupts, other tasks, the hypervisor).
  A stall inside the few microseconds between a datagram and its order lands in tick-to-trade.
- **feed**: a peer thread on the venue's CPU sends one datagram every `interval_us` and reads a
  TCP connection; a thread on the node's CPU busy-polls the UDP socket and answers each datagram
  with one send() of an order-sized message. Its tick-to-trade (kernel receive stamp to the moment
  before send(), as the live loop times it) is what a node that does no work at all would get:
  the floor under the live node's figures (docs/live.md, "Speed").

The probe reads the wall clock: it is a measurement of the host, nothing of it reaches State.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lockstep.errors import ConfigError


@dataclass(frozen=True)
class ProbeOptions:
    """What the probe runs: CPUs, how long each part takes, and the feed's shape."""

    cpu: int = 0  #: the node's core
    peer_cpu: int = 1  #: the venue's core (the feed's sender, the orders' reader)
    seconds: float = 2.0  #: each part runs this long
    interval_us: float = 100.0  #: between two datagrams (10,000 a second)
    stall_threshold_us: float = 1.0  #: a gap between clock reads counted as a stall
    datagram_bytes: int = 400  #: about ten ITCH messages in MoldUDP64
    order_bytes: int = 52  #: an OUCH 4.2 Enter Order framed in SoupBinTCP

    def __post_init__(self) -> None:
        checks = (
            ("cpu", self.cpu >= 0, "a CPU number (0 or more)"),
            ("peer_cpu", self.peer_cpu >= 0 and self.peer_cpu != self.cpu,
             "a CPU number (0 or more) other than cpu"),
            ("seconds", 0 < self.seconds <= 600, "more than 0 and at most 600"),
            ("interval_us", 1 <= self.interval_us <= 1_000_000, "1 to 1,000,000"),
            ("stall_threshold_us", 0.1 <= self.stall_threshold_us <= 1_000_000, "0.1 to 1,000,000"),
            ("datagram_bytes", 8 <= self.datagram_bytes <= 1472, "8 to 1,472"),
            ("order_bytes", 1 <= self.order_bytes <= 4096, "1 to 4,096"),
        )
        for key, ok, want in checks:
            if not ok:
                raise ConfigError(key, f"{getattr(self, key)!r} must be {want}", source="probe")


def run_probe(options: ProbeOptions) -> dict[str, Any]:
    """Runs both parts (2 x options.seconds) and returns their figures, nanoseconds throughout:

    - `stalls`: `spun_ns`, `lost_ns`, `lost_fraction`, `per_second`, `at_least` (stalls of at
      least 10 us, 20 us, 50 us, 100 us and 1 ms, keyed by microseconds), and the histogram
      (`count`, `p50_ns`, `p99_ns`, `p99_9_ns`, `max_ns`) of every stall.
    - `feed`: `datagrams_sent`, `datagrams_received`, `user_stamped` (received without a
      kernel stamp, so not timed), `orders_sent`, `order_bytes_received`, and the histograms
      `feed_lag`, `tick_to_trade`, `send`.
    """
    from lockstep._bindings.live_loop import host_probe

    usable = sorted(os.sched_getaffinity(0))
    for key in ("cpu", "peer_cpu"):
        if getattr(options, key) not in usable:
            raise ConfigError(key, f"CPU {getattr(options, key)} is not one this process may run "
                                   f"on ({', '.join(map(str, usable))})", source="probe")
    ns = int(options.seconds * 1e9)
    raw = host_probe(cpu=options.cpu, peer_cpu=options.peer_cpu, stall_ns=ns,
                     stall_threshold_ns=int(options.stall_threshold_us * 1000), feed_ns=ns,
                     interval_ns=int(options.interval_us * 1000),
                     datagram_bytes=options.datagram_bytes, order_bytes=options.order_bytes)
    stalls = raw["stalls"]
    spun = max(stalls["spun_ns"], 1)
    stalls["at_least"] = {f"{bound // 1000}us": n for bound, n in stalls["at_least"].items()}
    stalls["lost_fraction"] = round(stalls["lost_ns"] / spun, 6)
    stalls["per_second"] = round(stalls["count"] / (spun / 1e9), 1)
    return {"cpu": options.cpu, "peer_cpu": options.peer_cpu, **raw}
