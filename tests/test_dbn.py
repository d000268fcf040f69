"""Databento DBN decoder: real fixtures checked against databento_dbn's own reading of them,
hand-built streams for every MBO action, corruption and a fuzz for the accounting invariant."""
from __future__ import annotations

import datetime as dt
import itertools
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import databento_dbn as db
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import shared_file

from lockstep.backtest.replay import replay_batches
from lockstep.data.pipeline import ValidationConfig, import_data
from lockstep.data.importers.dbn import decode_dbn
from lockstep.data.importers.normalized import Rule, read_decompressed
from lockstep.errors import DecodeError

L2_SET, L3_ADD, L3_MODIFY, L3_DELETE, L3_EXECUTE, BOOK_CLEAR, TRADE = 1, 2, 3, 4, 5, 6, 7
LAST, SNAPSHOT, BAD_TS_RECV = 1, 2, 4
SIDE = {"B": 1, "A": 2, "N": 0}
NANO = Decimal("0.000000001")


def decode(paths, **kw):
    run = decode_dbn(paths, **kw)
    chunks = list(run)
    check_accounting(chunks)
    return run, chunks


def check_accounting(chunks):
    nxt = 0
    for c in chunks:
        assert c.first_record == nxt
        assert c.n_records >= 1
        er = c.event_record[: c.n_events]
        if c.n_events:
            assert np.all(np.diff(er) >= 0)
            assert er[0] >= c.first_record and er[-1] < c.first_record + c.n_records
            bad = c.rec_problem[er - c.first_record]
            assert not bad.any(), "a record with a problem has events"
        nxt += c.n_records
    return nxt


def events(chunks):
    rows = []
    for c in chunks:
        for i in range(c.n_events):
            rows.append({k: int(v[i]) for k, v in c.events.items()} | {"record": int(c.event_record[i])})
    return rows


def records(chunks):
    out = []
    for c in chunks:
        for i in range(c.n_records):
            out.append({"file": int(c.rec_file[i]), "offset": int(c.rec_offset[i]),
                        "length": int(c.rec_length[i]), "problem": int(c.rec_problem[i]),
                        "reason": c.problem_reasons.get(c.first_record + i)})
    return out


def oracle(path):
    """databento_dbn's own records of a file, as it decodes them (no upgrade)."""
    dec = db.DBNDecoder(upgrade_policy=db.VersionUpgradePolicy.AS_IS)
    out = dec.write_and_decode(read_decompressed(path))
    return out[0], out[1:]


def header_length(path) -> int:
    data = read_decompressed(path)
    assert data[:3] == b"DBN"
    return 8 + int.from_bytes(data[4:8], "little")


def header_length_of(data: bytes) -> int:
    return 8 + int.from_bytes(data[4:8], "little")


def ticks(raw: int, increment: str) -> int:
    q, r = divmod(Decimal(raw) * NANO, Decimal(increment))
    assert r == 0
    return int(q)


# ---------------------------------------------------------------- real fixtures


def test_mbo_fixture_matches_databento_dbn():
    path = shared_file("databento/test_data.mbo.dbn")
    _, recs = oracle(path)
    run, chunks = decode(path)
    assert [i.symbol for i in run.instruments] == ["ESH1"]  # from the metadata's mappings
    inc = run.instruments[0].price_increment
    assert Decimal(inc) == NANO and run.instruments[0].book == "l3"
    assert run.counts["instruments"][0]["increment_source"] == "dbn_fixed_point"
    ev = events(chunks)
    # both records are cancels ('C') of orders the file never added: a delete of an unknown order
    assert [str(r.action) for r in recs] == ["C", "C"]
    assert len(ev) == 2
    for e, r, k, price in zip(ev, recs, range(2), ("3722.75", "3723")):
        assert e["kind"] == L3_DELETE and e["record"] == k
        assert e["order_id"] == r.order_id and e["ts_event"] == r.ts_event and e["ts_recv"] == r.ts_recv
        assert e["seq"] == r.sequence and e["side"] == SIDE[str(r.side)] == 2
        assert Decimal(e["price"]) * Decimal(inc) == Decimal(r.price) * NANO == Decimal(price)
        assert e["flags"] == LAST  # DBN F_LAST on each
    assert run.counts["events"] == {"l3_delete": 2}
    hl = header_length(path)
    assert [(r["offset"], r["length"]) for r in records(chunks)] == [(hl, 56), (hl + 56, 56)]
    assert run.inputs[0].records == 2 and run.inputs[0].bytes_read == os.path.getsize(path)


def _levels(rec):
    bids = {lv.bid_px: lv.bid_sz for lv in rec.levels if lv.bid_px != db.UNDEF_PRICE and lv.bid_sz}
    asks = {lv.ask_px: lv.ask_sz for lv in rec.levels if lv.ask_px != db.UNDEF_PRICE and lv.ask_sz}
    return bids, asks


def test_mbp10_fixture_snapshot_then_diff():
    path = shared_file("databento/test_data.mbp-10.dbn")
    _, recs = oracle(path)
    run, chunks = decode(path, price_increment="0.25")
    inc = run.instruments[0].price_increment
    assert inc == "0.25" and run.instruments[0].book == "l2"
    ev = events(chunks)
    first = [e for e in ev if e["record"] == 0]
    second = [e for e in ev if e["record"] == 1]
    # record 0: the instrument's first view is a snapshot
    bids, asks = _levels(recs[0])
    assert first[0]["kind"] == BOOK_CLEAR and first[0]["flags"] & SNAPSHOT
    got = {(e["side"], e["price"], e["qty"]) for e in first[1:]}
    want = {(1, ticks(p, inc), s) for p, s in bids.items()} | {(2, ticks(p, inc), s) for p, s in asks.items()}
    assert got == want and len(first) == 1 + len(want) == 21
    assert all(e["kind"] == L2_SET and e["flags"] & SNAPSHOT for e in first[1:])
    # record 1: only what changed against record 0, worked out here from databento_dbn's levels
    b2, a2 = _levels(recs[1])
    diff = set()
    for side, old, new in ((1, bids, b2), (2, asks, a2)):
        diff |= {(side, ticks(p, inc), 0) for p in old if p not in new}
        diff |= {(side, ticks(p, inc), s) for p, s in new.items() if old.get(p) != s}
    assert diff == {(1, ticks(3720000000000, inc), 30)}  # bid 3720.00: 31 -> 30 (the 'C' of size 1)
    assert {(e["side"], e["price"], e["qty"]) for e in second} == diff
    assert all(not e["flags"] & SNAPSHOT for e in second)
    for group in (first, second):  # one message each (F_LAST): LAST on the last event only
        assert [e["flags"] & LAST for e in group] == [0] * (len(group) - 1) + [LAST]


def test_trades_fixture():
    path = shared_file("databento/test_data.trades.dbn")
    _, recs = oracle(path)
    _, chunks = decode(path)
    ev = events(chunks)
    assert len(ev) == 2
    for e, r in zip(ev, recs):
        assert e["kind"] == TRADE and e["side"] == SIDE[str(r.side)] == 2  # sell aggressor
        assert Decimal(e["price"]) * NANO == Decimal("3720.25")
        assert e["qty"] == r.size and e["seq"] == r.sequence and e["flags"] & LAST
    assert [e["qty"] for e in ev] == [5, 21]


def test_definition_fixture_fills_the_table():
    path = shared_file("databento/test_data.definition.dbn")
    _, recs = oracle(path)
    run, chunks = decode(path)
    assert sum(c.n_events for c in chunks) == 0
    assert [r["problem"] for r in records(chunks)] == [0, 0]
    # two MSFT definitions (two days, two instrument ids), one instrument: the raw symbol
    assert [(i.symbol, i.venue) for i in run.instruments] == [("MSFT", "XNAS.ITCH")]
    assert run.counts["instruments"][0]["instrument_ids"] == [r.instrument_id for r in recs] == [6819, 6830]
    # these definitions carry no min_price_increment (UNDEF): the fallback increment is used
    assert recs[0].min_price_increment == db.UNDEF_PRICE
    assert run.counts["instruments"][0]["increment_source"] == "dbn_fixed_point"
    assert run.counts["definitions_without_increment"] == 2


def test_definitions_argument_comes_first():
    run, chunks = decode(shared_file("databento/test_data.trades.dbn"),
                         definitions=shared_file("databento/test_data.definition.dbn"), venue="X")
    assert [i.symbol for i in run.instruments] == ["MSFT", "ESH1"]
    assert all(e["instrument"] == 1 for e in events(chunks))
    assert sum(c.n_records for c in chunks) == 2  # definitions files are not records of the run


def test_esh4_snapshot_replays_to_the_raw_best_prices():
    path = shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst")
    _, recs = oracle(path)
    assert len(recs) == 8725
    run, chunks = decode(path)
    ev = events(chunks)
    assert len(ev) == 8726
    assert ev[0]["kind"] == BOOK_CLEAR and ev[0]["record"] == 0
    assert all(e["kind"] == L3_ADD for e in ev[1:])
    assert all(e["flags"] & (SNAPSHOT | BAD_TS_RECV) == SNAPSHOT | BAD_TS_RECV for e in ev)
    assert [e["flags"] & LAST for e in ev].count(LAST) == 1 and ev[-1]["flags"] & LAST
    assert run.counts["snapshot_clears_inserted"] == 1
    hl = header_length(path)
    recs_out = records(chunks)
    assert recs_out[0]["offset"] == hl and recs_out[-1]["offset"] == hl + 56 * 8724

    # best bid/ask straight from the raw records, plain Python
    bid_px = max(r.price for r in recs if str(r.side) == "B")
    ask_px = min(r.price for r in recs if str(r.side) == "A")
    bid_qty = sum(r.size for r in recs if str(r.side) == "B" and r.price == bid_px)
    ask_qty = sum(r.size for r in recs if str(r.side) == "A" and r.price == ask_px)
    res = replay_batches(((c.events, c.n_events) for c in chunks), run.instruments)
    tob = res.top_of_book["ESH4"]
    assert Decimal(tob.bid_price) == Decimal(bid_px) * NANO and tob.bid_qty == bid_qty
    assert Decimal(tob.ask_price) == Decimal(ask_px) * NANO and tob.ask_qty == ask_qty
    assert tob.bid_price < tob.ask_price
    assert all(a.count == 0 for a in res.data_quality.values())


# ---------------------------------------------------------------- hand-built streams

IID = 42


@dataclass
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class _Mapping:
    raw_symbol: str
    intervals: list


def stream(recs, *, schema=db.Schema.MBO, version=3, symbol="TEST") -> bytes:
    meta = db.Metadata(
        dataset="GLBX.MDP3", start=0, stype_in=db.SType.RAW_SYMBOL, stype_out=db.SType.INSTRUMENT_ID,
        schema=schema, symbols=[symbol], version=version,
        mappings=[_Mapping(symbol, [_Interval(dt.date(2024, 1, 1), dt.date(2024, 1, 2), str(IID))])])
    return bytes(meta) + b"".join(bytes(r) for r in recs)


def mbo(action, side="B", oid=1, px="100", size=1, ts=1000, seq=1, flags=db.F_LAST, iid=IID, ts_event=None):
    """An MBO record received at `ts`; the venue's event time is ts - 1 unless given (the records
    of one venue event share it, whatever packets they arrive in)."""
    price = db.UNDEF_PRICE if px is None else int(Decimal(px) / NANO)
    return db.MBOMsg(publisher_id=1, instrument_id=iid, ts_event=ts - 1 if ts_event is None else ts_event,
                     order_id=oid, price=price,
                     size=size, action=db.Action(action), side=db.Side(side), ts_recv=ts, flags=flags,
                     sequence=seq)


def definition(tick="0.25", symbol="TEST"):
    return db.InstrumentDefMsg(
        publisher_id=1, instrument_id=IID, ts_event=1, ts_recv=1,
        min_price_increment=int(Decimal(tick) / NANO), display_factor=1_000_000_000,
        raw_symbol=symbol, asset="ES", security_type="FUT", instrument_class=db.InstrumentClass.FUTURE,
        security_update_action=db.SecurityUpdateAction.ADD)


def write(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / name
    p.write_bytes(data)
    return str(p)


def test_every_mbo_action(tmp_path):
    recs = [
        definition("0.25"),
        mbo("A", "B", oid=1, px="100.00", size=5, ts=10, seq=1),
        mbo("A", "A", oid=2, px="100.50", size=4, ts=11, seq=2),
        mbo("C", "B", oid=1, px="100.00", size=2, ts=12, seq=3),  # partial cancel: 5 -> 3
        mbo("M", "A", oid=2, px="100.75", size=6, ts=13, seq=4),  # new price and size
        # one venue event: trade, fill of the resting order, then the cancel that removes it
        mbo("T", "B", oid=0, px="100.75", size=2, ts=14, seq=5, flags=0),
        mbo("F", "A", oid=2, px="100.75", size=2, ts=14, seq=5, flags=0),
        mbo("C", "A", oid=2, px="100.75", size=2, ts=14, seq=5, flags=db.F_LAST),
        mbo("C", "B", oid=1, px="100.00", size=3, ts=15, seq=6),  # full cancel
        mbo("C", "B", oid=99, px="100.00", size=1, ts=16, seq=7),  # unknown order
        mbo("N", "N", oid=0, px=None, size=0, ts=17, seq=8),
        mbo("R", "N", oid=0, px=None, size=0, ts=18, seq=9),
    ]
    path = write(tmp_path, "a.dbn", stream(recs))
    run, chunks = decode(path)
    assert run.instruments[0].price_increment == "0.25"
    assert run.counts["instruments"][0]["increment_source"] == "definition"
    got = [(e["record"], e["kind"], e["side"], e["price"], e["qty"], e["order_id"], e["flags"]) for e in events(chunks)]
    assert got == [
        (1, L3_ADD, 1, 400, 5, 1, LAST),  # 100.00 / 0.25
        (2, L3_ADD, 2, 402, 4, 2, LAST),
        (3, L3_MODIFY, 1, 400, 3, 1, LAST),
        (4, L3_MODIFY, 2, 403, 6, 2, LAST),
        (5, TRADE, 1, 403, 2, 0, 0),
        (6, TRADE, 1, 403, 2, 2, 0),  # the fill's print: the resting ask was hit by a buyer
        (7, L3_MODIFY, 2, 403, 4, 2, LAST),  # the cancel after the fill is what changes the book
        (8, L3_DELETE, 1, 400, 0, 1, LAST),
        (9, L3_DELETE, 1, 400, 0, 99, LAST),
        (11, BOOK_CLEAR, 0, 0, 0, 0, LAST),
    ]
    assert [r["problem"] for r in records(chunks)] == [0] * 12
    assert run.counts["unknown_order_refs"] == 1 and run.counts["fills_of_unknown_orders"] == 0


def test_partial_fill_then_bigger_cancel(tmp_path):
    recs = [mbo("A", "B", oid=1, px="10", size=10, ts=1, seq=1),
            mbo("F", "B", oid=1, px="10", size=3, ts=2, seq=2, flags=0),
            mbo("C", "B", oid=1, px="10", size=5, ts=2, seq=2, flags=db.F_LAST)]  # 3 filled + 2 cancelled
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    got = [(e["kind"], e["side"], e["price"], e["qty"]) for e in events(chunks)]
    assert got == [(L3_ADD, 1, 10, 10), (TRADE, 2, 10, 3), (L3_MODIFY, 1, 10, 5)]


def test_without_f_last_a_message_ends_when_the_event_time_changes_or_the_stream_ends(tmp_path):
    recs = [mbo("A", oid=1, ts=5, seq=1, flags=0), mbo("A", oid=2, ts=5, seq=1, flags=0),
            mbo("A", oid=3, ts=6, seq=2, flags=0)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    assert [e["flags"] for e in events(chunks)] == [0, LAST, LAST]
    assert run.counts["messages_ended_without_f_last"] == 1  # the end of the stream is not counted


def test_snapshot_starting_with_clear_gets_no_extra_clear(tmp_path):
    snap = db.F_SNAPSHOT | db.F_BAD_TS_RECV
    recs = [mbo("R", "N", oid=0, px=None, size=0, ts=5, seq=0, flags=snap),
            mbo("A", "B", oid=1, ts=5, seq=0, flags=snap),
            mbo("A", "A", oid=2, px="101", ts=5, seq=0, flags=snap | db.F_LAST),
            mbo("A", "B", oid=3, ts=6, seq=10)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    got = [(e["kind"], e["flags"]) for e in events(chunks)]
    assert got == [(BOOK_CLEAR, SNAPSHOT | BAD_TS_RECV), (L3_ADD, SNAPSHOT | BAD_TS_RECV),
                   (L3_ADD, SNAPSHOT | BAD_TS_RECV | LAST), (L3_ADD, LAST)]
    assert run.counts["snapshot_clears_inserted"] == 0


def test_duplicate_sequence(tmp_path):
    recs = [mbo("A", oid=1, ts=5, seq=7), mbo("A", oid=2, ts=6, seq=8),
            mbo("A", oid=3, ts=7, seq=8),  # same sequence, another packet: a repeat
            mbo("A", oid=4, ts=8, seq=6),  # older
            mbo("A", oid=5, ts=9, seq=100)]  # a forward jump is not a loss in a filtered file
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    assert [r["problem"] for r in records(chunks)] == [0, 0, Rule.DUPLICATE_MESSAGE, Rule.DUPLICATE_MESSAGE, 0]
    assert [e["order_id"] for e in events(chunks)] == [1, 2, 5]
    assert not any(e["kind"] == 64 for e in events(chunks))


def test_price_off_the_increment_is_malformed(tmp_path):
    recs = [definition("0.25"), mbo("A", oid=1, px="100.10", ts=5), mbo("A", oid=2, px=None, ts=6),
            mbo("A", oid=3, px="100.25", ts=7)]
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)))
    recs_out = records(chunks)
    assert [r["problem"] for r in recs_out] == [0, Rule.MALFORMED_RECORD, Rule.MALFORMED_RECORD, 0]
    assert "not a multiple" in recs_out[1]["reason"] and "UNDEF" in recs_out[2]["reason"]
    assert [(e["order_id"], e["price"]) for e in events(chunks)] == [(3, 401)]


def test_two_files_are_one_stream(tmp_path):
    a = write(tmp_path, "a.dbn", stream([mbo("A", oid=1, ts=5, seq=1)]))
    b = write(tmp_path, "b.dbn", stream([mbo("C", oid=1, ts=6, seq=2)]))
    run, chunks = decode([a, b], price_increment="1")
    recs_out = records(chunks)
    assert [r["file"] for r in recs_out] == [0, 1]
    hl = len(stream([]))
    assert [r["offset"] for r in recs_out] == [hl, hl]
    assert [e["kind"] for e in events(chunks)] == [L3_ADD, L3_DELETE]
    assert [i.records for i in run.inputs] == [1, 1]


def test_mbp_clear_and_trade(tmp_path):
    def mbp(action, levels, ts, side="N", px=db.UNDEF_PRICE, size=0):
        lv = [db.BidAskPair(bid_px=b, ask_px=a, bid_sz=bs, ask_sz=as_, bid_ct=1, ask_ct=1)
              for b, a, bs, as_ in levels]
        lv += [db.BidAskPair(bid_px=db.UNDEF_PRICE, ask_px=db.UNDEF_PRICE, bid_sz=0, ask_sz=0, bid_ct=0,
                             ask_ct=0)] * (10 - len(lv))
        return db.MBP10Msg(publisher_id=1, instrument_id=IID, ts_event=ts, price=px, size=size,
                           action=db.Action(action), side=db.Side(side), depth=0, ts_recv=ts,
                           flags=db.F_LAST, sequence=ts, levels=lv)
    g = 10**9
    recs = [mbp("A", [(10 * g, 11 * g, 5, 6)], 1),
            mbp("T", [(10 * g, 12 * g, 5, 2)], 2, side="B", px=11 * g, size=6),
            mbp("R", [], 3)]
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs, schema=db.Schema.MBP_10)), price_increment="1")
    got = [(e["record"], e["kind"], e["side"], e["price"], e["qty"], e["flags"]) for e in events(chunks)]
    assert got == [
        (0, BOOK_CLEAR, 0, 0, 0, SNAPSHOT), (0, L2_SET, 1, 10, 5, SNAPSHOT), (0, L2_SET, 2, 11, 6, SNAPSHOT | LAST),
        (1, TRADE, 1, 11, 6, 0), (1, L2_SET, 2, 11, 0, 0), (1, L2_SET, 2, 12, 2, LAST),
        (2, BOOK_CLEAR, 0, 0, 0, SNAPSHOT | LAST),
    ]


def test_ts_out_records(tmp_path):
    meta = db.Metadata(dataset="GLBX.MDP3", start=0, stype_in=db.SType.RAW_SYMBOL,
                       stype_out=db.SType.INSTRUMENT_ID, schema=db.Schema.MBO, symbols=["X"], version=2,
                       ts_out=True)
    rec = db.MBOMsg(publisher_id=1, instrument_id=IID, ts_event=1, order_id=5, price=3 * 10**9, size=2,
                    action=db.Action.ADD, side=db.Side.ASK, ts_recv=2, flags=db.F_LAST, sequence=1, ts_out=3)
    data = bytes(meta) + bytes(rec) * 2
    _, chunks = decode(write(tmp_path, "a.dbn", data), price_increment="1")
    assert [(r["length"], r["problem"]) for r in records(chunks)] == [(64, 0), (64, 0)]  # 56 + ts_out
    assert [(e["kind"], e["price"], e["qty"], e["side"]) for e in events(chunks)] == [(L3_ADD, 3, 2, 2)] * 2


def test_size_increment_option(tmp_path):
    recs = [mbo("A", oid=1, size=10, ts=1, seq=1), mbo("A", oid=2, size=15, ts=2, seq=2)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1", size_increment="5")
    assert [r["problem"] for r in records(chunks)] == [0, 0]
    assert [e["qty"] for e in events(chunks)] == [2, 3]
    assert run.instruments[0].size_increment == "5"
    assert run.counts["increments_refined"] == []


def test_options_coarser_than_the_data_are_refined(tmp_path):
    """A price option of 1 and a size option of 5 meet a price of 100.5 and a size of 3: both are
    refined to the data's grid (0.5 and 1), every record is canonical, and each refinement names
    the first value off the option and its byte offset."""
    recs = [mbo("A", oid=1, px="100", size=10, ts=1, seq=1), mbo("A", oid=2, px="100.5", size=5, ts=2, seq=2),
            mbo("A", oid=3, px="102", size=3, ts=3, seq=3)]
    path = write(tmp_path, "a.dbn", stream(recs))
    run, chunks = decode(path, price_increment="1", size_increment="5")
    assert [r["problem"] for r in records(chunks)] == [0, 0, 0]
    assert [(e["price"], e["qty"]) for e in events(chunks)] == [(200, 10), (201, 5), (204, 3)]
    (inst,) = run.instruments
    assert (inst.price_increment, inst.size_increment) == ("0.5", "1")
    refined = {r["what"]: r for r in run.counts["increments_refined"]}
    hl = header_length(path)
    assert refined["price"] == {"symbol": "TEST", "what": "price", "given": "1", "used": "0.5", "source": "option",
                                "value": "100.5", "file": path, "line": None, "offset": hl + 56}
    assert refined["size"] == {"symbol": "TEST", "what": "size", "given": "5", "used": "1", "source": "option",
                               "value": "3", "file": path, "line": None, "offset": hl + 2 * 56}


def test_a_definition_increment_is_not_refined_by_the_option(tmp_path):
    recs = [definition("0.25"), mbo("A", oid=1, px="100.10", ts=5)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    assert [r["problem"] for r in records(chunks)] == [0, Rule.MALFORMED_RECORD]
    assert run.instruments[0].price_increment == "0.25"
    assert run.counts["increments_refined"] == []


def test_a_coarse_option_on_the_esh4_capture_loses_nothing(data_root):
    """ESH4 trades in quarter points: a price option of 0.5 is refined to 0.25, every record is
    canonical, and the warning names the first price off 0.5, where it is in the file."""
    path = shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst")
    _, recs = oracle(path)
    first = next(i for i, r in enumerate(recs) if (Decimal(r.price) * NANO) % Decimal("0.5"))
    report = import_data("dbn", [path], data=data_root, options={"price_increment": "0.5"})
    assert report.records_read == report.records_canonical == len(recs)
    (inst,) = report.instruments
    assert inst["price_increment"] == "0.25"
    (r,) = report.decoder_counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["source"]) == ("price", "0.5", "0.25", "option")
    assert Decimal(r["value"]) == Decimal(recs[first].price) * NANO
    assert r["offset"] == header_length(path) + 56 * first
    assert any(line.startswith("warning") and r["value"] in line and "0.25" in line
               for line in report.describe().splitlines())


def test_definition_after_data_does_not_change_the_increment(tmp_path):
    recs = [mbo("A", oid=1, px="100", ts=1, seq=1), definition("0.25")]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)))
    assert run.instruments[0].price_increment == "0.000000001"
    assert run.counts["late_definitions"] == 1
    assert events(chunks)[0]["price"] == 100 * 10**9


def test_chunks_are_cut_between_messages_only(tmp_path):
    recs = [mbo("A", oid=1, ts=1, seq=1, flags=0), mbo("A", oid=2, ts=1, seq=1, flags=db.F_LAST),
            mbo("A", oid=3, ts=2, seq=2), mbo("A", oid=4, ts=3, seq=3)]
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1", chunk_size=1)
    assert [(c.first_record, c.n_records) for c in chunks] == [(0, 2), (2, 1), (3, 1)]
    assert [e["flags"] for e in events(chunks)] == [0, LAST, LAST, LAST]


# ---------------------------------------------------------------- corruption


def test_torn_tail_is_one_truncated_record(tmp_path):
    data = stream([mbo("A", oid=1, ts=5), mbo("A", oid=2, ts=6)])
    path = write(tmp_path, "a.dbn", data[:-20])
    _, chunks = decode(path, price_increment="1")
    recs_out = records(chunks)
    assert [r["problem"] for r in recs_out] == [0, Rule.TRUNCATED_RECORD]
    assert recs_out[1]["offset"] == len(data) - 56 and recs_out[1]["length"] == 36
    assert len(events(chunks)) == 1


def test_garbage_after_metadata(tmp_path):
    good = stream([mbo("A", oid=1, ts=5)])
    path = write(tmp_path, "a.dbn", good + b"\x03garbage-bytes-here" * 3)
    run = decode_dbn(path, price_increment="1")
    got = []
    with pytest.raises(DecodeError) as e:
        for c in run:
            got.append(c)  # noqa: PERF402 - keep what came before the error
    assert e.value.path == path and e.value.offset == len(good)
    assert sum(c.n_records for c in got) == 1  # the good record still reached the consumer


@pytest.mark.parametrize("data,offset", [(b"not a dbn file at all", 0), (b"DBN\x02\xff\x00\x00\x00xx", 8),
                                         (b"", 0), (b"DBN\x09\x00\x00\x00\x00", 3)])
def test_not_dbn_is_a_decode_error(tmp_path, data, offset):
    path = write(tmp_path, "a.dbn", data)
    with pytest.raises(DecodeError) as e:
        list(decode_dbn(path))
    assert e.value.path == path and e.value.offset == offset


def test_unknown_rtype_with_valid_length(tmp_path):
    good = stream([mbo("A", oid=1, ts=5)])
    bad = bytearray(bytes(mbo("A", oid=2, ts=6)))
    bad[1] = 0x77
    path = write(tmp_path, "a.dbn", good + bytes(bad))
    with pytest.raises(DecodeError) as e:
        list(decode_dbn(path, price_increment="1"))
    assert e.value.offset == len(good) and "0x77" in str(e.value)


# ---------------------------------------------------------------- fuzz


def _fuzz_seeds() -> list[bytes]:
    seeds = [read_decompressed(shared_file(f"databento/{n}"))
             for n in ("test_data.mbo.dbn", "test_data.mbp-10.dbn", "test_data.trades.dbn",
                       "test_data.definition.dbn")]
    esh4 = read_decompressed(shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst"))
    seeds.append(esh4[: header_length(shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst")) + 56 * 40])
    seeds.append(stream([definition("0.25"), mbo("A", oid=1, ts=5), mbo("F", oid=1, ts=6, flags=0),
                         mbo("C", oid=1, ts=6), mbo("R", "N", oid=0, px=None, size=0, ts=7)]))
    return seeds


_SEEDS: list[bytes] = []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutations_never_crash(data):
    if not _SEEDS:
        _SEEDS.extend(_fuzz_seeds())
    seeds = _SEEDS
    blob = bytearray(data.draw(st.sampled_from(seeds)))
    body = header_length_of(bytes(blob))
    for _ in range(data.draw(st.integers(0, 6))):
        # mostly in the records: the metadata is databento_dbn's to judge
        lo = body if data.draw(st.integers(0, 3)) and body < len(blob) else 0
        i = data.draw(st.integers(lo, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    blob = blob[:cut] if data.draw(st.booleans()) else blob
    if data.draw(st.booleans()):
        blob += data.draw(st.binary(max_size=80))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.dbn")
        Path(path).write_bytes(bytes(blob))
        run = decode_dbn(path)
        chunks = []
        try:
            for c in run:
                chunks.append(c)  # noqa: PERF402 - keep what came before the error
        except DecodeError as e:
            assert e.path == path and e.offset is not None and 0 <= e.offset <= len(blob)
            check_accounting(chunks)
            return
        n = check_accounting(chunks)
        assert n == run.inputs[0].records
        # records tile the file after the metadata, the last possibly torn
        recs_out = records(chunks)
        for a, b in itertools.pairwise(recs_out):
            assert a["offset"] + a["length"] == b["offset"]
        if recs_out:
            assert recs_out[-1]["offset"] + recs_out[-1]["length"] == len(blob)
        ev = events(chunks)
        if ev:
            assert ev[-1]["flags"] & LAST


# ---------------------------------------------------------------- fills, F_LAST and trading phases
# Databento's MBO rules: a trade (T) or a fill (F) leaves the book as it is; the cancel or modify
# that follows, often in a later packet of the same venue event, changes it. F_LAST marks an
# instrument's last record of an event.

OTHER = 43  # a second instrument


def book_after(chunks, run):
    res = replay_batches(((c.events, c.n_events) for c in chunks), run.instruments)
    return res.top_of_book, {k: a.count for k, a in res.data_quality.items() if a.count}


def test_a_fill_leaves_the_order_until_its_modify(tmp_path):
    # an order showing 1 lot is filled for 2 (hidden quantity), then modified to show 3
    recs = [mbo("A", "A", oid=9, px="10", size=1, ts=5, seq=1),
            mbo("F", "A", oid=9, px="10", size=2, ts=6, seq=2, flags=0, ts_event=5),
            mbo("M", "A", oid=9, px="10", size=3, ts=7, seq=3, ts_event=5)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    got = [(e["kind"], e["side"], e["qty"], e["order_id"], e["flags"]) for e in events(chunks)]
    assert got == [(L3_ADD, 2, 1, 9, LAST), (TRADE, 1, 2, 9, 0), (L3_MODIFY, 2, 3, 9, LAST)]
    top, anomalies = book_after(chunks, run)
    assert (top["TEST"].ask_price, top["TEST"].ask_qty) == (10, 3) and anomalies == {}
    assert run.counts["unknown_order_refs"] == 0


def test_a_fill_without_its_cancel_leaves_the_order_resting(tmp_path):
    recs = [mbo("A", "B", oid=1, px="10", size=5, ts=5, seq=1),
            mbo("F", "B", oid=1, px="10", size=2, ts=6, seq=2)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    top, anomalies = book_after(chunks, run)
    assert (top["TEST"].bid_price, top["TEST"].bid_qty) == (10, 5) and anomalies == {}
    assert [e["kind"] for e in events(chunks)] == [L3_ADD, TRADE]


def test_the_cancel_after_a_fill_in_a_later_packet_of_the_event_changes_the_book(tmp_path):
    # one venue event (ts_event 50) in three packets, another instrument's event in between
    recs = [mbo("A", "B", oid=1, px="10", size=5, ts=5, seq=1),
            mbo("T", "A", oid=0, px="10", size=2, ts=60, seq=2, flags=0, ts_event=50),
            mbo("F", "B", oid=1, px="10", size=2, ts=60, seq=2, flags=0, ts_event=50),
            mbo("A", "A", oid=7, px="20", size=1, ts=61, seq=3, iid=OTHER, ts_event=51),
            mbo("C", "B", oid=1, px="10", size=2, ts=62, seq=4, ts_event=50)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    got = [(e["instrument"], e["kind"], e["side"], e["qty"], e["order_id"], e["flags"], e["ts_recv"])
           for e in events(chunks)]
    assert got == [(0, L3_ADD, 1, 5, 1, LAST, 5),
                   (0, TRADE, 2, 2, 0, 0, 60),  # the aggressor's print
                   (0, TRADE, 2, 2, 1, 0, 60),  # the fill of order 1, which still rests
                   (1, L3_ADD, 2, 1, 7, LAST, 61),
                   (0, L3_MODIFY, 1, 3, 1, LAST, 62)]  # the event ends here, at F_LAST
    top, anomalies = book_after(chunks, run)
    assert top["TEST"].bid_qty == 3 and anomalies == {}
    assert run.counts["messages_ended_without_f_last"] == 0


def test_f_last_ends_each_instruments_event(tmp_path):
    recs = [mbo("A", "B", oid=1, px="10", ts=5, seq=1, flags=0, ts_event=4),
            mbo("A", "B", oid=2, px="10", ts=6, seq=2, flags=0, ts_event=4, iid=OTHER),
            mbo("A", "B", oid=3, px="10", ts=7, seq=3, flags=0, ts_event=4),
            mbo("A", "B", oid=4, px="10", ts=8, seq=4, ts_event=4, iid=OTHER),
            mbo("A", "B", oid=5, px="10", ts=9, seq=5, ts_event=4)]
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    assert [(e["order_id"], e["flags"]) for e in events(chunks)] == [(1, 0), (2, 0), (3, 0), (4, LAST), (5, LAST)]


def status(action, ts, is_trading="NOT_AVAILABLE", iid=IID):
    return db.StatusMsg(publisher_id=1, instrument_id=iid, ts_event=ts - 1, ts_recv=ts,
                        action=getattr(db.StatusAction, action), reason=db.StatusReason.SCHEDULED,
                        trading_event=db.TradingEvent.NONE, is_trading=getattr(db.TriState, is_trading),
                        is_quoting=db.TriState.NOT_AVAILABLE)


# a bid at 101, then an ask at 100 under it, then another ask: crossed after the second record
CROSSING = [mbo("A", "B", oid=1, px="101", ts=10, seq=1), mbo("A", "A", oid=2, px="100", ts=11, seq=2),
            mbo("A", "A", oid=3, px="105", ts=12, seq=3)]


def import_dbn(tmp_path, recs):
    path = write(tmp_path, "a.dbn", stream(recs))
    return import_data("dbn", [path], data=str(tmp_path / "root"), options={"price_increment": "1"})


@pytest.mark.parametrize("action,is_trading,phase", [("PRE_OPEN", "NOT_AVAILABLE", 1), ("CROSS", "NO", 2),
                                                     ("HALT", "NO", 4), ("NONE", "NO", 4)])
def test_status_records_become_trading_phase_events(tmp_path, action, is_trading, phase):
    recs = [status(action, 5, is_trading), *CROSSING]
    _, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1")
    ev = events(chunks)[0]
    assert (ev["kind"], ev["side"], ev["order_id"], ev["flags"], ev["instrument"]) == (65, phase, 0, LAST, 0)


def test_a_book_crossed_in_pre_open_is_canonical(tmp_path):
    # CME rests crossed orders before the open; the opening uncrosses them
    uncross = mbo("C", "B", oid=1, px="101", size=1, ts=14, seq=4)
    r = import_dbn(tmp_path, [status("PRE_OPEN", 5), *CROSSING, status("TRADING", 13, "YES"), uncross])
    assert r.records_quarantined == 0 and r.records_canonical == 6
    assert "crossed_book_phase_unknown" not in r.warnings_by_rule
    assert r.decoder_counts["events"]["trading_phase"] == 2


def test_a_book_crossed_in_continuous_trading_is_quarantined(tmp_path):
    r = import_dbn(tmp_path, [status("TRADING", 5, "YES"), *CROSSING])
    assert r.quarantined_by_rule == {"crossed_book": 2} and r.records_canonical == 2
    assert r.decoder_counts["events"]["trading_phase"] == 1


def test_a_book_crossed_in_an_unknown_phase_is_a_warning_not_the_rest_of_the_day(tmp_path):
    r = import_dbn(tmp_path, [*CROSSING, mbo("C", "B", oid=1, px="101", size=1, ts=14, seq=4),
                              mbo("A", "B", oid=4, px="99", ts=15, seq=5)])
    assert r.records_quarantined == 0 and r.records_canonical == 5
    assert r.warnings_by_rule == {"crossed_book_phase_unknown": 2}


def test_crossed_in_an_unknown_phase_can_be_made_a_quarantine_rule(tmp_path):
    path = write(tmp_path, "a.dbn", stream(CROSSING))
    cfg = ValidationConfig.from_options(["crossed_book_phase_unknown=quarantine"])
    r = import_data("dbn", [path], data=str(tmp_path / "root"), options={"price_increment": "1"}, validation=cfg)
    assert r.quarantined_by_rule == {"crossed_book_phase_unknown": 2}
    first = next(e for e in r.entries if e["rule"] == "crossed_book_phase_unknown" and "invalid since" not in e["reason"])
    assert "best bid 101 >= best ask 100" in first["reason"] and "no trading phase" in first["reason"]


def test_without_f_last_a_full_chunk_still_ends_open_events(tmp_path):
    # one endless venue event without F_LAST over many packets: chunks are still cut, memory bounded
    recs = [mbo("A", "B", oid=i, px="10", ts=10 + i, seq=i, flags=0, ts_event=5) for i in range(1, 41)]
    run, chunks = decode(write(tmp_path, "a.dbn", stream(recs)), price_increment="1", chunk_size=8)
    assert len(chunks) > 2 and all(c.n_records <= 16 for c in chunks)
    assert run.counts["messages_ended_without_f_last"] >= len(chunks) - 1
    assert [e["order_id"] for e in events(chunks)] == list(range(1, 41))
