# Mirrors include/lockstep/venue/l3_matching.hpp.
from libc.stdint cimport int64_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CEventKind, CSide
from lockstep.includes.core.intents cimport CIntent, CTimeInForce
from lockstep.includes.core.l3_book cimport CL3Book
from lockstep.includes.venue.matching cimport CMatchEvent, CMatchResult, CRestingOrder


cdef extern from "lockstep/venue/l3_matching.hpp" namespace "lockstep" nogil:
    cdef cppclass CL3Matcher "lockstep::L3Matcher":
        CL3Matcher() except +
        # configuration
        void reserve(size_t resting, size_t events) except +
        void reserve(size_t resting, size_t events, size_t ahead) except +
        # hot (may grow storage: std::bad_alloc -> MemoryError)
        CMatchResult submit(uint64_t client_order_id, CSide side, CTimeInForce tif, int64_t price,
                            int64_t qty, const CL3Book& book) except +
        CMatchResult submit(const CIntent& intent, const CL3Book& book) except +
        cbool cancel(uint64_t client_order_id) except +
        CMatchResult replace(uint64_t client_order_id, int64_t new_price,
                             int64_t new_remaining_qty, const CL3Book& book) except +
        void on_l3(CEventKind kind, CSide side, uint64_t order_id, int64_t price, int64_t qty,
                   const CL3Book& book_before) except +
        void on_trade(int64_t price, int64_t qty, CSide aggressor) except +
        # reports
        const vector[CMatchEvent]& events() noexcept
        void clear_events() noexcept
        cbool has_resting() noexcept
        size_t resting() noexcept
        const CRestingOrder& resting_at(size_t i) noexcept
        const CRestingOrder* find_order(uint64_t client_order_id) noexcept
        size_t ahead_count(uint64_t client_order_id) noexcept
