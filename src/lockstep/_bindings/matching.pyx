# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::L2Matcher (include/lockstep/venue/matching.hpp) and lockstep::L3Matcher
(include/lockstep/venue/l3_matching.hpp).

Codes come back as plain ints, events as 7-tuples (kind, reason, maker, client_order_id, price,
qty, side), results as 4-tuples (outcome, reason, filled_qty, resting_qty) and resting orders as
6-tuples (client_order_id, side, price, qty, queue_ahead, tif); lockstep.venue.matching wraps these
classes with enums and dataclasses and is the public API.

The Python books do not expose their C++ books, so calls that read a book first copy what the
matcher reads into a scratch C++ book: for L2, the opposite levels that cross the limit and our own
side's level at the limit; for L3, the whole book (orders in FIFO order), which is slow and only
meant for tests. The C++ core itself reads the replayed book directly.
"""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep._bindings.replay cimport book_types_of, replayer_view

from lockstep._bindings.intents cimport fill_intent
from lockstep.includes.core.events cimport CEventKind, CSide
from lockstep.includes.core.intents cimport CIntent, CIntentKind, CTimeInForce
from lockstep.includes.core.l2_book cimport CL2Book, kMaxPrice, kMinPrice
from lockstep.includes.core.l3_book cimport CL3Book
from lockstep.includes.venue.l3_matching cimport CL3Matcher
from lockstep.includes.venue.matching cimport (CL2Matcher, CMatchEvent, CMatchEventKind,
                                         CMatchReject, CMatchResult, CQueueModel, CRestingOrder,
                                         CSubmitOutcome)
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.venue.replayed_markets cimport CReplayedMarkets


cdef extern from *:
    # Cython spells a scoped enumerator by its Python name, and None is a Python keyword.
    """
    static const int kMatchRejectNone = static_cast<int>(lockstep::MatchReject::None);
    """
    const int kMatchRejectNone


# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "MatchEventKind": {
        "Fill": <int>CMatchEventKind.Fill, "Canceled": <int>CMatchEventKind.Canceled,
        "Rejected": <int>CMatchEventKind.Rejected,
        "CancelRejected": <int>CMatchEventKind.CancelRejected,
        "Replaced": <int>CMatchEventKind.Replaced,
        "ReplaceRejected": <int>CMatchEventKind.ReplaceRejected,
    },
    "MatchReject": {
        "None": kMatchRejectNone, "PostOnlyWouldCross": <int>CMatchReject.PostOnlyWouldCross,
        "BadQty": <int>CMatchReject.BadQty, "BadPrice": <int>CMatchReject.BadPrice,
        "BadSide": <int>CMatchReject.BadSide, "BadTif": <int>CMatchReject.BadTif,
        "DuplicateOrder": <int>CMatchReject.DuplicateOrder,
        "UnknownOrder": <int>CMatchReject.UnknownOrder,
        "BookUnavailable": <int>CMatchReject.BookUnavailable,
        "NotTrading": <int>CMatchReject.NotTrading,
        "OffTick": <int>CMatchReject.OffTick, "OffLot": <int>CMatchReject.OffLot,
        "BelowMinQty": <int>CMatchReject.BelowMinQty,
        "BelowMinNotional": <int>CMatchReject.BelowMinNotional,
    },
    "SubmitOutcome": {
        "Rested": <int>CSubmitOutcome.Rested, "Filled": <int>CSubmitOutcome.Filled,
        "Canceled": <int>CSubmitOutcome.Canceled, "Rejected": <int>CSubmitOutcome.Rejected,
    },
    "QueueModel": {
        "Conservative": <int>CQueueModel.Conservative,
        "Probabilistic": <int>CQueueModel.Probabilistic,
    },
}


cdef tuple result_out(CMatchResult r):
    return (<int>r.outcome, <int>r.reason, r.filled_qty, r.resting_qty)


cdef tuple order_out(const CRestingOrder* o):
    return (o.client_order_id, <int>o.side, o.price, o.qty, o.queue_ahead, <int>o.tif)


# What both matchers report the same way: their C++ classes share these members through the
# OrderEntry base template, so one fused helper per report serves both, compiled for each.
ctypedef fused CMatcher:
    CL2Matcher
    CL3Matcher


cdef list events_out(const vector[CMatchEvent]& events):
    cdef const CMatchEvent* e = events.data()
    cdef size_t k
    return [(<int>e[k].kind, <int>e[k].reason, <bint>e[k].maker, e[k].client_order_id, e[k].price,
             e[k].qty, <int>e[k].side) for k in range(events.size())]


cdef list drain_events(CMatcher* m):
    """The events since the last drain, as tuples; clears them."""
    out = events_out(m.events())
    m.clear_events()
    return out


cdef list resting_orders(CMatcher* m):
    cdef size_t k
    return [order_out(&m.resting_at(k)) for k in range(m.resting())]


cdef object find_order(CMatcher* m, uint64_t client_order_id):
    cdef const CRestingOrder* o = m.find_order(client_order_id)
    return None if o == NULL else order_out(o)


cdef class L2Matcher:
    """lockstep::L2Matcher plus a scratch book for the levels copied from a Python L2Book."""

    cdef CL2Matcher core
    cdef CL2Book scratch

    def reserve(self, size_t resting, size_t events):
        self.core.reserve(resting, events)

    def set_queue_model(self, uint8_t model, double power=2.0):
        return <int>self.core.set_queue_model(<CQueueModel>model, power)

    cdef void load(self, uint8_t side, int64_t price, object book) except *:
        """Copies into the scratch book what submit()/replace() read for an order at side/price."""
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

    def replace(self, uint64_t client_order_id, int64_t new_price, int64_t new_remaining_qty,
                book):
        cdef const CRestingOrder* o = self.core.find_order(client_order_id)
        if o == NULL:
            self.scratch.clear()
        else:
            self.load(<uint8_t>o.side, new_price, book)
        return result_out(self.core.replace(client_order_id, new_price, new_remaining_qty,
                                            self.scratch))

    def on_trade(self, int64_t price, int64_t qty, uint8_t aggressor):
        self.core.on_trade(price, qty, <CSide>aggressor)

    def on_level(self, uint8_t side, int64_t price, int64_t old_qty, int64_t new_qty):
        self.core.on_level(<CSide>side, price, old_qty, new_qty)

    def drain(self):
        return drain_events(&self.core)

    def has_resting(self):
        return self.core.has_resting()

    def orders(self):
        return resting_orders(&self.core)

    def order(self, uint64_t client_order_id):
        return find_order(&self.core, client_order_id)


cdef class L3Matcher:
    """lockstep::L3Matcher plus a scratch L3 book, a full copy of the Python L3Book per call."""

    cdef CL3Matcher core
    cdef CL3Book scratch

    def reserve(self, size_t resting, size_t events, size_t ahead=0):
        self.core.reserve(resting, events, ahead)

    cdef void load(self, object book) except *:
        cdef uint8_t s
        self.scratch.clear()
        for s in (1, 2):
            for oid, price, qty in book.orders(s):
                self.scratch.add(oid, <CSide>s, price, qty)

    def submit(self, uint64_t client_order_id, uint8_t side, uint8_t tif, int64_t price,
               int64_t qty, book):
        self.load(book)
        return result_out(self.core.submit(client_order_id, <CSide>side, <CTimeInForce>tif, price,
                                           qty, self.scratch))

    def submit_intent(self, intent, book):
        cdef CIntent i
        fill_intent(&i, intent)
        self.load(book)
        return result_out(self.core.submit(i, self.scratch))

    def cancel(self, uint64_t client_order_id):
        return self.core.cancel(client_order_id)

    def replace(self, uint64_t client_order_id, int64_t new_price, int64_t new_remaining_qty,
                book):
        self.load(book)
        return result_out(self.core.replace(client_order_id, new_price, new_remaining_qty,
                                            self.scratch))

    def on_l3(self, uint8_t kind, uint8_t side, uint64_t order_id, int64_t price, int64_t qty,
              book_before):
        self.load(book_before)
        self.core.on_l3(<CEventKind>kind, <CSide>side, order_id, price, qty, self.scratch)

    def on_trade(self, int64_t price, int64_t qty, uint8_t aggressor):
        self.core.on_trade(price, qty, <CSide>aggressor)

    def drain(self):
        return drain_events(&self.core)

    def has_resting(self):
        return self.core.has_resting()

    def orders(self):
        return resting_orders(&self.core)

    def order(self, uint64_t client_order_id):
        return find_order(&self.core, client_order_id)

    def ahead_count(self, uint64_t client_order_id):
        return self.core.ahead_count(client_order_id)



cdef class ReplayedMarkets:
    """lockstep::venue::ReplayedMarkets: one book and one matcher per instrument, moved by the
    events an ItchFeed it is attached to consumes; order entry per instrument index."""

    def __cinit__(self, book_types):
        self.core.reset(new CReplayedMarkets(book_types_of(book_types)))

    cdef uint32_t checked(self, uint32_t inst) except? 0xFFFFFFFF:
        if inst >= self.core.get().instrument_count():
            raise IndexError(f"instrument {inst} is not in the table "
                             f"({self.core.get().instrument_count()} instruments)")
        return inst

    @property
    def instrument_count(self):
        return self.core.get().instrument_count()

    def is_l2(self, uint32_t inst):
        return self.core.get().is_l2(self.checked(inst))

    @property
    def market(self):
        """The replayed books, as a lockstep._bindings.replay.Replayer view (keeps self alive)."""
        return replayer_view(&self.core.get().market(), self)

    def submit(self, uint32_t inst, uint64_t client_order_id, uint8_t side, uint8_t tif,
               int64_t price, int64_t qty):
        return result_out(self.core.get().submit(self.checked(inst), client_order_id, <CSide>side,
                                                 <CTimeInForce>tif, price, qty))

    def replace(self, uint32_t inst, uint64_t client_order_id, int64_t new_price,
                int64_t new_remaining_qty):
        return result_out(self.core.get().replace(self.checked(inst), client_order_id, new_price,
                                                  new_remaining_qty))

    def cancel(self, uint32_t inst, uint64_t client_order_id):
        return self.core.get().cancel(self.checked(inst), client_order_id)

    def drain(self, uint32_t inst):
        out = events_out(self.core.get().events(self.checked(inst)))
        self.core.get().clear_events(inst)
        return out

    def has_resting(self, uint32_t inst):
        return self.core.get().resting(self.checked(inst)) != 0

    def orders(self, uint32_t inst):
        cdef size_t k
        return [order_out(&self.core.get().resting_at(self.checked(inst), k))
                for k in range(self.core.get().resting(inst))]

    def order(self, uint32_t inst, uint64_t client_order_id):
        cdef const CRestingOrder* o = self.core.get().find_order(self.checked(inst), client_order_id)
        return None if o == NULL else order_out(o)
