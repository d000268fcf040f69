# Mirrors include/lockstep/core/events.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t


cdef extern from "lockstep/core/events.hpp" namespace "lockstep" nogil:
    cdef enum class CEventKind "lockstep::EventKind"(uint8_t):
        None_ "lockstep::EventKind::None"
        L2Set
        L3Add
        L3Modify
        L3Delete
        L3Execute
        BookClear
        Trade
        VenueBbo
        OrderSubmitted
        OrderAccepted
        OrderRejected
        OrderFilled
        OrderCanceled
        OrderExpired
        OrderReplaced
        CancelRejected
        ReplaceRejected
        CancelSubmitted
        ReplaceSubmitted
        TradeBroken
        TradeCorrected
        Gap
        TradingPhase

    cdef enum class CTradingPhase "lockstep::TradingPhase"(uint8_t):
        Unknown
        PreOpen
        Auction
        Continuous
        Halted
        Closed
        Count

    const uint64_t kPhaseScopeInstrument "lockstep::kPhaseScopeInstrument"
    const uint64_t kPhaseScopeSession "lockstep::kPhaseScopeSession"

    cdef enum class CSide "lockstep::Side"(uint8_t):
        None_ "lockstep::Side::None"
        Bid
        Ask

    const uint8_t kFlagLast "lockstep::flags::kLast"
    const uint8_t kFlagSnapshot "lockstep::flags::kSnapshot"
    const uint8_t kFlagBadTsRecv "lockstep::flags::kBadTsRecv"
    const uint8_t kFlagMaker "lockstep::flags::kMaker"

    cdef cppclass CEventColumns "lockstep::EventColumns":
        int64_t* ts_event
        int64_t* ts_recv
        uint64_t* seq
        uint32_t* instrument
        uint8_t* kind
        uint8_t* side
        uint8_t* flags
        int64_t* price
        int64_t* qty
        uint64_t* order_id
        size_t size
        size_t capacity
        bint full()
