"""Execution State: order lifecycle (orders begin at submission), exact position accounting worked
out by hand, open-order aggregates for Risk, and a property test holding the compiled engine to
the pure-Python reference over random operation sequences."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep.core import execution as compiled
from lockstep.core.execution import ExecResult, OrderStatus
from lockstep.core.risk import Intent, IntentKind, RiskView, TimeInForce
from lockstep.events import Side
from lockstep.reference import execution as reference

R, S = ExecResult, OrderStatus
BID, ASK = Side.BID, Side.ASK
LIMIT, MARKET = IntentKind.SUBMIT_LIMIT, IntentKind.SUBMIT_MARKET


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def submit(es, oid, side=BID, qty=1, price=100, instrument=0, ts=0, kind=LIMIT,
           tif=TimeInForce.GTC):
    return es.submit(Intent(instrument, kind, side, tif, price=price, qty=qty,
                            client_order_id=oid), ts)


def status(es, oid):
    return es.order(oid)["status"]


# -- lifecycle -----------------------------------------------------------------------------------


def test_order_exists_from_submission(impl):
    es = impl.ExecutionState()
    assert es.order(1) is None and es.orders() == []
    assert submit(es, 1, qty=3, price=101, ts=10, tif=TimeInForce.IOC) == R.OK
    assert es.order(1) == {
        "client_order_id": 1, "instrument": 0, "side": BID, "tif": TimeInForce.IOC,
        "price": 101, "qty": 3, "filled_qty": 0, "status": S.SUBMITTED, "ts_submitted": 10,
        "ts_last": 10,
    }
    assert es.on_accepted(1, 12) == R.OK
    assert es.order(1)["status"] == S.ACCEPTED and es.order(1)["ts_last"] == 12


@pytest.mark.parametrize("path, final", [
    ([("acc",)], S.ACCEPTED),
    ([("acc",), ("fill", 1)], S.PARTIALLY_FILLED),
    ([("acc",), ("fill", 1), ("fill", 2)], S.FILLED),
    ([("fill", 3)], S.FILLED),  # filled before the ack arrived
    ([("fill", 1), ("acc",)], S.PARTIALLY_FILLED),  # late ack keeps PartiallyFilled
    ([("acc",), ("cancel",)], S.CANCELED),
    ([("cancel",)], S.CANCELED),
    ([("fill", 2), ("cancel",)], S.CANCELED),
    ([("reject",)], S.REJECTED),
    ([("acc",), ("expire",)], S.EXPIRED),
    ([("fill", 1), ("expire",)], S.EXPIRED),
])
def test_every_status_reachable(impl, path, final):
    es = impl.ExecutionState()
    assert submit(es, 7, qty=3) == R.OK
    for ts, step in enumerate(path, 1):
        op = step[0]
        r = {"acc": lambda: es.on_accepted(7, ts), "cancel": lambda: es.on_canceled(7, ts),
             "reject": lambda: es.on_rejected(7, ts), "expire": lambda: es.on_expired(7, ts),
             "fill": lambda: es.on_fill(7, 100, step[-1], 0, False, ts)}[op]()
        assert r == R.OK, step
    assert status(es, 7) == final
    assert es.order(7)["ts_last"] == len(path)


@pytest.mark.parametrize("terminal", ["fill", "cancel", "reject", "expire"])
def test_nothing_moves_a_terminal_order(impl, terminal):
    es = impl.ExecutionState()
    submit(es, 1, qty=2)
    {"fill": lambda: es.on_fill(1, 100, 2, 0, False, 1), "cancel": lambda: es.on_canceled(1, 1),
     "reject": lambda: es.on_rejected(1, 1), "expire": lambda: es.on_expired(1, 1)}[terminal]()
    before = (es.order(1), es.position(0), es.open_qty(0), es.open_orders())
    assert es.on_accepted(1, 9) == R.INVALID_TRANSITION
    assert es.on_rejected(1, 9) == R.INVALID_TRANSITION
    assert es.on_canceled(1, 9) == R.INVALID_TRANSITION
    assert es.on_expired(1, 9) == R.INVALID_TRANSITION
    assert es.on_fill(1, 100, 1, 0, False, 9) == R.INVALID_TRANSITION
    assert es.on_replaced(1, 100, 5, 9) == R.INVALID_TRANSITION
    assert (es.order(1), es.position(0), es.open_qty(0), es.open_orders()) == before


def test_invalid_inputs(impl):
    es = impl.ExecutionState()
    assert submit(es, 1, qty=2) == R.OK
    assert submit(es, 1, qty=2) == R.DUPLICATE_ORDER
    assert submit(es, 2, qty=0) == R.BAD_QTY
    assert submit(es, 2, side=Side.NONE) == R.BAD_INTENT
    assert es.submit(Intent(0, IntentKind.CANCEL, BID, target_order_id=1), 0) == R.BAD_INTENT
    assert submit(es, 2, instrument=compiled.MAX_INSTRUMENTS) == R.BAD_INTENT
    assert submit(es, 3, kind=MARKET, qty=1, price=0) == R.OK
    for call in (lambda: es.on_accepted(99, 0), lambda: es.on_fill(99, 1, 1, 0, False, 0),
                 lambda: es.on_canceled(99, 0), lambda: es.on_replaced(99, 1, 1, 0)):
        assert call() == R.UNKNOWN_ORDER
    assert es.on_accepted(1, 1) == R.OK
    assert es.on_accepted(1, 2) == R.INVALID_TRANSITION  # a second ack
    assert es.on_rejected(1, 2) == R.INVALID_TRANSITION  # only a Submitted order is rejected
    assert es.on_fill(1, 100, 0, 0, False, 2) == R.BAD_QTY
    assert es.on_fill(1, 100, 3, 0, False, 2) == R.OVERFILL
    assert es.on_fill(1, 100, 1, 0, False, 2) == R.OK
    assert es.on_fill(1, 100, 2, 0, False, 2) == R.OVERFILL
    assert es.on_replaced(1, 99, 1, 3) == R.BAD_QTY  # would leave nothing open
    assert es.order(1)["filled_qty"] == 1 and es.order(1)["qty"] == 2
    assert [o["client_order_id"] for o in es.orders()] == [1, 3]  # dispatch order
    with pytest.raises(OverflowError):
        es.on_fill(1, 100, 2**63, 0, False, 0)
    with pytest.raises(OverflowError):
        es.on_accepted(-1, 0)


def test_replace_changes_open_qty(impl):
    es = impl.ExecutionState()
    submit(es, 1, side=ASK, qty=5, price=110)
    es.on_fill(1, 110, 2, 0, False, 1)
    assert es.open_qty(0) == (0, 3)
    assert es.on_replaced(1, 112, 10, 2) == R.OK
    o = es.order(1)
    assert (o["price"], o["qty"], o["filled_qty"], o["status"]) == (112, 10, 2,
                                                                     S.PARTIALLY_FILLED)
    assert es.open_qty(0) == (0, 8)
    assert es.on_fill(1, 112, 8, 0, False, 3) == R.OK and status(es, 1) == S.FILLED


def test_own_qty_at_a_level_counts_what_the_venue_holds_of_ours(impl):
    es = impl.ExecutionState()
    submit(es, 1, qty=3, price=100)
    submit(es, 2, qty=5, price=100)
    submit(es, 3, qty=7, price=101)
    submit(es, 4, side=ASK, qty=9, price=100, instrument=1)
    assert es.own_qty_at(0, BID, 100) == 0  # submitted: not on the venue's book yet
    for oid in (1, 2, 3, 4):
        es.on_accepted(oid, 1)
    assert (es.own_qty_at(0, BID, 100), es.own_qty_at(0, BID, 101)) == (8, 7)
    assert (es.own_qty_at(0, ASK, 100), es.own_qty_at(1, ASK, 100), es.own_qty_at(1, BID, 100)) == (0, 9, 0)
    es.on_fill(1, 100, 2, 0, True, 2)
    assert es.own_qty_at(0, BID, 100) == 6
    es.on_canceled(2, 3)
    assert es.own_qty_at(0, BID, 100) == 1
    es.on_replaced(1, 101, 3, 4)  # the rest (1) moves to 101
    assert (es.own_qty_at(0, BID, 100), es.own_qty_at(0, BID, 101)) == (0, 8)
    es.on_fill(3, 101, 7, 0, True, 5)
    assert es.own_qty_at(0, BID, 101) == 1


# -- positions -----------------------------------------------------------------------------------


def test_flip_long_to_short(impl):
    es = impl.ExecutionState()
    submit(es, 1, BID, qty=3, price=100)
    es.on_fill(1, 100, 3, 4, False, 1)  # pays fee 4
    assert es.position(0) == {"position": 3, "avg_price": 100.0, "cost": 300, "realized": 0,
                              "fees": 4}
    assert es.unrealized(0, 103) == 9  # 3 x (103 - 100)
    submit(es, 2, ASK, qty=5, price=110)
    es.on_fill(2, 110, 5, -1, True, 2)  # maker rebate 1
    # Closed 3 bought at 100 for 110: realized 3 x 10 = 30. Opened short 2 at 110 (cost 220).
    assert es.position(0) == {"position": -2, "avg_price": 110.0, "cost": 220, "realized": 30,
                              "fees": 3}
    assert es.unrealized(0, 105) == 10  # short 2 from 110 marked at 105: 2 x 5
    assert es.unrealized(0, 112) == -4
    submit(es, 3, BID, qty=2, price=90)
    es.on_fill(3, 90, 2, 0, False, 3)  # cover 2 at 90: 2 x (110 - 90) = 40
    assert es.position(0) == {"position": 0, "avg_price": 0.0, "cost": 0, "realized": 70,
                              "fees": 3}
    assert es.unrealized(0, 1) == 0


def test_a_broken_trade_leaves_position_cash_and_fees_as_without_it(impl):
    es = impl.ExecutionState()
    submit(es, 1, BID, qty=10, price=100)
    es.on_fill(1, 100, 10, 4, False, 1)  # pays fee 4
    submit(es, 2, BID, qty=10, price=110)
    es.on_fill(2, 110, 10, 0, False, 2)
    assert es.on_trade_broken(0, BID, 100, 10, 4) == R.OK
    # Sold back 10 of 20 lots costing 2100 at 100: releases 1050, realized -50, cost 1050 left.
    assert es.position(0) == {"position": 10, "avg_price": 105.0, "cost": 1050, "realized": -50,
                              "fees": 0}
    # Without the first trade: 10 lots bought at 110; marked at 120 both are worth 100.
    assert es.position(0)["realized"] + es.unrealized(0, 120) == 10 * (120 - 110)
    assert status(es, 1) == S.FILLED and es.order(1)["filled_qty"] == 10  # no shares given back
    assert es.open_orders(0) == 0


def test_a_price_correction_moves_the_cash_and_keeps_the_position(impl):
    es = impl.ExecutionState()
    submit(es, 1, ASK, qty=4, price=100)
    es.on_fill(1, 100, 4, 0, False, 1)  # short 4 at 100
    assert es.on_trade_corrected(0, ASK, 100, 103, 4, 2) == R.OK  # the fee grew by 2
    # Undone (bought back at 100: realized 0), done again at 103: short 4 costing 412.
    assert es.position(0) == {"position": -4, "avg_price": 103.0, "cost": 412, "realized": 0,
                              "fees": 2}
    assert es.unrealized(0, 100) == 4 * 3
    assert es.on_trade_broken(0, ASK, 103, 4, 2) == R.OK  # a bust after the correction: flat
    assert es.position(0) == {"position": 0, "avg_price": 0.0, "cost": 0, "realized": 0,
                              "fees": 0}


def test_corrections_of_nothing_sensible_change_nothing(impl):
    es = impl.ExecutionState()
    submit(es, 1, BID, qty=2, price=100)
    es.on_fill(1, 100, 2, 0, False, 1)
    before = es.position(0)
    assert es.on_trade_broken(0, Side.NONE, 100, 2) == R.BAD_INTENT
    assert es.on_trade_broken(1 << 20, BID, 100, 2) == R.BAD_INTENT
    assert es.on_trade_broken(0, BID, 100, 0) == R.BAD_QTY
    assert es.on_trade_corrected(0, 3, 100, 101, 2, 0) == R.BAD_INTENT
    assert es.on_trade_corrected(0, BID, 100, 101, -1, 0) == R.BAD_QTY
    assert es.position(0) == before
    with pytest.raises(OverflowError):
        es.on_trade_broken(0, BID, 2**63, 1)


def test_average_cost_rounding_is_conserved(impl):
    es = impl.ExecutionState()
    submit(es, 1, BID, qty=3, price=100)
    es.on_fill(1, 100, 1, 0, False, 0)
    es.on_fill(1, 101, 1, 0, False, 0)
    es.on_fill(1, 101, 1, 0, False, 0)  # 3 lots cost 302, avg 100.666...
    assert es.position(0)["avg_price"] == 302 / 3
    submit(es, 2, ASK, qty=3, price=100)
    es.on_fill(2, 102, 1, 0, False, 0)  # releases trunc(302 / 3) = 100: realized 2
    assert es.position(0)["realized"] == 2 and es.position(0)["cost"] == 202
    es.on_fill(2, 102, 1, 0, False, 0)  # releases trunc(202 / 2) = 101: realized 1
    assert es.position(0)["realized"] == 3 and es.position(0)["cost"] == 101
    es.on_fill(2, 102, 1, 0, False, 0)  # the last lot takes the residue: realized 1
    # Flat again: realized equals the exact cash flows, 306 - 302.
    assert es.position(0)["realized"] == 4 and es.position(0)["position"] == 0


def test_huge_values_are_exact(impl):
    es = impl.ExecutionState()
    big = 2**62
    submit(es, 1, BID, qty=big, price=big)
    es.on_fill(1, big, big, 0, False, 0)
    assert es.position(0)["cost"] == big * big
    assert es.unrealized(0, big + 1) == big
    submit(es, 2, ASK, qty=big, price=1)
    es.on_fill(2, 1, big, 0, False, 0)
    assert es.position(0)["realized"] == big - big * big


# -- aggregates ----------------------------------------------------------------------------------


def test_open_order_aggregates_and_risk_view(impl):
    es = impl.ExecutionState()
    submit(es, 1, BID, qty=3, instrument=0)
    submit(es, 2, ASK, qty=4, instrument=0)
    submit(es, 3, BID, qty=5, instrument=1)
    assert es.open_orders(0) == 2 and es.open_orders(1) == 1 and es.open_orders() == 3
    assert es.open_qty(0) == (3, 4) and es.open_qty(1) == (5, 0) and es.open_qty(9) == (0, 0)
    es.on_fill(1, 100, 1, 0, False, 1)
    assert es.open_qty(0) == (2, 4)
    es.on_canceled(2, 2)
    assert es.open_qty(0) == (2, 0) and es.open_orders(0) == 1 and es.open_orders() == 2
    es.on_fill(3, 100, 5, 0, False, 3)
    assert es.open_orders(1) == 0 and es.open_orders() == 1
    assert es.risk_view(0, mid=101) == RiskView(position=1, open_orders=1, open_buy_qty=2,
                                                open_sell_qty=0, mid=101, open_orders_total=1)
    assert es.risk_view(1) == RiskView(position=5, open_orders=0, mid=None, open_orders_total=1)
    assert es.risk_view(5) == RiskView(open_orders_total=1)


# -- compiled == reference -----------------------------------------------------------------------

IDS = st.integers(1, 6)
QTY = st.integers(-1, 6)
PRICE = st.integers(-5, 200)
OPS = st.one_of(
    st.tuples(st.just("submit"), IDS, st.integers(0, 2), st.integers(0, 3), st.integers(0, 2),
              PRICE, QTY, st.integers(0, 2)),
    st.tuples(st.just("on_accepted"), IDS),
    st.tuples(st.just("on_rejected"), IDS),
    st.tuples(st.just("on_canceled"), IDS),
    st.tuples(st.just("on_expired"), IDS),
    st.tuples(st.just("on_fill"), IDS, PRICE, QTY, st.integers(-3, 3), st.booleans()),
    st.tuples(st.just("on_replaced"), IDS, PRICE, QTY),
    st.tuples(st.just("on_trade_broken"), st.integers(0, 3), st.integers(0, 3), PRICE, QTY,
              st.integers(-3, 3)),
    st.tuples(st.just("on_trade_corrected"), st.integers(0, 3), st.integers(0, 3), PRICE, PRICE,
              QTY, st.integers(-3, 3)),
)


def _snapshot(es, marks):
    return (es.orders(), [es.order(i) for i in range(8)],
            [(es.position(i), es.open_qty(i), es.open_orders(i), es.risk_view(i, 50),
              [es.unrealized(i, m) for m in marks]) for i in range(3)],
            es.open_orders(),
            [es.own_qty_at(i, side, p) for i in range(3) for side in (BID, ASK)
             for p in sorted({o["price"] for o in es.orders()})])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=60), st.lists(PRICE, min_size=1, max_size=3))
def test_compiled_matches_reference(ops, marks):
    a, b = compiled.ExecutionState(), reference.ExecutionState()
    for ts, op in enumerate(ops):
        name, oid, *args = op
        if name == "submit":
            kind, side, instrument, price, qty, tif = args
            intent = Intent(instrument, kind, side, tif, price=price, qty=qty,
                            client_order_id=oid)
            ra, rb = a.submit(intent, ts), b.submit(intent, ts)
        elif name.startswith("on_trade_"):  # (instrument, side, ...): no order, no stamp
            ra, rb = getattr(a, name)(oid, *args), getattr(b, name)(oid, *args)
        else:
            ra, rb = getattr(a, name)(oid, *args, ts), getattr(b, name)(oid, *args, ts)
        assert ra == rb, op
        assert type(ra) is ExecResult and type(rb) is ExecResult
    assert _snapshot(a, marks) == _snapshot(b, marks)
