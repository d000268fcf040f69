"""Reference L2 and L3 books: lockstep.core.books' API and results, in plain dicts and lists.

Nothing here is meant to be fast: levels are sorted on every query and orders are found in their
FIFO lists by linear search. What matters is that each rule is stated once, plainly.
"""
from __future__ import annotations

import operator

import numpy as np

from lockstep.checks import INT64_MAX, INT64_MIN, UINT64_MAX
from lockstep.core.books import DEFAULT_WINDOW_TICKS, MAX_PRICE, MIN_PRICE
from lockstep.enums import L2Result, L3Result
from lockstep.events import Side

Level = tuple[int, int]
Order = tuple[int, int, int]


# Argument conversion as the compiled bindings do it (Cython typed arguments).
def _int64(value: object) -> int:
    v = operator.index(value)
    if not INT64_MIN <= v <= INT64_MAX:
        raise OverflowError(f"{v} does not fit int64")
    return v


def _uint64(value: object) -> int:
    v = operator.index(value)
    if not 0 <= v <= UINT64_MAX:
        raise OverflowError(f"{v} does not fit uint64")
    return v


def _size(value: object) -> int:
    v = operator.index(value)
    if v < 0:
        raise OverflowError(f"{v} is negative")
    return v


def _book_side(side: object) -> Side | None:
    if side == 1:
        return Side.BID
    if side == 2:
        return Side.ASK
    return None


def _query_side(side: object) -> Side:
    s = _book_side(side)
    if s is None:
        raise ValueError(f"side must be 1 (bid) or 2 (ask), not {side!r}")
    return s


def _window(window_ticks: object) -> int:
    w = _size(window_ticks)
    if not 1 <= w <= 2**30:
        raise ValueError("L2 book window must be 1..2^30 ticks")
    rounded = 64
    while rounded < w:
        rounded *= 2
    return rounded


def _best_first(levels: dict[int, int], side: Side) -> list[Level]:
    return sorted(levels.items(), reverse=side == Side.BID)


def _top(levels: list[Level], n: object) -> tuple[np.ndarray, np.ndarray]:
    count = operator.index(n)
    if count < 0:
        raise ValueError(f"n must be >= 0, not {count}")
    chosen = levels[:count]
    return (np.array([p for p, _ in chosen], dtype=np.int64),
            np.array([q for _, q in chosen], dtype=np.int64))


class _LevelQueries:
    """What both books answer from their `levels(side)`, best first."""

    def levels(self, side: Side | int) -> list[Level]:
        raise NotImplementedError

    def best(self, side: Side | int) -> Level | None:
        levels = self.levels(side)
        return levels[0] if levels else None

    def best_bid(self) -> Level | None:
        return self.best(Side.BID)

    def best_ask(self) -> Level | None:
        return self.best(Side.ASK)

    def top(self, side: Side | int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return _top(self.levels(side), n)

    def crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid[0] >= ask[0]


class L2Book(_LevelQueries):
    def __init__(self, window_ticks: int = DEFAULT_WINDOW_TICKS) -> None:
        self._window_ticks = _window(window_ticks)
        self._levels: dict[Side, dict[int, int]] = {Side.BID: {}, Side.ASK: {}}

    def set(self, side: Side | int, price: int, qty: int) -> L2Result:
        price, qty = _int64(price), _int64(qty)
        s = _book_side(side)
        if s is None:
            return L2Result.BAD_SIDE
        if qty < 0:
            return L2Result.BAD_QTY
        if not MIN_PRICE <= price <= MAX_PRICE:
            return L2Result.BAD_PRICE
        levels = self._levels[s]
        if qty == 0:
            if price not in levels:
                return L2Result.UNKNOWN_LEVEL
            del levels[price]
            return L2Result.REMOVED
        levels[price] = qty
        return L2Result.OK

    def clear(self) -> None:
        for levels in self._levels.values():
            levels.clear()

    def levels(self, side: Side | int) -> list[Level]:
        s = _query_side(side)
        return _best_first(self._levels[s], s)

    def level_count(self, side: Side | int) -> int:
        return len(self._levels[_query_side(side)])

    @property
    def window_ticks(self) -> int:
        return self._window_ticks

    def invariants_hold(self) -> bool:
        return True


class L3Book(_LevelQueries):
    def __init__(self, window_ticks: int = DEFAULT_WINDOW_TICKS, expected_orders: int = 0) -> None:
        self._window_ticks = _window(window_ticks)
        _size(expected_orders)
        self._orders: dict[int, tuple[Side, int, int]] = {}  # id -> (side, price, qty)
        # side -> price -> order ids, front of the queue first
        self._queues: dict[Side, dict[int, list[int]]] = {Side.BID: {}, Side.ASK: {}}

    def _level_total(self, side: Side, price: int) -> int:
        return sum(self._orders[i][2] for i in self._queues[side].get(price, []))

    def _take_out(self, order_id: int) -> None:
        side, price, _ = self._orders.pop(order_id)
        queue = self._queues[side][price]
        queue.remove(order_id)
        if not queue:
            del self._queues[side][price]

    def _join_back(self, order_id: int, side: Side, price: int, qty: int) -> None:
        self._orders[order_id] = (side, price, qty)
        self._queues[side].setdefault(price, []).append(order_id)

    def add(self, order_id: int, side: Side | int, price: int, qty: int) -> L3Result:
        order_id, price, qty = _uint64(order_id), _int64(price), _int64(qty)
        s = _book_side(side)
        if s is None:
            return L3Result.BAD_SIDE
        if not MIN_PRICE <= price <= MAX_PRICE:
            return L3Result.BAD_PRICE
        if qty <= 0:
            return L3Result.BAD_QTY
        if order_id in self._orders:
            return L3Result.DUPLICATE_ORDER
        if self._level_total(s, price) + qty > INT64_MAX:
            return L3Result.BAD_QTY
        self._join_back(order_id, s, price, qty)
        return L3Result.OK

    def modify(self, order_id: int, price: int, qty: int) -> L3Result:
        order_id, price, qty = _uint64(order_id), _int64(price), _int64(qty)
        if not MIN_PRICE <= price <= MAX_PRICE:
            return L3Result.BAD_PRICE
        if qty < 0:
            return L3Result.BAD_QTY
        if order_id not in self._orders:
            return L3Result.UNKNOWN_ORDER
        if qty == 0:
            self._take_out(order_id)
            return L3Result.OK
        side, old_price, old_qty = self._orders[order_id]
        others = self._level_total(side, price) - (old_qty if price == old_price else 0)
        if others + qty > INT64_MAX:
            return L3Result.BAD_QTY
        if price == old_price and qty <= old_qty:
            self._orders[order_id] = (side, price, qty)  # keeps its place
            return L3Result.OK
        self._take_out(order_id)
        self._join_back(order_id, side, price, qty)
        return L3Result.OK

    def remove(self, order_id: int) -> L3Result:
        order_id = _uint64(order_id)
        if order_id not in self._orders:
            return L3Result.UNKNOWN_ORDER
        self._take_out(order_id)
        return L3Result.OK

    def execute(self, order_id: int, qty: int) -> L3Result:
        order_id, qty = _uint64(order_id), _int64(qty)
        if qty <= 0:
            return L3Result.BAD_QTY
        if order_id not in self._orders:
            return L3Result.UNKNOWN_ORDER
        side, price, rest = self._orders[order_id]
        if qty >= rest:
            self._take_out(order_id)
        else:
            self._orders[order_id] = (side, price, rest - qty)
        return L3Result.OK

    def clear(self) -> None:
        self._orders.clear()
        for queues in self._queues.values():
            queues.clear()

    def levels(self, side: Side | int) -> list[Level]:
        s = _query_side(side)
        totals = {price: self._level_total(s, price) for price in self._queues[s]}
        return _best_first(totals, s)

    def level_count(self, side: Side | int) -> int:
        return len(self._queues[_query_side(side)])

    def order_count(self) -> int:
        return len(self._orders)

    def order(self, order_id: int) -> tuple[Side, int, int] | None:
        return self._orders.get(_uint64(order_id))

    def orders(self, side: Side | int) -> list[Order]:
        s = _query_side(side)
        queues = self._queues[s]
        return [(i, price, self._orders[i][2])
                for price in sorted(queues, reverse=s == Side.BID)
                for i in queues[price]]

    @property
    def window_ticks(self) -> int:
        return self._window_ticks

    def invariants_hold(self) -> bool:
        return True


__all__ = ["L2Book", "L3Book"]
