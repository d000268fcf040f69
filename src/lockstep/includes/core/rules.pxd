# Mirrors include/lockstep/core/rules.hpp.
from libc.stdint cimport uint8_t


cdef extern from "lockstep/core/rules.hpp" namespace "lockstep" nogil:
    cdef enum class CRule "lockstep::Rule"(uint8_t):
        pass

    const size_t kRuleCount
    const char* rule_name(CRule r) noexcept
