# Mirrors include/lockstep/core/order_rules.hpp.
from libc.stdint cimport int64_t


cdef extern from "lockstep/core/order_rules.hpp" namespace "lockstep" nogil:
    cdef cppclass COrderRules "lockstep::OrderRules":
        int64_t price_tick
        int64_t qty_lot
        int64_t min_qty
        int64_t min_notional
