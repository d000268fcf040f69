# Mirrors include/lockstep/codecs/binance/reports.hpp.
from libc.stdint cimport uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.core.rules cimport CRule


cdef extern from "lockstep/codecs/binance/reports.hpp" namespace "lockstep::binance" nogil:
    const size_t kSkipCount "lockstep::binance::kSkipCount"
    const char* skip_name(size_t i) noexcept

    cdef cppclass CLocation "lockstep::binance::Location":
        uint32_t file
        uint64_t line
        uint64_t offset
        uint64_t expected
        uint64_t got

    cdef cppclass CLocationLog "lockstep::binance::LocationLog":
        uint64_t count() noexcept
        const vector[CLocation]& first() noexcept

    cdef cppclass CCounts "lockstep::binance::Counts":
        uint64_t lines
        uint64_t bytes
        uint64_t records
        uint64_t depth_messages
        uint64_t trade_messages
        uint64_t agg_trade_messages
        uint64_t book_ticker_messages
        uint64_t snapshot_messages
        uint64_t depth_buffered
        uint64_t depth_replayed
        uint64_t events[65]

    cdef cppclass CReason "lockstep::binance::Reason":
        uint64_t record
        CRule rule
        CLocation loc
        char text[240]

    cdef cppclass CErrorInfo "lockstep::binance::ErrorInfo":
        CStatus status
        uint32_t file
        uint64_t line
        uint64_t offset
        char message[320]
