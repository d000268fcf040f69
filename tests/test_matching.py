"""L2 matching: every rule (post-only reject, IOC sweep and cancel, GTC rest with queue-ahead,
trades at and through our price, level updates under both queue models, replace, cancel) on the
compiled matcher and on the pure-Python reference, and a property test that drives both with the
same random books, submits, replaces, trades, level updates and cancels under both queue models,
demanding identical output."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstep.core.books import L2Book
from lockstep.core.risk import Intent, IntentKind, TimeInForce
from lockstep.events import Side
from lockstep.reference import matching as reference
from lockstep.venue import matching as compiled
from lockstep.venue.matching import (
    MatchEvent,
    MatchEventKind,
    MatchReject,
    MatchResult,
    QueueModel,
    RestingOrder,
    SubmitOutcome,
)

BID, ASK = Side.BID, Side.ASK
GTC, IOC, POST = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY
K, R, O = MatchEventKind, MatchReject, SubmitOutcome


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def book(bids=(), asks=()):
    b = L2Book()
    for p, q in bids:
        b.set(BID, p, q)
    for p, q in asks:
        b.set(ASK, p, q)
    return b


def fill(coid, price, qty, maker, side):
    return MatchEvent(K.FILL, R.NONE, maker, coid, price, qty, side)


def level(m, b, side, price, qty):
    """An L2 update as the engine applies it: the matcher first, with the book's old qty."""
    old = next((q for p, q in b.levels(side) if p == price), 0)
    m.on_level(side, price, old, qty)
    b.set(side, price, qty)


BOOK = dict(bids=[(99, 10), (98, 20)], asks=[(101, 5), (102, 7), (104, 9)])


def test_post_only_that_would_cross_is_rejected(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    r = m.submit(1, BID, POST, 101, 3, b)
    assert r == MatchResult(O.REJECTED, R.POST_ONLY_WOULD_CROSS, 0, 0)
    assert m.submit(2, ASK, POST, 99, 3, b).reason is R.POST_ONLY_WOULD_CROSS
    assert m.drain() == [MatchEvent(K.REJECTED, R.POST_ONLY_WOULD_CROSS, False, 1, 101, 3, BID),
                         MatchEvent(K.REJECTED, R.POST_ONLY_WOULD_CROSS, False, 2, 99, 3, ASK)]
    # One tick back from the touch rests, and never takes.
    assert m.submit(3, BID, POST, 100, 3, b) == MatchResult(O.RESTED, R.NONE, 0, 3)
    assert m.submit(4, ASK, POST, 200, 3, book()) == MatchResult(O.RESTED, R.NONE, 0, 3)
    assert m.drain() == []
    assert m.orders() == [RestingOrder(3, BID, 100, 3, 0, POST),
                          RestingOrder(4, ASK, 200, 3, 0, POST)]


def test_ioc_takes_up_to_its_limit_then_cancels_the_rest(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    assert m.submit(1, BID, IOC, 102, 20, b) == MatchResult(O.CANCELED, R.NONE, 12, 0)
    assert m.drain() == [fill(1, 101, 5, False, BID), fill(1, 102, 7, False, BID),
                         MatchEvent(K.CANCELED, R.NONE, False, 1, 102, 8, BID)]
    assert m.orders() == []
    assert m.submit(2, ASK, IOC, 99, 4, b) == MatchResult(O.FILLED, R.NONE, 4, 0)
    assert m.drain() == [fill(2, 99, 4, False, ASK)]
    # Not crossing at all: all canceled.
    assert m.submit(3, ASK, IOC, 100, 4, b) == MatchResult(O.CANCELED, R.NONE, 0, 0)
    assert m.drain() == [MatchEvent(K.CANCELED, R.NONE, False, 3, 100, 4, ASK)]


def test_crossing_gtc_takes_then_rests_with_queue_ahead(impl):
    m = impl.L2Matcher()
    b = book(bids=[(99, 10), (101, 6)], asks=[(101, 5), (103, 1)])  # 101 on both: crossed book
    assert m.submit(1, BID, GTC, 101, 8, b) == MatchResult(O.RESTED, R.NONE, 5, 3)
    assert m.drain() == [fill(1, 101, 5, False, BID)]
    assert m.orders() == [RestingOrder(1, BID, 101, 3, 6)]
    m.submit(2, BID, GTC, 99, 2, b)
    m.submit(3, BID, GTC, 97, 2, b)  # empty level: nothing ahead
    assert [(o.client_order_id, o.queue_ahead) for o in m.orders()] == [(1, 6), (2, 10), (3, 0)]


def test_queue_ahead_is_consumed_by_trades_before_we_fill(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    assert m.submit(1, BID, GTC, 99, 4, b) == MatchResult(O.RESTED, R.NONE, 0, 4)
    m.on_trade(99, 6, ASK)  # 6 of the 10 ahead
    assert m.drain() == []
    assert m.order(1) == RestingOrder(1, BID, 99, 4, 4)
    m.on_trade(99, 5, BID)  # buy aggressor: cannot trade against our bid
    m.on_trade(99, 5, Side.NONE)  # unknown aggressor: fills nothing
    m.on_trade(100, 5, ASK)  # above our bid
    assert m.drain() == [] and m.order(1).queue_ahead == 4
    m.on_trade(99, 6, ASK)  # 4 ahead, 2 excess to us
    assert m.drain() == [fill(1, 99, 2, True, BID)]
    assert m.order(1) == RestingOrder(1, BID, 99, 2, 0)
    m.on_trade(99, 9, ASK)
    assert m.drain() == [fill(1, 99, 2, True, BID)]
    assert m.orders() == []


def test_one_trade_never_fills_more_than_its_qty_across_our_orders(impl):
    m, b = impl.L2Matcher(), book(asks=[(105, 3)])
    m.submit(1, ASK, GTC, 105, 4, b)
    m.submit(2, ASK, GTC, 105, 4, b)
    m.on_trade(105, 8, BID)  # 3 ahead of each; 5 excess, first to order 1
    assert m.drain() == [fill(1, 105, 4, True, ASK), fill(2, 105, 1, True, ASK)]
    assert m.orders() == [RestingOrder(2, ASK, 105, 3, 0)]


def test_trade_through_our_price_fills_fully(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    m.submit(1, BID, GTC, 99, 4, b)
    m.submit(2, ASK, GTC, 102, 5, b)
    m.submit(3, BID, GTC, 98, 4, b)
    m.on_trade(98, 1, ASK)  # sold below 99: the 99 level emptied; at 98 only 1 of 20 ahead
    assert m.drain() == [fill(1, 99, 4, True, BID)]
    m.on_trade(103, 1, BID)
    assert m.drain() == [fill(2, 102, 5, True, ASK)]
    assert m.orders() == [RestingOrder(3, BID, 98, 4, 19)]


def test_level_shrink_caps_queue_ahead_but_never_advances(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    m.submit(1, BID, GTC, 99, 4, b)
    level(m, b, BID, 99, 30)  # joiners behind us
    level(m, b, ASK, 99, 0)  # other side: not ours
    level(m, b, BID, 98, 0)  # other price
    assert m.order(1).queue_ahead == 10
    level(m, b, BID, 99, 7)  # could be cancels behind us: still at most 7 ahead
    assert m.order(1).queue_ahead == 7
    level(m, b, BID, 99, 12)
    assert m.order(1).queue_ahead == 7
    level(m, b, BID, 99, 0)
    assert m.order(1).queue_ahead == 0
    assert m.drain() == []  # a level update never fills
    m.on_trade(99, 1, ASK)
    assert m.drain() == [fill(1, 99, 1, True, BID)]


def test_probabilistic_shares_a_decrease_by_power_law(impl):
    m, b = impl.L2Matcher(model=QueueModel.PROBABILISTIC), book(bids=[(99, 10)])
    m.submit(1, BID, GTC, 99, 4, b)  # 10 ahead
    level(m, b, BID, 99, 30)  # 20 join behind: ahead 10, behind 20
    assert m.order(1).queue_ahead == 10
    # d = 6, f(10) / (f(10) + f(20)) = 100 / 500: ahead loses floor(1.2) = 1.
    level(m, b, BID, 99, 24)
    assert m.order(1).queue_ahead == 9
    # ahead 9, behind 15, d = 12: floor(12 * 81 / 306) = 3.
    level(m, b, BID, 99, 12)
    assert m.order(1).queue_ahead == 6
    # Nothing behind: the whole decrease is ahead of us.
    m2, b2 = impl.L2Matcher(model=QueueModel.PROBABILISTIC), book(bids=[(99, 10)])
    m2.submit(1, BID, GTC, 99, 4, b2)
    level(m2, b2, BID, 99, 7)
    assert m2.order(1).queue_ahead == 7
    # The conservative model keeps all 10 ahead while the cap does not bite.
    m3, b3 = impl.L2Matcher(), book(bids=[(99, 10)])
    m3.submit(1, BID, GTC, 99, 4, b3)
    level(m3, b3, BID, 99, 30)
    level(m3, b3, BID, 99, 24)
    level(m3, b3, BID, 99, 12)
    assert m3.order(1).queue_ahead == 10
    assert m.drain() == m2.drain() == m3.drain() == []


def test_probabilistic_power_changes_the_share(impl):
    m, b = impl.L2Matcher(), book(bids=[(99, 10)])
    m.set_queue_model(QueueModel.PROBABILISTIC, 0)  # f = 1: half of each decrease is ahead
    m.submit(1, BID, GTC, 99, 4, b)
    level(m, b, BID, 99, 40)  # ahead 10, behind 30
    level(m, b, BID, 99, 30)  # d = 10: 5 ahead
    assert m.order(1).queue_ahead == 5
    m.set_queue_model(QueueModel.PROBABILISTIC, 1)  # linear: 5 / 30 of d = 12 -> 2
    level(m, b, BID, 99, 18)
    assert m.order(1).queue_ahead == 3
    with pytest.raises(ValueError):
        m.set_queue_model(QueueModel.PROBABILISTIC, -1)
    with pytest.raises(ValueError):
        m.set_queue_model(7)


def test_probabilistic_does_not_count_a_trade_twice(impl):
    m, b = impl.L2Matcher(model=QueueModel.PROBABILISTIC), book(bids=[(99, 10)])
    m.submit(1, BID, GTC, 99, 4, b)
    level(m, b, BID, 99, 30)  # ahead 10, behind 20
    m.on_trade(99, 4, ASK)  # ahead 6
    assert m.order(1).queue_ahead == 6
    level(m, b, BID, 99, 26)  # the trade, as the feed shows it: nothing more to share
    assert m.order(1).queue_ahead == 6
    m.on_trade(99, 2, ASK)  # ahead 4; level 26 -> 20 is 2 traded + 4 unexplained
    level(m, b, BID, 99, 20)  # base 24, ahead 4, behind 20, d 4: floor(4 * 16 / 416) = 0
    assert m.order(1).queue_ahead == 4
    assert m.drain() == []


def test_replace(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    m.submit(1, BID, GTC, 99, 4, b)
    m.submit(2, BID, POST, 98, 4, b)
    m.on_trade(99, 3, ASK)  # 7 ahead of order 1
    # Same price, smaller: keeps its place.
    assert m.replace(1, 99, 2, b) == MatchResult(O.RESTED, R.NONE, 0, 2)
    assert m.order(1) == RestingOrder(1, BID, 99, 2, 7)
    # Same price, larger: back of the queue (the visible 10) and last of our orders.
    assert m.replace(1, 99, 3, b) == MatchResult(O.RESTED, R.NONE, 0, 3)
    assert m.orders() == [RestingOrder(2, BID, 98, 4, 20, POST), RestingOrder(1, BID, 99, 3, 10)]
    # New price: re-queued there.
    assert m.replace(2, 97, 4, b) == MatchResult(O.RESTED, R.NONE, 0, 4)
    assert m.order(2) == RestingOrder(2, BID, 97, 4, 0, POST)
    assert m.drain() == [MatchEvent(K.REPLACED, R.NONE, False, 1, 99, 2, BID),
                         MatchEvent(K.REPLACED, R.NONE, False, 1, 99, 3, BID),
                         MatchEvent(K.REPLACED, R.NONE, False, 2, 97, 4, BID)]
    # Rejections leave the order as it was.
    assert m.replace(2, 101, 4, b) == MatchResult(O.REJECTED, R.POST_ONLY_WOULD_CROSS, 0, 0)
    assert m.replace(2, 97, 0, b) == MatchResult(O.REJECTED, R.BAD_QTY, 0, 0)
    assert m.replace(2, 2**62, 1, b) == MatchResult(O.REJECTED, R.BAD_PRICE, 0, 0)
    assert m.replace(9, 97, 1, b) == MatchResult(O.REJECTED, R.UNKNOWN_ORDER, 0, 0)
    assert m.drain() == [
        MatchEvent(K.REPLACE_REJECTED, R.POST_ONLY_WOULD_CROSS, False, 2, 101, 4, BID),
        MatchEvent(K.REPLACE_REJECTED, R.BAD_QTY, False, 2, 97, 0, BID),
        MatchEvent(K.REPLACE_REJECTED, R.BAD_PRICE, False, 2, 2**62, 1, BID),
        MatchEvent(K.REPLACE_REJECTED, R.UNKNOWN_ORDER, False, 9, 97, 1, Side.NONE)]
    assert m.order(2) == RestingOrder(2, BID, 97, 4, 0, POST)
    # A GTC that crosses takes like a submit, then rests the remainder at the new price.
    assert m.replace(1, 102, 15, b) == MatchResult(O.RESTED, R.NONE, 12, 3)
    assert m.drain() == [MatchEvent(K.REPLACED, R.NONE, False, 1, 102, 15, BID),
                         fill(1, 101, 5, False, BID), fill(1, 102, 7, False, BID)]
    assert m.order(1) == RestingOrder(1, BID, 102, 3, 0)
    assert m.replace(1, 101, 2, b) == MatchResult(O.FILLED, R.NONE, 2, 0)
    assert m.order(1) is None and m.has_resting()


def test_cancel(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    m.submit(1, BID, GTC, 99, 4, b)
    m.submit(2, BID, GTC, 98, 4, b)
    m.on_trade(99, 11, ASK)
    m.drain()
    assert m.cancel(1) is True
    assert m.cancel(1) is False
    assert m.drain() == [MatchEvent(K.CANCELED, R.NONE, False, 1, 99, 3, BID),
                         MatchEvent(K.CANCEL_REJECTED, R.UNKNOWN_ORDER, False, 1, 0, 0)]
    assert m.orders() == [RestingOrder(2, BID, 98, 4, 20)]
    m.submit(1, BID, GTC, 99, 4, b)  # the id is free again
    assert [o.client_order_id for o in m.orders()] == [2, 1]


@pytest.mark.parametrize("args, reason", [
    ((1, Side.NONE, GTC, 100, 1), R.BAD_SIDE),
    ((1, BID, 9, 100, 1), R.BAD_TIF),
    ((1, BID, GTC, 100, 0), R.BAD_QTY),
    ((1, BID, GTC, 100, -5), R.BAD_QTY),
    ((1, BID, GTC, 2**62, 1), R.BAD_PRICE),
    ((7, BID, GTC, 100, 1), R.DUPLICATE_ORDER),
])
def test_rejects(impl, args, reason):
    m = impl.L2Matcher()
    m.submit(7, BID, GTC, 90, 1, book())
    assert m.submit(*args, book()) == MatchResult(O.REJECTED, reason, 0, 0)
    assert m.drain()[-1].reason is reason


def test_submit_intent(impl):
    m, b = impl.L2Matcher(), book(**BOOK)
    mkt = Intent(0, IntentKind.SUBMIT_MARKET, BID, qty=13, client_order_id=1)
    assert m.submit_intent(mkt, b) == MatchResult(O.FILLED, R.NONE, 13, 0)
    assert m.drain() == [fill(1, 101, 5, False, BID), fill(1, 102, 7, False, BID),
                         fill(1, 104, 1, False, BID)]
    lim = Intent(0, IntentKind.SUBMIT_LIMIT, ASK, POST, price=101, qty=2, client_order_id=2)
    assert m.submit_intent(lim, b) == MatchResult(O.RESTED, R.NONE, 0, 2)
    assert m.order(2) == RestingOrder(2, ASK, 101, 2, 5, POST)
    bad = Intent(0, IntentKind.CANCEL, client_order_id=3, target_order_id=2)
    assert m.submit_intent(bad, b).reason is R.BAD_TIF


def test_argument_types(impl):
    m = impl.L2Matcher()
    with pytest.raises(TypeError):
        m.submit(1, BID, GTC, 100.0, 1, book())
    with pytest.raises(OverflowError):
        m.submit(-1, BID, GTC, 100, 1, book())
    with pytest.raises(TypeError):
        m.on_trade(100, True, ASK)
    with pytest.raises(TypeError):
        m.submit_intent((0, 1), book())


# --------------------------------------------------------------------------------------------
# Property: compiled and reference agree.

_px = st.integers(95, 105)
_coid = st.integers(0, 8)
_level = st.tuples(st.just("level"), st.tuples(st.sampled_from([BID, ASK]), _px,
                                               st.integers(0, 40)))
step_st = st.one_of(
    st.tuples(st.just("submit"), st.tuples(_coid, st.sampled_from([BID, ASK, Side.NONE]),
                                           st.sampled_from([GTC, IOC, POST]), _px,
                                           st.integers(-1, 12))),
    st.tuples(st.just("market"), st.tuples(_coid, st.sampled_from([BID, ASK]),
                                           st.integers(1, 12))),
    st.tuples(st.just("trade"), st.tuples(_px, st.integers(0, 10),
                                          st.sampled_from([BID, ASK, Side.NONE]))),
    _level,
    _level,
    st.tuples(st.just("replace"), st.tuples(_coid, _px, st.integers(-1, 12))),
    st.tuples(st.just("cancel"), _coid),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step_st, max_size=60),
       model=st.sampled_from([QueueModel.CONSERVATIVE, QueueModel.PROBABILISTIC]),
       power=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7]))
def test_compiled_and_reference_agree(steps, model, power):
    a = compiled.L2Matcher(model=model, power=power)
    b = reference.L2Matcher(model=model, power=power)
    mkt = L2Book()  # the replayed market, driven by the same level updates
    for op, arg in steps:
        if op == "submit":
            assert a.submit(*arg, mkt) == b.submit(*arg, mkt)
        elif op == "market":
            i = Intent(0, IntentKind.SUBMIT_MARKET, arg[1], qty=arg[2], client_order_id=arg[0])
            assert a.submit_intent(i, mkt) == b.submit_intent(i, mkt)
        elif op == "trade":
            a.on_trade(*arg)
            b.on_trade(*arg)
        elif op == "level":
            old = next((q for p, q in mkt.levels(arg[0]) if p == arg[1]), 0)
            a.on_level(arg[0], arg[1], old, arg[2])
            b.on_level(arg[0], arg[1], old, arg[2])
            mkt.set(*arg)
        elif op == "replace":
            assert a.replace(*arg, mkt) == b.replace(*arg, mkt)
        else:
            assert a.cancel(arg) == b.cancel(arg)
        assert a.drain() == b.drain()
        assert a.orders() == b.orders()
        assert a.has_resting() == b.has_resting() == bool(a.orders())
    for o in a.orders():
        assert o.qty > 0 and o.queue_ahead >= 0


@settings(max_examples=300, deadline=None)
@given(d=st.integers(0, 2**62), ahead=st.integers(0, 2**62), behind=st.integers(0, 2**62),
       power=st.floats(0, 8))
def test_ahead_share_bounds(d, ahead, behind, power):
    r = reference.ahead_share(d, ahead, behind, power)
    assert 0 <= r <= min(d, ahead)
    if behind == 0:
        assert r == min(d, ahead)
