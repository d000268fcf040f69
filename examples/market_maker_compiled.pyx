# cython: language_level=3, boundscheck=False, wraparound=False
"""The touch market maker of market_maker.py, compiled: same logic, no GIL, no Python per event.

Keeps one post-only bid at the best bid and one post-only ask at the best ask, `size` each. When
the touch moves, it cancels the quote that is off the touch and, as soon as the venue has confirmed
that cancel, submits a new one at the touch of that moment: each side has at most one order open
(why: market_maker.py), and a side whose submit Risk denies asks again only `retry_after` later.
A side is not quoted when a fill there could take |position| beyond `max_position`.

Built with the package (CMakeLists.txt) as lockstep.examples.market_maker_compiled. A compiled
strategy of your own cimports the same two things:

    from lockstep._bindings.engine cimport CompiledStrategy
    from lockstep.includes.runtime.engine cimport CEngine, COrderUpdate
"""
from dataclasses import dataclass
from decimal import Decimal

from libc.stdint cimport int64_t, uint32_t, uint64_t

from lockstep.examples.market_maker import retry_after_ns

from lockstep._bindings.engine cimport CompiledStrategy
from lockstep.includes.runtime.engine cimport CEngine, COrderUpdate
from lockstep.includes.core.events cimport CEventKind, CSide
from lockstep.includes.core.execution cimport CExecutionState, COrderStatus, kNoSlot
from lockstep.includes.core.intents cimport CTimeInForce


@dataclass(frozen=True)
class Params:
    size: Decimal = Decimal("0.001")  # per quote, base units
    max_position: Decimal = Decimal("0.01")  # absolute, base units
    touch_only: bool = False  # True: called only when the touch changed, not on every update
    retry_after: str = "100ms"  # a side whose submit was denied waits this long to ask again


cdef class MarketMaker(CompiledStrategy):
    Params = Params

    cdef uint32_t instrument
    cdef int64_t size, max_position
    cdef uint64_t bid_id, ask_id  # the quote on each side (dispatched or about to be)
    cdef int64_t bid_price, ask_price
    cdef uint64_t bid_cancel, ask_cancel  # the order whose cancel is in flight on each side
    cdef int64_t retry_after
    cdef int64_t bid_retry, ask_retry  # core time from which a denied side asks again

    def setup(self, ctx):
        self.instrument = ctx.traded[0]
        self.size = ctx.to_lots(self.instrument, self.params.size)
        self.max_position = ctx.to_lots(self.instrument, self.params.max_position)
        if self.size <= 0:
            raise ValueError("size must be positive")
        self.retry_after = retry_after_ns(self.params.retry_after)
        if self.params.touch_only:
            ctx.subscribe(self.instrument, touch=True)
        else:
            ctx.subscribe(self.instrument, book=True)

    cdef int on_book(self, CEngine* ctx, uint32_t instrument) noexcept nogil:
        cdef int64_t bid, bid_qty, ask, ask_qty
        ctx.touch(instrument, &bid, &bid_qty, &ask, &ask_qty)
        cdef int64_t position = ctx.position(instrument)
        cdef int64_t want_bid = bid if bid_qty != 0 and position + self.size <= self.max_position else 0
        cdef int64_t want_ask = ask if ask_qty != 0 and position - self.size >= -self.max_position else 0
        if self.bid_id != 0 and self.bid_price != want_bid and ctx.cancel(self.bid_id):
            self.bid_cancel = in_flight(ctx, self.bid_id)
            self.bid_id = 0
        if self.ask_id != 0 and self.ask_price != want_ask and ctx.cancel(self.ask_id):
            self.ask_cancel = in_flight(ctx, self.ask_id)
            self.ask_id = 0
        if self.bid_id == 0 and self.bid_cancel == 0 and want_bid != 0 and ctx.now() >= self.bid_retry:
            self.bid_id = ctx.submit_limit(instrument, CSide.Bid, want_bid, self.size,
                                           CTimeInForce.PostOnly, 0)
            self.bid_price = want_bid
            if self.bid_id == 0:
                self.bid_retry = ctx.now() + self.retry_after
        if self.ask_id == 0 and self.ask_cancel == 0 and want_ask != 0 and ctx.now() >= self.ask_retry:
            self.ask_id = ctx.submit_limit(instrument, CSide.Ask, want_ask, self.size,
                                           CTimeInForce.PostOnly, 0)
            self.ask_price = want_ask
            if self.ask_id == 0:
                self.ask_retry = ctx.now() + self.retry_after
        return 0

    cdef int on_order(self, CEngine* ctx, const COrderUpdate* update) noexcept nogil:
        cdef uint64_t order_id = update.order_id
        if (update.status == COrderStatus.Filled or update.status == COrderStatus.Canceled
                or update.status == COrderStatus.Rejected or update.status == COrderStatus.Expired):
            if order_id == self.bid_id:
                self.bid_id = 0
            elif order_id == self.ask_id:
                self.ask_id = 0
            elif order_id == self.bid_cancel:
                self.bid_cancel = 0
                return self.on_book(ctx, self.instrument)  # the side may quote again: now
            elif order_id == self.ask_cancel:
                self.ask_cancel = 0
                return self.on_book(ctx, self.instrument)
        elif <int>update.status != 0 and update.kind == CEventKind.CancelRejected:
            # The venue refused the cancel and the order lives on: the side's quote again.
            if order_id == self.bid_cancel:
                self.bid_id, self.bid_price, self.bid_cancel = order_id, price_of(ctx, order_id), 0
            elif order_id == self.ask_cancel:
                self.ask_id, self.ask_price, self.ask_cancel = order_id, price_of(ctx, order_id), 0
        return 0


cdef inline uint64_t in_flight(CEngine* ctx, uint64_t order_id) noexcept nogil:
    """`order_id` once its cancel is queued: the cancel to wait for; 0 when the order had not
    left the queue yet (the cancel just dropped its submit: nothing will answer)."""
    return order_id if ctx.execution().slot(order_id) != kNoSlot else 0


cdef inline int64_t price_of(CEngine* ctx, uint64_t order_id) noexcept nogil:
    cdef const CExecutionState* ex = &ctx.execution()
    return ex.price(ex.slot(order_id))
