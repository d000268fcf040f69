# Mirrors include/lockstep/codecs/binance/decoder.hpp.
from libc.stdint cimport uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep.includes.base.decimal cimport CIncrement
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.binance.catalogue cimport CIncrementSource, CSymbolInfo
from lockstep.includes.codecs.binance.messages cimport CMarketType
from lockstep.includes.codecs.binance.output cimport COutput
from lockstep.includes.codecs.binance.reports cimport (
    CCounts, CErrorInfo, CLocationLog, CReason,
)


cdef extern from "lockstep/codecs/binance/decoder.hpp" namespace "lockstep::binance" nogil:
    cdef cppclass CBinanceDecoder "lockstep::binance::BinanceDecoder":
        CBinanceDecoder() except +
        CStatus add_instrument(const char* sym, size_t n, uint32_t index, CIncrement price,
                               CIncrement size, CIncrementSource source) except +
        CStatus add_catalog(const char* sym, size_t n, CIncrement price, CIncrement size,
                            CIncrementSource source) except +
        CStatus set_default_increments(CIncrement price, CIncrement size) except +
        CStatus set_snapshot_symbol(const char* sym, size_t n) except +
        void set_market_type(CMarketType m) noexcept
        void set_scan_mode(bint on) noexcept
        void set_pending_limit(size_t levels, size_t messages) noexcept
        void set_max_held_records(size_t n) noexcept
        void set_max_line(size_t bytes) noexcept
        void begin_file(uint32_t file_index) noexcept
        CStatus feed(const char* data, size_t length, COutput& out, size_t* consumed) noexcept
        CStatus finish(COutput& out) noexcept
        CStatus finish_cut(COutput& out) noexcept
        CStatus end_stream(COutput& out) noexcept
        const CErrorInfo& error() noexcept
        const CCounts& counts() noexcept
        const CLocationLog& skips(size_t reason) noexcept
        const CLocationLog& problems(size_t rule) noexcept
        const vector[CReason]& reasons() noexcept
        const CLocationLog& gaps() noexcept
        const CLocationLog& ts_recv_raised() noexcept
        uint64_t lines_in_file() noexcept
        uint64_t records_in_file() noexcept
        uint64_t file_bytes() noexcept
        size_t carried_bytes() noexcept
        size_t needed_events() noexcept
        uint64_t values_off_increment() noexcept
        uint64_t next_record() noexcept
        CMarketType market_type() noexcept
        vector[CSymbolInfo] symbols() except +
