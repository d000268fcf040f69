# Mirrors include/lockstep/venue/replayed_markets.hpp.
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CEventColumns, CSide
from lockstep.includes.core.intents cimport CTimeInForce
from lockstep.includes.core.replay cimport CBookType, CReplayer
from lockstep.includes.venue.matching cimport CMatchEvent, CMatchResult, CRestingOrder


cdef extern from "lockstep/venue/replayed_markets.hpp" namespace "lockstep::venue" nogil:
    cdef cppclass CReplayedMarkets "lockstep::venue::ReplayedMarkets":
        CReplayedMarkets(const vector[CBookType]& book_types) except +
        size_t instrument_count() noexcept
        cbool is_l2(uint32_t inst) noexcept
        const CReplayer& market() noexcept
        cbool on_event(const CEventColumns& ev, size_t i) noexcept
        # order entry (may grow storage: std::bad_alloc -> MemoryError)
        CMatchResult submit(uint32_t inst, uint64_t client_order_id, CSide side, CTimeInForce tif,
                            int64_t price, int64_t qty) except +
        CMatchResult replace(uint32_t inst, uint64_t client_order_id, int64_t price,
                             int64_t qty) except +
        cbool cancel(uint32_t inst, uint64_t client_order_id) except +
        # reports
        const vector[CMatchEvent]& events(uint32_t inst) noexcept
        void clear_events(uint32_t inst) noexcept
        size_t resting(uint32_t inst) noexcept
        const CRestingOrder& resting_at(uint32_t inst, size_t k) noexcept
        const CRestingOrder* find_order(uint32_t inst, uint64_t client_order_id) noexcept
