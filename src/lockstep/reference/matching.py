"""Reference L2 and L3 matchers: lockstep.venue.matching's API and results, in plain Python lists and ints.

Follows include/lockstep/venue/matching.hpp and l3_matching.hpp rule by rule (docs/venue.md states the
rules); resting orders are a list in insertion order.
"""
from __future__ import annotations

import math

from lockstep.checks import INT64_MAX, i64, int_in, non_negative_float, queue_model, u8, u64
from lockstep.core.risk import Intent
from lockstep.enums import (
    IntentKind,
    MatchEventKind,
    MatchReject,
    QueueModel,
    SubmitOutcome,
    TimeInForce,
)
from lockstep.events import EventKind, Side
from lockstep.venue.matching import (
    MAX_PRICE,
    MIN_PRICE,
    MatchEvent,
    MatchResult,
    RestingOrder,
)

_K, _R, _O = MatchEventKind, MatchReject, SubmitOutcome


def _known(side: int) -> Side:
    return Side(side) if side in (Side.BID, Side.ASK) else Side.NONE


def _crosses(buy: bool, limit: int, level: int) -> bool:
    return level <= limit if buy else level >= limit


def _opp(side: int) -> int:
    return Side.ASK if side == Side.BID else Side.BID


def _check(side: int, tif: int, price: int, qty: int) -> MatchReject:
    if side not in (Side.BID, Side.ASK):
        return _R.BAD_SIDE
    if tif not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY):
        return _R.BAD_TIF
    if qty <= 0:
        return _R.BAD_QTY
    if not MIN_PRICE <= price <= MAX_PRICE:
        return _R.BAD_PRICE
    return _R.NONE


def _would_cross(book, side: int, price: int) -> bool:
    best = book.best(_opp(side))
    return best is not None and _crosses(side == Side.BID, price, best[0])


def _qty_at(book, side: int, price: int) -> int:
    return next((q for p, q in book.levels(side) if p == price), 0)


def ahead_share(d: int, ahead: int, behind: int, power: float) -> int:
    """floor(d * f(ahead) / (f(ahead) + f(behind))), f(x) = x**power, capped at ahead; the same
    IEEE double operations as detail::ahead_share in matching.hpp."""
    if d <= 0 or ahead <= 0:
        return 0
    r = d
    if behind > 0:
        a, b = float(ahead), float(behind)
        if ahead >= behind:
            p = 1.0 / (1.0 + math.pow(b / a, power))
        else:
            t = math.pow(a / b, power)
            p = t / (1.0 + t)
        x = math.floor(float(d) * p)
        r = 0 if not x > 0 else (d if x >= float(d) else int(x))
    return min(r, ahead)


class _Base:
    """What both matchers share: validation, taking liquidity, cancel and the outputs."""

    __slots__ = ("_events", "_orders")

    def __init__(self, reserve_orders: int, reserve_events: int) -> None:
        int_in("reserve_orders", reserve_orders, 0, 1 << 24)
        int_in("reserve_events", reserve_events, 0, 1 << 24)
        # Per order: dict(id, side, price, qty, ahead, tif, ...) in insertion order.
        self._orders: list[dict] = []
        self._events: list[MatchEvent] = []

    def _emit(self, kind: MatchEventKind, reason: MatchReject, maker: bool, side: int, coid: int,
              price: int, qty: int) -> None:
        self._events.append(MatchEvent(kind, reason, maker, coid, price, qty, Side(side)))

    def _find(self, coid: int) -> int:
        for k, o in enumerate(self._orders):
            if o["id"] == coid:
                return k
        return -1

    def _levels_book(self, book):
        return book

    def _take(self, coid: int, side: int, price: int, qty: int, book) -> int:
        left = qty
        for p, q in self._levels_book(book).levels(_opp(side)):
            if not _crosses(side == Side.BID, price, p) or left == 0:
                break
            take = min(q, left)
            if take > 0:
                self._emit(_K.FILL, _R.NONE, False, side, coid, p, take)
                left -= take
        return left

    def submit(self, client_order_id: int, side: Side | int, tif: TimeInForce | int, price: int,
               qty: int, book) -> MatchResult:
        coid, side, tif = u64("client_order_id", client_order_id), u8("side", side), u8("tif", tif)
        price, qty = i64("price", price), i64("qty", qty)
        return self._submit(coid, side, tif, price, qty, book)

    def _submit(self, coid: int, side: int, tif: int, price: int, qty: int,
                book) -> MatchResult:
        bad = _check(side, tif, price, qty)
        if bad == _R.NONE and self._find(coid) >= 0:
            bad = _R.DUPLICATE_ORDER
        if (bad == _R.NONE and tif == TimeInForce.POST_ONLY
                and _would_cross(self._levels_book(book), side, price)):
            bad = _R.POST_ONLY_WOULD_CROSS
        if bad != _R.NONE:
            self._emit(_K.REJECTED, bad, False, _known(side), coid, price, qty)
            return MatchResult(_O.REJECTED, bad, 0, 0)
        left = qty
        if tif != TimeInForce.POST_ONLY:
            left = self._take(coid, side, price, qty, book)
        filled = qty - left
        if left == 0:
            return MatchResult(_O.FILLED, _R.NONE, filled, 0)
        if tif == TimeInForce.IOC:
            self._emit(_K.CANCELED, _R.NONE, False, side, coid, price, left)
            return MatchResult(_O.CANCELED, _R.NONE, filled, 0)
        self._rest(coid, side, tif, price, left, book)
        return MatchResult(_O.RESTED, _R.NONE, filled, left)

    def submit_intent(self, intent: Intent, book) -> MatchResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        coid, side = u64("client_order_id", intent.client_order_id), u8("side", intent.side)
        price, qty = i64("price", intent.price), i64("qty", intent.qty)
        if intent.kind == IntentKind.SUBMIT_MARKET:
            price = MAX_PRICE if side == Side.BID else MIN_PRICE
            return self._submit(coid, side, TimeInForce.IOC, price, qty, book)
        if intent.kind != IntentKind.SUBMIT_LIMIT:
            self._emit(_K.REJECTED, _R.BAD_TIF, False, _known(side), coid, price, qty)
            return MatchResult(_O.REJECTED, _R.BAD_TIF, 0, 0)
        return self._submit(coid, side, u8("tif", intent.tif), price, qty, book)

    def cancel(self, client_order_id: int) -> bool:
        coid = u64("client_order_id", client_order_id)
        k = self._find(coid)
        if k < 0:
            self._emit(_K.CANCEL_REJECTED, _R.UNKNOWN_ORDER, False, Side.NONE, coid, 0, 0)
            return False
        o = self._orders.pop(k)
        self._emit(_K.CANCELED, _R.NONE, False, o["side"], o["id"], o["price"], o["qty"])
        return True

    def replace(self, client_order_id: int, new_price: int, new_qty: int, book) -> MatchResult:
        coid = u64("client_order_id", client_order_id)
        price, qty = i64("new_price", new_price), i64("new_qty", new_qty)
        k = self._find(coid)
        bad, keep, side = _R.NONE, False, Side.NONE
        if k < 0:
            bad = _R.UNKNOWN_ORDER
        else:
            o = self._orders[k]
            side = o["side"]
            keep = price == o["price"] and qty <= o["qty"]
            if qty <= 0:
                bad = _R.BAD_QTY
            elif not MIN_PRICE <= price <= MAX_PRICE:
                bad = _R.BAD_PRICE
            elif (not keep and o["tif"] == TimeInForce.POST_ONLY
                  and _would_cross(self._levels_book(book), side, price)):
                bad = _R.POST_ONLY_WOULD_CROSS
        if bad != _R.NONE:
            self._emit(_K.REPLACE_REJECTED, bad, False, side, coid, price, qty)
            return MatchResult(_O.REJECTED, bad, 0, 0)
        self._emit(_K.REPLACED, _R.NONE, False, side, coid, price, qty)
        if keep:
            self._orders[k]["qty"] = qty
            return MatchResult(_O.RESTED, _R.NONE, 0, qty)
        tif = self._orders.pop(k)["tif"]
        left = qty
        if tif != TimeInForce.POST_ONLY:
            left = self._take(coid, side, price, qty, book)
        filled = qty - left
        if left == 0:
            return MatchResult(_O.FILLED, _R.NONE, filled, 0)
        self._rest(coid, side, tif, price, left, book)
        return MatchResult(_O.RESTED, _R.NONE, filled, left)

    def _fill(self, o: dict, qty: int) -> None:
        self._emit(_K.FILL, _R.NONE, True, o["side"], o["id"], o["price"], qty)
        o["qty"] -= qty

    def drain(self) -> list[MatchEvent]:
        out, self._events = self._events, []
        return out

    def has_resting(self) -> bool:
        return bool(self._orders)

    @staticmethod
    def _out(o: dict) -> RestingOrder:
        return RestingOrder(o["id"], Side(o["side"]), o["price"], o["qty"], o["ahead"],
                            TimeInForce(o["tif"]))

    def orders(self) -> list[RestingOrder]:
        return [self._out(o) for o in self._orders]

    def order(self, client_order_id: int) -> RestingOrder | None:
        k = self._find(u64("client_order_id", client_order_id))
        return None if k < 0 else self._out(self._orders[k])


class L2Matcher(_Base):
    __slots__ = ("_model", "_power")

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256, *,
                 model: QueueModel | int = QueueModel.CONSERVATIVE, power: float = 2.0) -> None:
        super().__init__(reserve_orders, reserve_events)
        self._model, self._power = QueueModel.CONSERVATIVE, 2.0
        self.set_queue_model(model, power)

    def set_queue_model(self, model: QueueModel | int, power: float = 2.0) -> None:
        self._model, self._power = queue_model(model), non_negative_float("power", power)

    def _rest(self, coid: int, side: int, tif: int, price: int, qty: int, book) -> None:
        self._orders.append(dict(id=coid, side=side, price=price, qty=qty,
                                 ahead=_qty_at(book, side, price), tif=tif, traded=0))

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        price, qty, aggressor = i64("price", price), i64("qty", qty), u8("aggressor", aggressor)
        if qty <= 0 or aggressor not in (Side.BID, Side.ASK):
            return
        ours = _opp(aggressor)
        used = 0
        for o in self._orders:
            if o["side"] != ours:
                continue
            fill = 0
            if (price < o["price"]) if ours == Side.BID else (price > o["price"]):
                fill = o["qty"]
            elif price == o["price"]:
                fill = max(0, min(qty - o["ahead"] - used, o["qty"]))
                used += fill
                o["ahead"] = max(0, o["ahead"] - qty)
                o["traded"] = min(INT64_MAX, o["traded"] + qty)
            if fill > 0:
                self._fill(o, fill)
        self._orders = [o for o in self._orders if o["qty"] > 0]

    def on_level(self, side: Side | int, price: int, old_qty: int, new_qty: int) -> None:
        side, price = u8("side", side), i64("price", price)
        old_qty, new_qty = i64("old_qty", old_qty), i64("new_qty", new_qty)
        if new_qty < 0:
            return
        for o in self._orders:
            if o["side"] != side or o["price"] != price:
                continue
            traded, o["traded"] = o["traded"], 0
            if self._model == QueueModel.PROBABILISTIC and old_qty > 0:
                base = old_qty - traded
                if base > new_qty:
                    behind = max(base - o["ahead"], 0)
                    o["ahead"] -= ahead_share(base - new_qty, o["ahead"], behind, self._power)
            o["ahead"] = min(o["ahead"], new_qty)


class L3Matcher(_Base):
    """Each order also keeps `before`: {market order id: qty} of the orders ahead of it."""

    __slots__ = ()

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256) -> None:
        super().__init__(reserve_orders, reserve_events)

    def _rest(self, coid: int, side: int, tif: int, price: int, qty: int, book) -> None:
        before = {i: q for i, p, q in book.orders(side) if p == price}
        self._orders.append(dict(id=coid, side=side, price=price, qty=qty,
                                 ahead=sum(before.values()), tif=tif, before=before))

    def ahead_count(self, client_order_id: int) -> int:
        k = self._find(u64("client_order_id", client_order_id))
        return 0 if k < 0 else len(self._orders[k]["before"])

    @staticmethod
    def _drop(o: dict, mid: int) -> None:
        o["ahead"] -= o["before"].pop(mid)

    def on_l3(self, kind: EventKind | int, side: Side | int, order_id: int, price: int, qty: int,
              book_before) -> None:
        kind, side = u8("kind", kind), u8("side", side)
        mid = u64("order_id", order_id)
        price, qty = i64("price", price), i64("qty", qty)
        if not self._orders:
            return
        if kind == EventKind.L3_ADD:
            if qty <= 0:
                return
            for o in self._orders:
                if mid not in o["before"]:
                    continue
                if side == o["side"] and price == o["price"]:
                    o["ahead"] += qty - o["before"][mid]
                    o["before"][mid] = qty
                else:
                    self._drop(o, mid)
        elif kind == EventKind.L3_DELETE:
            if book_before.order(mid) is None:
                return
            for o in self._orders:
                if mid in o["before"]:
                    self._drop(o, mid)
        elif kind == EventKind.L3_MODIFY:
            found = book_before.order(mid)
            if qty < 0 or not MIN_PRICE <= price <= MAX_PRICE or found is None:
                return
            _, bp, bq = found
            keeps = price == bp and 0 < qty <= bq
            for o in self._orders:
                if mid not in o["before"]:
                    continue
                if keeps:
                    o["ahead"] -= o["before"][mid] - qty
                    o["before"][mid] = qty
                else:
                    self._drop(o, mid)
        elif kind == EventKind.L3_EXECUTE:
            found = book_before.order(mid)
            if qty <= 0 or found is None:
                return
            bs, bp, bq = found
            e = min(qty, bq)
            used = 0
            for o in self._orders:
                if o["side"] != bs:
                    continue
                fill = 0
                if (bp < o["price"]) if bs == Side.BID else (bp > o["price"]):
                    fill = o["qty"]
                elif bp == o["price"]:
                    if mid in o["before"]:
                        if e >= o["before"][mid]:
                            self._drop(o, mid)
                        else:
                            o["before"][mid] -= e
                            o["ahead"] -= e
                    else:
                        fill = min(e - used, o["qty"])
                        used += fill
                if fill > 0:
                    self._fill(o, fill)
            self._orders = [o for o in self._orders if o["qty"] > 0]

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        price, qty, aggressor = i64("price", price), i64("qty", qty), u8("aggressor", aggressor)
        if qty <= 0 or aggressor not in (Side.BID, Side.ASK):
            return
        ours = _opp(aggressor)
        for o in self._orders:
            if o["side"] == ours and ((price < o["price"]) if ours == Side.BID
                                      else (price > o["price"])):
                self._fill(o, o["qty"])
        self._orders = [o for o in self._orders if o["qty"] > 0]
