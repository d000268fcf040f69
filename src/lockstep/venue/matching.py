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
from typing import Generic, TypeVar

from lockstep._bindings import books as _books
from lockstep._bindings import matching as _matching
from lockstep._bindings import venue_models as _venue_models
from lockstep.checks import i64, int_in, non_negative_float, queue_model, u8, u64
from lockstep.core.books import L2Book, L3Book
from lockstep.core.risk import Intent
from lockstep.enums import (
    LatencyKind,
    MatchEventKind,
    MatchReject,
    QueueModel,
    SubmitOutcome,
    TimeInForce,
)
from lockstep.errors import check_status
from lockstep.events import EventKind, Side

MIN_PRICE: int = _books.MIN_PRICE
MAX_PRICE: int = _books.MAX_PRICE


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


def _result(t: tuple[int, int, int, int]) -> MatchResult:
    return MatchResult(SubmitOutcome(t[0]), MatchReject(t[1]), t[2], t[3])


def _event(t: tuple[int, int, bool, int, int, int, int]) -> MatchEvent:
    return MatchEvent(MatchEventKind(t[0]), MatchReject(t[1]), bool(t[2]), t[3], t[4], t[5],
                      Side(t[6]))


def _order(t: tuple[int, int, int, int, int, int]) -> RestingOrder:
    return RestingOrder(t[0], Side(t[1]), t[2], t[3], t[4], TimeInForce(t[5]))


BookT = TypeVar("BookT", L2Book, L3Book)


class _OrderEntry(Generic[BookT]):
    """What the L2 and L3 matchers share (C++ OrderEntry): our orders' entry, cancel, replace and
    reports; `_core` is the binding's matcher of the same book kind."""

    __slots__ = ("_core",)

    def __init__(self, core: _matching.L2Matcher | _matching.L3Matcher, reserve_orders: int,
                 reserve_events: int) -> None:
        self._core = core
        self._core.reserve(int_in("reserve_orders", reserve_orders, 0, 1 << 24),
                           int_in("reserve_events", reserve_events, 0, 1 << 24))

    def submit(self, client_order_id: int, side: Side | int, tif: TimeInForce | int, price: int,
               qty: int, book: BookT) -> MatchResult:
        """A new limit order reaching the venue while the market book is `book`."""
        return _result(self._core.submit(u64("client_order_id", client_order_id), u8("side", side),
                                         u8("tif", tif), i64("price", price), i64("qty", qty),
                                         book))

    def submit_intent(self, intent: Intent, book: BookT) -> MatchResult:
        """submit() from a SubmitLimit or SubmitMarket Intent (a market order is an IOC at the
        widest price); any other kind is rejected with BAD_TIF."""
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        return _result(self._core.submit_intent(intent, book))

    def cancel(self, client_order_id: int) -> bool:
        """Cancels a resting order (CANCELED event); False and a CANCEL_REJECTED event if none."""
        return bool(self._core.cancel(u64("client_order_id", client_order_id)))

    def replace(self, client_order_id: int, new_price: int, new_qty: int,
                book: BookT) -> MatchResult:
        """The resting order now wants new_price / new_qty remaining (docs/venue.md)."""
        return _result(self._core.replace(u64("client_order_id", client_order_id),
                                          i64("new_price", new_price), i64("new_qty", new_qty),
                                          book))

    def has_resting(self) -> bool:
        return bool(self._core.has_resting())

    def drain(self) -> list[MatchEvent]:
        """Events since the last drain, oldest first; empties the buffer."""
        return [_event(t) for t in self._core.drain()]

    def orders(self) -> list[RestingOrder]:
        """Resting orders in insertion order."""
        return [_order(t) for t in self._core.orders()]

    def order(self, client_order_id: int) -> RestingOrder | None:
        t = self._core.order(u64("client_order_id", client_order_id))
        return None if t is None else _order(t)


class L2Matcher(_OrderEntry[L2Book]):
    """Simulated-venue matching for one instrument; see the module docstring for the rules."""

    __slots__ = ()

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256, *,
                 model: QueueModel | int = QueueModel.CONSERVATIVE, power: float = 2.0) -> None:
        super().__init__(_matching.L2Matcher(), reserve_orders, reserve_events)
        self.set_queue_model(model, power)

    def set_queue_model(self, model: QueueModel | int, power: float = 2.0) -> None:
        """CONSERVATIVE (default) or PROBABILISTIC with f(x) = x**power; ValueError if invalid."""
        check_status(self._core.set_queue_model(queue_model(model),
                                                non_negative_float("power", power)),
                     f"queue model {model!r} / power {power!r}")

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        """A market trade print; `aggressor` is the taker's side (NONE: fills nothing)."""
        self._core.on_trade(i64("price", price), i64("qty", qty), u8("aggressor", aggressor))

    def on_level(self, side: Side | int, price: int, old_qty: int, new_qty: int) -> None:
        """Before the book sets (side, price) from old_qty to new_qty: moves queue-ahead of our
        orders there as the queue model says; never fills."""
        self._core.on_level(u8("side", side), i64("price", price), i64("old_qty", old_qty),
                            i64("new_qty", new_qty))


class L3Matcher(_OrderEntry[L3Book]):
    """Simulated-venue matching on an L3 book, strict FIFO (docs/venue.md)."""

    __slots__ = ()

    def __init__(self, reserve_orders: int = 64, reserve_events: int = 256) -> None:
        super().__init__(_matching.L3Matcher(), reserve_orders, reserve_events)

    def on_l3(self, kind: EventKind | int, side: Side | int, order_id: int, price: int, qty: int,
              book_before: L3Book) -> None:
        """Before `book_before` applies an L3 event (L3_ADD/MODIFY/DELETE/EXECUTE, BOOK_CLEAR)."""
        self._core.on_l3(u8("kind", kind), u8("side", side), u64("order_id", order_id),
                         i64("price", price), i64("qty", qty), book_before)

    def on_trade(self, price: int, qty: int, aggressor: Side | int) -> None:
        """A print: fills our orders only when strictly through their price."""
        self._core.on_trade(i64("price", price), i64("qty", qty), u8("aggressor", aggressor))

    def ahead_count(self, client_order_id: int) -> int:
        """Market orders recorded ahead of this order (0 if it is not resting)."""
        return self._core.ahead_count(u64("client_order_id", client_order_id))


class ReplayedMarkets:
    """One book and one matcher per instrument of a table, moved by a replay in C++
    (include/lockstep/venue/replayed_markets.hpp): the loopback venue's trading side. The books
    are Market State's and the matchers are L2Matcher / L3Matcher, told each replayed event by the
    simulated venue's rule, so orders here meet what a backtest's would. A feed it is attached to
    (lockstep._bindings.itch_feed.ItchFeed.attach) moves it by every event it sends; orders enter
    per instrument index:

        markets = ReplayedMarkets(["l3", "l2"])
        markets.submit(0, client_order_id, Side.BID, TimeInForce.GTC, price, qty)
        markets.drain(0)                  # -> list[MatchEvent], the fills the replay caused too
    """

    __slots__ = ("_core",)

    def __init__(self, book_types: list[str]) -> None:
        self._core = _matching.ReplayedMarkets(list(book_types))

    @property
    def core(self) -> _matching.ReplayedMarkets:
        """The binding, for the feed to attach."""
        return self._core

    @property
    def instrument_count(self) -> int:
        return self._core.instrument_count

    def is_l2(self, inst: int) -> bool:
        return bool(self._core.is_l2(inst))

    def submit(self, inst: int, client_order_id: int, side: Side | int, tif: TimeInForce | int,
               price: int, qty: int) -> MatchResult:
        """A new limit order on instrument `inst`, against its book as replayed so far."""
        return _result(self._core.submit(inst, u64("client_order_id", client_order_id),
                                         u8("side", side), u8("tif", tif), i64("price", price),
                                         i64("qty", qty)))

    def replace(self, inst: int, client_order_id: int, new_price: int, new_qty: int) -> MatchResult:
        return _result(self._core.replace(inst, u64("client_order_id", client_order_id),
                                          i64("new_price", new_price), i64("new_qty", new_qty)))

    def cancel(self, inst: int, client_order_id: int) -> bool:
        return bool(self._core.cancel(inst, u64("client_order_id", client_order_id)))

    def drain(self, inst: int) -> list[MatchEvent]:
        """What instrument `inst`'s matcher reported since the last drain, oldest first."""
        return [_event(t) for t in self._core.drain(inst)]

    def has_resting(self, inst: int) -> bool:
        return bool(self._core.has_resting(inst))

    def orders(self, inst: int) -> list[RestingOrder]:
        """Our resting orders on `inst`, in the matcher's insertion order."""
        return [_order(t) for t in self._core.orders(inst)]

    def order(self, inst: int, client_order_id: int) -> RestingOrder | None:
        t = self._core.order(inst, u64("client_order_id", client_order_id))
        return None if t is None else _order(t)


# --------------------------------------------------------------------------------------------
# Fees and latency (include/lockstep/venue/venue_models.hpp).

#: Latencies are clamped to [0, MAX_LATENCY_NS].
MAX_LATENCY_NS: int = _venue_models.MAX_LATENCY_NS


@dataclasses.dataclass(frozen=True, slots=True)
class LatencyConfig:
    """lockstep::LatencyConfig."""

    kind: LatencyKind = LatencyKind.CONSTANT
    entry_ns: int = 0
    response_ns: int = 0
    sigma: float = 0.0  # LOGNORMAL: log-space standard deviation
    feed_multiplier: float = 1.0  # FEED
    seed: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class SimulatedVenueConfig:
    """lockstep::SimulatedVenueConfig: the venue's queue model, fees (ppm of notional, negative
    is a rebate) and latency, as the backtest engine takes them."""

    queue_model: QueueModel = QueueModel.CONSERVATIVE
    queue_power: float = 2.0
    maker_ppm: int = 0
    taker_ppm: int = 0
    latency: LatencyConfig = LatencyConfig()


def check_latency_config(c: LatencyConfig) -> None:
    """TypeError / OverflowError unless every field of `c` fits its C++ field (the core then
    judges the values)."""
    if not isinstance(c, LatencyConfig):
        raise TypeError(f"config must be a LatencyConfig, not {type(c).__name__}")
    for name, v in (("sigma", c.sigma), ("feed_multiplier", c.feed_multiplier)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name} must be a number, not {type(v).__name__}")
    u8("kind", c.kind)
    i64("entry_ns", c.entry_ns)
    i64("response_ns", c.response_ns)
    u64("seed", c.seed)


class FeeModel:
    """fee = price x qty x ppm (ticks x lots x 1e-6), exact; negative is a rebate."""

    __slots__ = ("_core",)

    def __init__(self, maker_ppm: int = 0, taker_ppm: int = 0) -> None:
        self._core = _venue_models.FeeModel(i64("maker_ppm", maker_ppm),
                                            i64("taker_ppm", taker_ppm))

    @property
    def maker_ppm(self) -> int:
        return self._core.maker_ppm

    @property
    def taker_ppm(self) -> int:
        return self._core.taker_ppm

    def fee(self, price: int, qty: int, maker: bool) -> int:
        return self._core.fee(i64("price", price), i64("qty", qty), bool(maker))


class LatencyModel:
    """Entry / response latencies in ns; draws are a pure function of the seed and call order."""

    __slots__ = ("_config", "_core")

    def __init__(self, config: LatencyConfig | None = None) -> None:
        self._core = _venue_models.LatencyModel()
        self._config = LatencyConfig()
        self.configure(config if config is not None else LatencyConfig())

    def configure(self, config: LatencyConfig) -> None:
        """InvalidArgumentError, a ValueError (nothing changes), if invalid; restarts the draws
        from config.seed."""
        check_latency_config(config)
        check_status(self._core.configure(config), f"latency config {config!r}")
        self._config = config

    @property
    def config(self) -> LatencyConfig:
        return self._config

    def entry(self, feed_latency_ns: int = 0) -> int:
        return self._core.entry(i64("feed_latency_ns", feed_latency_ns))

    def response(self, feed_latency_ns: int = 0) -> int:
        return self._core.response(i64("feed_latency_ns", feed_latency_ns))

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
    "ReplayedMarkets",
    "RestingOrder",
    "SimulatedVenueConfig",
    "SubmitOutcome",
]
