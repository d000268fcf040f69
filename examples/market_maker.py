"""A touch market maker in plain Python.

Keeps one post-only bid at the best bid and one post-only ask at the best ask, `size` each. When
the touch moves, it cancels the quote that is off the touch and, as soon as the venue has confirmed
that cancel, submits a new one at the touch of that moment. A side is not quoted when a fill
there could take |position| beyond `max_position`.

An order lives from its dispatch until the venue says it ended, so a cancelled quote still counts
against Risk's `max_open_orders` while its cancel is in flight. Re-quoting a side before that
cancel is answered would pile up open orders whenever the touch moves faster than the venue
answers (live, or a backtest with latency), and then ask Risk on every book update only to be
denied. Each side therefore has at most one order open: its quote, or the quote being cancelled.
A side whose submit Risk denies anyway (trading halted, the kill switch, reduce-only) asks again
only `retry_after` later (core time), not at every book update.

The same logic compiled (no GIL, no Python per event) is market_maker_compiled.pyx; keep the two
in step, the benchmarks compare them.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lockstep.checks import parse_duration
from lockstep.core.strategy import (
    Context,
    EventKind,
    OrderStatus,
    OrderUpdate,
    Side,
    Strategy,
    TimeInForce,
)
from lockstep.errors import ConfigError

BID, ASK = int(Side.BID), int(Side.ASK)
POST_ONLY = int(TimeInForce.POST_ONLY)
CANCEL_REJECTED = int(EventKind.CANCEL_REJECTED)
_ENDED = {int(OrderStatus.FILLED), int(OrderStatus.CANCELED), int(OrderStatus.REJECTED),
          int(OrderStatus.EXPIRED)}
_UNKNOWN = 0  # OrderUpdate.status of an order Execution State does not know
_PRICE = 2  # Context.order(): (instrument, side, price, qty, filled_qty, status)
DAY_NS = 86_400 * 10**9
RETRY_KEY = "strategy.params.retry_after"


def retry_after_ns(value: str) -> int:
    """Params.retry_after in ns: a duration of at most a day (so that core time + it stays far
    inside int64); ConfigError naming the key otherwise."""
    try:
        ns = parse_duration(RETRY_KEY, value)
    except ConfigError as e:
        raise ConfigError(RETRY_KEY, e.reason, source="strategy") from None
    if ns > DAY_NS:
        raise ConfigError(RETRY_KEY, "must be at most a day", source="strategy")
    return ns


class MarketMaker(Strategy):
    @dataclass(frozen=True)
    class Params:
        size: Decimal = Decimal("0.001")  # per quote, base units
        max_position: Decimal = Decimal("0.01")  # absolute, base units
        touch_only: bool = False  # True: called only when the touch changed, not on every update
        retry_after: str = "100ms"  # a side whose submit was denied waits this long to ask again

    def setup(self, ctx: Context) -> None:
        self.instrument = ctx.traded[0]
        self.size = ctx.to_lots(self.instrument, self.params.size)
        self.max_position = ctx.to_lots(self.instrument, self.params.max_position)
        if self.size <= 0:
            raise ValueError("size must be positive")
        self.bid_id = self.ask_id = 0  # the quote on each side (dispatched or about to be)
        self.bid_price = self.ask_price = 0
        self.bid_cancel = self.ask_cancel = 0  # the order whose cancel is in flight on each side
        self.retry_after = retry_after_ns(self.params.retry_after)
        self.bid_retry = self.ask_retry = 0  # core time from which a denied side asks again
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
        if self.bid_id and self.bid_price != want_bid and ctx.cancel(self.bid_id):
            self.bid_cancel = self._in_flight(ctx, self.bid_id)
            self.bid_id = 0
        if self.ask_id and self.ask_price != want_ask and ctx.cancel(self.ask_id):
            self.ask_cancel = self._in_flight(ctx, self.ask_id)
            self.ask_id = 0
        if not self.bid_id and not self.bid_cancel and want_bid and ctx.now >= self.bid_retry:
            self.bid_id = ctx.submit_limit(instrument, BID, want_bid, self.size, POST_ONLY)
            self.bid_price = want_bid
            if not self.bid_id:
                self.bid_retry = ctx.now + self.retry_after
        if not self.ask_id and not self.ask_cancel and want_ask and ctx.now >= self.ask_retry:
            self.ask_id = ctx.submit_limit(instrument, ASK, want_ask, self.size, POST_ONLY)
            self.ask_price = want_ask
            if not self.ask_id:
                self.ask_retry = ctx.now + self.retry_after

    @staticmethod
    def _in_flight(ctx: Context, order_id: int) -> int:
        """`order_id` once its cancel is queued: the cancel to wait for; 0 when the order had not
        left the queue yet (the cancel just dropped its submit: nothing will answer)."""
        return order_id if ctx.order(order_id) is not None else 0

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        order_id, status = update.order_id, update.status
        if status in _ENDED:
            if order_id == self.bid_id:
                self.bid_id = 0
            elif order_id == self.ask_id:
                self.ask_id = 0
            elif order_id == self.bid_cancel:
                self.bid_cancel = 0
                self.on_book(ctx, self.instrument)  # the side may quote again: now, not later
            elif order_id == self.ask_cancel:
                self.ask_cancel = 0
                self.on_book(ctx, self.instrument)
        elif status != _UNKNOWN and update.kind == CANCEL_REJECTED:
            # The venue refused the cancel and the order lives on: it is the side's quote again
            # (nothing else was quoted there meanwhile), kept or cancelled at the next update.
            if order_id == self.bid_cancel:
                self.bid_id, self.bid_price, self.bid_cancel = order_id, ctx.order(order_id)[_PRICE], 0
            elif order_id == self.ask_cancel:
                self.ask_id, self.ask_price, self.ask_cancel = order_id, ctx.order(order_id)[_PRICE], 0
