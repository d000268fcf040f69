"""Matching core of the Simulated Venue on L2 data: our orders against a replayed market book, one
instrument, with the conservative ("risk-averse") queue-position model.

The rules live in the C++ lockstep::L2Matcher (include/lockstep/matching.hpp, whose header says
exactly what can fill an order and what the model cannot know) behind a thin wrapper;
lockstep.reference.matching is a pure-Python twin with the same API and results.

    m = L2Matcher()
    m.submit(client_order_id, Side.BID, TimeInForce.GTC, price, qty, book)  # -> MatchResult
    m.on_trade(price, qty, aggressor_side)   # market prints: may fill resting orders
    m.on_level(side, price, qty)             # L2 level updates: only cap queue-ahead
    m.cancel(client_order_id)                # -> bool
    m.drain()                                # -> list[MatchEvent]: fills, cancels, rejects

* submit(): post-only orders that would cross are rejected; IOC and GTC orders take the visible
  opposite levels up to their limit at once (taker fills); an IOC remainder is canceled, a GTC
  remainder rests with queue-ahead = the visible quantity at its price on its side.
* on_trade(): a trade at our price consumes queue-ahead first, only the excess fills us (maker);
  a trade through our price fills the whole remainder. Unknown-aggressor trades fill nothing.
* on_level(): never advances the queue, never fills; caps queue-ahead at the visible quantity.

`book` is a lockstep.books.L2Book (or anything with its top()/level_count()) holding the market
at the time the venue sees the order; our orders never change it.
"""
from __future__ import annotations

import dataclasses
import enum

from lockstep import _books, _matching
from lockstep.books import L2Book
from lockstep.events import Side
from lockstep.risk import Intent, TimeInForce

_UINT64_MAX = 2**64 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MIN_PRICE: int = _books.MIN_PRICE
MAX_PRICE: int = _books.MAX_PRICE


class MatchEventKind(enum.IntEnum):
    """lockstep::MatchEventKind."""

    FILL = 1
    CANCELED = 2  # qty = the canceled quantity (IOC remainder or cancel())
    REJECTED = 3  # qty = the order's qty
    CANCEL_REJECTED = 4


class MatchReject(enum.IntEnum):
    """lockstep::MatchReject."""

    NONE = 0
    POST_ONLY_WOULD_CROSS = 1
    BAD_QTY = 2
    BAD_PRICE = 3
    BAD_SIDE = 4
    BAD_TIF = 5
    DUPLICATE_ORDER = 6
    UNKNOWN_ORDER = 7


class SubmitOutcome(enum.IntEnum):
    """lockstep::SubmitOutcome."""

    RESTED = 0  # some of the order rests (filled_qty may be > 0)
    FILLED = 1  # fully filled at submission
    CANCELED = 2  # IOC remainder (possibly all) canceled
    REJECTED = 3


@dataclasses.dataclass(frozen=True, slots=True)
class MatchEvent:
    """One fill, cancel or reject, in the order the matcher produced it."""

    kind: MatchEventKind
    reason: MatchReject
    maker: bool
    client_order_id: int
    price: int
    qty: int


@dataclasses.dataclass(frozen=True, slots=True)
class MatchResult:
    outcome: SubmitOutcome
    reason: MatchReject
    filled_qty: int
    resting_qty: int


@dataclasses.dataclass(frozen=True, slots=True)
class RestingOrder:
    client_order_id: int
    side: Side
    price: int
    qty: int  # remaining
    queue_ahead: int


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise OverflowError(f"{name}={value} is outside [{lo}, {hi}]")
    return value


def _id(v: object) -> int:
    return _int("client_order_id", v, 0, _UINT64_MAX)


def _i64(name: str, v: object) -> int:
    return _int(name, v, _INT64_MIN, _INT64_MAX)


def _u8(name: str, v: object) -> int:
    return _int(name, v, 0, 255)


def _result(t: tuple[int, int, int, int]) -> MatchResult:
    return MatchResult(SubmitOutcome(t[0]), MatchReject(t[1]), t[2], t[3])


def _event(t: tuple[int, int, bool, int, int, int]) -> MatchEvent:
    return MatchEvent(MatchEventKind(t[0]), MatchReject(t[1]), bool(t[2]), t[3], t[4], t[5])


def _order(t: tuple[int, int, int, int, int]) -> RestingOrder:
    return RestingOrder(t[0], Side(t[1]), t[2], t[3], t[4])


class L2Matcher:
    """Simulated-venue matching for one instrument; see the module docstring for the rules."""

    __slots__ = ("_core",)

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256) -> None:
        self._core = _matching.L2Matcher()
        self._core.reserve(_int("reserve_orders", reserve_orders, 0, 1 << 24),
                           _int("reserve_events", reserve_events, 0, 1 << 24))

    def submit(self, client_order_id: int, side: Side | int, tif: TimeInForce | int, price: int,
               qty: int, book: L2Book) -> MatchResult:
        """A new limit order reaching the venue while the market book is `book`."""
        return _result(self._core.submit(_id(client_order_id), _u8("side", side),
                                         _u8("tif", tif), _i64("price", price), _i64("qty", qty),
                                         book))

    def submit_intent(self, intent: Intent, book: L2Book) -> MatchResult:
        """submit() from a SubmitLimit or SubmitMarket Intent (a market order is an IOC at the
        widest price); any other kind is rejected with BAD_TIF."""
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.risk.Intent, not {type(intent).__name__}")
        return _result(self._core.submit_intent(intent, book))

    def cancel(self, client_order_id: int) -> bool:
        """Cancels a resting order (CANCELED event); False and a CANCEL_REJECTED event if none."""
        return bool(self._core.cancel(_id(client_order_id)))

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        """A market trade print; `aggressor` is the taker's side (NONE: fills nothing)."""
        self._core.on_trade(_i64("price", price), _i64("qty", qty), _u8("aggressor", aggressor))

    def on_level(self, side: Side | int, price: int, qty: int) -> None:
        """An L2 level now holds `qty`: caps queue-ahead of our orders there, nothing more."""
        self._core.on_level(_u8("side", side), _i64("price", price), _i64("qty", qty))

    def drain(self) -> list[MatchEvent]:
        """Events since the last drain, oldest first; empties the buffer."""
        return [_event(t) for t in self._core.drain()]

    def orders(self) -> list[RestingOrder]:
        """Resting orders in insertion order."""
        return [_order(t) for t in self._core.orders()]

    def order(self, client_order_id: int) -> RestingOrder | None:
        t = self._core.order(_id(client_order_id))
        return None if t is None else _order(t)


__all__ = [
    "MAX_PRICE",
    "MIN_PRICE",
    "L2Matcher",
    "MatchEvent",
    "MatchEventKind",
    "MatchReject",
    "MatchResult",
    "RestingOrder",
    "SubmitOutcome",
]
