# Mirrors include/lockstep/session/sink.hpp.
from libc.stdint cimport int64_t, uint8_t, uint64_t


cdef extern from "lockstep/session/sink.hpp" namespace "lockstep::session" nogil:
    cdef cppclass CStreamSink "lockstep::session::StreamSink":
        uint8_t* out
        size_t capacity
        uint64_t* sequences
        int64_t* stamps
        size_t max_messages
        bint skip_empty
        size_t size
        size_t messages
        uint64_t empty_skipped
        uint64_t overflow
