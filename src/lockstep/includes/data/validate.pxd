# Mirrors include/lockstep/data/validate.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CEventColumns, CTradingPhase
from lockstep.includes.core.replay cimport CBookType, CReplayer
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/data/validate.hpp" namespace "lockstep" nogil:
    cdef enum class CRuleAction "lockstep::RuleAction"(uint8_t):
        Off, Warn, Quarantine

    cdef cppclass CValidatorConfig "lockstep::ValidatorConfig":
        vector[CBookType] book_types
        vector[uint8_t] requires_snapshot
        CRuleAction action[13]
        int64_t min_feed_latency_ns
        int64_t max_feed_latency_ns
        CTradingPhase session_phase

    cdef cppclass CRecordVerdicts "lockstep::RecordVerdicts":
        uint8_t* rule
        uint8_t* warn
        int64_t* cause
        uint32_t* instrument
        int64_t* detail_a
        int64_t* detail_b

    cdef cppclass CMarker "lockstep::Marker":
        uint64_t before_event
        uint32_t instrument
        uint8_t rule
        int64_t record
        int64_t ts_event
        int64_t ts_recv
        uint64_t seq
        uint64_t order_id

    cdef cppclass CValidator "lockstep::Validator":
        CValidator(CValidatorConfig cfg) except +
        CStatus check(const CEventColumns& ev, const int64_t* event_record, int64_t first_record,
                      size_t n_records, const uint8_t* rec_problem, CRecordVerdicts out,
                      uint8_t* keep, vector[CMarker]& markers) noexcept
        uint64_t records() noexcept
        uint64_t quarantined(size_t rule) noexcept
        uint64_t warned(size_t rule) noexcept
        uint64_t invalidations() noexcept
        const CReplayer& books() noexcept
        bool book_valid(uint32_t inst) noexcept
        void add_instrument(CBookType t, bool requires_snapshot) except +
