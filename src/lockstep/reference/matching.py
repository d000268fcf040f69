"""Reference L2 matcher: lockstep.matching's API and results, in plain Python lists and ints.

Follows include/lockstep/matching.hpp rule by rule; resting orders are a list in insertion order.
"""
from __future__ import annotations

from lockstep.books import L2Book
from lockstep.events import Side
from lockstep.matching import (
    MAX_PRICE,
    MIN_PRICE,
    MatchEvent,
    MatchEventKind,
    MatchReject,
    MatchResult,
    RestingOrder,
    SubmitOutcome,
    _i64,
    _id,
    _int,
    _u8,
)
from lockstep.risk import Intent, IntentKind, TimeInForce

_K, _R, _O = MatchEventKind, MatchReject, SubmitOutcome


class L2Matcher:
    __slots__ = ("_events", "_orders")

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256) -> None:
        _int("reserve_orders", reserve_orders, 0, 1 << 24)
        _int("reserve_events", reserve_events, 0, 1 << 24)
        self._orders: list[list[int]] = []  # [id, side, price, qty, queue_ahead]
        self._events: list[MatchEvent] = []

    def _emit(self, kind: MatchEventKind, reason: MatchReject, maker: bool, coid: int,
              price: int, qty: int) -> None:
        self._events.append(MatchEvent(kind, reason, maker, coid, price, qty))

    def _find(self, coid: int) -> int:
        for k, o in enumerate(self._orders):
            if o[0] == coid:
                return k
        return -1

    def submit(self, client_order_id: int, side: Side | int, tif: TimeInForce | int, price: int,
               qty: int, book: L2Book) -> MatchResult:
        coid, side, tif = _id(client_order_id), _u8("side", side), _u8("tif", tif)
        price, qty = _i64("price", price), _i64("qty", qty)
        return self._submit(coid, side, tif, price, qty, book)

    def _submit(self, coid: int, side: int, tif: int, price: int, qty: int,
                book: L2Book) -> MatchResult:
        bad = _R.NONE
        if side not in (Side.BID, Side.ASK):
            bad = _R.BAD_SIDE
        elif tif not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY):
            bad = _R.BAD_TIF
        elif qty <= 0:
            bad = _R.BAD_QTY
        elif not MIN_PRICE <= price <= MAX_PRICE:
            bad = _R.BAD_PRICE
        elif self._find(coid) >= 0:
            bad = _R.DUPLICATE_ORDER
        buy = side == Side.BID
        opp = Side.ASK if buy else Side.BID
        crosses = (lambda p: p <= price) if buy else (lambda p: p >= price)
        if bad == _R.NONE and tif == TimeInForce.POST_ONLY:
            best = book.best(opp)
            if best is not None and crosses(best[0]):
                bad = _R.POST_ONLY_WOULD_CROSS
        if bad != _R.NONE:
            self._emit(_K.REJECTED, bad, False, coid, price, qty)
            return MatchResult(_O.REJECTED, bad, 0, 0)
        left = qty
        if tif != TimeInForce.POST_ONLY:
            for p, q in book.levels(opp):
                if not crosses(p) or left == 0:
                    break
                take = min(q, left)
                if take > 0:
                    self._emit(_K.FILL, _R.NONE, False, coid, p, take)
                    left -= take
        filled = qty - left
        if left == 0:
            return MatchResult(_O.FILLED, _R.NONE, filled, 0)
        if tif == TimeInForce.IOC:
            self._emit(_K.CANCELED, _R.NONE, False, coid, price, left)
            return MatchResult(_O.CANCELED, _R.NONE, filled, 0)
        ahead = next((q for p, q in book.levels(side) if p == price), 0)
        self._orders.append([coid, side, price, left, ahead])
        return MatchResult(_O.RESTED, _R.NONE, filled, left)

    def submit_intent(self, intent: Intent, book: L2Book) -> MatchResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.risk.Intent, not {type(intent).__name__}")
        coid, side = _id(intent.client_order_id), _u8("side", intent.side)
        price, qty = _i64("price", intent.price), _i64("qty", intent.qty)
        if intent.kind == IntentKind.SUBMIT_MARKET:
            price = MAX_PRICE if side == Side.BID else MIN_PRICE
            return self._submit(coid, side, TimeInForce.IOC, price, qty, book)
        if intent.kind != IntentKind.SUBMIT_LIMIT:
            self._emit(_K.REJECTED, _R.BAD_TIF, False, coid, price, qty)
            return MatchResult(_O.REJECTED, _R.BAD_TIF, 0, 0)
        return self._submit(coid, side, _u8("tif", intent.tif), price, qty, book)

    def cancel(self, client_order_id: int) -> bool:
        coid = _id(client_order_id)
        k = self._find(coid)
        if k < 0:
            self._emit(_K.CANCEL_REJECTED, _R.UNKNOWN_ORDER, False, coid, 0, 0)
            return False
        o = self._orders.pop(k)
        self._emit(_K.CANCELED, _R.NONE, False, o[0], o[2], o[3])
        return True

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        price, qty, aggressor = _i64("price", price), _i64("qty", qty), _u8("aggressor", aggressor)
        if qty <= 0 or aggressor not in (Side.BID, Side.ASK):
            return
        ours = Side.BID if aggressor == Side.ASK else Side.ASK
        used = 0
        for o in self._orders:
            coid, side, p, left, ahead = o
            if side != ours:
                continue
            fill = 0
            if (price < p) if ours == Side.BID else (price > p):
                fill = left
            elif price == p:
                fill = max(0, min(qty - ahead - used, left))
                used += fill
                o[4] = max(0, ahead - qty)
            if fill > 0:
                self._emit(_K.FILL, _R.NONE, True, coid, p, fill)
                o[3] -= fill
        self._orders = [o for o in self._orders if o[3] > 0]

    def on_level(self, side: Side | int, price: int, qty: int) -> None:
        side, price, qty = _u8("side", side), _i64("price", price), _i64("qty", qty)
        if qty < 0:
            return
        for o in self._orders:
            if o[1] == side and o[2] == price and o[4] > qty:
                o[4] = qty

    def drain(self) -> list[MatchEvent]:
        out, self._events = self._events, []
        return out

    def orders(self) -> list[RestingOrder]:
        return [RestingOrder(o[0], Side(o[1]), o[2], o[3], o[4]) for o in self._orders]

    def order(self, client_order_id: int) -> RestingOrder | None:
        k = self._find(_id(client_order_id))
        if k < 0:
            return None
        o = self._orders[k]
        return RestingOrder(o[0], Side(o[1]), o[2], o[3], o[4])
