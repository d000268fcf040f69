# Mirrors include/lockstep/runtime/live_loop.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep.includes.base.latency_histogram cimport CLatencyHistogram
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.address cimport CEndpoint
from lockstep.includes.net.socket cimport CSysError
from lockstep.includes.net.udp cimport CUdpSocket
from lockstep.includes.runtime.engine cimport CPnlSample, CRunStatus
from lockstep.includes.runtime.journal cimport CJournal
from lockstep.includes.runtime.live cimport CLiveCore
from lockstep.includes.session.soup_client cimport CSoupClient
from lockstep.includes.session.mold_receiver cimport CMoldNotice, CMoldReceiver


cdef extern from "lockstep/runtime/live_loop.hpp" namespace "lockstep::live" nogil:
    cdef enum class CLoopExit "lockstep::live::LoopExit"(uint8_t):
        Turns, Time, OrderEntry, Control, Notice, Unsent, Failed, JournalFailed, SocketError

    cdef cppclass CLoopOptions "lockstep::live::LoopOptions":
        int64_t tick_ns
        int wait_ms
        uint32_t idle_every

    ctypedef struct CLoopCounters "lockstep::live::LoopCounters":
        uint64_t datagrams
        uint64_t ticks
        uint64_t requests
        uint64_t requests_not_sent
        uint64_t sent_direct
        uint64_t partial_writes
        uint64_t handed_back
        uint64_t refused
        uint64_t notices_lost
        uint64_t order_reads
        uint64_t order_messages

    cdef cppclass CLiveLoop "lockstep::live::LiveLoop":
        CLiveLoop(CLiveCore& core, CMoldReceiver& receiver, CUdpSocket& feed,
                  CUdpSocket& retransmit, CJournal& journal) noexcept
        CStatus open(const CLoopOptions& options, bint busy_poll, uint32_t batch,
                     size_t slot_bytes, size_t held_bytes) except +
        void set_retransmit_server(const CEndpoint& server) noexcept
        CStatus set_order_entry(int fd, uint64_t connection, bint direct) noexcept
        void set_order_session(CSoupClient* soup) noexcept
        CStatus set_control(int fd) noexcept
        CLoopExit run(int64_t budget_ns, uint32_t max_turns) noexcept
        const vector[uint8_t]& decisions() noexcept
        const vector[uint8_t]& executions() noexcept
        const vector[CPnlSample]& samples() noexcept
        void clear_outputs() noexcept
        const vector[uint8_t]& unsent_framed() noexcept
        const vector[uint8_t]& unsent() noexcept
        void clear_unsent() noexcept
        size_t notice_count() noexcept
        const CMoldNotice& notice(size_t i) noexcept
        void clear_notices() noexcept
        CRunStatus failure() noexcept
        int64_t last_input() noexcept
        void note_input(int64_t stamp) noexcept
        const CLoopCounters& counters() noexcept
        const CLatencyHistogram& tick_to_trade() noexcept
        const CLatencyHistogram& read_to_trade() noexcept
        const CLatencyHistogram& feed_lag() noexcept
        const CLatencyHistogram& turn_time() noexcept
        const CLatencyHistogram& away_time() noexcept
        uint64_t journal_waits() noexcept
        const CSysError& socket_error() noexcept
