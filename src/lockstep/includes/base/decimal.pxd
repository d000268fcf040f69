# Mirrors include/lockstep/base/decimal.hpp.
from libc.stdint cimport int32_t, int64_t, uint64_t

from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/base/decimal.hpp" namespace "lockstep" nogil:
    cdef cppclass CIncrement "lockstep::Increment":
        int64_t mantissa
        int32_t exponent
        bint valid() noexcept

    cdef cppclass CDecimal "lockstep::Decimal":
        uint64_t mantissa
        int32_t scale
        bint negative

    cdef cppclass CFixedScale "lockstep::FixedScale":
        int32_t digits
        uint64_t divisor
        @staticmethod
        CStatus make(CIncrement inc, CFixedScale& out) noexcept

    CStatus parse_decimal(const char* s, size_t n, CDecimal& out) noexcept
    CStatus parse_increment(const char* s, size_t n, CIncrement& out) noexcept
    CStatus to_fixed(const char* s, size_t n, const CFixedScale& fs, int64_t& out) noexcept

    cdef cppclass CDecimalGcd "lockstep::DecimalGcd":
        void add(const CDecimal& d) noexcept
        void merge(const CDecimalGcd& o) noexcept
        bint result(CIncrement& out) noexcept
        uint64_t count() noexcept
        uint64_t zeros() noexcept
        bint overflowed() noexcept
