"""The compiled validator against its pure-Python twin (lockstep.reference.validate) on random
streams: the same verdict for every record, the same promoted events and GAP markers, whatever
the chunking. Then the invariants the pipeline relies on."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep._bindings.validate import Validator
from lockstep.data.importers.normalized import ChunkBuilder, Rule
from lockstep.data.pipeline import DEFAULT_ACTIONS
from lockstep.events import EventKind, Flag, Side
from lockstep.reference.validate import ReferenceValidator

BOOKS = ["l2", "l3"]
REQUIRES = [True, False]

event_st = st.tuples(
    st.sampled_from([EventKind.L2_SET, EventKind.L2_SET, EventKind.BOOK_CLEAR, EventKind.TRADE, EventKind.GAP,
                     EventKind.VENUE_BBO, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
                     EventKind.L3_EXECUTE]),
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
     "deltas_before_snapshot", "unknown_order_ref"]
})


def chunks_of(records, capacity):
    b = ChunkBuilder(capacity=capacity)
    ts = 100
    for step, lat, problem, events in records:
        ts += step
        b.record(0, 0, 0, 0, Rule(problem))
        if problem:
            continue
        for k, (kind, inst, side, price, qty, oid, bad_ts) in enumerate(events):
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
@given(st.lists(record_st, max_size=40), actions_st, st.integers(1, 7), st.integers(-20, 0), st.integers(0, 25))
def test_compiled_validator_matches_reference(records, actions, capacity, lo, hi):
    acts = {**DEFAULT_ACTIONS, **actions}
    compiled = run(lambda: Validator(BOOKS, REQUIRES, acts, lo, hi), records, capacity)
    reference = run(lambda: ReferenceValidator(BOOKS, REQUIRES, acts, lo, hi), records, capacity)
    assert compiled[:3] == reference[:3]
    assert compiled[3] == reference[3]
    # chunking never changes a verdict
    assert run(lambda: Validator(BOOKS, REQUIRES, acts, lo, hi), records, 1000)[:3] == compiled[:3]


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
