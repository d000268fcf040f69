# Mirrors include/lockstep/venue/venue_models.hpp. __int128 has no Cython type: fee() is reached through
# a helper in _venue_models.pyx that splits it into two 64-bit halves.
from libc.stdint cimport int64_t, uint8_t, uint64_t

from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/venue/venue_models.hpp" namespace "lockstep" nogil:
    cdef cppclass CFeeModel "lockstep::FeeModel":
        int64_t maker_ppm
        int64_t taker_ppm

    cdef enum class CLatencyKind "lockstep::LatencyKind"(uint8_t):
        Constant, LogNormal, Feed

    cdef cppclass CLatencyConfig "lockstep::LatencyConfig":
        CLatencyKind kind
        int64_t entry_ns
        int64_t response_ns
        double sigma
        double feed_multiplier
        uint64_t seed

    const int64_t kMaxLatencyNs "lockstep::LatencyModel::kMaxLatencyNs"

    cdef cppclass CLatencyModel "lockstep::LatencyModel":
        CLatencyModel() except +
        CStatus configure(const CLatencyConfig& c) noexcept
        const CLatencyConfig& config() noexcept
        int64_t entry(int64_t feed_latency_ns) noexcept
        int64_t response(int64_t feed_latency_ns) noexcept
        uint64_t next_u64() noexcept
        double next_normal() noexcept
