# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::RiskEngine (include/lockstep/core/risk.hpp).

Verdicts come back as plain ints; lockstep.core.risk wraps this class with enums, typed configs and
custom Python rules, and is the public API. Intents and views are read by attribute (the
lockstep.core.risk.Intent / RiskView dataclasses, which have already range-checked every field).
"""
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep._bindings.intents cimport fill_intent
from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.intents cimport CIntent, CIntentKind, CTimeInForce
from lockstep.includes.core.risk cimport (CRiskConfig, CRiskEngine, CRiskLimits, CRiskReason,
                                     CRiskView, CTradingMode, kMaxRiskInstruments,
                                     kRiskReasonCount, risk_reason_name)
from lockstep.includes.base.status cimport CStatus

REASON_COUNT = kRiskReasonCount
MAX_INSTRUMENTS = kMaxRiskInstruments
# The C++ enumerators by name, so tests can hold the Python enum to them.
REASON_NAMES = {i: risk_reason_name(<CRiskReason>i).decode() for i in range(kRiskReasonCount)}
STATUS_OK = <int>CStatus.Ok


cdef inline void fill_view(CRiskView* out, object view) except *:
    out.position = <int64_t>PyNumber_Index(view.position)
    out.open_orders = <uint32_t>PyNumber_Index(view.open_orders)
    out.open_buy_qty = <int64_t>PyNumber_Index(view.open_buy_qty)
    out.open_sell_qty = <int64_t>PyNumber_Index(view.open_sell_qty)
    mid = view.mid
    out.mid_known = mid is not None
    out.mid = 0 if mid is None else <int64_t>PyNumber_Index(mid)
    out.open_orders_total = <uint32_t>PyNumber_Index(view.open_orders_total)


cdef class RiskEngine:
    """lockstep::RiskEngine. Configuration calls return a Status code (0 = ok)."""

    cdef CRiskEngine core

    def set_config(self, uint32_t max_open_orders_total, uint32_t rate_per_second,
                   uint32_t burst, uint8_t mode, bint kill_switch):
        cdef CRiskConfig c
        c.max_open_orders_total = max_open_orders_total
        c.rate_per_second = rate_per_second
        c.burst = burst
        c.mode = <CTradingMode>mode
        c.kill_switch = kill_switch
        return <int>self.core.set_config(c)

    def set_limits(self, uint32_t instrument, int64_t max_order_qty, int64_t max_order_notional,
                   int64_t max_position, uint32_t max_open_orders, uint32_t price_band_bps):
        cdef CRiskLimits l
        l.max_order_qty = max_order_qty
        l.max_order_notional = max_order_notional
        l.max_position = max_position
        l.max_open_orders = max_open_orders
        l.price_band_bps = price_band_bps
        return <int>self.core.set_limits(instrument, l)

    def set_mode(self, uint8_t mode):
        self.core.set_mode(<CTradingMode>mode)

    def set_kill_switch(self, bint on):
        self.core.set_kill_switch(on)

    @property
    def mode(self):
        return <int>self.core.mode()

    @property
    def kill_switch(self):
        return self.core.kill_switch()

    def known(self, uint32_t instrument):
        return self.core.known(instrument)

    def check(self, intent, view, int64_t ts_recv):
        cdef CIntent i
        cdef CRiskView v
        cdef CRiskReason r
        fill_intent(&i, intent)
        fill_view(&v, view)
        with nogil:
            r = self.core.check(i, v, ts_recv)
        return <int>r

    def evaluate(self, intent, view, int64_t ts_recv):
        cdef CIntent i
        cdef CRiskView v
        fill_intent(&i, intent)
        fill_view(&v, view)
        return <int>self.core.evaluate(i, v, ts_recv)

    def record(self, intent, int reason, int64_t ts_recv):
        cdef CIntent i
        if not 0 <= reason < <int>kRiskReasonCount:
            raise ValueError(f"no risk reason {reason}")
        fill_intent(&i, intent)
        self.core.record(i, <CRiskReason>reason, ts_recv)

    def counts(self, instrument=None):
        """Verdicts per reason value, as a list indexed by RiskReason."""
        cdef uint32_t ins
        cdef size_t r
        if instrument is None:
            return [self.core.count(<CRiskReason>r) for r in range(kRiskReasonCount)]
        ins = PyNumber_Index(instrument)
        return [self.core.count(ins, <CRiskReason>r) for r in range(kRiskReasonCount)]

    def reset_counts(self):
        self.core.reset_counts()

    def tokens(self, int64_t ts_recv):
        return self.core.tokens(ts_recv)
