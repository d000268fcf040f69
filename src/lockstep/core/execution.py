"""Execution State: our own orders and positions (lockstep::ExecutionState in
include/lockstep/core/execution.hpp, behind a thin wrapper). lockstep.reference.execution is a
pure-Python twin with the same API and results.

An Order exists from the moment Queue Processing dispatches it: `submit(intent, ts)` creates it
Submitted; venue responses (`on_accepted`, `on_rejected`, `on_canceled`, `on_expired`, `on_fill`,
`on_replaced`) advance it. Every call returns an ExecResult; anything but OK leaves State
unchanged. A fill may arrive before the ack (the venue matched first), so fills are accepted on a
Submitted order and a late ack on a PartiallyFilled one.

Units: prices in ticks, quantities in lots (int64). Money (cost, realized, unrealized) is exact,
in ticks x lots, as Python ints (128-bit in the core). Fees are summed as given (signed: a maker
rebate is negative) and kept apart from realized PnL. Average-cost accounting: closing part of a
position releases cost x closed / |position| truncated toward zero; the residue stays with the
lots still open, so a round trip back to flat realizes exactly its cash flows.
"""
from __future__ import annotations

import enum
from fractions import Fraction
from typing import Any

from lockstep._bindings import execution as _execution
from lockstep.events import Side
from lockstep.core.risk import Intent, RiskView, TimeInForce, _field

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1

#: Instrument ids are dense table indices below this bound.
MAX_INSTRUMENTS: int = _execution.MAX_INSTRUMENTS


class OrderStatus(enum.IntEnum):
    """lockstep::OrderStatus."""

    SUBMITTED = 1
    ACCEPTED = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    CANCELED = 5
    REJECTED = 6
    EXPIRED = 7

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                       OrderStatus.EXPIRED})


class ExecResult(enum.IntEnum):
    """lockstep::ExecResult."""

    OK = 0
    UNKNOWN_ORDER = 1
    DUPLICATE_ORDER = 2
    INVALID_TRANSITION = 3
    OVERFILL = 4
    BAD_QTY = 5  # qty <= 0, or a replace qty not above filled_qty
    BAD_INTENT = 6  # not a submit kind, side not bid/ask, or instrument >= MAX_INSTRUMENTS


_ORDER_KEYS = ("client_order_id", "instrument", "side", "tif", "price", "qty", "filled_qty",
               "status", "ts_submitted", "ts_last")


def _order_dict(row: tuple) -> dict[str, Any]:
    d = dict(zip(_ORDER_KEYS, row))
    d["side"] = Side(d["side"])
    d["tif"] = TimeInForce(d["tif"]) if d["tif"] in TimeInForce._value2member_map_ else d["tif"]
    d["status"] = OrderStatus(d["status"])
    return d


def _avg_price(position: int, cost: int) -> float:
    # Exact ratio first, one rounding to float at the end: both engines agree bit for bit.
    return float(Fraction(cost, abs(position))) if position else 0.0


def _position_dict(position: int, cost: int, realized: int, fees: int) -> dict[str, Any]:
    return {"position": position, "avg_price": _avg_price(position, cost), "cost": cost,
            "realized": realized, "fees": fees}


class ExecutionState:
    """Orders (in dispatch order) and per-instrument positions and open-order aggregates."""

    def __init__(self) -> None:
        self._core = _execution.ExecutionState()

    def reserve(self, orders: int, instruments: int = 0) -> None:
        """Room for `orders` orders and instrument ids below `instruments`, up front."""
        self._core.reserve(orders, min(instruments, MAX_INSTRUMENTS))

    # -- transitions -----------------------------------------------------------------------------

    def submit(self, intent: Intent, ts: int) -> ExecResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        return ExecResult(self._core.submit(intent, _field(ts, _INT64_MIN, _INT64_MAX, "ts")))

    def on_accepted(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_accepted(*_id_ts(client_order_id, ts)))

    def on_rejected(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_rejected(*_id_ts(client_order_id, ts)))

    def on_canceled(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_canceled(*_id_ts(client_order_id, ts)))

    def on_expired(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_expired(*_id_ts(client_order_id, ts)))

    def on_fill(self, client_order_id: int, price: int, qty: int, fee: int = 0,
                maker: bool = False, ts: int = 0) -> ExecResult:
        _id_ts(client_order_id, ts)
        for name, v in (("price", price), ("qty", qty), ("fee", fee)):
            _field(v, _INT64_MIN, _INT64_MAX, name)
        return ExecResult(self._core.on_fill(client_order_id, price, qty, fee, bool(maker), ts))

    def on_replaced(self, client_order_id: int, new_price: int, new_qty: int,
                    ts: int) -> ExecResult:
        _id_ts(client_order_id, ts)
        _field(new_price, _INT64_MIN, _INT64_MAX, "new_price")
        _field(new_qty, _INT64_MIN, _INT64_MAX, "new_qty")
        return ExecResult(self._core.on_replaced(client_order_id, new_price, new_qty, ts))

    # -- reads -----------------------------------------------------------------------------------

    def order(self, client_order_id: int) -> dict[str, Any] | None:
        row = self._core.order(_field(client_order_id, 0, _UINT64_MAX, "client_order_id"))
        return None if row is None else _order_dict(row)

    def orders(self) -> list[dict[str, Any]]:
        """Every order, in dispatch order."""
        return [_order_dict(r) for r in self._core.orders()]

    def position(self, instrument: int) -> dict[str, Any]:
        """{position, avg_price (float, 0.0 when flat), cost, realized, fees}."""
        return _position_dict(*self._core.position(_instrument(instrument)))

    def unrealized(self, instrument: int, mark: int) -> int:
        """Exact PnL (ticks x lots, fees excluded) of closing the position at `mark`."""
        return self._core.unrealized(_instrument(instrument),
                                     _field(mark, _INT64_MIN, _INT64_MAX, "mark"))

    def open_orders(self, instrument: int | None = None) -> int:
        """Live orders on `instrument`, or over every instrument when None."""
        if instrument is None:
            return self._core.open_orders_total()
        return self._core.open_orders(_instrument(instrument))

    def open_qty(self, instrument: int) -> tuple[int, int]:
        """(remaining lots of live buys, of live sells) on `instrument`."""
        return self._core.open_qty(_instrument(instrument))

    def risk_view(self, instrument: int, mid: int | None = None) -> RiskView:
        """The RiskView Risk reads for `instrument`, filled by the core."""
        if mid is not None:
            _field(mid, _INT64_MIN, _INT64_MAX, "mid")
        pos, n, buy, sell, known, m, total = self._core.risk_view(
            _instrument(instrument), mid is not None, 0 if mid is None else mid)
        return RiskView(position=pos, open_orders=n, open_buy_qty=buy, open_sell_qty=sell,
                        mid=m if known else None, open_orders_total=total)


def _id_ts(client_order_id: int, ts: int) -> tuple[int, int]:
    return (_field(client_order_id, 0, _UINT64_MAX, "client_order_id"),
            _field(ts, _INT64_MIN, _INT64_MAX, "ts"))


def _instrument(instrument: int) -> int:
    return _field(instrument, 0, _UINT32_MAX, "instrument")


__all__ = ["MAX_INSTRUMENTS", "ExecResult", "ExecutionState", "OrderStatus"]
