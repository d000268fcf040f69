# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::L2Book and lockstep::L3Book (include/lockstep/core/l2_book.hpp,
include/lockstep/core/l3_book.hpp).

Result codes come back as plain ints; lockstep.core.books wraps these classes with enums and type hints
and is the public API. Sides are 1 (bid) and 2 (ask): mutators answer any other side with the
BadSide code, queries raise ValueError.
"""
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint64_t
from libcpp.memory cimport unique_ptr

import numpy as np

from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.l2_book cimport CL2Book, CL2Result, kDefaultWindowTicks, kMaxPrice, kMinPrice
from lockstep.includes.core.l3_book cimport CL3Book, CL3Result

DEFAULT_WINDOW_TICKS = kDefaultWindowTicks
MIN_PRICE = kMinPrice
MAX_PRICE = kMaxPrice
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "L2Result": {
        "Ok": <int>CL2Result.Ok, "Removed": <int>CL2Result.Removed,
        "UnknownLevel": <int>CL2Result.UnknownLevel, "BadQty": <int>CL2Result.BadQty,
        "BadPrice": <int>CL2Result.BadPrice, "BadSide": <int>CL2Result.BadSide,
    },
    "L3Result": {
        "Ok": <int>CL3Result.Ok, "UnknownOrder": <int>CL3Result.UnknownOrder,
        "DuplicateOrder": <int>CL3Result.DuplicateOrder, "BadQty": <int>CL3Result.BadQty,
        "BadPrice": <int>CL3Result.BadPrice, "BadSide": <int>CL3Result.BadSide,
    },
}

# The C++ enumerators by name, so tests can hold the Python enums to them.
L2_RESULT_CODES = {
    "OK": <int>CL2Result.Ok, "REMOVED": <int>CL2Result.Removed,
    "UNKNOWN_LEVEL": <int>CL2Result.UnknownLevel, "BAD_QTY": <int>CL2Result.BadQty,
    "BAD_PRICE": <int>CL2Result.BadPrice, "BAD_SIDE": <int>CL2Result.BadSide,
}
L3_RESULT_CODES = {
    "OK": <int>CL3Result.Ok, "UNKNOWN_ORDER": <int>CL3Result.UnknownOrder,
    "DUPLICATE_ORDER": <int>CL3Result.DuplicateOrder, "BAD_QTY": <int>CL3Result.BadQty,
    "BAD_PRICE": <int>CL3Result.BadPrice, "BAD_SIDE": <int>CL3Result.BadSide,
}


# Numbers go through __index__: Cython's own conversion would silently truncate a float price,
# which for fixed-point ticks is a wrong price, not a rounding.
cdef inline int64_t as_int64(object value) except? -1:
    return PyNumber_Index(value)


cdef inline uint64_t as_uint64(object value) except? 0:
    return PyNumber_Index(value)


cdef inline size_t as_size(object value) except? 0:
    return PyNumber_Index(value)


cdef inline Py_ssize_t as_count(object value) except? -1:
    cdef Py_ssize_t n = PyNumber_Index(value)
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    return n


cdef inline int side_code(object side):
    """1 (bid), 2 (ask), or 0 for anything else."""
    if side == 1:
        return 1
    if side == 2:
        return 2
    return 0


cdef inline CSide query_side(object side) except *:
    cdef int s = side_code(side)
    if s == 0:
        raise ValueError(f"side must be 1 (bid) or 2 (ask), not {side!r}")
    return <CSide>s


cdef tuple levels_out(CL2Book* book, CSide side, Py_ssize_t n):
    n = min(n, <Py_ssize_t>book.level_count(side))
    prices = np.empty(n, dtype=np.int64)
    qtys = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] p = prices
    cdef int64_t[::1] q = qtys
    cdef size_t written = 0
    if n > 0:
        written = book.top(side, <size_t>n, &p[0], &q[0])
    return prices[:written], qtys[:written]


cdef object best_of(CL2Book* book, CSide side):
    if book.empty(side):
        return None
    return (book.best_price(side), book.best_qty(side))


cdef class L2Book:
    """Price-level book: per side, price -> aggregated quantity (int64 ticks and lots)."""

    cdef unique_ptr[CL2Book] core

    def __cinit__(self, window_ticks=kDefaultWindowTicks):
        self.core.reset(new CL2Book(as_size(window_ticks)))

    def set(self, side, price, qty):
        cdef int64_t p = as_int64(price), q = as_int64(qty)
        cdef int s = side_code(side)
        if s == 0:
            return <int>CL2Result.BadSide
        return <int>self.core.get().set(<CSide>s, p, q)

    def clear(self):
        self.core.get().clear()

    def best(self, side):
        return best_of(self.core.get(), query_side(side))

    def best_bid(self):
        return best_of(self.core.get(), CSide.Bid)

    def best_ask(self):
        return best_of(self.core.get(), CSide.Ask)

    def top(self, side, n):
        return levels_out(self.core.get(), query_side(side), as_count(n))

    def levels(self, side):
        cdef CSide s = query_side(side)
        prices, qtys = levels_out(self.core.get(), s, self.core.get().level_count(s))
        return list(zip(prices.tolist(), qtys.tolist()))

    def level_count(self, side):
        return self.core.get().level_count(query_side(side))

    def crossed(self):
        return self.core.get().crossed()

    @property
    def window_ticks(self):
        return self.core.get().window_ticks()

    def touch_in_window(self, side):
        """Whether the best level is in the dense window (diagnostic of the compiled book)."""
        return self.core.get().touch_in_window(query_side(side))

    def invariants_hold(self):
        return self.core.get().invariants_hold()


cdef class L3Book:
    """Order-by-order book: orders by id, FIFO within each price level, aggregated levels."""

    cdef unique_ptr[CL3Book] core

    def __cinit__(self, window_ticks=kDefaultWindowTicks, expected_orders=0):
        self.core.reset(new CL3Book(as_size(window_ticks), as_size(expected_orders)))

    def add(self, order_id, side, price, qty):
        cdef uint64_t i = as_uint64(order_id)
        cdef int64_t p = as_int64(price), q = as_int64(qty)
        cdef int s = side_code(side)
        if s == 0:
            return <int>CL3Result.BadSide
        return <int>self.core.get().add(i, <CSide>s, p, q)

    def modify(self, order_id, price, qty):
        cdef uint64_t i = as_uint64(order_id)
        cdef int64_t p = as_int64(price), q = as_int64(qty)
        return <int>self.core.get().modify(i, p, q)

    def remove(self, order_id):
        return <int>self.core.get().remove(as_uint64(order_id))

    def execute(self, order_id, qty):
        cdef uint64_t i = as_uint64(order_id)
        cdef int64_t q = as_int64(qty)
        return <int>self.core.get().execute(i, q)

    def clear(self):
        self.core.get().clear()

    def best(self, side):
        return best_of(levels_of(self), query_side(side))

    def best_bid(self):
        return best_of(levels_of(self), CSide.Bid)

    def best_ask(self):
        return best_of(levels_of(self), CSide.Ask)

    def top(self, side, n):
        return levels_out(levels_of(self), query_side(side), as_count(n))

    def levels(self, side):
        cdef CSide s = query_side(side)
        prices, qtys = levels_out(levels_of(self), s, self.core.get().level_count(s))
        return list(zip(prices.tolist(), qtys.tolist()))

    def level_count(self, side):
        return self.core.get().level_count(query_side(side))

    def crossed(self):
        return self.core.get().crossed()

    def order_count(self):
        return self.core.get().order_count()

    def order(self, order_id):
        """(side, price, qty) of a resting order, or None."""
        cdef CSide side
        cdef int64_t price, qty
        if not self.core.get().order(as_uint64(order_id), &side, &price, &qty):
            return None
        return (<int>side, price, qty)

    def orders(self, side):
        """[(order_id, price, qty)], best price first, FIFO within a level."""
        cdef CSide s = query_side(side)
        cdef size_t n = self.core.get().order_count()
        ids = np.empty(n, dtype=np.uint64)
        prices = np.empty(n, dtype=np.int64)
        qtys = np.empty(n, dtype=np.int64)
        cdef uint64_t[::1] i = ids
        cdef int64_t[::1] p = prices
        cdef int64_t[::1] q = qtys
        cdef size_t written = 0
        if n > 0:
            written = self.core.get().top_orders(s, n, &i[0], &p[0], &q[0])
        return list(zip(ids[:written].tolist(), prices[:written].tolist(),
                        qtys[:written].tolist()))

    @property
    def window_ticks(self):
        return self.core.get().window_ticks()

    def invariants_hold(self):
        return self.core.get().invariants_hold()


cdef inline CL2Book* levels_of(L3Book book):
    return <CL2Book*>&book.core.get().levels()
