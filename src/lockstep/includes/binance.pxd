# Mirrors include/lockstep/binance.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.string cimport string
from libcpp.vector cimport vector

from lockstep.includes.decimal cimport CIncrement
from lockstep.includes.events cimport CEventColumns
from lockstep.includes.status cimport CStatus


cdef extern from "lockstep/binance.hpp" namespace "lockstep::binance" nogil:
    cdef enum class CMarketType "lockstep::binance::MarketType"(uint8_t):
        Unknown "lockstep::binance::MarketType::Unknown"
        Spot "lockstep::binance::MarketType::Spot"
        UsdM "lockstep::binance::MarketType::UsdM"

    cdef enum class CIncrementSource "lockstep::binance::IncrementSource"(uint8_t):
        Explicit "lockstep::binance::IncrementSource::Explicit"
        Option "lockstep::binance::IncrementSource::Option"
        BuiltIn "lockstep::binance::IncrementSource::BuiltIn"
        Inferred "lockstep::binance::IncrementSource::Inferred"

    const size_t kSkipCount "lockstep::binance::kSkipCount"
    const char* skip_name(size_t i) noexcept
    const char* market_type_name(CMarketType m) noexcept

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
        uint64_t depth_messages
        uint64_t trade_messages
        uint64_t book_ticker_messages
        uint64_t snapshot_messages
        uint64_t depth_buffered
        uint64_t depth_replayed
        uint64_t events[9]

    cdef cppclass CErrorInfo "lockstep::binance::ErrorInfo":
        CStatus status
        uint32_t file
        uint64_t line
        uint64_t offset
        char message[320]

    cdef cppclass CSymbolInfo "lockstep::binance::SymbolInfo":
        string symbol
        bint has_increments
        CIncrement price_increment
        CIncrement size_increment
        CIncrementSource source
        bint indexed
        uint32_t index
        bint seen
        uint64_t messages
        bint price_inferred_ok
        CIncrement price_inferred
        bint size_inferred_ok
        CIncrement size_inferred
        uint64_t price_values
        uint64_t size_values

    cdef cppclass CBinanceDecoder "lockstep::binance::BinanceDecoder":
        CBinanceDecoder() except +
        # configuration: may allocate
        CStatus add_instrument(const char* sym, size_t n, uint32_t index, CIncrement price,
                               CIncrement size, CIncrementSource source) except +
        CStatus add_catalog(const char* sym, size_t n, CIncrement price, CIncrement size,
                            CIncrementSource source) except +
        CStatus set_default_increments(CIncrement price, CIncrement size) except +
        CStatus set_snapshot_symbol(const char* sym, size_t n) except +
        void set_scan_mode(bint on) noexcept
        void set_pending_limit(size_t levels, size_t messages) noexcept
        void set_max_line(size_t bytes) noexcept
        # decoding: hot, never throws
        void begin_file(uint32_t file_index) noexcept
        CStatus feed(const char* data, size_t length, CEventColumns& out,
                     size_t* consumed) noexcept
        CStatus finish(CEventColumns& out) noexcept
        CStatus end_stream(CEventColumns& out) noexcept
        # reports
        const CErrorInfo& error() noexcept
        const CCounts& counts() noexcept
        const CLocationLog& skips(size_t reason) noexcept
        const CLocationLog& gaps() noexcept
        const CLocationLog& ts_recv_raised() noexcept
        uint64_t lines_in_file() noexcept
        uint64_t file_bytes() noexcept
        size_t carried_bytes() noexcept
        CMarketType market_type() noexcept
        vector[CSymbolInfo] symbols() except +
