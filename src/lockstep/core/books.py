"""Order books: L2 (price levels) and L3 (orders by id, FIFO within a level).

The books are the C++ ones (include/lockstep/core/l2_book.hpp, l3_book.hpp) behind thin wrappers that
turn result codes into enums. Prices and quantities are int64 fixed-point ticks and lots; sides
are lockstep.Side values (1 bid, 2 ask). lockstep.reference.books holds a pure-Python twin with
the same API and results, used to test these.

Mutators never raise on bad data: they answer with a result code and leave the book unchanged.
Queries raise ValueError for a side that is neither bid nor ask.
"""
from __future__ import annotations

import numpy as np

from lockstep._bindings import books as _books
from lockstep.enums import L2Result, L3Result
from lockstep.events import Side

#: Ticks of the dense window around the touch, per side, unless a book is given another.
DEFAULT_WINDOW_TICKS: int = _books.DEFAULT_WINDOW_TICKS
#: Prices outside [MIN_PRICE, MAX_PRICE] (+-2^62 ticks) are corrupt input and rejected.
MIN_PRICE: int = _books.MIN_PRICE
MAX_PRICE: int = _books.MAX_PRICE

_L2_RESULTS = tuple(L2Result)
_L3_RESULTS = tuple(L3Result)

Level = tuple[int, int]  # (price, qty)
Order = tuple[int, int, int]  # (order_id, price, qty)


class _LevelQueries:
    """What both books answer about their aggregated levels, delegated to the compiled book."""

    __slots__ = ("_core",)

    def clear(self) -> None:
        self._core.clear()

    def best(self, side: Side | int) -> Level | None:
        return self._core.best(side)

    def best_bid(self) -> Level | None:
        return self._core.best_bid()

    def best_ask(self) -> Level | None:
        return self._core.best_ask()

    def top(self, side: Side | int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to n best levels as (prices, qtys) int64 arrays, best first."""
        return self._core.top(side, n)

    def levels(self, side: Side | int) -> list[Level]:
        """Every level of a side, best first."""
        return self._core.levels(side)

    def level_count(self, side: Side | int) -> int:
        return self._core.level_count(side)

    def crossed(self) -> bool:
        """Both sides present and the best bid at or above the best ask."""
        return self._core.crossed()

    @property
    def window_ticks(self) -> int:
        return self._core.window_ticks

    def invariants_hold(self) -> bool:
        """Cross-checks the internal structures (slow; for tests)."""
        return self._core.invariants_hold()


class L2Book(_LevelQueries):
    """Price-level book: per side, price -> aggregated quantity.

    `window_ticks` (rounded up to a power of two, at least 64) is the span of prices around the
    touch held in a dense array; levels outside it are still kept, in slower sorted storage.
    """

    __slots__ = ()

    def __init__(self, window_ticks: int = DEFAULT_WINDOW_TICKS) -> None:
        self._core = _books.L2Book(window_ticks)

    def set(self, side: Side | int, price: int, qty: int) -> L2Result:
        """Sets the absolute quantity of a level; qty 0 removes it."""
        return _L2_RESULTS[self._core.set(side, price, qty)]


class L3Book(_LevelQueries):
    """Order-by-order book with FIFO priority within a level and aggregated levels."""

    __slots__ = ()

    def __init__(self, window_ticks: int = DEFAULT_WINDOW_TICKS, expected_orders: int = 0) -> None:
        self._core = _books.L3Book(window_ticks, expected_orders)

    def add(self, order_id: int, side: Side | int, price: int, qty: int) -> L3Result:
        """A new order joins the back of its level."""
        return _L3_RESULTS[self._core.add(order_id, side, price, qty)]

    def modify(self, order_id: int, price: int, qty: int) -> L3Result:
        """The order now rests at price/qty; it keeps its place only if the price is unchanged and
        the quantity did not grow. qty 0 removes it. The side never changes."""
        return _L3_RESULTS[self._core.modify(order_id, price, qty)]

    def remove(self, order_id: int) -> L3Result:
        return _L3_RESULTS[self._core.remove(order_id)]

    def execute(self, order_id: int, qty: int) -> L3Result:
        """qty of the order traded: it shrinks in place, or leaves at zero. Executing more than
        rests counts as a full fill (OK)."""
        return _L3_RESULTS[self._core.execute(order_id, qty)]

    def order_count(self) -> int:
        return self._core.order_count()

    def order(self, order_id: int) -> tuple[Side, int, int] | None:
        """(side, price, qty) of a resting order, or None."""
        found = self._core.order(order_id)
        return None if found is None else (Side(found[0]), found[1], found[2])

    def orders(self, side: Side | int) -> list[Order]:
        """Every resting order of a side: best price first, FIFO within a level."""
        return self._core.orders(side)


__all__ = [
    "DEFAULT_WINDOW_TICKS",
    "MAX_PRICE",
    "MIN_PRICE",
    "L2Book",
    "L2Result",
    "L3Book",
    "L3Result",
]
