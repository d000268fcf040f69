"""Replay: book effects seen through the public API, data-quality accounting, top-of-book output,
and the state digest's determinism."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from events_util import make_columns

from lockstep.backtest.replay import replay, replay_batches
from lockstep.data.dataset import DatasetWriter, Instrument
from lockstep.events import EventKind as K
from lockstep.events import Flag, Side

L2 = Instrument("AAA", "TEST", "0.01", "0.001")
L3 = Instrument("BBB", "TEST", "0.5", "1", book="l3")
BID, ASK, LAST, SNAP = Side.BID, Side.ASK, Flag.LAST, Flag.SNAPSHOT


def l2_scenario():
    return make_columns([
        dict(kind=K.BOOK_CLEAR, flags=SNAP),                                   # 0
        dict(kind=K.L2_SET, side=BID, price=10000, qty=5000, flags=SNAP),      # 1
        dict(kind=K.L2_SET, side=BID, price=9999, qty=3000, flags=SNAP),       # 2
        dict(kind=K.L2_SET, side=ASK, price=10001, qty=4000, flags=SNAP | LAST),  # 3
        dict(kind=K.L2_SET, side=BID, price=10000, qty=0, flags=LAST),         # 4 touch leaves
        dict(kind=K.L2_SET, side=BID, price=5000, qty=0, flags=LAST),          # 5 unknown level
        dict(kind=K.TRADE, side=ASK, price=10001, qty=250, flags=LAST),        # 6
        dict(kind=K.L2_SET, side=ASK, price=9998, qty=1000),                   # 7 crosses ...
        dict(kind=K.L2_SET, side=ASK, price=10001, qty=0, flags=LAST),         # 8 ... at message end
        dict(kind=K.L2_SET, side=ASK, price=9998, qty=0),                      # 9 uncross mid-message
        dict(kind=K.L2_SET, side=BID, price=9999, qty=0, flags=LAST),          # 10 bid side empty
    ])


def run(cols, instruments=(L2,), **kw):
    return replay_batches([(cols, len(cols["ts_event"]))], list(instruments), **kw)


def test_l2_scenario_top_of_book_and_quality(tmp_path):
    out = tmp_path / "tob.parquet"
    result = run(l2_scenario(), top_of_book=str(out))
    assert result.events == 11
    assert result.kinds == {"l2_set": 9, "book_clear": 1, "trade": 1}
    q = result.data_quality
    assert q["unknown_level"].count == 1 and q["unknown_level"].first == [{"position": 5, "symbol": "AAA"}]
    # crossed only after the complete message at row 8, not in the middle of message 9-10
    assert q["crossed_book"].count == 1 and q["crossed_book"].first[0]["position"] == 8
    assert sum(a.count for a in q.values()) == 2
    top = result.top_of_book["AAA"]
    assert top.bid_price is None and top.bid_qty is None
    assert top.ask_price is None  # the last ask level (10001) left at row 8, 9998 at row 9

    table = pq.read_table(out).to_pydict()
    assert result.top_of_book_rows == 6 == len(table["ts_recv"])  # one row per LAST flag
    assert table["ts_recv"] == [3, 4, 5, 6, 8, 10]
    assert table["symbol"] == ["AAA"] * 6
    assert table["bid_price"] == [100.0, 99.99, 99.99, 99.99, 99.99, None]
    assert table["bid_qty"] == [5.0, 3.0, 3.0, 3.0, 3.0, None]
    assert table["ask_price"] == [100.01, 100.01, 100.01, 100.01, 99.98, None]
    assert table["ask_qty"] == [4.0, 4.0, 4.0, 4.0, 1.0, None]


def test_l3_scenario():
    cols = make_columns([
        dict(kind=K.L3_ADD, side=BID, price=200, qty=5, order_id=1),
        dict(kind=K.L3_ADD, side=BID, price=200, qty=7, order_id=2),
        dict(kind=K.L3_ADD, side=ASK, price=202, qty=3, order_id=3, flags=LAST),
        dict(kind=K.L3_EXECUTE, price=200, qty=5, order_id=1, flags=LAST),     # 1 leaves
        dict(kind=K.L3_DELETE, order_id=99, flags=LAST),                       # unknown order
        dict(kind=K.L3_ADD, side=ASK, price=203, qty=1, order_id=3, flags=LAST),  # duplicate id
        dict(kind=K.L3_MODIFY, price=201, qty=4, order_id=2, flags=LAST),      # bid moves up
        dict(kind=K.L2_SET, side=BID, price=1, qty=1, flags=LAST),             # wrong book kind
    ])
    result = run(cols, (L3,))
    q = result.data_quality
    assert (q["unknown_order"].count, q["duplicate_order"].count, q["wrong_book_kind"].count) == (1, 1, 1)
    assert q["unknown_order"].first[0]["position"] == 4
    top = result.top_of_book["BBB"]
    assert (top.bid_price, top.bid_qty, top.ask_price, top.ask_qty) == (100.5, 4.0, 101.0, 3.0)


def test_bad_instrument_side_and_kind_are_counted_not_fatal():
    cols = make_columns([
        dict(kind=K.L2_SET, side=BID, price=1, qty=1, instrument=5, flags=LAST),
        dict(kind=K.L2_SET, side=0, price=1, qty=1, flags=LAST),
        dict(kind=20, flags=LAST),
        dict(kind=K.L2_SET, side=ASK, price=3, qty=-2, flags=LAST),
        dict(kind=40, flags=LAST),  # an execution kind: no effect on market state, not an anomaly
        dict(kind=K.L2_SET, side=ASK, price=3, qty=2, flags=LAST),
    ])
    result = run(cols)
    q = {k: a.count for k, a in result.data_quality.items() if a.count}
    assert q == {"bad_instrument": 1, "bad_side": 1, "unknown_kind": 1, "bad_quantity": 1}
    assert result.top_of_book["AAA"].ask_price == 0.03


def _write(cols, data_root, name="d", instruments=(L2,)):
    with DatasetWriter(name, list(instruments), data=data_root) as w:
        w.write(cols)
    return w.dataset


def test_digest_is_independent_of_batching_and_sensitive_to_state(data_root):
    cols = l2_scenario()
    ds = _write(cols, data_root)
    whole = replay(ds)
    for batch_size in (1, 2, 3, 7):
        assert replay(ds, batch_size=batch_size).digest == whole.digest
    changed = {k: v.copy() for k, v in cols.items()}
    changed["qty"][6] += 1  # the last trade is part of Market State
    assert run(changed).digest != whole.digest
    fewer = {k: v[:-1] for k, v in cols.items()}
    assert run(fewer).digest != whole.digest


def test_digest_same_from_a_second_process(data_root):
    from lockstep.data.synth import generate

    ds = generate(200_000, seed=3, data=data_root, instruments=2)
    first = replay(ds)
    second = replay(ds)
    assert first.digest == second.digest
    proc = subprocess.run(
        [sys.executable, "-m", "lockstep.cli", "replay", ds.path, "--json"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(proc.stdout)
    assert summary["digest"] == first.digest
    assert summary["events"] == 200_000
    assert summary["events_per_second"] > 0


def test_replay_of_synthetic_l3(data_root):
    from lockstep.data.synth import generate

    ds = generate(100_000, seed=5, data=data_root, book="l3")
    result = replay(ds)
    assert result.events == 100_000
    assert all(a.count == 0 for a in result.data_quality.values()), result.data_quality
    top = result.top_of_book[ds.instruments[0].symbol]
    assert top.bid_price is not None and top.ask_price is not None and top.bid_price < top.ask_price


@pytest.mark.parametrize("book,instruments", [("l2", 1), ("l2", 3), ("l3", 1), ("l3", 2)])
def test_compiled_replay_matches_the_reference(book, instruments):
    """The compiled replay and the pure-Python reference (whose State serialization is written
    from docs/encoding.md) agree on the digest, the tops and every anomaly count."""
    from lockstep.data.synth import instruments_for, iter_synthetic
    from lockstep.reference.replay import ReferenceReplayer

    table = instruments_for(instruments, book)
    batches = [(c, len(c["ts_event"])) for c in iter_synthetic(30_000, seed=21, book=book, instruments=instruments,
                                                              batch_size=4096)]
    reference = ReferenceReplayer([i.book for i in table])
    for cols, n in batches:
        reference.apply(cols, n)
    compiled = replay_batches(batches, table)
    assert compiled.digest == reference.digest()
    assert {k: a.count for k, a in compiled.data_quality.items()} == reference.anomalies
    for index, inst in enumerate(table):
        ref_book = reference.books[index]
        top = compiled.top_of_book[inst.symbol]
        bid, ask = ref_book.best_bid(), ref_book.best_ask()
        assert (top.bid_price is None) == (bid is None) and (top.ask_price is None) == (ask is None)
        if bid:
            assert round(top.bid_price / 0.01) == bid[0]


def test_anomalies_match_the_reference_on_hand_made_garbage():
    from lockstep.reference.replay import ReferenceReplayer

    rng = np.random.default_rng(4)
    n = 4000
    cols = make_columns([{} for _ in range(n)])
    cols["kind"][:] = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 20, 40, 65], n,
                                 p=[.28, .2, .1, .1, .1, .02, .05, .03, .05, .05, .02])
    # sides double as trading phases on kind 65 (6 is none)
    cols["side"][:] = rng.choice([0, 1, 2, 3, 6], n, p=[.05, .43, .43, .05, .04])
    cols["instrument"][:] = rng.choice([0, 1, 2], n, p=[.48, .48, .04])
    cols["price"][:] = rng.integers(95, 106, n)
    cols["qty"][:] = rng.integers(-1, 4, n)
    cols["order_id"][:] = rng.integers(0, 40, n)
    phase = cols["kind"] == 65
    cols["order_id"][phase] = rng.integers(0, 2, int(phase.sum()))  # instrument or session scope
    cols["flags"][:] = rng.random(n) < 0.4
    table = [L2, L3]
    reference = ReferenceReplayer(["l2", "l3"])
    reference.apply(cols, n)
    compiled = replay_batches([(cols, n)], table)
    assert {k: a.count for k, a in compiled.data_quality.items()} == reference.anomalies
    assert sum(reference.anomalies.values()) > 100
    assert compiled.digest == reference.digest()


def test_trading_phases_are_state_and_govern_the_crossed_book_anomaly():
    from lockstep.enums import TradingPhase
    from lockstep.events import PHASE_SCOPE_SESSION
    from lockstep.reference.replay import ReferenceReplayer

    crossing = [dict(kind=K.L3_ADD, side=BID, price=102, qty=1, order_id=1, flags=LAST),
                dict(kind=K.L3_ADD, side=ASK, price=101, qty=1, order_id=2, flags=LAST)]

    def replayed(*phases):
        cols = make_columns([*phases, *crossing])
        reference = ReferenceReplayer(["l3"])
        reference.apply(cols, len(cols["kind"]))
        compiled = replay_batches([(cols, len(cols["kind"]))], [L3])
        assert compiled.digest == reference.digest()
        return compiled.data_quality["crossed_book"].count, compiled.digest

    def phase(p, scope=0):
        return dict(kind=K.TRADING_PHASE, side=p, order_id=scope, flags=LAST)

    assert replayed()[0] == 1  # no phase announced: counted as before
    assert replayed(phase(TradingPhase.CONTINUOUS))[0] == 1
    assert replayed(phase(TradingPhase.PRE_OPEN))[0] == 0
    assert replayed(phase(TradingPhase.PRE_OPEN, PHASE_SCOPE_SESSION), phase(TradingPhase.CONTINUOUS))[0] == 0
    assert replayed(phase(TradingPhase.CONTINUOUS, PHASE_SCOPE_SESSION), phase(TradingPhase.HALTED))[0] == 0
    # the phase is part of the State the digest covers: same books, other phase, other digest
    assert replayed(phase(TradingPhase.AUCTION))[1] != replayed(phase(TradingPhase.HALTED))[1]
    assert replayed(phase(TradingPhase.AUCTION, PHASE_SCOPE_SESSION))[1] != replayed(phase(TradingPhase.AUCTION))[1]
