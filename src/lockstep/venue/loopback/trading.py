"""The loopback venue's trading side: the order-entry server (OUCH 4.2 over SoupBinTCP) plugged
into the run loop, with one book and one simulated-venue matcher per instrument moved by the
replay.

    venue = LoopbackVenue(config)
    venue.attach(OrderEntry(venue.feed))   # what `lockstep venue serve` does

The feed reports each run of dataset events it has just sent (`MarketDataFeed.on_sent`); they
go to each instrument's matcher before its book applies them, as the backtests' simulated venue
does (include/lockstep/venue/venue.hpp, `on_market`), so resting orders are filled by the
trades and executions at their place in the stream, and orders entered between two runs match
against the book as the feed has shown it. OUCH timestamps are the replay's clock: the
ts_event of the last event sent, as nanoseconds since the session day's midnight. Our resting
orders on L3 instruments are shown in the feed (`venue.show_own_orders`; an L2 book is shown
one order per level, where ours has no place) by comparing each matcher's resting
orders with what the feed last showed, after every change.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lockstep.core.books import L2Book, L3Book
from lockstep.events import EventKind, Flag, Side, empty_columns
from lockstep.venue.loopback.feed import OWN_ORDER_BIT, MarketDataFeed
from lockstep.venue.loopback.order_entry import (
    Market,
    MatchingOrderHandler,
    OrderEntryServer,
)
from lockstep.venue.loopback.sessions import Account
from lockstep.venue.matching import L2Matcher, L3Matcher

__all__ = ["OrderEntry"]

_L3_KINDS = frozenset({EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
                       EventKind.L3_EXECUTE, EventKind.BOOK_CLEAR})


class _ReplayedMarket:
    """One instrument: its Market (book + matcher) and, for an L2 book, the level sizes the
    matcher is told an update starts from."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.l2 = isinstance(market.book, L2Book)
        self.levels: dict[tuple[int, int], int] = {}

    def apply(self, kind: int, side: int, price: int, qty: int, order_id: int) -> bool:
        """One replayed event: to the matcher (while it holds our orders), then the book.
        Whether the matcher saw it."""
        book, matcher = self.market.book, self.market.matcher
        watching = matcher.has_resting()
        if self.l2:
            if kind == EventKind.L2_SET and side in (Side.BID, Side.ASK):
                if watching:
                    matcher.on_level(side, price, self.levels.get((side, price), 0), qty)
                book.set(side, price, qty)
                if qty > 0:
                    self.levels[(side, price)] = qty
                else:
                    self.levels.pop((side, price), None)
            elif kind == EventKind.BOOK_CLEAR:
                book.clear()
                self.levels.clear()
            elif kind == EventKind.TRADE and watching:
                matcher.on_trade(price, qty, side)
            else:
                return False
            return watching
        if kind == EventKind.TRADE:
            if watching:
                matcher.on_trade(price, qty, side)
            return watching
        if kind not in _L3_KINDS:
            return False
        if watching:
            matcher.on_l3(kind, side, order_id, price, qty, book)
        if kind == EventKind.L3_ADD:
            book.add(order_id, side, price, qty)
        elif kind == EventKind.L3_MODIFY:
            book.modify(order_id, price, qty)
        elif kind == EventKind.L3_DELETE:
            book.remove(order_id)
        elif kind == EventKind.L3_EXECUTE:
            book.execute(order_id, qty)
        else:
            book.clear()
        return watching


class OrderEntry:
    """The order-entry `VenueComponent` of a LoopbackVenue: accounts `venue.users`, listening at
    `venue.order_entry`, matching with the simulated venue's matchers against the replayed
    books. OUCH `stock` is the instrument's stock name in the feed's Stock Directory."""

    def __init__(self, feed: MarketDataFeed, **session_options: Any) -> None:
        settings = feed.settings
        self._feed = feed
        self._show = settings.show_own_orders
        self._clock = feed.first_event_ns - feed.day_start_ns
        self._markets: list[_ReplayedMarket] = []
        for ins, shown in zip(feed.dataset.instruments, feed.instruments, strict=True):
            l2 = ins.book == "l2"
            market = Market(dataclasses.replace(ins, symbol=shown["stock"]),
                            L2Book() if l2 else L3Book(), L2Matcher() if l2 else L3Matcher())
            self._markets.append(_ReplayedMarket(market))
        self._handler = MatchingOrderHandler([m.market for m in self._markets],
                                             clock_ns=lambda: self._clock)
        self._server = OrderEntryServer(
            str(settings.order_entry), [Account(u.username, u.password) for u in settings.users],
            self._handler, **session_options)
        self._shown: dict[int, tuple[int, int, int, int]] = {}  # id -> (inst, side, price, qty)
        feed.on_sent = self._on_sent

    @property
    def address(self) -> str:
        return self._server.address

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

    def _on_sent(self, cols: dict[str, np.ndarray], start: int, stop: int) -> None:
        """Events start..stop of `cols` were just sent on the feed."""
        if stop <= start:
            return
        day = self._feed.day_start_ns
        rows = zip(*(cols[c][start:stop].tolist() for c in
                     ("ts_event", "instrument", "kind", "side", "price", "qty", "order_id")))
        count = len(self._markets)
        for ts, inst, kind, side, price, qty, order_id in rows:
            self._clock = ts - day
            if inst < count and self._markets[inst].apply(kind, side, price, qty, order_id):
                self._server.deliver()  # fills at this event's time, before the next event
                self._show_own_orders()

    def _show_own_orders(self) -> None:
        if not self._show:
            return
        now: dict[int, tuple[int, int, int, int]] = {}
        for inst, m in enumerate(self._markets):
            if m.l2:
                continue  # the feed shows an L2 book one order per level: ours has no place there
            for order in m.market.matcher.orders():
                now[order.client_order_id] = (inst, int(order.side), order.price, order.qty)
        if now == self._shown:
            return
        changes: list[tuple[int, int, int, int, int, int]] = []  # kind, inst, side, price, qty, id
        for cid, (inst, side, price, qty) in sorted(self._shown.items()):
            if cid not in now:
                changes.append((EventKind.L3_DELETE, inst, side, price, 0, cid))
        for cid, (inst, side, price, qty) in sorted(now.items()):
            before = self._shown.get(cid)
            if before is None:
                changes.append((EventKind.L3_ADD, inst, side, price, qty, cid))
            elif before != (inst, side, price, qty):
                changes.append((EventKind.L3_MODIFY, inst, side, price, qty, cid))
        self._shown = now
        cols = empty_columns(len(changes))
        for name, values in zip(("kind", "instrument", "side", "price", "qty", "order_id"),
                                zip(*changes, strict=True), strict=True):
            cols[name][:] = values
        cols["order_id"] |= np.uint64(OWN_ORDER_BIT)
        cols["ts_event"][:] = cols["ts_recv"][:] = self._feed.day_start_ns + self._clock
        cols["seq"][:] = 0
        cols["flags"][:] = Flag.LAST
        self._feed.publish(cols, len(changes))
