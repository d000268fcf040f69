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

from fractions import Fraction
from typing import Any

from lockstep._bindings import execution as _execution
from lockstep.checks import INT64_MAX, INT64_MIN, UINT64_MAX, int_in, order_id_and_ts, u32
from lockstep.core.risk import Intent, RiskView
from lockstep.enums import ExecResult, OrderStatus, TimeInForce
from lockstep.events import Side

#: Instrument ids are dense table indices below this bound.
MAX_INSTRUMENTS: int = _execution.MAX_INSTRUMENTS


_ORDER_KEYS = ("client_order_id", "instrument", "side", "tif", "price", "qty", "filled_qty",
               "status", "ts_submitted", "ts_last")


def order_dict(row: tuple) -> dict[str, Any]:
    """An order as the API reports it, from the row of its fields in _ORDER_KEYS order."""
    d = dict(zip(_ORDER_KEYS, row))
    d["side"] = Side(d["side"])
    d["tif"] = TimeInForce(d["tif"]) if d["tif"] in TimeInForce._value2member_map_ else d["tif"]
    d["status"] = OrderStatus(d["status"])
    return d


def _avg_price(position: int, cost: int) -> float:
    # Exact ratio first, one rounding to float at the end: both engines agree bit for bit.
    return float(Fraction(cost, abs(position))) if position else 0.0


def position_dict(position: int, cost: int, realized: int, fees: int) -> dict[str, Any]:
    """A position as the API reports it, average price included."""
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
        return ExecResult(self._core.submit(intent, int_in("ts", ts, INT64_MIN, INT64_MAX)))

    def on_accepted(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_accepted(*order_id_and_ts(client_order_id, ts)))

    def on_rejected(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_rejected(*order_id_and_ts(client_order_id, ts)))

    def on_canceled(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_canceled(*order_id_and_ts(client_order_id, ts)))

    def on_expired(self, client_order_id: int, ts: int) -> ExecResult:
        return ExecResult(self._core.on_expired(*order_id_and_ts(client_order_id, ts)))

    def on_fill(self, client_order_id: int, price: int, qty: int, fee: int = 0,
                maker: bool = False, ts: int = 0) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        for name, v in (("price", price), ("qty", qty), ("fee", fee)):
            int_in(name, v, INT64_MIN, INT64_MAX)
        return ExecResult(self._core.on_fill(client_order_id, price, qty, fee, bool(maker), ts))

    def on_replaced(self, client_order_id: int, new_price: int, new_qty: int,
                    ts: int) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        int_in("new_price", new_price, INT64_MIN, INT64_MAX)
        int_in("new_qty", new_qty, INT64_MIN, INT64_MAX)
        return ExecResult(self._core.on_replaced(client_order_id, new_price, new_qty, ts))

    def on_trade_broken(self, instrument: int, side: int, price: int, qty: int,
                        fee: int = 0) -> ExecResult:
        """The venue broke one of our fills (as it was filled: side, price, qty, fee). Booked as
        the opposite trade at the same price with the fee given back: position, cash and total
        PnL as without the trade. The order keeps its filled qty."""
        for name, v in (("price", price), ("qty", qty), ("fee", fee)):
            int_in(name, v, INT64_MIN, INT64_MAX)
        return ExecResult(self._core.on_trade_broken(u32("instrument", instrument), int(side),
                                                     price, qty, fee))

    def on_trade_corrected(self, instrument: int, side: int, old_price: int, new_price: int,
                           qty: int, fee_change: int = 0) -> ExecResult:
        """The venue moved one of our fills from old_price to new_price: the position stays, the
        cash moves by qty x the difference, the fees by fee_change."""
        for name, v in (("old_price", old_price), ("new_price", new_price), ("qty", qty),
                        ("fee_change", fee_change)):
            int_in(name, v, INT64_MIN, INT64_MAX)
        return ExecResult(self._core.on_trade_corrected(u32("instrument", instrument), int(side),
                                                        old_price, new_price, qty, fee_change))

    # -- reads -----------------------------------------------------------------------------------

    def order(self, client_order_id: int) -> dict[str, Any] | None:
        row = self._core.order(int_in("client_order_id", client_order_id, 0, UINT64_MAX))
        return None if row is None else order_dict(row)

    def orders(self) -> list[dict[str, Any]]:
        """Every order, in dispatch order."""
        return [order_dict(r) for r in self._core.orders()]

    def position(self, instrument: int) -> dict[str, Any]:
        """{position, avg_price (float, 0.0 when flat), cost, realized, fees}."""
        return position_dict(*self._core.position(u32("instrument", instrument)))

    def unrealized(self, instrument: int, mark: int) -> int:
        """Exact PnL (ticks x lots, fees excluded) of closing the position at `mark`."""
        return self._core.unrealized(u32("instrument", instrument),
                                     int_in("mark", mark, INT64_MIN, INT64_MAX))

    def open_orders(self, instrument: int | None = None) -> int:
        """Live orders on `instrument`, or over every instrument when None."""
        if instrument is None:
            return self._core.open_orders_total()
        return self._core.open_orders(u32("instrument", instrument))

    def open_qty(self, instrument: int) -> tuple[int, int]:
        """(remaining lots of live buys, of live sells) on `instrument`."""
        return self._core.open_qty(u32("instrument", instrument))

    def own_qty_at(self, instrument: int, side: int, price: int) -> int:
        """Lots of the level `price` on `side` that are ours: the unfilled rest of our orders the
        venue has acknowledged there (a submitted order is not on its book yet)."""
        return self._core.own_qty_at(u32("instrument", instrument), int_in("side", side, 1, 2),
                                     int_in("price", price, INT64_MIN, INT64_MAX))

    def risk_view(self, instrument: int, mid: int | None = None) -> RiskView:
        """The RiskView Risk reads for `instrument`, filled by the core."""
        if mid is not None:
            int_in("mid", mid, INT64_MIN, INT64_MAX)
        pos, n, buy, sell, known, m, total = self._core.risk_view(
            u32("instrument", instrument), mid is not None, 0 if mid is None else mid)
        return RiskView(position=pos, open_orders=n, open_buy_qty=buy, open_sell_qty=sell,
                        mid=m if known else None, open_orders_total=total)


__all__ = ["MAX_INSTRUMENTS", "ExecResult", "ExecutionState", "OrderStatus"]
