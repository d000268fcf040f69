# Mirrors include/lockstep/session/soup_client.hpp.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.soupbintcp cimport CRejectReason
from lockstep.includes.session.sink cimport CStreamSink


cdef extern from "lockstep/session/soup_client.hpp" namespace "lockstep::session" nogil:
    cdef enum class CSoupClientState "lockstep::session::SoupClientState"(uint8_t):
        Disconnected, LoggingIn, LoggedIn, Rejected, Ended, LoggedOut, Failed

    cdef enum class CSoupNoticeKind "lockstep::session::SoupNoticeKind"(uint8_t):
        LoginAccepted, LoginRejected, SequenceGap, EndOfSession, ServerTimeout, ProtocolError,
        UnexpectedPacket

    cdef cppclass CSoupNotice "lockstep::session::SoupNotice":
        CSoupNoticeKind kind
        uint64_t first
        uint64_t count
        int64_t now_ns

    cdef cppclass CSoupClientConfig "lockstep::session::SoupClientConfig":
        uint8_t username[6]
        uint8_t password[10]
        uint8_t session[10]
        uint64_t first_sequence
        int64_t heartbeat_interval_ns
        int64_t server_timeout_ns
        uint16_t max_packet_length

    ctypedef struct CSoupClientCounters "lockstep::session::SoupClientCounters":
        uint64_t connections
        uint64_t bytes_in
        uint64_t packets_in
        uint64_t sequenced
        uint64_t unsequenced
        uint64_t duplicates
        uint64_t heartbeats_in
        uint64_t heartbeats_out
        uint64_t debug
        uint64_t logins
        uint64_t rejects
        uint64_t sequence_gaps
        uint64_t messages_lost
        uint64_t protocol_errors
        uint64_t timeouts
        uint64_t messages_out
        uint64_t ignored_bytes
        uint64_t notices_lost

    cdef cppclass CSoupClient "lockstep::session::SoupClient":
        CStatus init(const CSoupClientConfig& config) noexcept
        CStatus connected(int64_t now_ns, uint8_t* out, size_t capacity, size_t* written) noexcept
        CStatus on_bytes(const uint8_t* data, size_t n, int64_t now_ns, CStreamSink& sink) noexcept
        size_t poll(int64_t now_ns, uint8_t* out, size_t capacity) noexcept
        CStatus send_data(const uint8_t* payload, size_t n, int64_t now_ns, uint8_t* out,
                          size_t capacity, size_t* written) noexcept
        void note_sent(int64_t now_ns) noexcept
        CStatus logout(int64_t now_ns, uint8_t* out, size_t capacity, size_t* written) noexcept
        void disconnected() noexcept
        bint next_notice(CSoupNotice& out) noexcept
        CSoupClientState state() noexcept
        uint64_t next_sequence() noexcept
        const uint8_t* session() noexcept
        CRejectReason reject_reason() noexcept
        const CSoupClientCounters& counters() noexcept
        int64_t heartbeat_due_ns() noexcept
        int64_t timeout_due_ns() noexcept
