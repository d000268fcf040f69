"""The loopback venue's trading side: the order-entry server (OUCH 4.2 over SoupBinTCP) plugged
into the run loop, with one book and one simulated-venue matcher per instrument moved by the
replay.

    venue = LoopbackVenue(config)
    venue.attach(OrderEntry(venue.feed))   # what `lockstep venue serve` does

The books and matchers are C++ (`lockstep.venue.matching.ReplayedMarkets`,
include/lockstep/venue/replayed_markets.hpp), attached to the feed's encoder: every dataset
event the feed sends goes to the instrument's matcher (while it holds our resting orders) and
then to its book, inside the encode loop, as the backtests' simulated venue takes them. An event
that fills one of our orders ends the encoder's run there; the feed has already written the
fill's 'E' (for an order it shows), and this side sends the OUCH Executed before the replay goes
on. Python runs per OUCH message and per fill, never per market event. OUCH timestamps are the
replay's clock: the ts_event of the last event sent, as nanoseconds since the session day's
midnight. Our resting orders on L3 instruments are shown in the feed (`venue.show_own_orders`;
an L2 book is shown one order per level, where ours has no place) after every order message.

`OrderEntry.applied` records where in the stream each OUCH order message took effect: the
number of dataset events the feed had sent when it was applied (it met the books as those events
left them), so that a backtest can send the same orders to arrive at the same places.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from lockstep.data.dataset import Instrument
from lockstep.enums import TimeInForce
from lockstep.events import Side
from lockstep.protocols import ouch42 as ouch
from lockstep.venue.loopback.feed import MarketDataFeed
from lockstep.venue.loopback.order_entry import MatchingOrderHandler, OrderEntryServer
from lockstep.venue.loopback.sessions import Account
from lockstep.venue.matching import MatchEvent, MatchResult, ReplayedMarkets

__all__ = ["AppliedMessage", "OrderEntry", "ReplayedMarket"]


@dataclasses.dataclass(frozen=True)
class AppliedMessage:
    """One inbound OUCH order message and where the venue applied it: after the first
    `position` dataset events of the replay, before the next (answered, rejected or ignored
    alike)."""

    position: int
    username: str
    message: ouch.EnterOrder | ouch.ReplaceOrder | ouch.CancelOrder


class _RecordingHandler(MatchingOrderHandler):
    """The venue's order handler, recording each inbound message's stream position."""

    def __init__(self, markets: list[ReplayedMarket], feed: MarketDataFeed, clock_ns) -> None:
        super().__init__(markets, clock_ns=clock_ns)
        self._feed = feed
        self.applied: list[AppliedMessage] = []

    def _note(self, username: str, message) -> None:
        self.applied.append(AppliedMessage(self._feed.events_sent, username, message))

    def submit(self, username: str, order: ouch.EnterOrder) -> list[ouch.Outbound]:
        self._note(username, order)
        return super().submit(username, order)

    def replace(self, username: str, order: ouch.ReplaceOrder) -> list[ouch.Outbound]:
        self._note(username, order)
        return super().replace(username, order)

    def cancel(self, username: str, order: ouch.CancelOrder) -> list[ouch.Outbound]:
        self._note(username, order)
        return super().cancel(username, order)


@dataclasses.dataclass(frozen=True)
class ReplayedMarket:
    """One instrument of a ReplayedMarkets, as the order handler trades it (a TradedMarket)."""

    instrument: Instrument
    markets: ReplayedMarkets
    index: int

    def submit(self, client_order_id: int, side: Side, tif: TimeInForce, price: int,
               qty: int) -> MatchResult:
        return self.markets.submit(self.index, client_order_id, side, tif, price, qty)

    def replace(self, client_order_id: int, price: int, qty: int) -> MatchResult:
        return self.markets.replace(self.index, client_order_id, price, qty)

    def cancel(self, client_order_id: int) -> bool:
        return self.markets.cancel(self.index, client_order_id)

    def drain(self) -> list[MatchEvent]:
        return self.markets.drain(self.index)


class OrderEntry:
    """The order-entry `VenueComponent` of a LoopbackVenue: accounts `venue.users`, listening at
    `venue.order_entry`, matching with the simulated venue's matchers against the replayed
    books. OUCH `stock` is the instrument's stock name in the feed's Stock Directory."""

    def __init__(self, feed: MarketDataFeed, **session_options: Any) -> None:
        settings = feed.settings
        self._feed = feed
        self._show = settings.show_own_orders
        self._clock = feed.first_event_ns - feed.day_start_ns
        instruments = feed.dataset.instruments
        self.markets = ReplayedMarkets([ins.book for ins in instruments])
        feed.attach_markets(self.markets)
        traded = [ReplayedMarket(dataclasses.replace(ins, symbol=shown["stock"]), self.markets, i)
                  for i, (ins, shown) in enumerate(zip(instruments, feed.instruments, strict=True))]
        self._handler = _RecordingHandler(traded, feed, lambda: self._clock)
        self._server = OrderEntryServer(
            str(settings.order_entry), [Account(u.username, u.password) for u in settings.users],
            self._handler, **session_options)
        feed.on_sent = self._on_sent

    @property
    def address(self) -> str:
        return self._server.address

    @property
    def applied(self) -> list[AppliedMessage]:
        """Every inbound OUCH order message so far, with its stream position, in order."""
        return list(self._handler.applied)

    def fileno(self) -> int:
        return self._server.fileno()

    def on_readable(self) -> None:
        self._server.poll(0.0)
        self._show_own_orders()

    def tick(self) -> float | None:
        self._server.poll(0.0)
        self._show_own_orders()
        return None

    def summary(self) -> dict[str, Any]:
        return self._server.summary()

    def close(self) -> None:
        """System Event E and End of Session to every logged-in session, then closes."""
        self._feed.on_sent = None
        self._server.end_session()

    def _on_sent(self, ts_event: int, filled: bool) -> None:
        self._clock = ts_event - self._feed.day_start_ns
        if filled:
            self._server.deliver()  # fills at this event's time, before the next event

    def _show_own_orders(self) -> None:
        if self._show:
            self._feed.show_own_orders()
