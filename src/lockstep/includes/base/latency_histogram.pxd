# Mirrors include/lockstep/base/latency_histogram.hpp.
from libc.stdint cimport int64_t, uint64_t


cdef extern from "lockstep/base/latency_histogram.hpp" namespace "lockstep" nogil:
    cdef cppclass CLatencyHistogram "lockstep::LatencyHistogram":
        void add(int64_t value) noexcept
        uint64_t count() noexcept
        uint64_t max() noexcept
        uint64_t quantile(double q) noexcept
        void clear() noexcept
