"""Pure-Python reference of the compiled replay (include/lockstep/core/replay.hpp).

Slow and obvious: one event at a time through the reference books, the same anomaly rules, and the
State serialization written from docs/encoding.md ("State digest") rather than from the C++. Tests
replay the same events through both and compare digests, tops and anomaly counts.
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from lockstep.enums import Anomaly, BookKind, L2Result, L3Result, TradingPhase
from lockstep.events import EXECUTION_KIND_BEGIN, PHASE_SCOPE_SESSION, EventKind, Flag, Side
from lockstep.reference.books import L2Book, L3Book

ANOMALIES = Anomaly.labels()
_L3_KINDS = {EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE, EventKind.L3_EXECUTE}
_RESULT_ANOMALY = {
    L2Result.UNKNOWN_LEVEL: Anomaly.UNKNOWN_LEVEL.label, L2Result.BAD_QTY: Anomaly.BAD_QUANTITY.label,
    L2Result.BAD_PRICE: Anomaly.BAD_PRICE.label, L2Result.BAD_SIDE: Anomaly.BAD_SIDE.label,
}
_L3_RESULT_ANOMALY = {
    L3Result.UNKNOWN_ORDER: Anomaly.UNKNOWN_ORDER.label,
    L3Result.DUPLICATE_ORDER: Anomaly.DUPLICATE_ORDER.label,
    L3Result.BAD_QTY: Anomaly.BAD_QUANTITY.label, L3Result.BAD_PRICE: Anomaly.BAD_PRICE.label,
    L3Result.BAD_SIDE: Anomaly.BAD_SIDE.label,
}


PHASES = frozenset(TradingPhase)  # IntEnum members: `int in PHASES` works


def effective_phase(own: int, session: int) -> int:
    """An instrument's own phase, unless it only says "free to trade" (continuous) or nothing
    (unknown): then the session's, when the session has announced one (docs/encoding.md)."""
    if own in (TradingPhase.UNKNOWN, TradingPhase.CONTINUOUS) and session != TradingPhase.UNKNOWN:
        return session
    return own


class ReferenceReplayer:
    def __init__(self, book_types: Sequence[str]) -> None:
        self.types = list(book_types)
        self.books = [L3Book() if t == BookKind.L3.label else L2Book() for t in self.types]
        self.dirty = [False] * len(self.types)
        self.last_trade: list[tuple[int, int, int, int] | None] = [None] * len(self.types)
        self.anomalies = {name: 0 for name in ANOMALIES}
        self.events = 0
        self.valid = [True] * len(self.types)
        self.own_phase = [int(TradingPhase.UNKNOWN)] * len(self.types)
        self.session_phase = int(TradingPhase.UNKNOWN)
        self.invalid_stretches: list[tuple[int, int, int | None]] = []  # (inst, from, to)

    def apply(self, cols: Mapping[str, np.ndarray], size: int) -> None:
        rows = zip(*(cols[c][:size].tolist() for c in
                     ("ts_recv", "instrument", "kind", "side", "flags", "price", "qty", "order_id")))
        for ts_recv, inst, kind, side, flags, price, qty, order_id in rows:
            position = self.events
            self.events += 1
            if inst >= len(self.types):
                self.anomalies[Anomaly.BAD_INSTRUMENT.label] += 1
                continue
            if kind == EventKind.GAP and self.valid[inst]:
                self.valid[inst] = False
                self.invalid_stretches.append((inst, position, None))
            elif kind == EventKind.BOOK_CLEAR and not self.valid[inst]:
                self.valid[inst] = True
                k = max(i for i, s in enumerate(self.invalid_stretches) if s[0] == inst)
                self.invalid_stretches[k] = (inst, self.invalid_stretches[k][1], position)
            self._apply_one(inst, kind, side, price, qty, order_id, ts_recv)
            if flags & Flag.LAST:
                # The crossed check runs only after messages that changed the book.
                if self.dirty[inst]:
                    self.dirty[inst] = False
                    # Outside continuous trading orders may rest crossed: not an anomaly.
                    if self.books[inst].crossed() and self.phase(inst) in (TradingPhase.UNKNOWN,
                                                                           TradingPhase.CONTINUOUS):
                        self.anomalies[Anomaly.CROSSED_BOOK.label] += 1

    def phase(self, inst: int) -> int:
        return effective_phase(self.own_phase[inst], self.session_phase)

    def _apply_one(self, inst, kind, side, price, qty, order_id, ts_recv) -> None:
        book = self.books[inst]
        is_l3 = self.types[inst] == BookKind.L3.label
        if kind == EventKind.BOOK_CLEAR:
            book.clear()
            self.dirty[inst] = True
        elif kind == EventKind.L2_SET and not is_l3:
            result = book.set(side, price, qty)
            self._note(_RESULT_ANOMALY, result)
            self.dirty[inst] = self.dirty[inst] or result in (L2Result.OK, L2Result.REMOVED)
        elif kind in _L3_KINDS and is_l3:
            if kind == EventKind.L3_ADD:
                result = book.add(order_id, side, price, qty)
            elif kind == EventKind.L3_MODIFY:
                result = book.modify(order_id, price, qty)
            elif kind == EventKind.L3_DELETE:
                result = book.remove(order_id)
            else:
                result = book.execute(order_id, qty)
            self._note(_L3_RESULT_ANOMALY, result)
            self.dirty[inst] = self.dirty[inst] or result == L3Result.OK
        elif kind == EventKind.L2_SET or kind in _L3_KINDS:
            self.anomalies[Anomaly.WRONG_BOOK_KIND.label] += 1
        elif kind == EventKind.TRADE:
            self.last_trade[inst] = (ts_recv, price, qty, side)
            if qty <= 0:
                self.anomalies[Anomaly.BAD_QUANTITY.label] += 1
        elif kind == EventKind.TRADING_PHASE:
            if side not in PHASES:
                self.anomalies[Anomaly.BAD_SIDE.label] += 1
            elif order_id == PHASE_SCOPE_SESSION:
                self.session_phase = side
            else:
                self.own_phase[inst] = side
        elif kind in (EventKind.VENUE_BBO, EventKind.NONE) or kind >= EXECUTION_KIND_BEGIN:
            pass
        else:
            self.anomalies[Anomaly.UNKNOWN_KIND.label] += 1

    def _note(self, table, result) -> None:
        name = table.get(result)
        if name is not None:
            self.anomalies[name] += 1

    def serialize_state(self) -> bytes:
        u64 = struct.Struct("<Q").pack
        i64 = struct.Struct("<q").pack
        out = [u64(0x4C4F434B53544550), u64(2), u64(self.events), u64(len(self.types))]
        out += [u64(self.anomalies[name]) for name in ANOMALIES]
        out.append(u64(self.session_phase))
        for inst, book in enumerate(self.books):
            out.append(u64(1 if self.types[inst] == BookKind.L3.label else 0))
            out.append(u64(self.own_phase[inst]))
            trade = self.last_trade[inst]
            ts, price, qty, side = trade if trade else (0, 0, 0, 0)
            out += [u64(trade is not None), i64(ts), i64(price), i64(qty), u64(side)]
            for side in (Side.BID, Side.ASK):
                out.append(u64(book.level_count(side)))
                if self.types[inst] == BookKind.L3.label:
                    orders = book.orders(side)
                    out.append(u64(len(orders)))
                    out += [u64(oid) + i64(px) + i64(q) for oid, px, q in orders]
                else:
                    out += [i64(px) + i64(q) for px, q in book.levels(side)]
        return b"".join(out)

    def digest(self) -> str:
        return hashlib.sha256(self.serialize_state()).hexdigest()
