# Mirrors include/lockstep/core/l3_book.hpp.
from libc.stdint cimport int64_t, uint8_t, uint64_t

from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.l2_book cimport CL2Book


cdef extern from "lockstep/core/l3_book.hpp" namespace "lockstep" nogil:
    cdef enum class CL3Result "lockstep::L3Result"(uint8_t):
        Ok, UnknownOrder, DuplicateOrder, BadQty, BadPrice, BadSide

    cdef cppclass CL3Book "lockstep::L3Book":
        CL3Book() except +
        CL3Book(size_t window_ticks) except +  # std::invalid_argument -> ValueError
        CL3Book(size_t window_ticks, size_t expected_orders) except +
        CL3Result add(uint64_t order_id, CSide side, int64_t price, int64_t qty) noexcept
        CL3Result modify(uint64_t order_id, int64_t price, int64_t qty) noexcept
        CL3Result remove(uint64_t order_id) noexcept
        CL3Result execute(uint64_t order_id, int64_t qty) noexcept
        void clear() noexcept
        bint empty(CSide side) noexcept const
        int64_t best_price(CSide side) noexcept const
        int64_t best_qty(CSide side) noexcept const
        size_t level_count(CSide side) noexcept const
        size_t top(CSide side, size_t n, int64_t* prices, int64_t* qtys) noexcept const
        void for_each_level[F](CSide side, F f) const
        bint crossed() noexcept const
        const CL2Book& levels() noexcept const
        size_t order_count() noexcept const
        void for_each_order[F](CSide side, F f) const
        size_t top_orders(CSide side, size_t n, uint64_t* ids, int64_t* prices,
                          int64_t* qtys) noexcept const
        bint order(uint64_t id, CSide* side, int64_t* price, int64_t* qty) noexcept const
        size_t window_ticks() noexcept const
        bint invariants_hold() noexcept const
