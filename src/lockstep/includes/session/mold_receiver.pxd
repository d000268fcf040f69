# Mirrors include/lockstep/session/mold_receiver.hpp.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.wire cimport CWireError
from lockstep.includes.session.sink cimport CStreamSink


cdef extern from "lockstep/session/mold_receiver.hpp" namespace "lockstep::session" nogil:
    cdef enum class CMoldNoticeKind "lockstep::session::MoldNoticeKind"(uint8_t):
        SessionStarted, SessionChanged, GapDetected, GapRecovered, GapAbandoned, EndOfSession,
        HeartbeatTimeout, FeedResumed

    cdef cppclass CMoldNotice "lockstep::session::MoldNotice":
        CMoldNoticeKind kind
        uint64_t first
        uint64_t count
        int64_t stamp_ns

    cdef cppclass CMoldReceiverConfig "lockstep::session::MoldReceiverConfig":
        uint8_t session[10]
        uint64_t first_sequence
        int64_t heartbeat_timeout_ns
        int64_t request_interval_ns
        int64_t give_up_ns
        uint16_t max_request_count
        uint32_t hold_packets
        uint32_t hold_slot_bytes
        uint64_t max_sequence_jump

    ctypedef struct CMoldReceiverCounters "lockstep::session::MoldReceiverCounters":
        uint64_t packets
        uint64_t messages
        uint64_t heartbeats
        uint64_t end_of_session
        uint64_t short_packets
        uint64_t damaged_packets
        uint64_t other_session
        uint64_t implausible
        uint64_t duplicate_packets
        uint64_t duplicate_messages
        uint64_t held_packets
        uint64_t hold_refused
        uint64_t held_discarded
        uint64_t gaps
        uint64_t gaps_recovered
        uint64_t gaps_abandoned
        uint64_t messages_abandoned
        uint64_t requests
        uint64_t messages_requested
        uint64_t session_changes
        uint64_t heartbeat_timeouts
        uint64_t notices_lost

    cdef cppclass CMoldReceiver "lockstep::session::MoldReceiver":
        CStatus init(const CMoldReceiverConfig& config) noexcept
        CStatus on_packet(const uint8_t* data, size_t n, int64_t stamp_ns,
                          CStreamSink& sink) noexcept
        void poll(int64_t now_ns, CStreamSink& sink) noexcept
        size_t take_request(int64_t now_ns, uint8_t* out, size_t capacity) noexcept
        bint rewind(uint64_t sequence, int64_t stamp) noexcept
        bint next_notice(CMoldNotice& out) noexcept
        const CMoldReceiverCounters& counters() noexcept
        const CWireError& error() noexcept
        uint64_t expected() noexcept
        uint64_t highest() noexcept
        bint gap_open() noexcept
        bint ended() noexcept
        bint timed_out() noexcept
        bint has_session() noexcept
        const uint8_t* session() noexcept
        uint32_t held() noexcept
        size_t held_bytes() noexcept
