# Mirrors include/lockstep/runtime/live.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.core.risk cimport CTradingMode
from lockstep.includes.runtime.engine cimport CEngine, CRunStatus


cdef extern from "lockstep/runtime/live.hpp" namespace "lockstep::live" nogil:
    cdef cppclass CLiveCounters "lockstep::live::LiveCounters":
        uint64_t itch_inputs, itch_messages, itch_duplicates, itch_skipped, itch_empty_blocks
        uint64_t itch_problems, itch_unmapped, off_tick
        uint64_t ouch_messages, ouch_undecodable, ouch_unknown_order, ouch_system_events
        uint64_t ouch_broken_trades, ouch_price_corrections, ouch_unknown_trades
        uint64_t ouch_cancel_pending
        uint64_t ticks, gaps, controls, dispatched, unsendable
        uint64_t order_entry_downs, order_entry_ups, held, resent, feed_sessions
        uint64_t snapshots, snapshot_messages, snapshot_continued, held_overflows
        uint64_t told_runs_forgotten, trades_told_before

    cdef cppclass CUnanswered "lockstep::live::Unanswered":
        uint32_t orders
        int64_t oldest_ns

    cdef cppclass CLiveCore "lockstep::live::LiveCore":
        CLiveCore(CEngine& engine, int64_t day_start_ns) except +
        CStatus configure_orders(const uint8_t* token_prefix, size_t prefix_len,
                                 const uint8_t* firm4) except +
        void configure_fees(int64_t maker_ppm, int64_t taker_ppm) noexcept
        CStatus add_instrument(uint32_t index, const uint8_t* stock8,
                               uint32_t price_multiplier) except +
        void set_next_sequence(uint64_t sequence) noexcept
        void set_held_bytes(size_t bytes) noexcept
        CRunStatus on_itch(const uint8_t* blocks, size_t len, uint64_t first_sequence,
                           int64_t stamp) noexcept
        CRunStatus on_ouch(const uint8_t* message, size_t len, int64_t stamp) noexcept
        CRunStatus on_tick(int64_t stamp) noexcept
        CRunStatus on_feed_gap(uint64_t expected, int64_t stamp) noexcept
        CRunStatus on_snapshot(const uint8_t* blocks, size_t n, uint64_t next_sequence,
                               int64_t stamp) noexcept
        CRunStatus on_mode(CTradingMode mode, int64_t stamp) noexcept
        CRunStatus on_kill(bint on, int64_t stamp) noexcept
        CRunStatus on_order_entry(bint up, int64_t stamp) noexcept
        CRunStatus on_feed_session(int64_t stamp) noexcept
        void pack_records() noexcept
        const vector[uint8_t]& decisions() noexcept
        const vector[uint8_t]& executions() noexcept
        void end_input() noexcept
        void outputs_digest(uint8_t* out) noexcept
        void clear_packed() noexcept
        const vector[uint8_t]& outbound() noexcept
        void clear_outbound() noexcept
        const CLiveCounters& counters() noexcept
        uint64_t next_sequence() noexcept
        int64_t stamp() noexcept
        size_t live_orders() noexcept
        CUnanswered unanswered(int64_t asked_by) noexcept
        CEngine& engine() noexcept
