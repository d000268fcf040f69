# Mirrors include/lockstep/data/mold_capture.hpp.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp cimport bool as cbool

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.capture cimport CCaptureWriter
from lockstep.includes.session.mold_receiver cimport CMoldReceiver, CMoldReceiverConfig


cdef extern from "lockstep/data/mold_capture.hpp" namespace "lockstep::capture" nogil:
    cdef enum class CMoldVerdict "lockstep::capture::MoldVerdict"(uint8_t):
        Recorded, Malformed, WrongSource, WrongSession, Implausible, Dropped

    ctypedef struct CMoldCaptureCounters "lockstep::capture::MoldCaptureCounters":
        uint64_t datagrams
        uint64_t messages
        uint64_t bytes
        uint64_t retransmitted
        uint64_t damaged
        uint64_t malformed
        uint64_t wrong_source
        uint64_t wrong_session
        uint64_t implausible
        uint64_t ring_drops
        int64_t last_stamp_ns
        uint64_t last_venue_ns

    cdef cppclass CMoldCapture "lockstep::capture::MoldCapture":
        CStatus init(const CMoldReceiverConfig& config) noexcept
        void on_batch(const uint8_t* data, size_t slot, const uint32_t* length,
                      const int64_t* stamp_ns, const uint8_t* flags, uint8_t cut_flags,
                      const uint32_t* peer_ip, const uint16_t* peer_port, size_t n,
                      cbool replies, uint32_t want_ip, uint16_t want_port,
                      CCaptureWriter& writer, uint32_t p, uint32_t stream_id,
                      uint8_t* verdict) noexcept
        void poll(int64_t now_ns) noexcept
        CMoldReceiver& receiver() noexcept
        const CMoldCaptureCounters& counters() noexcept
