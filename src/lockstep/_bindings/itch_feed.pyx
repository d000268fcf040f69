# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of the loopback venue's ITCH feed (include/lockstep/venue/itch_feed.hpp).

The public API is lockstep.venue.loopback.feed. The caller owns the output: a uint8 array that
receives datagrams back to back and a uint32 array that receives their lengths.
"""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

from lockstep._bindings.columns cimport columns_view
from lockstep._bindings.matching cimport ReplayedMarkets
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.core.events cimport CEventColumns
from lockstep.includes.venue.itch_feed cimport CFeedCounts, CFeedSkip, CItchFeed

ENUMERATORS = {
    "FeedSkip": {
        "NotMarketData": <int>CFeedSkip.NotMarketData, "UnknownOrder": <int>CFeedSkip.UnknownOrder,
        "OutOfRange": <int>CFeedSkip.OutOfRange, "NoChange": <int>CFeedSkip.NoChange,
        "WrongBookKind": <int>CFeedSkip.WrongBookKind,
        "UnknownInstrument": <int>CFeedSkip.UnknownInstrument,
        "ExecutionPrint": <int>CFeedSkip.ExecutionPrint,
    },
}


cdef class ItchFeed:
    cdef unique_ptr[CItchFeed] core
    cdef object out
    cdef object lengths
    cdef ReplayedMarkets markets
    cdef public bint filled

    def __cinit__(self, bytes session, size_t packet_bytes, int64_t day_start_ns,
                  uint64_t first_sequence, size_t expected_orders):
        if len(session) != 10:
            raise ValueError("session must be 10 bytes")
        self.core.reset(new CItchFeed(<const uint8_t*>(<char*>session), packet_bytes, day_start_ns,
                                      first_sequence, expected_orders))

    def add_instrument(self, uint32_t index, bytes symbol, uint32_t price_multiplier, bint l2):
        if len(symbol) != 8:
            raise ValueError("symbol must be 8 bytes")
        self.core.get().add_instrument(index, <const uint8_t*>(<char*>symbol), price_multiplier, l2)

    def begin(self, uint8_t[::1] out, uint32_t[::1] lengths):
        """Later calls write datagrams into `out` and their lengths into `lengths`."""
        self.out = out
        self.lengths = lengths
        self.core.get().begin(&out[0], out.shape[0], &lengths[0], lengths.shape[0])

    def finish(self):
        return self.core.get().finish()

    def system_event(self, int code, int64_t ts):
        return int(self.core.get().system_event(<uint8_t>code, ts))

    def stock_directory(self, uint32_t index, int64_t ts):
        return int(self.core.get().stock_directory(index, ts))

    def attach(self, ReplayedMarkets markets):
        """Every event consumed from now on also moves `markets` (kept alive here)."""
        self.markets = markets
        self.core.get().attach(markets.core.get())

    def encode(self, cols, size_t size, size_t start, int64_t until_ts, uint64_t max_messages):
        """(status, next event, ts_event of the event waited for when status is WouldBlock);
        `filled` then says whether the call ended after an event that filled one of our orders."""
        cdef CEventColumns view = columns_view(cols, size)
        cdef size_t nxt = start
        cdef int64_t due = 0
        cdef cbool filled = False
        cdef CStatus st
        with nogil:
            st = self.core.get().encode(view, start, until_ts, max_messages, &nxt, &due, &filled)
        self.filled = filled
        return int(st), nxt, due

    def show_own_orders(self, int64_t ts):
        """Publishes the changes of our resting orders on L3 instruments (needs attach())."""
        if self.markets is None:
            raise ValueError("no trading side attached")
        return int(self.core.get().show_own_orders(self.markets.core.get()[0], ts))

    def snapshot(self):
        """(blocks, next_sequence): the feed's books as [u16 length][message] blocks (a Stock
        Directory per instrument, then an Add Order per live order) and the MoldUDP64 sequence
        number they were taken before (docs/protocols.md, "Snapshots")."""
        cdef vector[uint8_t] out
        self.core.get().snapshot(out)
        blocks = (<char*>out.data())[:out.size()] if out.size() else b""
        return blocks, self.core.get().next_sequence()

    @property
    def own_shown(self):
        return self.core.get().own_shown()

    @property
    def next_sequence(self):
        return self.core.get().next_sequence()

    @property
    def live_orders(self):
        return self.core.get().live_orders()

    def counts(self):
        cdef const CFeedCounts* c = &self.core.get().counts()
        return {"messages": c.messages, "packets": c.packets, "events": c.events,
                "skipped": [c.skipped[i] for i in range(<int>CFeedSkip.Count)]}
