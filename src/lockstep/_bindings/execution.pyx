# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::ExecutionState (include/lockstep/core/execution.hpp).

Results and statuses come back as plain ints and 128-bit money as Python ints; lockstep.core.execution
wraps this class with enums and dicts and is the public API. Intents are read by attribute (the
lockstep.core.risk.Intent dataclass, which has already range-checked every field).
"""
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep._bindings.intents cimport fill_intent
from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.execution cimport (CExecResult, CExecutionState, COrderStatus,
                                          CPositionView, CWide, kMaxExecInstruments, kNoSlot)
from lockstep.includes.core.intents cimport CIntent, CIntentKind, CTimeInForce
from lockstep.includes.core.risk cimport CRiskView

MAX_INSTRUMENTS = kMaxExecInstruments
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "OrderStatus": {
        "Submitted": <int>COrderStatus.Submitted, "Accepted": <int>COrderStatus.Accepted,
        "PartiallyFilled": <int>COrderStatus.PartiallyFilled, "Filled": <int>COrderStatus.Filled,
        "Canceled": <int>COrderStatus.Canceled, "Rejected": <int>COrderStatus.Rejected,
        "Expired": <int>COrderStatus.Expired,
    },
    "ExecResult": {
        "Ok": <int>CExecResult.Ok, "UnknownOrder": <int>CExecResult.UnknownOrder,
        "DuplicateOrder": <int>CExecResult.DuplicateOrder,
        "InvalidTransition": <int>CExecResult.InvalidTransition,
        "Overfill": <int>CExecResult.Overfill, "BadQty": <int>CExecResult.BadQty,
        "BadIntent": <int>CExecResult.BadIntent,
    },
}


cdef inline object wide(CWide w):
    return (<object>w.hi << 64) | <object>w.lo


cdef class ExecutionState:
    """lockstep::ExecutionState. Transitions return an ExecResult value (0 = ok)."""

    cdef CExecutionState core

    def reserve(self, size_t orders, uint32_t instruments=0):
        self.core.reserve(orders, instruments)

    def submit(self, intent, int64_t ts):
        cdef CIntent i
        fill_intent(&i, intent)
        return <int>self.core.submit(i, ts)

    def on_accepted(self, uint64_t id, int64_t ts):
        return <int>self.core.on_accepted(id, ts)

    def on_rejected(self, uint64_t id, int64_t ts):
        return <int>self.core.on_rejected(id, ts)

    def on_canceled(self, uint64_t id, int64_t ts):
        return <int>self.core.on_canceled(id, ts)

    def on_expired(self, uint64_t id, int64_t ts):
        return <int>self.core.on_expired(id, ts)

    def on_fill(self, uint64_t id, int64_t price, int64_t qty, int64_t fee, bint maker,
                int64_t ts):
        return <int>self.core.on_fill(id, price, qty, fee, maker, ts)

    def on_replaced(self, uint64_t id, int64_t new_price, int64_t new_qty, int64_t ts):
        return <int>self.core.on_replaced(id, new_price, new_qty, ts)

    def on_trade_broken(self, uint32_t instrument, int side, int64_t price, int64_t qty,
                        int64_t fee):
        if side < 0 or side > 255:
            return <int>CExecResult.BadIntent
        return <int>self.core.on_trade_broken(instrument, <CSide>side, price, qty, fee)

    def on_trade_corrected(self, uint32_t instrument, int side, int64_t old_price,
                           int64_t new_price, int64_t qty, int64_t fee_change):
        if side < 0 or side > 255:
            return <int>CExecResult.BadIntent
        return <int>self.core.on_trade_corrected(instrument, <CSide>side, old_price, new_price,
                                                 qty, fee_change)

    def order_count(self):
        return self.core.order_count()

    cdef tuple _row(self, uint32_t s):
        return (self.core.client_order_id(s), self.core.instrument(s), <int>self.core.side(s),
                <int>self.core.tif(s), self.core.price(s), self.core.qty(s),
                self.core.filled_qty(s), <int>self.core.status(s), self.core.ts_submitted(s),
                self.core.ts_last(s))

    def order(self, uint64_t id):
        """(client_order_id, instrument, side, tif, price, qty, filled_qty, status, ts_submitted,
        ts_last), or None if unknown."""
        cdef uint32_t s = self.core.slot(id)
        return None if s == kNoSlot else self._row(s)

    def orders(self):
        """Every order's row, in slot (dispatch) order."""
        cdef uint32_t s
        return [self._row(s) for s in range(self.core.order_count())]

    def position(self, uint32_t instrument):
        """(position, cost, realized, fees)."""
        cdef CPositionView v = self.core.position(instrument)
        return (v.position, wide(v.cost), wide(v.realized), wide(v.fees))

    def unrealized(self, uint32_t instrument, int64_t mark):
        return wide(self.core.unrealized_wide(instrument, mark))

    def open_orders(self, uint32_t instrument):
        return self.core.open_orders(instrument)

    def open_orders_total(self):
        return self.core.open_orders_total()

    def open_qty(self, uint32_t instrument):
        """(open buy qty, open sell qty)."""
        return (self.core.open_buy_qty(instrument), self.core.open_sell_qty(instrument))

    def own_qty_at(self, uint32_t instrument, uint8_t side, int64_t price):
        return self.core.own_qty_at(instrument, <CSide>side, price)

    def risk_view(self, uint32_t instrument, bint mid_known, int64_t mid):
        """(position, open_orders, open_buy_qty, open_sell_qty, mid_known, mid,
        open_orders_total) as the core fills lockstep::RiskView."""
        cdef CRiskView v
        self.core.fill_risk_view(instrument, mid_known, mid, &v)
        return (v.position, v.open_orders, v.open_buy_qty, v.open_sell_qty, v.mid_known, v.mid,
                v.open_orders_total)
