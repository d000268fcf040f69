# Mirrors include/lockstep/codecs/wire.hpp.
from libc.stdint cimport uint8_t, uint64_t

from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/codecs/wire.hpp" namespace "lockstep::wire" nogil:
    # WireProblem::None is declared apart: Cython keeps `None` for Python's.
    cdef enum class CWireProblem "lockstep::wire::WireProblem"(uint8_t):
        Truncated, UnknownType, BadLength, Oversized, TrailingBytes, BadField

    const CWireProblem kNoProblem "lockstep::wire::WireProblem::None"

    const char* wire_problem_name(CWireProblem p) noexcept

    cdef cppclass CWireError "lockstep::wire::WireError":
        CWireProblem problem
        uint64_t offset

    cdef cppclass CSlots "lockstep::wire::Slots":
        size_t n
        uint64_t value[24]
        uint8_t width[24]
        bint is_bytes[24]
        uint8_t bytes[128]
        size_t nbytes

    bint describe[Types](uint8_t type, CSlots& s) noexcept
    CStatus encode_slots[Types](uint8_t type, const CSlots& s, uint8_t* out, size_t capacity,
                                size_t* written) noexcept
    CStatus decode_slots[Types](const uint8_t* p, size_t n, CSlots& s, CWireError* err) noexcept
