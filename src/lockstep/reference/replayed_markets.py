"""Reference twin of the loopback venue's trading side in the replay loop
(include/lockstep/venue/replayed_markets.hpp, lockstep.venue.matching.ReplayedMarkets): the
reference replay's books and the reference matchers, one of each per instrument, told each
event by the simulated venue's rule (`show_market` in venue/venue.hpp: a level update moves an
L2 matcher's queue-ahead, a print may fill, L3 order events and prints go to the L3 matcher as
they are) while the matcher holds our resting orders, then applied to the book.

The reference ItchFeed (lockstep.reference.itch_feed) takes one with attach(), as the compiled
feed takes the compiled one; tests/test_itch_feed.py holds the two pairs to the same bytes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lockstep.enums import BookKind, TimeInForce
from lockstep.events import EventKind, Side
from lockstep.reference.matching import L2Matcher, L3Matcher
from lockstep.reference.replay import ReferenceReplayer
from lockstep.venue.matching import MatchEvent, MatchResult, RestingOrder

_COLUMNS = ("ts_recv", "instrument", "kind", "side", "flags", "price", "qty", "order_id")


class ReplayedMarkets:
    def __init__(self, book_types: Sequence[str]) -> None:
        self.market = ReferenceReplayer(book_types)
        self._l2 = [t == BookKind.L2.label for t in book_types]
        self._matchers = [L2Matcher() if l2 else L3Matcher() for l2 in self._l2]

    @property
    def instrument_count(self) -> int:
        return len(self._matchers)

    def is_l2(self, inst: int) -> bool:
        return self._l2[inst]

    def on_event(self, cols: Mapping[str, np.ndarray], i: int) -> bool:
        """Event i: to its matcher (while it holds our orders), then to the book; whether the
        matcher reported something."""
        inst = int(cols["instrument"][i])
        reported = False
        if inst < self.instrument_count and self._matchers[inst].has_resting():
            reported = self._tell(inst, int(cols["kind"][i]), int(cols["side"][i]),
                                  int(cols["price"][i]), int(cols["qty"][i]),
                                  int(cols["order_id"][i]))
        self.market.apply({c: cols[c][i:i + 1] for c in _COLUMNS}, 1)
        return reported

    def _tell(self, inst: int, kind: int, side: int, price: int, qty: int, order_id: int) -> bool:
        m, book = self._matchers[inst], self.market.books[inst]
        if self._l2[inst]:
            if kind == EventKind.L2_SET and side in (Side.BID, Side.ASK):
                m.on_level(side, price, next((q for p, q in book.levels(side) if p == price), 0), qty)
            elif kind == EventKind.TRADE:
                m.on_trade(price, qty, side)
        elif kind == EventKind.TRADE:
            m.on_trade(price, qty, side)
        elif EventKind.L3_ADD <= kind <= EventKind.BOOK_CLEAR:
            m.on_l3(kind, side, order_id, price, qty, book)
        return bool(m._events)

    def submit(self, inst: int, client_order_id: int, side: Side | int, tif: TimeInForce | int,
               price: int, qty: int) -> MatchResult:
        return self._matchers[inst].submit(client_order_id, side, tif, price, qty,
                                           self.market.books[inst])

    def replace(self, inst: int, client_order_id: int, new_price: int, new_qty: int) -> MatchResult:
        return self._matchers[inst].replace(client_order_id, new_price, new_qty,
                                            self.market.books[inst])

    def cancel(self, inst: int, client_order_id: int) -> bool:
        return self._matchers[inst].cancel(client_order_id)

    def events(self, inst: int) -> list[MatchEvent]:
        """What the matcher reported since the last drain, without draining it."""
        return list(self._matchers[inst]._events)

    def drain(self, inst: int) -> list[MatchEvent]:
        return self._matchers[inst].drain()

    def has_resting(self, inst: int) -> bool:
        return self._matchers[inst].has_resting()

    def orders(self, inst: int) -> list[RestingOrder]:
        return self._matchers[inst].orders()

    def order(self, inst: int, client_order_id: int) -> RestingOrder | None:
        return self._matchers[inst].order(client_order_id)
