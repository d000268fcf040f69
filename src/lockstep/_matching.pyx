# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::L2Matcher (include/lockstep/matching.hpp).

Codes come back as plain ints, events as 6-tuples (kind, reason, maker, client_order_id, price,
qty), results as 4-tuples (outcome, reason, filled_qty, resting_qty) and resting orders as
5-tuples (client_order_id, side, price, qty, queue_ahead); lockstep.matching wraps this class with
enums and dataclasses and is the public API.

The Python lockstep.books.L2Book does not expose its C++ book, so submit() copies the levels the
matcher reads (opposite levels that cross the limit, and our own side's level at the limit) into a
scratch C++ book first. The C++ core itself reads the replayed book directly.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t

from lockstep._intents cimport fill_intent
from lockstep.includes.events cimport CSide
from lockstep.includes.intents cimport CIntent, CIntentKind, CTimeInForce
from lockstep.includes.l2_book cimport CL2Book, kMaxPrice, kMinPrice
from lockstep.includes.matching cimport (CL2Matcher, CMatchEvent, CMatchResult, CRestingOrder)


cdef tuple result_out(CMatchResult r):
    return (<int>r.outcome, <int>r.reason, r.filled_qty, r.resting_qty)


cdef tuple order_out(const CRestingOrder* o):
    return (o.client_order_id, <int>o.side, o.price, o.qty, o.queue_ahead)


cdef class L2Matcher:
    """lockstep::L2Matcher plus a scratch book for the levels copied from a Python L2Book."""

    cdef CL2Matcher core
    cdef CL2Book scratch

    def reserve(self, size_t resting, size_t events):
        self.core.reserve(resting, events)

    cdef void load(self, uint8_t side, int64_t price, object book) except *:
        """Copies into the scratch book what submit() reads for an order at side/price."""
        cdef uint8_t opp
        cdef Py_ssize_t k, n
        cdef int64_t p
        self.scratch.clear()
        if side != 1 and side != 2:
            return
        opp = 2 if side == 1 else 1
        prices, qtys = book.top(opp, book.level_count(opp))
        n = len(prices)
        for k in range(n):
            p = prices[k]
            if (side == 1 and p > price) or (side == 2 and p < price):
                break
            self.scratch.set(<CSide>opp, p, qtys[k])
        prices, qtys = book.top(side, book.level_count(side))
        n = len(prices)
        for k in range(n):
            p = prices[k]
            if p == price:
                self.scratch.set(<CSide>side, p, qtys[k])
                break
            if (side == 1 and p < price) or (side == 2 and p > price):
                break

    def submit(self, uint64_t client_order_id, uint8_t side, uint8_t tif, int64_t price,
               int64_t qty, book):
        self.load(side, price, book)
        return result_out(self.core.submit(client_order_id, <CSide>side, <CTimeInForce>tif, price,
                                           qty, self.scratch))

    def submit_intent(self, intent, book):
        cdef CIntent i
        cdef int64_t p
        fill_intent(&i, intent)
        p = i.price
        if i.kind == CIntentKind.SubmitMarket:
            p = kMaxPrice if i.side == CSide.Bid else kMinPrice
        self.load(<uint8_t>i.side, p, book)
        return result_out(self.core.submit(i, self.scratch))

    def cancel(self, uint64_t client_order_id):
        return self.core.cancel(client_order_id)

    def on_trade(self, int64_t price, int64_t qty, uint8_t aggressor):
        self.core.on_trade(price, qty, <CSide>aggressor)

    def on_level(self, uint8_t side, int64_t price, int64_t qty):
        self.core.on_level(<CSide>side, price, qty)

    def drain(self):
        cdef const CMatchEvent* e
        cdef size_t k
        out = []
        for k in range(self.core.events().size()):
            e = &self.core.events()[k]
            out.append((<int>e.kind, <int>e.reason, <bint>e.maker, e.client_order_id, e.price,
                        e.qty))
        self.core.clear_events()
        return out

    def orders(self):
        cdef size_t k
        return [order_out(&self.core.resting_at(k)) for k in range(self.core.resting())]

    def order(self, uint64_t client_order_id):
        cdef const CRestingOrder* o = self.core.find_order(client_order_id)
        return None if o == NULL else order_out(o)
