"""The loopback venue's run loop: one event loop for every part of the venue.

    venue = LoopbackVenue(load_venue_config("venue.toml"), data="./data")
    print(venue.addresses)              # bound addresses, real ports
    summary = venue.run(duration_s=10)  # until the feed ends (+ linger), the duration or stop()

The market data side (`MarketDataFeed`) is one `VenueComponent`; the order-entry side
(`lockstep.venue.loopback.trading.OrderEntry`, which `lockstep venue serve` attaches) plugs in
as another with `attach()`: the loop waits on every component's socket at once, calls
`on_readable()` on the ready ones and `tick()` on all of them (each says how soon it wants to be
called again), and merges their `summary()` into the run's. `order_entry` is the seam's name for
that component: while none is attached, `order_entry` is reported as configured and the summary's
orders, fills and sessions are 0. With `venue.feed_soupbintcp` the venue attaches one more of its
own: the feed over SoupBinTCP (`lockstep.venue.loopback.soup_feed`); with `venue.snapshot`, book
snapshots over SoupBinTCP (`lockstep.venue.loopback.snapshot`).
"""
from __future__ import annotations

import signal
import time
from typing import Any, Protocol, Self

from lockstep.data.dataset import Dataset
from lockstep.net import READABLE, EventLoop
from lockstep.venue.loopback.config import VenueConfig
from lockstep.venue.loopback.feed import MarketDataFeed
from lockstep.venue.loopback.sessions import Account
from lockstep.venue.loopback.snapshot import SnapshotServer
from lockstep.venue.loopback.soup_feed import SoupFeedServer

__all__ = ["LoopbackVenue", "VenueComponent"]

# The longest the loop sleeps: a stop request (signal) is noticed within it.
_MAX_WAIT_S = 0.05
_FEED = 0


class VenueComponent(Protocol):
    """What the run loop needs of a part of the venue (the order-entry side implements it)."""

    def fileno(self) -> int: ...  # the socket to wait on (readable)
    def on_readable(self) -> None: ...
    def tick(self) -> float | None: ...  # timed work now; seconds until it wants the next call
    def summary(self) -> dict[str, Any]: ...  # merged into the run's summary
    def close(self) -> None: ...


class LoopbackVenue:
    """A dataset served as a venue on loopback: sockets bound when built, served by run()."""

    def __init__(self, config: VenueConfig, *, data: str | None = None,
                 max_messages: int | None = None) -> None:
        self.config = config
        self.dataset = Dataset.open(config.dataset, data=data)
        self.feed = MarketDataFeed(self.dataset, config.venue, max_messages=max_messages)
        self.order_entry: VenueComponent | None = None
        self._components: list[VenueComponent] = []
        self._stop_reason: str | None = None
        #: The feed over SoupBinTCP (venue.feed_soupbintcp), None when not served.
        self.soup_feed: SoupFeedServer | None = None
        #: Book snapshots over SoupBinTCP (venue.snapshot), None when not served.
        self.snapshot: SnapshotServer | None = None
        settings = config.venue
        accounts = [Account(u.username, u.password) for u in settings.users]
        heartbeat = settings.heartbeat_ns / 1e9
        try:
            if settings.feed_soupbintcp is not None:
                self.soup_feed = SoupFeedServer(self.feed, str(settings.feed_soupbintcp), accounts,
                                                history=settings.history,
                                                heartbeat_interval=heartbeat)
                self.attach(self.soup_feed, order_entry=False)
            if settings.snapshot is not None:
                self.snapshot = SnapshotServer(self.feed, str(settings.snapshot), accounts,
                                               heartbeat_interval=heartbeat)
                self.attach(self.snapshot, order_entry=False)
        except BaseException:
            self.close()
            raise

    def attach(self, component: VenueComponent, *, order_entry: bool = True) -> None:
        """Plugs a component into the run loop (before run()); the order-entry side by default."""
        if order_entry:
            self.order_entry = component
        self._components.append(component)

    @property
    def addresses(self) -> dict[str, str]:
        """Where the venue listens and sends: feed, retransmit, order_entry, and feed_soupbintcp
        and snapshot when served (bound addresses with their real ports; order_entry as
        configured while no order-entry side is attached)."""
        out = dict(self.feed.addresses)
        oe = getattr(self.order_entry, "address", None)
        out["order_entry"] = oe if oe is not None else str(self.config.venue.order_entry)
        if self.soup_feed is not None:
            out["feed_soupbintcp"] = self.soup_feed.address
        if self.snapshot is not None:
            out["snapshot"] = self.snapshot.address
        return out

    def stop(self, reason: str = "stopped") -> None:
        """Ends run() at its next turn (safe from a signal handler)."""
        self._stop_reason = reason

    def run(self, *, duration_s: float | None = None, handle_signals: bool = False) -> dict[str, Any]:
        """Serves until the feed has ended and `venue.linger` has passed, `duration_s` has, or
        stop() (SIGINT / SIGTERM with `handle_signals`); the run's summary."""
        previous = {}
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda s, _f: self.stop(signal.Signals(s).name))
        loop = EventLoop(1 + len(self._components))
        loop.add(self.feed.fileno(), READABLE, _FEED)
        for token, c in enumerate(self._components, start=1):
            loop.add(c.fileno(), READABLE, token)
        start = time.monotonic()
        ended_at: float | None = None
        linger = self.config.venue.linger_ns / 1e9
        try:
            self.feed.start()
            while self._stop_reason is None:
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    self._stop_reason = "duration"
                    break
                wait = self.feed.poll()
                if wait is None:
                    if ended_at is None:
                        ended_at = now
                    if now - ended_at >= linger:
                        self._stop_reason = "end"
                        break
                    wait = min(self.feed.heartbeat_due(), linger - (now - ended_at))
                for c in self._components:
                    more = c.tick()
                    if more is not None:
                        wait = min(wait, more)
                if duration_s is not None:
                    wait = min(wait, duration_s - (now - start))
                # Whole milliseconds: within the last one before a send is due the venue spins.
                # Deliberately: a core kept hot sends and answers without a wake-up (on a VM a
                # sleeping core costs tens of microseconds to wake), as a venue's own hardware
                # would; sleeping there doubled the live node's tick-to-trade in bench_live.py.
                for token, _ in loop.wait(int(max(min(wait, _MAX_WAIT_S), 0.0) * 1000)):
                    if token == _FEED:
                        self.feed.serve_requests()
                    else:
                        self._components[token - 1].on_readable()
            return self._summary(time.monotonic() - start)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _summary(self, seconds: float) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset.path, **self.feed.summary(),
                               "seconds": round(seconds, 6), "orders": 0, "fills": 0, "sessions": 0,
                               "stopped_by": self._stop_reason}
        for c in self._components:
            out.update(c.summary())
        return out

    def close(self) -> None:
        self.feed.close()
        for c in self._components:
            c.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
