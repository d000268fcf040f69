# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::IntentQueue (include/lockstep/core/queue.hpp).

Results come back as plain ints and dispatched intents as 8-tuples in lockstep.core.risk.Intent field
order; lockstep.core.queue wraps this class with enums and typed configs, and is the public API.
"""
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from lockstep._bindings.configs cimport fill_queue_config
from lockstep._bindings.intents cimport fill_intent
from lockstep.includes.core.intents cimport CIntent
from lockstep.includes.core.queue cimport (CIntentQueue, CQueueConfig, CQueueCounters, CQueueResult,
                                      kQueueMaxBurst, kQueueMaxCapacity, kQueueMaxInstruments,
                                      kQueueMaxRate)

MAX_BURST = kQueueMaxBurst
MAX_RATE = kQueueMaxRate
MAX_CAPACITY = kQueueMaxCapacity
MAX_INSTRUMENTS = kQueueMaxInstruments
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "QueueResult": {
        "Queued": <int>CQueueResult.Queued,
        "CanceledBeforeDispatch": <int>CQueueResult.CanceledBeforeDispatch,
        "Full": <int>CQueueResult.Full, "BadInstrument": <int>CQueueResult.BadInstrument,
    },
}


cdef cbool _ask(void* context, const CIntent& x) noexcept with gil:
    """IntentQueue::Take that takes nothing and notes what a Python callable says of each intent:
    context is [callable, answers, the exception it raised]."""
    cdef list box = <list>context
    if box[2] is not None:
        return False
    try:
        box[1].append(bool(box[0]((x.instrument, <int>x.kind, <int>x.side, <int>x.tif, x.price,
                                   x.qty, x.client_order_id, x.target_order_id))))
    except BaseException as e:
        box[2] = e
    return False


cdef cbool _answer(void* context, const CIntent& x) noexcept with gil:
    """IntentQueue::Take that gives the noted answers back in order (context: [answers, next])."""
    cdef list box = <list>context
    cdef Py_ssize_t k = box[1]
    box[1] = k + 1
    return box[0][k]


cdef class IntentQueue:
    """lockstep::IntentQueue. configure() takes a lockstep.core.queue.QueueConfig and returns a
    Status value."""

    cdef CIntentQueue core
    cdef vector[CIntent] out

    def configure(self, config):
        cdef CQueueConfig c
        fill_queue_config(&c, config)
        return <int>self.core.configure(c)

    def push(self, intent, int64_t ts):
        cdef CIntent i
        cdef CQueueResult r
        fill_intent(&i, intent)
        with nogil:
            r = self.core.push(i, ts)
        return <int>r

    def dispatch(self, int64_t ts, size_t max_out):
        cdef size_t n
        # Never more than pending() can go out, so a huge max_out costs no huge buffer; the
        # result is the same because the scan ends with the queue either way.
        if max_out > self.core.pending():
            max_out = self.core.pending()
        if self.out.size() < max_out:
            self.out.resize(max_out)
        with nogil:
            n = self.core.dispatch(ts, self.out.data(), max_out)
        return self._rows(n)

    def withdraw(self, take=None):
        """take: None (every pending submit and replace), or a callable given each of them as a
        tuple of Intent's fields, saying whether to withdraw it. All are asked before any is
        withdrawn, so an exception it raises leaves the queue as it was."""
        cdef size_t max_out = self.core.pending()
        cdef list asked, answers
        if self.out.size() < max_out:
            self.out.resize(max_out)
        if take is None:
            return self._rows(self.core.withdraw(self.out.data(), max_out))
        asked = [take, [], None]
        self.core.withdraw_if(_ask, <void*>asked, self.out.data(), max_out)
        if asked[2] is not None:
            raise asked[2]
        answers = [asked[1], 0]
        return self._rows(self.core.withdraw_if(_answer, <void*>answers, self.out.data(), max_out))

    cdef list _rows(self, size_t n):
        """The first n intents of `out`, as tuples of Intent's fields."""
        cdef size_t k
        return [(self.out[k].instrument, <int>self.out[k].kind, <int>self.out[k].side,
                 <int>self.out[k].tif, self.out[k].price, self.out[k].qty,
                 self.out[k].client_order_id, self.out[k].target_order_id) for k in range(n)]

    def on_response(self, uint32_t instrument):
        self.core.on_response(instrument)

    def pending(self):
        return self.core.pending()

    def in_flight(self, uint32_t instrument):
        return self.core.in_flight(instrument)

    def tokens(self, int64_t ts):
        return self.core.tokens(ts)

    def counters(self):
        cdef const CQueueCounters* c = &self.core.counters()
        return {
            "pushed": c.pushed,
            "dispatched": c.dispatched,
            "canceled_before_dispatch": c.canceled_before_dispatch,
            "replaces_dropped": c.replaces_dropped,
            "rejected_full": c.rejected_full,
            "rejected_bad_instrument": c.rejected_bad_instrument,
            "deferred_by_rate": c.deferred_by_rate,
            "deferred_by_in_flight": c.deferred_by_in_flight,
        }
