# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::Validator (include/lockstep/data/validate.hpp)."""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

import numpy as np

from lockstep._bindings.columns cimport columns_view
from lockstep._bindings.replay cimport book_types_of
from lockstep.includes.core.replay cimport CBookType
from lockstep.includes.core.events cimport CEventColumns, CTradingPhase
from lockstep.includes.core.rules cimport CRule, kRuleCount, rule_name
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.validate cimport (
    CMarker, CRecordVerdicts, CRuleAction, CValidator, CValidatorConfig,
)

from lockstep.enums import Rule, RuleAction, TradingPhase
from lockstep.errors import check_status

# The C++ enumerators by name, and the C++ rule_name() of each rule value, which
# tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "RuleAction": {
        "Off": <int>CRuleAction.Off, "Warn": <int>CRuleAction.Warn,
        "Quarantine": <int>CRuleAction.Quarantine,
    },
}
ENUM_NAMES = {
    "Rule": {i: rule_name(<CRule>i).decode() for i in range(kRuleCount)},
}


cdef class Validator:
    """Record-by-record verdicts over NormalizedChunks; keeps the books across chunks."""

    cdef unique_ptr[CValidator] core
    cdef vector[CMarker] markers

    def __cinit__(self, book_types, requires_snapshot, actions, int64_t min_feed_latency_ns,
                  int64_t max_feed_latency_ns, session_phase=TradingPhase.UNKNOWN):
        cdef CValidatorConfig cfg
        cdef uint8_t required
        cfg.book_types = book_types_of(book_types)
        for flag in requires_snapshot:
            # A typed local: Cython binds push_back's const reference to a conditional
            # expression's temporary, which is gone by the call (it read back as garbage).
            required = 1 if flag else 0
            cfg.requires_snapshot.push_back(required)
        for rule in Rule:
            action = RuleAction.from_label(actions.get(rule.label, RuleAction.QUARANTINE.label))
            cfg.action[<size_t>rule] = <CRuleAction><uint8_t>action
        cfg.min_feed_latency_ns = min_feed_latency_ns
        cfg.max_feed_latency_ns = max_feed_latency_ns
        cfg.session_phase = <CTradingPhase><uint8_t>TradingPhase(session_phase)
        self.core.reset(new CValidator(cfg))

    def check(self, chunk):
        """Verdicts for the chunk's records: a dict of arrays (rule, warn, cause, instrument,
        detail_a, detail_b) per record, `keep` per event, and the GAP markers to insert."""
        cdef size_t n_records = chunk.n_records
        cdef size_t n_events = chunk.n_events
        cdef CEventColumns view = columns_view(chunk.events, n_events)
        cdef const int64_t[::1] event_record = np.ascontiguousarray(chunk.event_record, dtype=np.int64)
        cdef const uint8_t[::1] problem = np.ascontiguousarray(chunk.rec_problem, dtype=np.uint8)
        if <size_t>event_record.shape[0] < n_events or <size_t>problem.shape[0] < n_records:
            raise ValueError("chunk arrays are shorter than its counts")
        rule = np.zeros(n_records, np.uint8)
        warn = np.zeros(n_records, np.uint8)
        cause = np.full(n_records, -1, np.int64)
        instrument = np.zeros(n_records, np.uint32)
        detail_a = np.zeros(n_records, np.int64)
        detail_b = np.zeros(n_records, np.int64)
        keep = np.zeros(n_events, np.uint8)
        cdef uint8_t[::1] rule_v = rule, warn_v = warn, keep_v = keep
        cdef int64_t[::1] cause_v = cause, a_v = detail_a, b_v = detail_b
        cdef uint32_t[::1] inst_v = instrument
        cdef CRecordVerdicts out
        cdef uint8_t dummy8 = 0
        if n_records:
            out.rule = &rule_v[0]; out.warn = &warn_v[0]; out.cause = &cause_v[0]
            out.instrument = &inst_v[0]; out.detail_a = &a_v[0]; out.detail_b = &b_v[0]
        cdef const int64_t* er = &event_record[0] if n_events else NULL
        cdef const uint8_t* pr = &problem[0] if n_records else NULL
        cdef uint8_t* kp = &keep_v[0] if n_events else &dummy8
        cdef int64_t first = chunk.first_record
        cdef CStatus status
        self.markers.clear()
        with nogil:
            status = self.core.get().check(view, er, first, n_records, pr, out, kp, self.markers)
        check_status(<int>status, f"chunk at record {first}: events do not follow its records")
        markers = [
            {"before_event": m.before_event, "instrument": m.instrument, "rule": Rule(m.rule).label,
             "record": m.record, "ts_event": m.ts_event, "ts_recv": m.ts_recv, "seq": m.seq,
             "order_id": m.order_id}
            for m in self.markers
        ]
        return {"rule": rule, "warn": warn, "cause": cause, "instrument": instrument,
                "detail_a": detail_a, "detail_b": detail_b}, keep, markers

    def add_instruments(self, book_types, requires_snapshot):
        cdef vector[CBookType] types = book_types_of(book_types)
        for i, flag in enumerate(requires_snapshot):
            self.core.get().add_instrument(types[i], bool(flag))

    def book_valid(self, uint32_t instrument):
        return self.core.get().book_valid(instrument)

    @property
    def invalidations(self):
        return self.core.get().invalidations()
