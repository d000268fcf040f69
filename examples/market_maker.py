"""A touch market maker in plain Python.

Keeps one post-only bid at the best bid and one post-only ask at the best ask, `size` each. When
the touch moves, it cancels the quote that is off the touch and submits a new one. A side is not
quoted when a fill there could take |position| beyond `max_position`.

The same logic compiled (no GIL, no Python per event) is market_maker_compiled.pyx; keep the two
in step, the benchmarks compare them.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lockstep.core.strategy import Context, OrderStatus, OrderUpdate, Side, Strategy, TimeInForce

BID, ASK = int(Side.BID), int(Side.ASK)
POST_ONLY = int(TimeInForce.POST_ONLY)
_ENDED = {int(OrderStatus.FILLED), int(OrderStatus.CANCELED), int(OrderStatus.REJECTED),
          int(OrderStatus.EXPIRED)}


class MarketMaker(Strategy):
    @dataclass(frozen=True)
    class Params:
        size: Decimal = Decimal("0.001")  # per quote, base units
        max_position: Decimal = Decimal("0.01")  # absolute, base units
        touch_only: bool = False  # True: called only when the touch changed, not on every update

    def setup(self, ctx: Context) -> None:
        self.instrument = ctx.traded[0]
        self.size = ctx.to_lots(self.instrument, self.params.size)
        self.max_position = ctx.to_lots(self.instrument, self.params.max_position)
        if self.size <= 0:
            raise ValueError("size must be positive")
        self.bid_id = self.ask_id = 0
        self.bid_price = self.ask_price = 0
        if self.params.touch_only:
            ctx.subscribe(self.instrument, touch=True)
        else:
            ctx.subscribe(self.instrument, book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        bid, bid_qty, ask, ask_qty = ctx.touch(instrument)
        position = ctx.position(instrument)
        # Quote a side only if a fill there keeps |position| within the cap.
        want_bid = bid if bid_qty and position + self.size <= self.max_position else 0
        want_ask = ask if ask_qty and position - self.size >= -self.max_position else 0
        if self.bid_id and self.bid_price != want_bid:
            ctx.cancel(self.bid_id)
            self.bid_id = 0
        if self.ask_id and self.ask_price != want_ask:
            ctx.cancel(self.ask_id)
            self.ask_id = 0
        if not self.bid_id and want_bid:
            self.bid_id = ctx.submit_limit(instrument, BID, want_bid, self.size, POST_ONLY)
            self.bid_price = want_bid
        if not self.ask_id and want_ask:
            self.ask_id = ctx.submit_limit(instrument, ASK, want_ask, self.size, POST_ONLY)
            self.ask_price = want_ask

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        if update.status in _ENDED:
            if update.order_id == self.bid_id:
                self.bid_id = 0
            elif update.order_id == self.ask_id:
                self.ask_id = 0
