"""L3 matching (strict FIFO): join at the back, executes/deletes/modifies of orders ahead moving
us up, executes behind us or through our price filling us, prints through our price, replace and
the BookClear rule, on the compiled matcher and on the pure-Python reference; and a property test
that drives both with the same random L3 event sequences, demanding identical output."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstep.core.books import L3Book
from lockstep.core.risk import Intent, IntentKind, TimeInForce
from lockstep.events import EventKind as E
from lockstep.events import Side
from lockstep.reference import matching as reference
from lockstep.venue import matching as compiled
from lockstep.venue.matching import (
    MatchEvent,
    MatchEventKind,
    MatchReject,
    MatchResult,
    RestingOrder,
    SubmitOutcome,
)

BID, ASK = Side.BID, Side.ASK
GTC, IOC, POST = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY
K, R, O = MatchEventKind, MatchReject, SubmitOutcome


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def fill(coid, price, qty, maker, side):
    return MatchEvent(K.FILL, R.NONE, maker, coid, price, qty, side)


def apply(m, b, kind, side=Side.NONE, oid=0, price=0, qty=0):
    """An L3 event as the engine applies it: the matcher first, then the book."""
    m.on_l3(kind, side, oid, price, qty, b)
    if kind == E.L3_ADD:
        b.add(oid, side, price, qty)
    elif kind == E.L3_MODIFY:
        b.modify(oid, price, qty)
    elif kind == E.L3_DELETE:
        b.remove(oid)
    elif kind == E.L3_EXECUTE:
        b.execute(oid, qty)
    elif kind == E.BOOK_CLEAR:
        b.clear()


def market():
    b = L3Book()
    for oid, side, price, qty in [(1, BID, 99, 5), (2, BID, 99, 3), (3, BID, 98, 4),
                                  (11, ASK, 101, 2), (12, ASK, 101, 6), (13, ASK, 103, 5)]:
        b.add(oid, side, price, qty)
    return b


def test_join_at_the_back_and_move_up_exactly(impl):
    m, b = impl.L3Matcher(), market()
    assert m.submit(100, BID, GTC, 99, 4, b) == MatchResult(O.RESTED, R.NONE, 0, 4)
    assert m.order(100) == RestingOrder(100, BID, 99, 4, 8)
    assert m.ahead_count(100) == 2
    apply(m, b, E.L3_ADD, BID, 4, 99, 7)  # behind us
    assert m.order(100).queue_ahead == 8
    apply(m, b, E.L3_EXECUTE, BID, 1, 99, 2)  # ahead: 8 -> 6
    assert m.order(100).queue_ahead == 6
    apply(m, b, E.L3_MODIFY, BID, 1, 99, 1)  # ahead shrinks in place: 6 -> 4
    assert m.order(100).queue_ahead == 4
    apply(m, b, E.L3_MODIFY, BID, 2, 99, 9)  # ahead grows: loses priority, goes behind us
    assert m.order(100).queue_ahead == 1 and m.ahead_count(100) == 1
    apply(m, b, E.L3_DELETE, BID, 1, 99, 1)
    assert m.order(100).queue_ahead == 0 and m.ahead_count(100) == 0
    apply(m, b, E.L3_DELETE, BID, 4, 99, 7)  # behind: nothing
    assert m.drain() == []


def test_execute_behind_us_fills_us(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, BID, GTC, 99, 4, b)
    apply(m, b, E.L3_ADD, BID, 4, 99, 7)
    apply(m, b, E.L3_EXECUTE, BID, 4, 99, 3)  # the aggressor would have met us first
    assert m.drain() == [fill(100, 99, 3, True, BID)]
    assert m.order(100).qty == 1 and m.order(100).queue_ahead == 8
    apply(m, b, E.L3_EXECUTE, BID, 4, 99, 10)  # more than rests: executes its 4; we take 1
    assert m.drain() == [fill(100, 99, 1, True, BID)]
    assert not m.has_resting()


def test_execute_behind_is_shared_among_our_orders_in_insertion_order(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, ASK, GTC, 101, 3, b)
    apply(m, b, E.L3_ADD, ASK, 14, 101, 5)
    m.submit(101, ASK, GTC, 101, 3, b)  # 14 is ahead of this one
    apply(m, b, E.L3_ADD, ASK, 15, 101, 5)
    apply(m, b, E.L3_EXECUTE, ASK, 15, 101, 4)
    assert m.drain() == [fill(100, 101, 3, True, ASK), fill(101, 101, 1, True, ASK)]
    apply(m, b, E.L3_EXECUTE, ASK, 14, 101, 5)  # behind 100 (filled), ahead of 101
    assert m.drain() == []
    assert m.order(101) == RestingOrder(101, ASK, 101, 2, 8)


def test_execute_through_our_price_fills_all(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, BID, GTC, 99, 4, b)
    m.submit(101, BID, GTC, 97, 4, b)
    apply(m, b, E.L3_EXECUTE, BID, 3, 98, 1)  # a bid below ours traded: we were passed
    assert m.drain() == [fill(100, 99, 4, True, BID)]
    apply(m, b, E.L3_EXECUTE, ASK, 11, 101, 2)  # other side: nothing
    assert m.drain() == [] and m.order(101).qty == 4


def test_prints(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, BID, GTC, 99, 4, b)
    m.on_trade(99, 50, ASK)  # at our price: the executes say who traded
    m.on_trade(98, 1, Side.NONE)
    m.on_trade(98, 1, BID)
    assert m.drain() == []
    m.on_trade(98, 1, ASK)  # strictly through
    assert m.drain() == [fill(100, 99, 4, True, BID)]


def test_submit_takes_visible_levels_and_rejects(impl):
    m, b = impl.L3Matcher(), market()
    assert m.submit(1, BID, POST, 101, 1, b) == MatchResult(O.REJECTED, R.POST_ONLY_WOULD_CROSS,
                                                             0, 0)
    assert m.submit(2, BID, IOC, 101, 10, b) == MatchResult(O.CANCELED, R.NONE, 8, 0)
    assert m.submit(3, BID, GTC, 103, 20, b) == MatchResult(O.RESTED, R.NONE, 13, 7)
    assert m.order(3) == RestingOrder(3, BID, 103, 7, 0)
    mkt = Intent(0, IntentKind.SUBMIT_MARKET, ASK, qty=3, client_order_id=4)
    assert m.submit_intent(mkt, b) == MatchResult(O.FILLED, R.NONE, 3, 0)
    assert m.drain() == [
        MatchEvent(K.REJECTED, R.POST_ONLY_WOULD_CROSS, False, 1, 101, 1, BID),
        fill(2, 101, 8, False, BID), MatchEvent(K.CANCELED, R.NONE, False, 2, 101, 2, BID),
        fill(3, 101, 8, False, BID), fill(3, 103, 5, False, BID),
        fill(4, 99, 3, False, ASK)]
    assert m.submit(3, BID, GTC, 90, 1, b).reason is R.DUPLICATE_ORDER
    assert m.cancel(3) and not m.cancel(3)


def test_replace(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, BID, GTC, 99, 4, b)
    apply(m, b, E.L3_ADD, BID, 4, 99, 7)
    assert m.replace(100, 99, 3, b) == MatchResult(O.RESTED, R.NONE, 0, 3)
    assert m.order(100).queue_ahead == 8  # kept its place: 4 still behind
    assert m.replace(100, 99, 5, b) == MatchResult(O.RESTED, R.NONE, 0, 5)
    assert m.order(100).queue_ahead == 15 and m.ahead_count(100) == 3  # 4 is ahead now
    assert m.replace(7, 99, 5, b).reason is R.UNKNOWN_ORDER
    assert m.replace(100, 99, 0, b).reason is R.BAD_QTY
    m.submit(101, ASK, POST, 104, 2, b)
    assert m.replace(101, 99, 2, b).reason is R.POST_ONLY_WOULD_CROSS
    assert m.replace(100, 101, 5, b) == MatchResult(O.FILLED, R.NONE, 5, 0)
    ev = m.drain()
    assert [e.kind for e in ev] == [K.REPLACED, K.REPLACED, K.REPLACE_REJECTED,
                                    K.REPLACE_REJECTED, K.REPLACE_REJECTED, K.REPLACED, K.FILL]
    assert ev[-1] == fill(100, 101, 5, False, BID)  # the visible 8 at 101 covered all 5
    assert m.order(100) is None and m.order(101) == RestingOrder(101, ASK, 104, 2, 0, POST)


def test_book_clear_keeps_our_queue(impl):
    m, b = impl.L3Matcher(), market()
    m.submit(100, BID, GTC, 99, 4, b)
    apply(m, b, E.BOOK_CLEAR)
    assert m.order(100).queue_ahead == 8
    apply(m, b, E.L3_ADD, BID, 1, 99, 2)  # the snapshot re-adds an order that was ahead
    apply(m, b, E.L3_ADD, BID, 2, 98, 3)  # one that moved while we could not see
    apply(m, b, E.L3_ADD, BID, 9, 99, 5)  # a new one: behind
    assert m.order(100).queue_ahead == 2 and m.ahead_count(100) == 1
    apply(m, b, E.L3_EXECUTE, BID, 9, 99, 1)
    assert m.drain() == [fill(100, 99, 1, True, BID)]


# --------------------------------------------------------------------------------------------
# Property: compiled and reference agree on random L3 streams.

_px = st.integers(97, 103)
_oid = st.integers(1, 12)
_coid = st.integers(100, 104)
step_st = st.one_of(
    st.tuples(st.just("add"), st.tuples(_oid, st.sampled_from([BID, ASK]), _px,
                                        st.integers(-1, 8))),
    st.tuples(st.just("add"), st.tuples(_oid, st.sampled_from([BID, ASK]), _px,
                                        st.integers(1, 8))),
    st.tuples(st.just("modify"), st.tuples(_oid, _px, st.integers(-1, 9))),
    st.tuples(st.just("delete"), _oid),
    st.tuples(st.just("execute"), st.tuples(_oid, st.integers(-1, 10))),
    st.tuples(st.just("execute"), st.tuples(_oid, st.integers(1, 10))),
    st.tuples(st.just("clear"), st.none()),
    st.tuples(st.just("trade"), st.tuples(_px, st.integers(0, 5),
                                          st.sampled_from([BID, ASK, Side.NONE]))),
    st.tuples(st.just("submit"), st.tuples(_coid, st.sampled_from([BID, ASK]),
                                           st.sampled_from([GTC, IOC, POST]), _px,
                                           st.integers(-1, 10))),
    st.tuples(st.just("replace"), st.tuples(_coid, _px, st.integers(-1, 10))),
    st.tuples(st.just("cancel"), _coid),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step_st, max_size=60))
def test_compiled_and_reference_agree(steps):
    a, r = compiled.L3Matcher(), reference.L3Matcher()
    b = L3Book()
    for op, arg in steps:
        if op == "add":
            oid, side, price, qty = arg
            for m in (a, r):
                m.on_l3(E.L3_ADD, side, oid, price, qty, b)
            b.add(oid, side, price, qty)
        elif op == "modify":
            oid, price, qty = arg
            found = b.order(oid)
            side = found[0] if found else Side.NONE
            for m in (a, r):
                m.on_l3(E.L3_MODIFY, side, oid, price, qty, b)
            b.modify(oid, price, qty)
        elif op == "delete":
            for m in (a, r):
                m.on_l3(E.L3_DELETE, Side.NONE, arg, 0, 0, b)
            b.remove(arg)
        elif op == "execute":
            oid, qty = arg
            for m in (a, r):
                m.on_l3(E.L3_EXECUTE, Side.NONE, oid, 0, qty, b)
            b.execute(oid, qty)
        elif op == "clear":
            for m in (a, r):
                m.on_l3(E.BOOK_CLEAR, Side.NONE, 0, 0, 0, b)
            b.clear()
        elif op == "trade":
            a.on_trade(*arg)
            r.on_trade(*arg)
        elif op == "submit":
            assert a.submit(*arg, b) == r.submit(*arg, b)
        elif op == "replace":
            assert a.replace(*arg, b) == r.replace(*arg, b)
        else:
            assert a.cancel(arg) == r.cancel(arg)
        assert a.drain() == r.drain()
        assert a.orders() == r.orders()
        for o in a.orders():
            assert a.ahead_count(o.client_order_id) == r.ahead_count(o.client_order_id)
            assert o.qty > 0 and o.queue_ahead >= 0


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(step_st.filter(lambda s: s[0] != "clear"), max_size=60))
def test_queue_ahead_is_exactly_the_orders_ahead(steps):
    """Without a BookClear, queue_ahead equals the visible orders at our level that joined before
    us and kept their priority: a prefix of the level's FIFO."""
    m, b = reference.L3Matcher(), L3Book()
    for op, arg in steps:
        if op == "add":
            m.on_l3(E.L3_ADD, arg[1], arg[0], arg[2], arg[3], b)
            b.add(*arg)
        elif op == "modify":
            m.on_l3(E.L3_MODIFY, Side.NONE, arg[0], arg[1], arg[2], b)
            b.modify(*arg)
        elif op == "delete":
            m.on_l3(E.L3_DELETE, Side.NONE, arg, 0, 0, b)
            b.remove(arg)
        elif op == "execute":
            m.on_l3(E.L3_EXECUTE, Side.NONE, arg[0], 0, arg[1], b)
            b.execute(*arg)
        elif op == "submit":
            m.submit(*arg, b)
        elif op == "replace":
            m.replace(*arg, b)
        elif op == "cancel":
            m.cancel(arg)
        for o in m.orders():
            level = [q for _, p, q in b.orders(o.side) if p == o.price]
            n = m.ahead_count(o.client_order_id)
            assert o.queue_ahead == sum(level[:n])
