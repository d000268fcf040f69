# Mirrors include/lockstep/data/synth.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CEventColumns
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/data/synth.hpp" namespace "lockstep" nogil:
    cdef enum class CSynthBook "lockstep::SynthBook"(uint8_t):
        L2, L3

    cdef cppclass CSynthConfig "lockstep::SynthConfig":
        uint64_t seed
        uint64_t events
        uint32_t instruments
        uint32_t depth
        uint32_t max_burst
        CSynthBook book
        int64_t start_ts

    cdef cppclass CSyntheticMarket "lockstep::SyntheticMarket":
        CStatus configure(const CSynthConfig& cfg) except +
        size_t generate(CEventColumns& out, size_t max_events) noexcept
        uint64_t produced() noexcept
        bint done() noexcept
        const CSynthConfig& config() noexcept
