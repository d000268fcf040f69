# Mirrors include/lockstep/base/clock.hpp.
from libc.stdint cimport int64_t


cdef extern from "lockstep/base/clock.hpp" namespace "lockstep" nogil:
    int64_t realtime_ns() noexcept
    int64_t monotonic_ns() noexcept
