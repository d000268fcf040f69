# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::FeeModel and lockstep::LatencyModel
(include/lockstep/venue/venue_models.hpp). lockstep.venue.matching wraps them; statuses come back as ints."""
from libc.stdint cimport int64_t, uint64_t

from lockstep._bindings.configs cimport fill_latency_config
from lockstep.includes.venue.venue_models cimport (CFeeModel, CLatencyConfig, CLatencyKind,
                                             CLatencyModel, kMaxLatencyNs)

MAX_LATENCY_NS = kMaxLatencyNs
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "LatencyKind": {
        "Constant": <int>CLatencyKind.Constant, "LogNormal": <int>CLatencyKind.LogNormal,
        "Feed": <int>CLatencyKind.Feed,
    },
}


cdef extern from *:
    """
    #include "lockstep/venue/venue_models.hpp"
    static inline void lockstep_fee_parts(const lockstep::FeeModel& m, int64_t price, int64_t qty,
                                          bool maker, int64_t* hi, uint64_t* lo) {
        const __int128 f = m.fee(price, qty, maker);
        *hi = static_cast<int64_t>(f >> 64);
        *lo = static_cast<uint64_t>(f);
    }
    """
    void lockstep_fee_parts(const CFeeModel& m, int64_t price, int64_t qty, bint maker,
                            int64_t* hi, uint64_t* lo) noexcept


cdef class FeeModel:
    cdef CFeeModel core

    def __cinit__(self, int64_t maker_ppm=0, int64_t taker_ppm=0):
        self.core.maker_ppm = maker_ppm
        self.core.taker_ppm = taker_ppm

    @property
    def maker_ppm(self):
        return self.core.maker_ppm

    @property
    def taker_ppm(self):
        return self.core.taker_ppm

    def fee(self, int64_t price, int64_t qty, bint maker):
        cdef int64_t hi
        cdef uint64_t lo
        lockstep_fee_parts(self.core, price, qty, maker, &hi, &lo)
        return (<object>hi << 64) | <object>lo


cdef class LatencyModel:
    cdef CLatencyModel core

    def configure(self, config):
        """`config` a lockstep.venue.matching.LatencyConfig; returns a Status value."""
        cdef CLatencyConfig c
        fill_latency_config(&c, config)
        return <int>self.core.configure(c)

    def entry(self, int64_t feed_latency_ns):
        return self.core.entry(feed_latency_ns)

    def response(self, int64_t feed_latency_ns):
        return self.core.response(feed_latency_ns)

    def entries(self, int64_t feed_latency_ns, Py_ssize_t n):
        cdef Py_ssize_t k
        return [self.core.entry(feed_latency_ns) for k in range(n)]

    def next_u64(self):
        return self.core.next_u64()

    def next_normal(self):
        return self.core.next_normal()
