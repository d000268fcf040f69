"""Pure-Python twin of lockstep.core.execution (include/lockstep/core/execution.hpp): same API, same
results, Python ints throughout so money is exact by construction. Written for clarity, not
speed; the property test in tests/test_execution.py holds the compiled engine to it."""
from __future__ import annotations

from typing import Any

from lockstep.checks import INT64_MAX, INT64_MIN, UINT64_MAX, int_in, order_id_and_ts, u32
from lockstep.core.execution import MAX_INSTRUMENTS, order_dict, position_dict
from lockstep.core.risk import Intent, RiskView
from lockstep.enums import ExecResult, IntentKind, OrderStatus
from lockstep.events import Side

R = ExecResult
S = OrderStatus
_LIVE = (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED)


def _tdiv(a: int, b: int) -> int:
    """a / b truncated toward zero, as C++ integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Order:
    __slots__ = ("id", "instrument", "side", "tif", "price", "qty", "filled", "status",
                 "ts_submitted", "ts_last")

    def row(self) -> tuple:
        return (self.id, self.instrument, self.side, self.tif, self.price, self.qty, self.filled,
                int(self.status), self.ts_submitted, self.ts_last)


class _Inst:
    __slots__ = ("position", "cost", "realized", "fees", "open_orders", "open_buy", "open_sell")

    def __init__(self) -> None:
        self.position = self.cost = self.realized = self.fees = 0
        self.open_orders = self.open_buy = self.open_sell = 0


class ExecutionState:
    def __init__(self) -> None:
        self._orders: list[_Order] = []  # dispatch order
        self._by_id: dict[int, _Order] = {}
        self._inst: dict[int, _Inst] = {}
        self._open_total = 0

    def reserve(self, orders: int, instruments: int = 0) -> None:
        pass

    # -- transitions -----------------------------------------------------------------------------

    def submit(self, intent: Intent, ts: int) -> ExecResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        int_in("ts", ts, INT64_MIN, INT64_MAX)
        if intent.kind not in (IntentKind.SUBMIT_LIMIT, IntentKind.SUBMIT_MARKET):
            return R.BAD_INTENT
        if intent.side not in (Side.BID, Side.ASK) or intent.instrument >= MAX_INSTRUMENTS:
            return R.BAD_INTENT
        if intent.qty <= 0:
            return R.BAD_QTY
        if intent.client_order_id in self._by_id:
            return R.DUPLICATE_ORDER
        o = _Order()
        o.id, o.instrument, o.side, o.tif = (intent.client_order_id, intent.instrument,
                                             intent.side, intent.tif)
        o.price, o.qty, o.filled, o.status = intent.price, intent.qty, 0, S.SUBMITTED
        o.ts_submitted = o.ts_last = ts
        self._orders.append(o)
        self._by_id[o.id] = o
        p = self._inst.setdefault(o.instrument, _Inst())
        p.open_orders += 1
        self._open_total += 1
        if o.side == Side.BID:
            p.open_buy += o.qty
        else:
            p.open_sell += o.qty
        return R.OK

    def on_accepted(self, client_order_id: int, ts: int) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        o = self._by_id.get(client_order_id)
        if o is None:
            return R.UNKNOWN_ORDER
        if o.status == S.SUBMITTED:
            o.status = S.ACCEPTED
        elif o.status != S.PARTIALLY_FILLED:  # a fill overtook the ack: status stays
            return R.INVALID_TRANSITION
        o.ts_last = ts
        return R.OK

    def on_rejected(self, client_order_id: int, ts: int) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        o = self._by_id.get(client_order_id)
        if o is None:
            return R.UNKNOWN_ORDER
        if o.status != S.SUBMITTED:
            return R.INVALID_TRANSITION
        self._finish(o, S.REJECTED, ts)
        return R.OK

    def on_canceled(self, client_order_id: int, ts: int) -> ExecResult:
        return self._end_live(client_order_id, S.CANCELED, ts)

    def on_expired(self, client_order_id: int, ts: int) -> ExecResult:
        return self._end_live(client_order_id, S.EXPIRED, ts)

    def on_fill(self, client_order_id: int, price: int, qty: int, fee: int = 0,
                maker: bool = False, ts: int = 0) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        for name, v in (("price", price), ("qty", qty), ("fee", fee)):
            int_in(name, v, INT64_MIN, INT64_MAX)
        o = self._by_id.get(client_order_id)
        if o is None:
            return R.UNKNOWN_ORDER
        if o.status not in _LIVE:
            return R.INVALID_TRANSITION
        if qty <= 0:
            return R.BAD_QTY
        if qty > o.qty - o.filled:
            return R.OVERFILL
        o.filled += qty
        p = self._inst[o.instrument]
        buy = o.side == Side.BID
        if buy:
            p.open_buy -= qty
        else:
            p.open_sell -= qty
        p.fees += fee
        self._apply_fill(p, buy, price, qty)
        o.ts_last = ts
        if o.filled == o.qty:
            o.status = S.FILLED
            p.open_orders -= 1
            self._open_total -= 1
        else:
            o.status = S.PARTIALLY_FILLED
        return R.OK

    def on_trade_broken(self, instrument: int, side: int, price: int, qty: int,
                        fee: int = 0) -> ExecResult:
        """One of our fills broken by the venue: the opposite trade at its price, its fee back."""
        r = self._fill_correction(instrument, side, price=price, qty=qty, fee=fee)
        if r != R.OK:
            return r
        p = self._inst.setdefault(instrument, _Inst())
        p.fees -= fee
        self._apply_fill(p, side != Side.BID, price, qty)
        return R.OK

    def on_trade_corrected(self, instrument: int, side: int, old_price: int, new_price: int,
                           qty: int, fee_change: int = 0) -> ExecResult:
        """One of our fills repriced by the venue: undone at the old price, done at the new."""
        r = self._fill_correction(instrument, side, old_price=old_price, new_price=new_price,
                                  qty=qty, fee_change=fee_change)
        if r != R.OK:
            return r
        p = self._inst.setdefault(instrument, _Inst())
        p.fees += fee_change
        buy = side == Side.BID
        self._apply_fill(p, not buy, old_price, qty)
        self._apply_fill(p, buy, new_price, qty)
        return R.OK

    @staticmethod
    def _fill_correction(instrument: int, side: int, **values: int) -> ExecResult:
        """The checks of a broken or corrected fill, in the C++ order (OK: book it)."""
        for name, v in values.items():
            int_in(name, v, INT64_MIN, INT64_MAX)
        if u32("instrument", instrument) >= MAX_INSTRUMENTS or side not in (Side.BID, Side.ASK):
            return R.BAD_INTENT
        return R.OK if values["qty"] > 0 else R.BAD_QTY

    def on_replaced(self, client_order_id: int, new_price: int, new_qty: int,
                    ts: int) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        int_in("new_price", new_price, INT64_MIN, INT64_MAX)
        int_in("new_qty", new_qty, INT64_MIN, INT64_MAX)
        o = self._by_id.get(client_order_id)
        if o is None:
            return R.UNKNOWN_ORDER
        if o.status not in _LIVE:
            return R.INVALID_TRANSITION
        if new_qty <= o.filled:
            return R.BAD_QTY
        p = self._inst[o.instrument]
        if o.side == Side.BID:
            p.open_buy += new_qty - o.qty
        else:
            p.open_sell += new_qty - o.qty
        o.price, o.qty, o.ts_last = new_price, new_qty, ts
        return R.OK

    def _end_live(self, client_order_id: int, to: OrderStatus, ts: int) -> ExecResult:
        order_id_and_ts(client_order_id, ts)
        o = self._by_id.get(client_order_id)
        if o is None:
            return R.UNKNOWN_ORDER
        if o.status not in _LIVE:
            return R.INVALID_TRANSITION
        self._finish(o, to, ts)
        return R.OK

    def _finish(self, o: _Order, to: OrderStatus, ts: int) -> None:
        p = self._inst[o.instrument]
        if o.side == Side.BID:
            p.open_buy -= o.qty - o.filled
        else:
            p.open_sell -= o.qty - o.filled
        p.open_orders -= 1
        self._open_total -= 1
        o.status, o.ts_last = to, ts

    @staticmethod
    def _apply_fill(p: _Inst, buy: bool, price: int, qty: int) -> None:
        if p.position == 0 or (p.position > 0) == buy:
            p.position += qty if buy else -qty
            p.cost += price * qty
            return
        held = abs(p.position)
        closed = min(qty, held)
        released = p.cost if closed == held else _tdiv(p.cost * closed, held)
        proceeds = price * closed
        p.realized += proceeds - released if p.position > 0 else released - proceeds
        p.cost -= released
        p.position += closed if buy else -closed
        rest = qty - closed
        if rest:
            p.position += rest if buy else -rest
            p.cost = price * rest

    # -- reads -----------------------------------------------------------------------------------

    def order(self, client_order_id: int) -> dict[str, Any] | None:
        o = self._by_id.get(int_in("client_order_id", client_order_id, 0, UINT64_MAX))
        return None if o is None else order_dict(o.row())

    def orders(self) -> list[dict[str, Any]]:
        return [order_dict(o.row()) for o in self._orders]

    def _get(self, instrument: int) -> _Inst:
        return self._inst.get(u32("instrument", instrument)) or _Inst()

    def position(self, instrument: int) -> dict[str, Any]:
        p = self._get(instrument)
        return position_dict(p.position, p.cost, p.realized, p.fees)

    def unrealized(self, instrument: int, mark: int) -> int:
        int_in("mark", mark, INT64_MIN, INT64_MAX)
        p = self._get(instrument)
        value = mark * p.position
        return value - p.cost if p.position >= 0 else value + p.cost

    def open_orders(self, instrument: int | None = None) -> int:
        return self._open_total if instrument is None else self._get(instrument).open_orders

    def own_qty_at(self, instrument: int, side: int, price: int) -> int:
        return sum(o.qty - o.filled for o in self._orders
                   if o.status in (S.ACCEPTED, S.PARTIALLY_FILLED)
                   and o.instrument == instrument and o.side == side and o.price == price)

    def open_qty(self, instrument: int) -> tuple[int, int]:
        p = self._get(instrument)
        return (p.open_buy, p.open_sell)

    def risk_view(self, instrument: int, mid: int | None = None) -> RiskView:
        if mid is not None:
            int_in("mid", mid, INT64_MIN, INT64_MAX)
        p = self._get(instrument)
        return RiskView(position=p.position, open_orders=p.open_orders, open_buy_qty=p.open_buy,
                        open_sell_qty=p.open_sell, mid=mid, open_orders_total=self._open_total)


__all__ = ["ExecutionState"]
