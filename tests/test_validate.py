"""The compiled validator against its pure-Python twin (lockstep.reference.validate) on random
streams: the same verdict for every record, the same promoted events and GAP markers, whatever
the chunking. Then the invariants the pipeline relies on."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep._bindings.validate import Validator
from lockstep.data.importers.normalized import ChunkBuilder, Rule
from lockstep.data.pipeline import DEFAULT_ACTIONS
from lockstep.enums import TradingPhase
from lockstep.events import EventKind, Flag, Side
from lockstep.reference.validate import ReferenceValidator

BOOKS = ["l2", "l3"]
REQUIRES = [True, False]

event_st = st.tuples(
    st.sampled_from([EventKind.L2_SET, EventKind.L2_SET, EventKind.BOOK_CLEAR, EventKind.TRADE, EventKind.GAP,
                     EventKind.VENUE_BBO, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
                     EventKind.L3_EXECUTE, EventKind.TRADING_PHASE]),
    st.integers(0, 2),       # instrument (2 is outside the table)
    st.sampled_from([Side.BID, Side.ASK, Side.NONE]),
    st.integers(-1, 8),      # price in ticks
    st.integers(-1, 4),      # qty
    st.integers(1, 6),       # order id
    st.booleans(),           # BAD_TS_RECV
)
record_st = st.tuples(
    st.integers(-3, 20),     # ts step (negative: the receive clock goes back)
    st.integers(-30, 30),    # latency offset: ts_event = ts_recv - this
    st.sampled_from([0] * 12 + [int(Rule.MALFORMED_RECORD), int(Rule.DUPLICATE_MESSAGE)]),
    st.lists(event_st, max_size=4),
)
actions_st = st.fixed_dictionaries({
    name: st.sampled_from(["quarantine", "warn", "off"]) for name in
    ["sequence_gap", "feed_latency", "ts_recv_backwards", "crossed_book", "bad_price_qty",
     "deltas_before_snapshot", "unknown_order_ref", "crossed_book_phase_unknown"]
})
phase_st = st.sampled_from([TradingPhase.UNKNOWN, TradingPhase.CONTINUOUS, TradingPhase.PRE_OPEN])


def chunks_of(records, capacity):
    b = ChunkBuilder(capacity=capacity)
    ts = 100
    for step, lat, problem, events in records:
        ts += step
        b.record(0, 0, 0, 0, Rule(problem))
        if problem:
            continue
        for k, (kind, inst, side, price, qty, oid, bad_ts) in enumerate(events):
            if kind == EventKind.TRADING_PHASE:
                # the phase (6 is none) and the scope (0 instrument, 1 session, more: malformed)
                side, oid = (price + 1) % 7, oid - 1
            flags = (Flag.LAST if k == len(events) - 1 else 0) | (Flag.BAD_TS_RECV if bad_ts else 0)
            b.event(ts - lat, ts, 7, inst, kind, side, flags, price, qty, oid)
        if b.full:
            yield b.take()
    if (c := b.take()) is not None:
        yield c


def run(factory, records, capacity):
    v = factory()
    rules, warns, causes, kept, markers = [], [], [], [], []
    for c in chunks_of(records, capacity):
        out, keep, mk = v.check(c)
        rules += out["rule"].tolist()
        warns += out["warn"].tolist()
        causes += out["cause"].tolist()
        kept += [int(c.event_record[i]) * 10 + j for j, i in enumerate(np.flatnonzero(keep))]
        markers += [(m["record"], m["instrument"], m["rule"], m["ts_recv"], m["seq"], m["order_id"]) for m in mk]
    return rules, warns, causes, markers


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record_st, max_size=40), actions_st, st.integers(1, 7), st.integers(-20, 0), st.integers(0, 25),
       phase_st)
def test_compiled_validator_matches_reference(records, actions, capacity, lo, hi, phase):
    acts = {**DEFAULT_ACTIONS, **actions}
    compiled = run(lambda: Validator(BOOKS, REQUIRES, acts, lo, hi, phase), records, capacity)
    reference = run(lambda: ReferenceValidator(BOOKS, REQUIRES, acts, lo, hi, phase), records, capacity)
    assert compiled[:3] == reference[:3]
    assert compiled[3] == reference[3]
    # chunking never changes a verdict
    assert run(lambda: Validator(BOOKS, REQUIRES, acts, lo, hi, phase), records, 1000)[:3] == compiled[:3]


@settings(max_examples=200, deadline=None)
@given(st.lists(record_st, max_size=40), st.integers(1, 7))
def test_promoted_events_are_in_processing_order_and_whole_records(records, capacity):
    v = Validator(BOOKS, REQUIRES, dict(DEFAULT_ACTIONS), 0, 25)
    last = None
    for c in chunks_of(records, capacity):
        out, keep, markers = v.check(c)
        n = c.n_events
        ts = c.events["ts_recv"][:n][keep[:n] == 1]
        if ts.size:
            assert np.all(np.diff(ts) >= 0)
            assert last is None or ts[0] >= last
            last = int(ts[-1])
        # a record is promoted whole or not at all, and only when its verdict is ok
        for r in range(c.n_records):
            ev = np.flatnonzero(c.event_record[:n] == c.first_record + r)
            assert set(keep[ev].tolist()) <= ({1} if out["rule"][r] == 0 else {0})
        # a cause always points back at an earlier quarantined record
        for r in np.flatnonzero(out["cause"] >= 0):
            assert out["cause"][r] < c.first_record + r


# ---------------------------------------------------------------- trading phases and crossed books

VALIDATORS = {
    "compiled": lambda phase: Validator(["l3"], [False], dict(DEFAULT_ACTIONS), -10**12, 10**12, phase),
    "reference": lambda phase: ReferenceValidator(["l3"], [False], dict(DEFAULT_ACTIONS), -10**12, 10**12, phase),
}


def judge(factory, messages, session=TradingPhase.UNKNOWN):
    """Verdicts (rule, warn) per message; each message is a list of (kind, side, price, qty, order_id)
    on instrument 0, one record each, ending with LAST."""
    b = ChunkBuilder(capacity=1000)
    for ts, message in enumerate(messages, start=1):
        b.record(0, 0, 0, 0)
        for k, (kind, side, price, qty, oid) in enumerate(message):
            b.event(ts, ts, 0, 0, kind, side, Flag.LAST if k == len(message) - 1 else 0, price, qty, oid)
    out, _, _ = factory(session).check(b.take())
    return [(Rule(r).label, Rule(w).label) for r, w in zip(out["rule"].tolist(), out["warn"].tolist())]


def phase(p, scope=0):
    return (EventKind.TRADING_PHASE, int(p), 0, 0, scope)


BID_101 = (EventKind.L3_ADD, Side.BID, 101, 1, 1)
ASK_100 = (EventKind.L3_ADD, Side.ASK, 100, 1, 2)  # crosses the bid
ASK_105 = (EventKind.L3_ADD, Side.ASK, 105, 1, 3)
UNCROSS = (EventKind.L3_DELETE, Side.BID, 101, 0, 1)


@pytest.mark.parametrize("impl", VALIDATORS)
@pytest.mark.parametrize("announced", [TradingPhase.PRE_OPEN, TradingPhase.AUCTION, TradingPhase.HALTED,
                                       TradingPhase.CLOSED])
def test_a_crossed_book_outside_continuous_trading_is_valid(impl, announced):
    got = judge(VALIDATORS[impl], [[phase(announced)], [BID_101], [ASK_100], [ASK_105],
                                   [phase(TradingPhase.CONTINUOUS)], [UNCROSS]])
    assert got == [("ok", "ok")] * 6


@pytest.mark.parametrize("impl", VALIDATORS)
def test_a_crossed_book_in_an_unknown_phase_is_a_warning_and_the_book_stays(impl):
    got = judge(VALIDATORS[impl], [[BID_101], [ASK_100], [ASK_105], [UNCROSS]])
    assert got == [("ok", "ok"), ("ok", "crossed_book_phase_unknown"), ("ok", "crossed_book_phase_unknown"),
                   ("ok", "ok")]


@pytest.mark.parametrize("impl", VALIDATORS)
def test_a_crossed_book_in_continuous_trading_is_quarantined_and_invalidates_the_book(impl):
    got = judge(VALIDATORS[impl], [[phase(TradingPhase.CONTINUOUS)], [BID_101], [ASK_100], [ASK_105]])
    assert got == [("ok", "ok"), ("ok", "ok"), ("crossed_book", "ok"), ("crossed_book", "ok")]
    # a venue that trades around the clock says so up front (lockstep.data.importers.FORMATS)
    got = judge(VALIDATORS[impl], [[BID_101], [ASK_100]], session=TradingPhase.CONTINUOUS)
    assert got == [("ok", "ok"), ("crossed_book", "ok")]


@pytest.mark.parametrize("impl", VALIDATORS)
def test_the_session_phase_holds_an_instrument_that_is_only_free_to_trade(impl):
    # the stock may trade, the session has not opened: pre-open
    got = judge(VALIDATORS[impl], [[phase(TradingPhase.PRE_OPEN, scope=1)], [phase(TradingPhase.CONTINUOUS)],
                                   [BID_101], [ASK_100]])
    assert got == [("ok", "ok")] * 4
    # the session is open, the stock is halted: halted
    got = judge(VALIDATORS[impl], [[phase(TradingPhase.CONTINUOUS, scope=1)], [phase(TradingPhase.HALTED)],
                                   [BID_101], [ASK_100]])
    assert got == [("ok", "ok")] * 4
    # both open: an error
    got = judge(VALIDATORS[impl], [[phase(TradingPhase.CONTINUOUS, scope=1)], [phase(TradingPhase.CONTINUOUS)],
                                   [BID_101], [ASK_100]])
    assert got[-1] == ("crossed_book", "ok")


@pytest.mark.parametrize("impl", VALIDATORS)
def test_a_phase_event_with_an_undefined_phase_or_scope_is_malformed(impl):
    got = judge(VALIDATORS[impl], [[(EventKind.TRADING_PHASE, 6, 0, 0, 0)], [(EventKind.TRADING_PHASE, 1, 0, 0, 2)]])
    assert got == [("malformed_record", "ok")] * 2
