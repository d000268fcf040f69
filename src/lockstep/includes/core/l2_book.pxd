# Mirrors include/lockstep/core/l2_book.hpp.
from libc.stdint cimport int64_t, uint8_t

from lockstep.includes.core.events cimport CSide


cdef extern from "lockstep/core/l2_book.hpp" namespace "lockstep" nogil:
    cdef enum class CL2Result "lockstep::L2Result"(uint8_t):
        Ok, Removed, UnknownLevel, BadQty, BadPrice, BadSide

    const int64_t kMinPrice
    const int64_t kMaxPrice
    bint price_in_range(int64_t price) noexcept

    const size_t kDefaultWindowTicks "lockstep::L2Book::kDefaultWindowTicks"

    cdef cppclass CL2Book "lockstep::L2Book":
        CL2Book() except +
        CL2Book(size_t window_ticks) except +  # std::invalid_argument -> ValueError
        CL2Result set(CSide side, int64_t price, int64_t qty) noexcept
        void clear() noexcept
        bint empty(CSide side) noexcept const
        int64_t best_price(CSide side) noexcept const
        int64_t best_qty(CSide side) noexcept const
        size_t level_count(CSide side) noexcept const
        size_t top(CSide side, size_t n, int64_t* prices, int64_t* qtys) noexcept const
        void for_each_level[F](CSide side, F f) const
        bint crossed() noexcept const
        size_t window_ticks() noexcept const
        bint touch_in_window(CSide side) noexcept const
        bint invariants_hold() noexcept const
