# Mirrors include/lockstep/runtime/journal.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.capture cimport CCaptureOptions, CCaptureWriter


cdef extern from "lockstep/runtime/journal.hpp" namespace "lockstep::live" nogil:
    cdef enum class CJournalStream "lockstep::live::JournalStream"(uint32_t):
        Itch, Ouch, Tick, Gap, Finish, Control, Dispatch, Decision, Execution, Failure, End,
        Snapshot, SnapshotPart

    cdef cppclass CJournal "lockstep::live::Journal":
        CStatus open(CCaptureOptions options) except +
        bint append(int64_t receive_ns, CJournalStream stream, const uint8_t* payload,
                    uint32_t length) noexcept
        bint append(int64_t receive_ns, CJournalStream stream, const uint8_t* head,
                    uint32_t head_len, const uint8_t* body, uint32_t body_len) noexcept
        void wait_written() noexcept
        void close() noexcept
        bint failed() noexcept
        const CCaptureWriter& writer() noexcept
