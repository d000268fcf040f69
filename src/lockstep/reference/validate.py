"""Pure-Python twin of include/lockstep/data/validate.hpp: the same verdicts, record by record, written
for clarity; tests compare the two on random streams."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lockstep.checks import INT64_MIN
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.enums import Anomaly, Rule, RuleAction, TradingPhase
from lockstep.events import PHASE_SCOPE_SESSION, EventKind, Flag
from lockstep.reference.replay import PHASES, ReferenceReplayer

_BOOK_KINDS = {EventKind.L2_SET, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
               EventKind.L3_EXECUTE, EventKind.BOOK_CLEAR}


def _bad_price_qty(kind: int, price: int, qty: int) -> bool:
    if kind in (EventKind.TRADE, EventKind.L3_ADD):
        return price <= 0 or qty <= 0
    if kind == EventKind.L2_SET:
        return price <= 0 or qty < 0
    if kind in (EventKind.L3_MODIFY, EventKind.VENUE_BBO):
        return qty < 0 or (qty > 0 and price <= 0)
    if kind == EventKind.L3_EXECUTE:
        return qty <= 0
    return False


# Book anomalies of the reference replayer that are rules, in the order the C++ picks them.
_ANOMALY_RULE = {
    Anomaly.CROSSED_BOOK.label: Rule.CROSSED_BOOK, Anomaly.UNKNOWN_ORDER.label: Rule.UNKNOWN_ORDER_REF,
    Anomaly.DUPLICATE_ORDER.label: Rule.UNKNOWN_ORDER_REF,
    Anomaly.BAD_QUANTITY.label: Rule.BAD_PRICE_QTY, Anomaly.BAD_PRICE.label: Rule.BAD_PRICE_QTY,
    Anomaly.BAD_SIDE.label: Rule.BAD_PRICE_QTY,
}


class ReferenceValidator:
    def __init__(self, book_types: Sequence[str], requires_snapshot: Sequence[bool],
                 actions: Mapping[str, str], min_feed_latency_ns: int, max_feed_latency_ns: int,
                 session_phase: int = TradingPhase.UNKNOWN) -> None:
        self.books = ReferenceReplayer(book_types)
        self.books.session_phase = int(session_phase)
        self.state = ["never" if r else "valid" for r in requires_snapshot]
        self.cause: list[tuple[int, int]] = [(0, -1)] * len(book_types)
        self.actions = {rule.label: actions.get(rule.label, RuleAction.QUARANTINE.label) for rule in Rule}
        self.min_latency = min_feed_latency_ns
        self.max_latency = max_feed_latency_ns
        self.last_ts = INT64_MIN

    def _action(self, rule: Rule) -> str:
        return self.actions[rule.label]

    def check(self, chunk: NormalizedChunk) -> tuple[dict[str, np.ndarray], np.ndarray, list[dict[str, Any]]]:
        m, n = chunk.n_records, chunk.n_events
        out = {"rule": np.zeros(m, np.uint8), "warn": np.zeros(m, np.uint8), "cause": np.full(m, -1, np.int64)}
        keep = np.zeros(n, np.uint8)
        markers: list[dict[str, Any]] = []
        ev = {k: v[:n].tolist() for k, v in chunk.events.items()}
        er = chunk.event_record[:n].tolist()
        e = 0
        for r in range(m):
            rec = chunk.first_record + r
            begin = e
            while e < n and er[e] == rec:
                e += 1
            if chunk.rec_problem[r]:
                out["rule"][r] = chunk.rec_problem[r]
                continue
            rule, cause, warn = self._judge(ev, rec, begin, e, markers)
            if rule:
                out["rule"][r] = rule
                out["cause"][r] = cause
            else:
                keep[begin:e] = 1
                for i in range(begin, e):
                    self.last_ts = max(self.last_ts, ev["ts_recv"][i])
                out["warn"][r] = warn
        return out, keep, markers

    def _judge(self, ev, rec, begin, end, markers):
        q: tuple[int, int] | None = None  # (rule, cause)
        w = 0

        def hit(rule: Rule) -> None:
            nonlocal q, w
            action = self._action(rule)
            if action == RuleAction.QUARANTINE.label and q is None:
                q = (int(rule), -1)
            elif action == RuleAction.WARN.label and not w:
                w = int(rule)

        cleared: set[int] = set()
        n_inst = len(self.state)
        for i in range(begin, end):
            inst, kind = ev["instrument"][i], ev["kind"][i]
            if inst >= n_inst:
                hit(Rule.MALFORMED_RECORD)
                continue
            if ev["ts_recv"][i] < self.last_ts:
                if q is None:
                    q = (int(Rule.TS_RECV_BACKWARDS), -1)
            elif ev["flags"][i] & Flag.BAD_TS_RECV:
                hit(Rule.TS_RECV_BACKWARDS)
            if kind < 32 and kind != EventKind.BOOK_CLEAR and ev["ts_event"][i] != 0:
                latency = ev["ts_recv"][i] - ev["ts_event"][i]
                if latency < self.min_latency or latency > self.max_latency:
                    hit(Rule.FEED_LATENCY)
            if _bad_price_qty(kind, ev["price"][i], ev["qty"][i]):
                hit(Rule.BAD_PRICE_QTY)
            if kind == EventKind.GAP:
                hit(Rule.SEQUENCE_GAP)
            elif kind == EventKind.TRADING_PHASE:
                if ev["side"][i] not in PHASES or ev["order_id"][i] > PHASE_SCOPE_SESSION:
                    hit(Rule.MALFORMED_RECORD)
            elif kind in _BOOK_KINDS:
                if kind == EventKind.BOOK_CLEAR:
                    cleared.add(inst)
                elif inst not in cleared:
                    if self.state[inst] == "never":
                        hit(Rule.DELTAS_BEFORE_SNAPSHOT)
                    elif self.state[inst] == "invalid" and q is None:
                        q = self.cause[inst]
        if q is None:
            for i in range(begin, end):
                inst, kind = ev["instrument"][i], ev["kind"][i]
                if kind == EventKind.BOOK_CLEAR:
                    self.state[inst] = "valid"
                if kind == EventKind.GAP:
                    self._invalidate(inst, Rule.SEQUENCE_GAP, rec)
                    continue
                before = dict(self.books.anomalies)
                self._apply(ev, i)
                found = None
                for name, rule in _ANOMALY_RULE.items():
                    if self.books.anomalies[name] != before[name]:
                        if rule == Rule.CROSSED_BOOK or found is None:
                            found = rule
                if found is None and any(self.books.anomalies[k] != before[k] for k in before
                                         if k not in _ANOMALY_RULE and k != Anomaly.UNKNOWN_LEVEL.label):
                    found = Rule.MALFORMED_RECORD
                if found == Rule.CROSSED_BOOK and self.books.phase(inst) == TradingPhase.UNKNOWN:
                    found = Rule.CROSSED_BOOK_PHASE_UNKNOWN
                if found is not None:
                    had = q
                    hit(found)
                    if q is not None and had is None:
                        self._invalidate(inst, found, rec)
                        markers.append(self._marker(ev, begin, begin, inst, found.label, rec, False))
                        break
        else:
            for i in range(begin, end):
                inst, kind = ev["instrument"][i], ev["kind"][i]
                if inst >= n_inst:
                    continue
                if not (kind == EventKind.GAP or kind in _BOOK_KINDS) or self.state[inst] != "valid":
                    continue
                if q[0] == Rule.DUPLICATE_MESSAGE:
                    continue
                self._invalidate(inst, Rule(q[0]), rec)
                markers.append(self._marker(ev, begin, i, inst, Rule(q[0]).label, rec, True))
        if q is not None:
            return q[0], q[1], 0
        return 0, -1, w

    def _marker(self, ev, before: int, at: int, inst: int, rule: str, rec: int,
                gap_ids: bool) -> dict[str, Any]:
        # Promoted events stay in Processing Order after a marker (see validate.hpp).
        self.last_ts = max(ev["ts_recv"][at], self.last_ts)
        gap = gap_ids and ev["kind"][at] == EventKind.GAP
        return {"before_event": before, "instrument": inst, "rule": rule, "record": rec,
                "ts_recv": self.last_ts, "seq": ev["seq"][at] if gap else 0,
                "order_id": ev["order_id"][at] if gap else 0}

    def _invalidate(self, inst: int, rule: Rule, rec: int) -> None:
        if self.state[inst] != "valid":
            return
        self.state[inst] = "invalid"
        self.cause[inst] = (int(rule), rec)

    def _apply(self, ev, i) -> None:
        cols = {k: np.asarray([v[i]]) for k, v in ev.items()}
        self.books.apply(cols, 1)
