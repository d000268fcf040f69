# Mirrors include/lockstep/venue/itch_feed.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.core.events cimport CEventColumns
from lockstep.includes.venue.replayed_markets cimport CReplayedMarkets


cdef extern from "lockstep/venue/itch_feed.hpp" namespace "lockstep::venue" nogil:
    cdef enum class CFeedSkip "lockstep::venue::FeedSkip"(uint8_t):
        NotMarketData, UnknownOrder, OutOfRange, NoChange, WrongBookKind, UnknownInstrument, ExecutionPrint,
        Count

    cdef cppclass CFeedCounts "lockstep::venue::FeedCounts":
        uint64_t messages
        uint64_t packets
        uint64_t events
        uint64_t skipped[7]

    cdef cppclass CItchFeed "lockstep::venue::ItchFeed":
        CItchFeed(const uint8_t* session, size_t packet_bytes, int64_t day_start_ns,
                  uint64_t first_sequence, size_t expected_orders) except +
        void add_instrument(uint32_t index, const uint8_t* symbol8, uint32_t price_multiplier,
                            bint book_l2) except +
        void begin(uint8_t* out, size_t capacity, uint32_t* lengths, size_t max_packets) noexcept
        size_t finish() noexcept
        CStatus system_event(uint8_t code, int64_t ts) noexcept
        CStatus stock_directory(uint32_t index, int64_t ts) noexcept
        void attach(CReplayedMarkets* markets) noexcept
        CStatus encode(const CEventColumns& ev, size_t start, int64_t until_ts,
                       uint64_t max_messages, size_t* next, int64_t* due_ts,
                       cbool* filled) noexcept
        CStatus show_own_orders(const CReplayedMarkets& markets, int64_t ts) noexcept
        size_t own_shown() noexcept
        size_t snapshot(vector[uint8_t]& out) except +
        uint64_t next_sequence() noexcept
        const CFeedCounts& counts() noexcept
        size_t live_orders() noexcept
