"""The synthetic market generator: determinism, shape, and validity against an independent book.

The books here are deliberately naive pure-Python dicts, independent of the C++ books, so a bug in
the generator's own book model cannot hide behind the same bug in the replay.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from lockstep.data.dataset import Dataset
from lockstep.data.synth import default_name, generate, iter_synthetic
from lockstep.events import COLUMN_NAMES, EventKind, Flag, Side, to_columns

START_TS = 1_704_153_600_000_000_000  # 2024-01-02T00:00:00Z

L2_SET = int(EventKind.L2_SET)
L3_ADD = int(EventKind.L3_ADD)
L3_MODIFY = int(EventKind.L3_MODIFY)
L3_DELETE = int(EventKind.L3_DELETE)
L3_EXECUTE = int(EventKind.L3_EXECUTE)
BOOK_CLEAR = int(EventKind.BOOK_CLEAR)
TRADE = int(EventKind.TRADE)
BID, ASK = int(Side.BID), int(Side.ASK)
LAST, SNAPSHOT = int(Flag.LAST), int(Flag.SNAPSHOT)


def synth(events: int, **kw) -> dict[str, np.ndarray]:
    parts = list(iter_synthetic(events, **kw))
    return {name: np.concatenate([p[name] for p in parts]) for name in COLUMN_NAMES}


def rows(cols: dict[str, np.ndarray]):
    """Plain-int tuples (numpy scalars are slow in a per-event loop)."""
    return zip(*(cols[name].tolist() for name in COLUMN_NAMES))


def check_l2(cols: dict[str, np.ndarray], depth: int) -> dict:
    """Replays L2 events into dict books, asserting validity; returns observations."""
    books: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
    best: dict[int, list[int | None]] = {}
    pending: dict[int, tuple] = {}  # a trade's expected level update: (side, price, qty, messages left)
    trades = 0
    mids: list[int] = []
    spreads: list[int] = []
    for ts_event, ts_recv, seq, inst, kind, side, flags, price, qty, oid in rows(cols):
        if kind == BOOK_CLEAR:
            assert flags & SNAPSHOT
            books[inst] = ({}, {})
            best[inst] = [None, None]
            continue
        bids, asks = books[inst]
        bb = best[inst]
        if kind == TRADE:
            resting = asks if side == BID else bids
            touch = bb[1] if side == BID else bb[0]
            assert price == touch, "trades happen at the touch"
            assert 0 < qty <= resting[price], "no trade larger than the touch"
            assert inst not in pending
            pending[inst] = (ASK if side == BID else BID, price, resting[price] - qty, 1)
            trades += 1
        else:
            assert kind == L2_SET and side in (BID, ASK) and qty >= 0 and oid == 0
            levels = bids if side == BID else asks
            if inst in pending and pending[inst][:2] == (side, price):
                assert qty == pending.pop(inst)[2], "the level update after a trade reflects it"
            if qty == 0:
                assert price in levels, "a delete targets an existing level"
                del levels[price]
                k = 0 if side == BID else 1
                if price == bb[k]:
                    bb[k] = (max if side == BID else min)(levels) if levels else None
            else:
                levels[price] = qty
                if side == BID and (bb[0] is None or price > bb[0]):
                    bb[0] = price
                if side == ASK and (bb[1] is None or price < bb[1]):
                    bb[1] = price
        if flags & LAST:
            assert bb[0] is not None and bb[1] is not None, "both sides always quoted"
            assert bb[0] < bb[1], "never crossed (nor locked) after a complete message"
            if inst in pending:
                side_, price_, qty_, left = pending[inst]
                assert left > 0, "a trade's level update comes in the same or the next message"
                pending[inst] = (side_, price_, qty_, left - 1)
            if inst == 0:
                mids.append(bb[0] + bb[1])
                spreads.append(bb[1] - bb[0])
    for bids, asks in books.values():
        for levels in (bids, asks):
            assert 0.85 * depth <= len(levels) <= 1.15 * depth
            assert all(q > 0 for q in levels.values())
    return {"trades": trades, "mid2": np.array(mids), "spread": np.array(spreads), "books": books}


def check_l3(cols: dict[str, np.ndarray]) -> dict:
    """Replays L3 events into a dict of orders plus FIFO queues per level, asserting validity."""
    orders: dict[int, list[int]] = {}  # id -> [inst, side, price, qty]
    queues: dict[tuple[int, int, int], deque[int]] = {}  # (inst, side, price) -> ids in priority
    seen: set[int] = set()
    trade: dict[int, list[int]] = {}  # inst -> [price, qty left to execute]
    counts = {k: 0 for k in (L3_ADD, L3_MODIFY, L3_DELETE, L3_EXECUTE, TRADE)}
    end = int(cols["ts_recv"][-1])

    def touch(inst: int, side: int) -> int:
        prices = [p for (i, s, p), q in queues.items() if i == inst and s == side and q]
        return max(prices) if side == BID else min(prices)

    def leave(oid: int) -> None:
        inst, side, price, _ = orders.pop(oid)
        q = queues[(inst, side, price)]
        q.remove(oid)
        if not q:
            del queues[(inst, side, price)]

    for ts_event, ts_recv, seq, inst, kind, side, flags, price, qty, oid in rows(cols):
        if kind == BOOK_CLEAR:
            for key in [k for k in queues if k[0] == inst]:
                for o in queues.pop(key):
                    del orders[o]
            continue
        counts[kind] += 1
        if kind == L3_ADD:
            assert oid not in seen, "order ids are never reused"
            assert qty > 0 and side in (BID, ASK)
            seen.add(oid)
            orders[oid] = [inst, side, price, qty]
            queues.setdefault((inst, side, price), deque()).append(oid)
        elif kind == TRADE:
            assert inst not in trade or trade[inst][1] == 0
            resting = ASK if side == BID else BID
            assert price == touch(inst, resting), "trades happen at the touch"
            level = sum(orders[o][3] for o in queues[(inst, resting, price)])
            assert 0 < qty <= level
            trade[inst] = [price, qty]
        else:
            assert oid in orders, f"{EventKind(kind).name} of a live order"
            o = orders[oid]
            assert o[0] == inst and o[1] == side
            if kind == L3_MODIFY:
                assert qty > 0
                grew = qty > o[3]
                if price != o[2] or grew:  # loses priority: to the back (of the new level)
                    leave(oid)
                    orders[oid] = [inst, side, price, qty]
                    queues.setdefault((inst, side, price), deque()).append(oid)
                else:
                    o[3] = qty
            elif kind == L3_DELETE:
                assert price == o[2]
                leave(oid)
            else:  # execute: against the front order of the touch, after a trade print
                assert inst in trade and trade[inst][1] >= qty > 0
                assert price == o[2] == trade[inst][0]
                assert queues[(inst, side, price)][0] == oid, "executions hit the front order"
                assert qty <= o[3]
                trade[inst][1] -= qty
                o[3] -= qty
                if o[3] == 0:
                    leave(oid)
        if flags & LAST and ts_recv != end:  # (the run's final message may be cut)
            assert inst not in trade or trade[inst][1] == 0, "a trade's executions complete in its message"
            bb, ba = touch(inst, BID), touch(inst, ASK)
            assert bb < ba, "never crossed after a complete message"
    per_level = [len(q) for q in queues.values()]
    return {"counts": counts, "orders_per_level": sum(per_level) / len(per_level)}


def message_checks(cols: dict[str, np.ndarray], instruments: int = 1) -> None:
    """Message framing and clocks, vectorised."""
    n = len(cols["kind"])
    flags, inst, seq = cols["flags"], cols["instrument"], cols["seq"].astype(np.int64)
    ts_event, ts_recv = cols["ts_event"], cols["ts_recv"]
    assert flags[-1] & LAST
    assert np.all(np.diff(ts_recv) >= 0), "Processing Order"
    assert not np.any(flags & int(Flag.BAD_TS_RECV))
    # A message is a run of equal (instrument, seq) ending in exactly one LAST event, sharing its
    # timestamps.
    boundary = np.ones(n, dtype=bool)
    boundary[:-1] = (inst[1:] != inst[:-1]) | (seq[1:] != seq[:-1])
    np.testing.assert_array_equal((flags & LAST) != 0, boundary)
    starts = np.concatenate([[0], np.flatnonzero(boundary[:-1]) + 1])
    ends = np.flatnonzero(boundary)
    assert np.all(ts_event[starts] == ts_event[ends]) and np.all(ts_recv[starts] == ts_recv[ends])
    assert sorted(set(inst.tolist())) == list(range(instruments))
    for k in range(instruments):
        mine = ends[inst[ends] == k]
        np.testing.assert_array_equal(seq[mine], np.arange(1, len(mine) + 1))  # +1 per message
        assert ts_event[mine][0] == START_TS
        assert np.all(np.diff(ts_event[mine]) > 0)
        latency = ts_recv[mine] - ts_event[mine]
        assert latency.min() >= 15_000 and np.median(latency) < 100_000  # tens of microseconds
    # Each instrument starts with a snapshot message: a clear, then levels or orders.
    for k in range(instruments):
        s = starts[np.argmax(inst[starts] == k)]
        e = ends[np.argmax(inst[ends] == k)]
        assert cols["kind"][s] == BOOK_CLEAR
        assert np.all(cols["flags"][s : e + 1] & SNAPSHOT)
        assert e - s >= 8


# ---- determinism and framing -----------------------------------------------------------------


def test_deterministic_and_batch_size_independent():
    a = synth(300_000, seed=3)
    b = synth(300_000, seed=3, batch_size=7_777)
    for name in COLUMN_NAMES:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    c = synth(300_000, seed=4)
    assert not np.array_equal(a["price"], c["price"])
    # A shorter run is a prefix of a longer one, bar the LAST flag that closes it.
    d = synth(123_457, seed=3)
    for name in COLUMN_NAMES:
        if name != "flags":
            np.testing.assert_array_equal(d[name], a[name][:123_457], err_msg=name)
    assert d["flags"][-1] & LAST


@pytest.mark.parametrize("events", [1, 2, 5, 801, 802, 803, 10_001])
@pytest.mark.parametrize("book", ["l2", "l3"])
def test_exact_event_count_and_final_last(events, book):
    cols = synth(events, seed=11, book=book, batch_size=333)
    assert len(cols["kind"]) == events
    assert cols["flags"][-1] & LAST
    assert cols["kind"][0] == BOOK_CLEAR


def test_framing_and_clocks():
    cols = synth(500_000, seed=5)
    message_checks(cols)
    kinds = np.bincount(cols["kind"], minlength=8)
    assert kinds[L2_SET] > 0.7 * len(cols["kind"]) and kinds[TRADE] > 0.05 * len(cols["kind"])
    # Bursty: quiet and busy periods give gaps spanning orders of magnitude.
    last = (cols["flags"] & LAST) != 0
    gaps = np.diff(cols["ts_event"][last])
    p1, p50, p99 = np.percentile(gaps, [1, 50, 99])
    assert p1 < 5_000 and p99 > 2_000_000 and p1 < p50 < p99
    sizes = np.diff(np.concatenate([[-1], np.flatnonzero(last)]))
    assert sizes[1:].min() == 1 and sizes.max() >= 16


# ---- the L2 market -----------------------------------------------------------------------------


def test_l2_book_valid_against_independent_book():
    cols = synth(400_000, seed=2)
    obs = check_l2(cols, depth=400)
    assert obs["trades"] > 20_000
    # A liquid book: mostly one to a few ticks wide, sometimes wider (after a sweep or a jump).
    spread = obs["spread"]
    assert np.median(spread) <= 3 and np.percentile(spread, 99.9) > 3 and spread.max() <= 128


def test_l2_small_depth_and_seeds():
    for seed in (1, 9):
        cols = synth(150_000, seed=seed, depth=8)
        check_l2(cols, depth=8)


def test_mid_wanders_and_book_follows():
    cols = synth(2_000_000, seed=1)
    trade = cols["kind"] == TRADE
    prices = cols["price"][trade]
    assert prices.max() - prices.min() > 300, "the mid walks many ticks"
    # The book follows: levels are quoted far beyond the initial book's extent.
    l2 = cols["kind"] == L2_SET
    quoted = cols["price"][l2]
    assert quoted.max() - quoted.min() > 300 + 2 * 400
    # And around the traded prices, not left behind: late trades sit near the late book.
    late = cols["price"][trade][-1000:]
    snap_lo, snap_hi = np.percentile(cols["price"][l2][-20_000:], [1, 99])
    assert snap_lo < late.min() and late.max() < snap_hi


# ---- the L3 market -----------------------------------------------------------------------------


def test_l3_references_live_orders():
    cols = synth(250_000, seed=6, book="l3")
    message_checks(cols)
    obs = check_l3(cols)
    counts = obs["counts"]
    assert all(counts[k] > 1_000 for k in counts), counts
    assert 1.5 < obs["orders_per_level"] < 24


# ---- several instruments -----------------------------------------------------------------------


@pytest.mark.parametrize("book", ["l2", "l3"])
def test_instruments_are_independent_interleaved_markets(book):
    multi = synth(200_000, seed=8, instruments=3, book=book, depth=50)
    message_checks(multi, instruments=3)
    if book == "l2":
        check_l2(multi, depth=50)
    else:
        check_l3(multi)
    # Instrument 0 is the same market as when it runs alone.
    single = synth(100_000, seed=8, book=book, depth=50)
    mine = multi["instrument"] == 0
    n = min(int(mine.sum()), len(single["kind"])) - 20  # the last message may be cut
    for name in ("ts_event", "ts_recv", "seq", "kind", "side", "price", "qty", "order_id"):
        np.testing.assert_array_equal(multi[name][mine][:n], single[name][:n], err_msg=name)
    if book == "l3":
        ids = multi["order_id"][multi["kind"] == L3_ADD]
        assert len(np.unique(ids)) == len(ids), "ids unique across instruments too"


# ---- datasets and options ----------------------------------------------------------------------


def test_generate_writes_a_dataset(data_root):
    ds = generate(120_000, seed=4, data=data_root, book="l3", instruments=2, batch_size=50_000)
    assert ds.name == default_name(120_000, seed=4, book="l3", instruments=2) == "synth-l3-120000-s4-k2"
    opened = Dataset.open(ds.name, data=data_root)
    assert opened.rows == 120_000 == opened.manifest["rows"]
    assert [i.symbol for i in opened.instruments] == ["SYN0", "SYN1"]
    assert {i.venue for i in opened.instruments} == {"SYNTH"}
    assert all(i.book == "l3" and i.price_increment == "0.01" and i.size_increment == "0.001"
               for i in opened.instruments)
    src = opened.manifest["source"]
    assert src["generator"] == "lockstep.synth" and src["seed"] == 4 and src["events"] == 120_000
    assert src["book"] == "l3" and src["instruments"] == 2 and src["depth"] == 400
    opened.verify()
    on_disk = to_columns(opened.read_all())
    expected = synth(120_000, seed=4, book="l3", instruments=2)
    for name in COLUMN_NAMES:
        np.testing.assert_array_equal(on_disk[name], expected[name], err_msg=name)
    assert generate(1_000, data=data_root).name == "synth-l2-1000-s1"


def test_invalid_options():
    with pytest.raises(ValueError):
        list(iter_synthetic(10, book="l4"))
    with pytest.raises(ValueError):
        list(iter_synthetic(10, instruments=0))
    with pytest.raises(ValueError):
        list(iter_synthetic(10, depth=2))
    with pytest.raises(ValueError):
        list(iter_synthetic(-1))
    with pytest.raises(ValueError):
        list(iter_synthetic(10, seed=-1))
    assert list(iter_synthetic(0)) == []
