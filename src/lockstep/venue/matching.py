"""Matching core of the Simulated Venue: our orders against a replayed market book, one
instrument, plus the venue's fee and latency models.

The rules live in C++ (include/lockstep/venue/matching.hpp, l3_matching.hpp, venue_models.hpp) behind
thin wrappers; docs/venue.md says exactly what can fill an order and what each model cannot know.
lockstep.reference.matching and lockstep.reference.venue_models are pure-Python twins with the
same API and results.

    m = L2Matcher()                          # or L2Matcher(model=QueueModel.PROBABILISTIC)
    m.submit(client_order_id, Side.BID, TimeInForce.GTC, price, qty, book)  # -> MatchResult
    m.replace(client_order_id, new_price, new_qty, book)                    # -> MatchResult
    m.on_trade(price, qty, aggressor_side)   # market prints: may fill resting orders
    m.on_level(side, price, old_qty, new_qty)  # BEFORE the book applies an L2 update
    m.cancel(client_order_id)                # -> bool
    m.drain()                                # -> list[MatchEvent]

    m3 = L3Matcher()
    m3.on_l3(kind, side, order_id, price, qty, book_before)  # BEFORE the L3 book applies it

`book` is a lockstep.core.books L2Book / L3Book (or its reference twin) holding the market at the time
the venue sees the call; our orders never change it.
"""
from __future__ import annotations

import dataclasses
import enum

import math

from lockstep._bindings import books as _books
from lockstep._bindings import matching as _matching
from lockstep._bindings import venue_models as _venue_models
from lockstep.core.books import L2Book, L3Book
from lockstep.events import EventKind, Side
from lockstep.core.risk import Intent, TimeInForce

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
    REPLACED = 5  # price = new price, qty = new remaining
    REPLACE_REJECTED = 6  # order unchanged; price/qty as asked


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
    BOOK_UNAVAILABLE = 8  # the venue's book is invalid after a feed gap, until a snapshot


class QueueModel(enum.IntEnum):
    """lockstep::QueueModel."""

    CONSERVATIVE = 0  # level decreases are assumed behind us
    PROBABILISTIC = 1  # level decreases are shared ahead/behind by a power law


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
    side: Side = Side.NONE  # the order's side (NONE if the order is unknown or its side bad)


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
    tif: TimeInForce = TimeInForce.GTC


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


def _event(t: tuple[int, int, bool, int, int, int, int]) -> MatchEvent:
    return MatchEvent(MatchEventKind(t[0]), MatchReject(t[1]), bool(t[2]), t[3], t[4], t[5],
                      Side(t[6]))


def _order(t: tuple[int, int, int, int, int, int]) -> RestingOrder:
    return RestingOrder(t[0], Side(t[1]), t[2], t[3], t[4], TimeInForce(t[5]))


def _power(power: object) -> float:
    if isinstance(power, bool) or not isinstance(power, (int, float)):
        raise TypeError(f"power must be a number, not {type(power).__name__}")
    p = float(power)
    if not math.isfinite(p) or p < 0:
        raise ValueError(f"power must be finite and >= 0, not {power!r}")
    return p


def _model(model: object) -> QueueModel:
    try:
        return QueueModel(_u8("model", model))
    except ValueError:
        raise ValueError(f"unknown queue model {model!r}") from None


class L2Matcher:
    """Simulated-venue matching for one instrument; see the module docstring for the rules."""

    __slots__ = ("_core",)

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256, *,
                 model: QueueModel | int = QueueModel.CONSERVATIVE, power: float = 2.0) -> None:
        self._core = _matching.L2Matcher()
        self._core.reserve(_int("reserve_orders", reserve_orders, 0, 1 << 24),
                           _int("reserve_events", reserve_events, 0, 1 << 24))
        self.set_queue_model(model, power)

    def set_queue_model(self, model: QueueModel | int, power: float = 2.0) -> None:
        """CONSERVATIVE (default) or PROBABILISTIC with f(x) = x**power; ValueError if invalid."""
        if self._core.set_queue_model(_model(model), _power(power)) != 0:
            raise ValueError(f"invalid queue model {model!r} / power {power!r}")

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
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        return _result(self._core.submit_intent(intent, book))

    def cancel(self, client_order_id: int) -> bool:
        """Cancels a resting order (CANCELED event); False and a CANCEL_REJECTED event if none."""
        return bool(self._core.cancel(_id(client_order_id)))

    def replace(self, client_order_id: int, new_price: int, new_qty: int,
                book: L2Book) -> MatchResult:
        """The resting order now wants new_price / new_qty remaining (docs/venue.md)."""
        return _result(self._core.replace(_id(client_order_id), _i64("new_price", new_price),
                                          _i64("new_qty", new_qty), book))

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        """A market trade print; `aggressor` is the taker's side (NONE: fills nothing)."""
        self._core.on_trade(_i64("price", price), _i64("qty", qty), _u8("aggressor", aggressor))

    def on_level(self, side: Side | int, price: int, old_qty: int, new_qty: int) -> None:
        """Before the book sets (side, price) from old_qty to new_qty: moves queue-ahead of our
        orders there as the queue model says; never fills."""
        self._core.on_level(_u8("side", side), _i64("price", price), _i64("old_qty", old_qty),
                            _i64("new_qty", new_qty))

    def has_resting(self) -> bool:
        return bool(self._core.has_resting())

    def drain(self) -> list[MatchEvent]:
        """Events since the last drain, oldest first; empties the buffer."""
        return [_event(t) for t in self._core.drain()]

    def orders(self) -> list[RestingOrder]:
        """Resting orders in insertion order."""
        return [_order(t) for t in self._core.orders()]

    def order(self, client_order_id: int) -> RestingOrder | None:
        t = self._core.order(_id(client_order_id))
        return None if t is None else _order(t)


class L3Matcher:
    """Simulated-venue matching on an L3 book, strict FIFO (docs/venue.md)."""

    __slots__ = ("_core",)

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256) -> None:
        self._core = _matching.L3Matcher()
        self._core.reserve(_int("reserve_orders", reserve_orders, 0, 1 << 24),
                           _int("reserve_events", reserve_events, 0, 1 << 24))

    def submit(self, client_order_id: int, side: Side | int, tif: TimeInForce | int, price: int,
               qty: int, book: L3Book) -> MatchResult:
        return _result(self._core.submit(_id(client_order_id), _u8("side", side),
                                         _u8("tif", tif), _i64("price", price), _i64("qty", qty),
                                         book))

    def submit_intent(self, intent: Intent, book: L3Book) -> MatchResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        return _result(self._core.submit_intent(intent, book))

    def cancel(self, client_order_id: int) -> bool:
        return bool(self._core.cancel(_id(client_order_id)))

    def replace(self, client_order_id: int, new_price: int, new_qty: int,
                book: L3Book) -> MatchResult:
        return _result(self._core.replace(_id(client_order_id), _i64("new_price", new_price),
                                          _i64("new_qty", new_qty), book))

    def on_l3(self, kind: EventKind | int, side: Side | int, order_id: int, price: int, qty: int,
              book_before: L3Book) -> None:
        """Before `book_before` applies an L3 event (L3_ADD/MODIFY/DELETE/EXECUTE, BOOK_CLEAR)."""
        self._core.on_l3(_u8("kind", kind), _u8("side", side), _int("order_id", order_id, 0,
                         _UINT64_MAX), _i64("price", price), _i64("qty", qty), book_before)

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        """A print: fills our orders only when strictly through their price."""
        self._core.on_trade(_i64("price", price), _i64("qty", qty), _u8("aggressor", aggressor))

    def drain(self) -> list[MatchEvent]:
        return [_event(t) for t in self._core.drain()]

    def has_resting(self) -> bool:
        return bool(self._core.has_resting())

    def orders(self) -> list[RestingOrder]:
        return [_order(t) for t in self._core.orders()]

    def order(self, client_order_id: int) -> RestingOrder | None:
        t = self._core.order(_id(client_order_id))
        return None if t is None else _order(t)

    def ahead_count(self, client_order_id: int) -> int:
        """Market orders recorded ahead of this order (0 if it is not resting)."""
        return self._core.ahead_count(_id(client_order_id))


# --------------------------------------------------------------------------------------------
# Fees and latency (include/lockstep/venue/venue_models.hpp).

#: Latencies are clamped to [0, MAX_LATENCY_NS].
MAX_LATENCY_NS: int = _venue_models.MAX_LATENCY_NS


class LatencyKind(enum.IntEnum):
    """lockstep::LatencyKind."""

    CONSTANT = 0
    LOG_NORMAL = 1
    FEED = 2


@dataclasses.dataclass(frozen=True, slots=True)
class LatencyConfig:
    kind: LatencyKind = LatencyKind.CONSTANT
    entry_ns: int = 0
    response_ns: int = 0
    sigma: float = 0.0  # LOG_NORMAL: log-space standard deviation
    feed_multiplier: float = 1.0  # FEED
    seed: int = 0


def _latency_args(c: LatencyConfig) -> tuple[int, int, int, float, float, int]:
    if not isinstance(c, LatencyConfig):
        raise TypeError(f"config must be a LatencyConfig, not {type(c).__name__}")
    sigma, mult = c.sigma, c.feed_multiplier
    for name, v in (("sigma", sigma), ("feed_multiplier", mult)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name} must be a number, not {type(v).__name__}")
    return (_u8("kind", c.kind), _i64("entry_ns", c.entry_ns), _i64("response_ns", c.response_ns),
            float(sigma), float(mult), _int("seed", c.seed, 0, _UINT64_MAX))


class FeeModel:
    """fee = price x qty x ppm (ticks x lots x 1e-6), exact; negative is a rebate."""

    __slots__ = ("_core",)

    def __init__(self, maker_ppm: int = 0, taker_ppm: int = 0) -> None:
        self._core = _venue_models.FeeModel(_i64("maker_ppm", maker_ppm),
                                            _i64("taker_ppm", taker_ppm))

    @property
    def maker_ppm(self) -> int:
        return self._core.maker_ppm

    @property
    def taker_ppm(self) -> int:
        return self._core.taker_ppm

    def fee(self, price: int, qty: int, maker: bool) -> int:
        return self._core.fee(_i64("price", price), _i64("qty", qty), bool(maker))


class LatencyModel:
    """Entry / response latencies in ns; draws are a pure function of the seed and call order."""

    __slots__ = ("_config", "_core")

    def __init__(self, config: LatencyConfig | None = None) -> None:
        self._core = _venue_models.LatencyModel()
        self._config = LatencyConfig()
        self.configure(config if config is not None else LatencyConfig())

    def configure(self, config: LatencyConfig) -> None:
        """ValueError (nothing changes) if invalid; restarts the draws from config.seed."""
        if self._core.configure(*_latency_args(config)) != 0:
            raise ValueError(f"invalid latency config {config!r}")
        self._config = config

    @property
    def config(self) -> LatencyConfig:
        return self._config

    def entry(self, feed_latency_ns: int = 0) -> int:
        return self._core.entry(_i64("feed_latency_ns", feed_latency_ns))

    def response(self, feed_latency_ns: int = 0) -> int:
        return self._core.response(_i64("feed_latency_ns", feed_latency_ns))

    def next_u64(self) -> int:
        """The raw splitmix64 output (advances the draw sequence)."""
        return self._core.next_u64()


__all__ = [
    "MAX_LATENCY_NS",
    "MAX_PRICE",
    "MIN_PRICE",
    "FeeModel",
    "L2Matcher",
    "L3Matcher",
    "LatencyConfig",
    "LatencyKind",
    "LatencyModel",
    "MatchEvent",
    "MatchEventKind",
    "MatchReject",
    "MatchResult",
    "QueueModel",
    "RestingOrder",
    "SubmitOutcome",
]
