# Mirrors include/lockstep/core/replay.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CEventColumns, CTradingPhase
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/core/replay.hpp" namespace "lockstep" nogil:
    cdef enum class CBookType "lockstep::BookType"(uint8_t):
        L2, L3

    cdef enum class CAnomaly "lockstep::Anomaly"(uint8_t):
        pass

    const char* anomaly_name(CAnomaly a) noexcept
    const size_t kAnomalyKinds
    const size_t kAnomalyPositionsKept

    cdef cppclass CAnomalyLog "lockstep::AnomalyLog":
        uint64_t count
        uint32_t kept
        uint64_t positions[16]
        uint32_t instruments[16]

    cdef cppclass CTopOfBookColumns "lockstep::TopOfBookColumns":
        int64_t* ts_recv
        int64_t* ts_event
        uint32_t* instrument
        int64_t* bid_price
        int64_t* bid_qty
        int64_t* ask_price
        int64_t* ask_qty
        uint8_t* valid
        size_t size
        size_t capacity

    cdef cppclass CInvalidStretch "lockstep::InvalidStretch":
        uint32_t instrument
        uint64_t from_position
        int64_t from_ts_recv
        int64_t to_position
        int64_t to_ts_recv

    cdef cppclass CLastTrade "lockstep::LastTrade":
        int64_t ts_recv
        int64_t price
        int64_t qty
        uint8_t side
        bool seen

    cdef cppclass CReplayer "lockstep::Replayer":
        CReplayer(const vector[CBookType]& book_types) except +
        CStatus apply(const CEventColumns& ev, CTopOfBookColumns* tob) noexcept
        bint apply_event(uint32_t inst, uint8_t kind, uint8_t side, uint8_t flag, int64_t price,
                         int64_t qty, uint64_t order_id, int64_t ts_recv) noexcept
        uint64_t events_applied() noexcept
        const CAnomalyLog& anomaly(CAnomaly a) noexcept
        uint64_t kind_count(uint8_t kind) noexcept
        size_t instrument_count() noexcept
        CBookType book_type(uint32_t inst) noexcept
        const CLastTrade& last_trade(uint32_t inst) noexcept
        void touch(uint32_t inst, int64_t* bid_px, int64_t* bid_qty, int64_t* ask_px,
                   int64_t* ask_qty) noexcept
        string serialize_state() except +
        void add_instrument(CBookType t) except +
        bint book_valid(uint32_t inst) noexcept
        CTradingPhase phase(uint32_t inst) noexcept
        CTradingPhase session_phase() noexcept
        void set_session_phase(CTradingPhase p) noexcept
        const vector[CInvalidStretch]& invalid_stretches() noexcept
        uint64_t invalid_stretch_count() noexcept
