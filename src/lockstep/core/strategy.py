"""The strategy interface.

Subclass :class:`Strategy` in plain Python, or :class:`CompiledStrategy` in Cython for a strategy
that runs without the GIL (``examples/market_maker_compiled.pyx``). Both see the same
:class:`Context` (State queries and intents, in ticks and lots) and the same callbacks:

* ``setup(ctx)`` once, before any event, with the instrument table: convert parameters to
  ticks/lots and choose subscriptions (default: every book update of every traded instrument);
* ``on_start(ctx)`` at the first event; ``on_stop(ctx)`` after the last;
* ``on_book(ctx, instrument)`` after a complete venue message that changed the book (or only the
  touch, with ``ctx.subscribe(i, touch=True)``): never on a half-applied message;
* ``on_trade(ctx, instrument, price, qty, aggressor)`` for trade prints (``trades=True``);
* ``on_order(ctx, update)`` for every venue response about our orders: accepted, rejected, filled
  (partly or fully), canceled, expired, replaced, cancel/replace rejected; ``update.status`` is
  the order's OrderStatus after it (0 if Execution State no longer knows the order);
* ``on_timer(ctx, timer_id)`` for timers set with ``ctx.set_timer(ts, timer_id)``.

Only the callbacks a Python strategy overrides are ever called, so an unused hook costs nothing.
Intents are judged at once (Risk, then the queue): ``submit_limit``/``submit_market`` return the
client order id, or 0 when denied (``ctx.last_denial`` holds the RiskReason). Orders reach the
venue after the callback returns, cancels first. Raising stops the backtest at that event; what was
produced so far is still written, marked incomplete.

Parameters: a strategy declares ``Params``, a frozen dataclass; the config's ``[strategy.params]``
table is checked against it (unknown keys and wrong types are errors) and the instance is passed
to ``__init__``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from lockstep._bindings.engine import CompiledStrategy, Context, OrderUpdate
from lockstep.enums import OrderStatus, RiskReason, TimeInForce
from lockstep.events import EventKind, Side

HOOKS = ("on_start", "on_book", "on_trade", "on_order", "on_timer", "on_stop")


class Strategy:
    """Base class of plain-Python strategies. Override the callbacks you need."""

    Params: ClassVar[type | None] = None

    def __init__(self, params: Any = None) -> None:
        self.params = params

    def setup(self, ctx: Context) -> None:
        """Once, before any event: convert parameters to ticks and lots, choose subscriptions.
        The default subscribes every book update of every traded instrument."""
        for instrument in ctx.traded:
            ctx.subscribe(instrument, book=True)

    def on_start(self, ctx: Context) -> None:
        """At the first event, before it is applied."""

    def on_book(self, ctx: Context, instrument: int) -> None:
        """After a complete venue message changed `instrument`'s book (or only its touch, with a
        touch subscription); never on a half-applied message, never while the book is invalid."""

    def on_trade(self, ctx: Context, instrument: int, price: int, qty: int, aggressor: int) -> None:
        """A trade print on `instrument` (ticks, lots; `aggressor` the Side that took), with a
        trades subscription."""

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        """A venue response about one of our orders: accepted, rejected, filled, canceled,
        expired, replaced, cancel or replace rejected; `update.status` is the order's status
        after it."""

    def on_timer(self, ctx: Context, timer_id: int) -> None:
        """A timer set with ctx.set_timer() is due."""

    def on_stop(self, ctx: Context) -> None:
        """After the last event."""


def overridden(strategy: object) -> set[str]:
    """The hooks `strategy` defines itself (a duck-typed object counts every hook it has)."""
    cls = type(strategy)
    if isinstance(strategy, Strategy):
        return {h for h in HOOKS if getattr(cls, h) is not getattr(Strategy, h)}
    return {h for h in HOOKS if callable(getattr(strategy, h, None))}


def params_type(cls: type) -> type | None:
    p = getattr(cls, "Params", None)
    if p is not None and not dataclasses.is_dataclass(p):
        raise TypeError(f"{cls.__name__}.Params must be a dataclass")
    return p


__all__ = [
    "CompiledStrategy",
    "Context",
    "EventKind",
    "OrderStatus",
    "OrderUpdate",
    "RiskReason",
    "Side",
    "Strategy",
    "TimeInForce",
    "overridden",
    "params_type",
]
