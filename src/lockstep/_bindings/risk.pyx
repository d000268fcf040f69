# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings of lockstep::RiskEngine (include/lockstep/core/risk.hpp).

Verdicts come back as plain ints; lockstep.core.risk wraps this class with enums, typed configs and
custom Python rules, and is the public API. Intents and views are read by attribute (the
lockstep.core.risk.Intent / RiskView dataclasses, which have already range-checked every field).
"""
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep._bindings.configs cimport fill_order_rules, fill_risk_config, fill_risk_limits
from lockstep._bindings.intents cimport fill_intent
from lockstep.includes.core.intents cimport CIntent, CIntentKind, CTimeInForce
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.core.risk cimport (CRiskConfig, CRiskEngine, CRiskLimits, CRiskReason,
                                     CRiskView, CTradingMode, kMaxRiskInstruments,
                                     kRiskReasonCount, risk_reason_name)

MAX_INSTRUMENTS = kMaxRiskInstruments
# The C++ enumerators by name, and the C++ risk_reason_name() of each reason value (0 to
# kRiskReasonCount - 1), which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "TradingMode": {
        "Active": <int>CTradingMode.Active, "ReduceOnly": <int>CTradingMode.ReduceOnly,
        "Halted": <int>CTradingMode.Halted,
    },
    "IntentKind": {
        "SubmitLimit": <int>CIntentKind.SubmitLimit, "SubmitMarket": <int>CIntentKind.SubmitMarket,
        "Cancel": <int>CIntentKind.Cancel, "Replace": <int>CIntentKind.Replace,
    },
    "TimeInForce": {
        "GTC": <int>CTimeInForce.GTC, "IOC": <int>CTimeInForce.IOC,
        "PostOnly": <int>CTimeInForce.PostOnly,
    },
}
ENUM_NAMES = {
    "RiskReason": {i: risk_reason_name(<CRiskReason>i).decode() for i in range(kRiskReasonCount)},
}


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
    """lockstep::RiskEngine. Configuration calls take a lockstep.core.risk.RiskConfig /
    RiskLimits and return a Status value."""

    cdef CRiskEngine core

    def set_config(self, config):
        cdef CRiskConfig c
        fill_risk_config(&c, config)
        return <int>self.core.set_config(c)

    def set_limits(self, uint32_t instrument, limits):
        cdef CRiskLimits l
        fill_risk_limits(&l, limits)
        return <int>self.core.set_limits(instrument, l)

    def set_order_rules(self, uint32_t instrument, rules):
        cdef COrderRules r
        fill_order_rules(&r, rules)
        return <int>self.core.set_order_rules(instrument, r)

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
