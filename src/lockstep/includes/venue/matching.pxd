# Mirrors include/lockstep/venue/matching.hpp.
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.intents cimport CIntent, CTimeInForce
from lockstep.includes.core.l2_book cimport CL2Book
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/venue/matching.hpp" namespace "lockstep" nogil:
    cdef enum class CMatchEventKind "lockstep::MatchEventKind"(uint8_t):
        Fill, Canceled, Rejected, CancelRejected, Replaced, ReplaceRejected

    cdef enum class CMatchReject "lockstep::MatchReject"(uint8_t):
        None_ "lockstep::MatchReject::None"
        PostOnlyWouldCross
        BadQty
        BadPrice
        BadSide
        BadTif
        DuplicateOrder
        UnknownOrder
        BookUnavailable
        NotTrading
        OffTick
        OffLot
        BelowMinQty
        BelowMinNotional

    cdef enum class CSubmitOutcome "lockstep::SubmitOutcome"(uint8_t):
        Rested, Filled, Canceled, Rejected

    cdef enum class CQueueModel "lockstep::QueueModel"(uint8_t):
        Conservative, Probabilistic

    cdef cppclass CMatchEvent "lockstep::MatchEvent":
        CMatchEventKind kind
        CMatchReject reason
        cbool maker
        CSide side
        uint64_t client_order_id
        int64_t price
        int64_t qty

    cdef cppclass CMatchResult "lockstep::MatchResult":
        CSubmitOutcome outcome
        CMatchReject reason
        int64_t filled_qty
        int64_t resting_qty

    CMatchReject order_rules_reject(const COrderRules& r, cbool priced, int64_t price, int64_t qty,
                                    cbool notional_price_known) noexcept

    cdef cppclass CRestingOrder "lockstep::RestingOrder":
        uint64_t client_order_id
        CSide side
        int64_t price
        int64_t qty
        int64_t queue_ahead
        CTimeInForce tif

    cdef cppclass CL2Matcher "lockstep::L2Matcher":
        CL2Matcher() except +
        # configuration
        void reserve(size_t resting, size_t events) except +
        CStatus set_queue_model(CQueueModel m) noexcept
        CStatus set_queue_model(CQueueModel m, double power) noexcept
        CQueueModel queue_model() noexcept
        double queue_power() noexcept
        # hot (may grow the output buffer: std::bad_alloc -> MemoryError)
        CMatchResult submit(uint64_t client_order_id, CSide side, CTimeInForce tif, int64_t price,
                            int64_t qty, const CL2Book& book) except +
        CMatchResult submit(const CIntent& intent, const CL2Book& book) except +
        cbool cancel(uint64_t client_order_id) except +
        CMatchResult replace(uint64_t client_order_id, int64_t new_price,
                             int64_t new_remaining_qty, const CL2Book& book) except +
        void on_trade(int64_t price, int64_t qty, CSide aggressor) except +
        void on_level(CSide side, int64_t price, int64_t old_qty, int64_t new_qty) noexcept
        # reports
        const vector[CMatchEvent]& events() noexcept
        void clear_events() noexcept
        cbool has_resting() noexcept
        size_t resting() noexcept
        const CRestingOrder& resting_at(size_t i) noexcept
        const CRestingOrder* find_order(uint64_t client_order_id) noexcept
