# Mirrors include/lockstep/data/capture.hpp.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.string cimport string

from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/data/capture.hpp" namespace "lockstep::capture" nogil:
    cdef enum class CFsyncPolicy "lockstep::capture::FsyncPolicy"(int32_t):
        Rotation "lockstep::capture::FsyncPolicy::Rotation"
        Interval "lockstep::capture::FsyncPolicy::Interval"
        Frame "lockstep::capture::FsyncPolicy::Frame"

    cdef cppclass CAtomicU64 "std::atomic<uint64_t>":
        uint64_t load() noexcept

    cdef cppclass CCaptureOptions "lockstep::capture::CaptureOptions":
        string directory
        string prefix
        uint64_t first_sequence
        string metadata
        uint64_t max_bytes
        int64_t window_ns
        CFsyncPolicy fsync
        int64_t fsync_interval_ns
        size_t ring_bytes
        uint32_t producers
        uint32_t history_stream

    cdef cppclass CProducerStats "lockstep::capture::ProducerStats":
        CAtomicU64 frames, bytes, dropped, dropped_bytes, drop_records, waits

    cdef cppclass CWriterStats "lockstep::capture::WriterStats":
        CAtomicU64 frames, bytes, files, last_sequence, writes, write_ns, write_ns_max, fsyncs

    cdef cppclass CCaptureWriter "lockstep::capture::CaptureWriter":
        CStatus configure(const CCaptureOptions& options) except +
        CStatus start() except +
        void stop() noexcept
        cbool push(uint32_t p, int64_t receive_ns, uint32_t stream_id, const uint8_t* payload,
                   uint32_t length) noexcept
        size_t push_slots(uint32_t p, uint32_t stream_id, const uint8_t* data, size_t slot,
                          const uint32_t* length, const int64_t* stamp_ns, const uint8_t* keep,
                          size_t n) noexcept
        cbool push_waiting(uint32_t p, int64_t receive_ns, uint32_t stream_id,
                           const uint8_t* head, uint32_t head_len) noexcept
        cbool push_waiting(uint32_t p, int64_t receive_ns, uint32_t stream_id,
                           const uint8_t* head, uint32_t head_len, const uint8_t* body,
                           uint32_t body_len) noexcept
        void wait_written() noexcept
        cbool failed() noexcept
        int error_errno() noexcept
        const string& error_what() noexcept
        const string& error_path() noexcept
        const CWriterStats& stats() noexcept
        const CProducerStats& producer_stats(uint32_t p) noexcept
        size_t ring_used(uint32_t p) noexcept
        size_t ring_capacity() noexcept
        uint32_t producers() noexcept

