"""Tardis CSV decoder: the real Deribit incremental_book_L2 file, every rule on hand-written rows,
the trades CSV, fuzz. Expected values are worked out by hand or read with the csv module."""
from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import shared_file
from test_bybit import check_accounting, flat

from lockstep.data.importers.normalized import Rule
from lockstep.data.importers.tardis import BOOK_HEADER, TRADES_HEADER, decode_tardis
from lockstep.errors import DecodeError

FIXTURE = "tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"
L2, CLEAR, TRADE = 1, 6, 7
LAST, SNAP = 1, 2


def write(tmp_path: Path, header: str, rows: list[str], name: str = "t.csv", end: str = "\n",
          tail: bool = True) -> Path:
    path = tmp_path / name
    text = end.join([header] + rows) + (end if tail else "")
    path.write_bytes(text.encode())
    return path


def run_rows(tmp_path, header, rows, tail=True, **kw):
    run = decode_tardis(write(tmp_path, header, rows, tail=tail), **kw)
    chunks = list(run)
    check_accounting(run, chunks)
    return run, flat(chunks)


def row(local, snap, side, price, amount, sym="BTC-PERPETUAL", ts=None, ex="deribit") -> str:
    return f"{ex},{sym},{ts if ts is not None else local - 100},{local},{snap},{side},{price},{amount}"


INC = {"price_increment": "0.5", "size_increment": "10"}


# ---------------------------------------------------------------- the real file

def test_real_file():
    path = shared_file(FIXTURE)
    text = path.read_bytes()
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    run = decode_tardis(path)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=len(rows))
    recs = flat(chunks)
    assert len(rows) == 15 and run.requires_snapshot and run.format == "tardis"
    # Deribit BTC-PERPETUAL: 0.5 USD ticks, amounts in multiples of 10 USD.
    [inst] = run.instruments
    assert (inst.symbol, inst.venue, inst.price_increment, inst.size_increment) == (
        "BTC-PERPETUAL", "deribit", "0.5", "10")
    assert run.inputs[0].bytes_read == len(text) and run.inputs[0].records == 15
    events = [e for r in recs for e in r[5]]
    assert len(events) == len(rows) + 1  # one snapshot: one BOOK_CLEAR before its first level
    assert events[0]["kind"] == CLEAR and events[0]["flags"] == SNAP
    assert recs[0][5][0] is events[0]
    for ev, r in zip(events[1:], rows):
        assert ev["kind"] == L2 and ev["side"] == (2 if r["side"] == "ask" else 1)
        assert ev["price"] == Decimal(r["price"]) / Decimal("0.5")
        assert ev["qty"] == Decimal(r["amount"]) / 10
        assert ev["ts_event"] == int(r["timestamp"]) * 1000
        assert ev["ts_recv"] == int(r["local_timestamp"]) * 1000
        assert ev["seq"] == 0
    # All 15 rows share one local_timestamp: one message, LAST on its last row only.
    assert [e["flags"] for e in events[1:]] == [SNAP] * 14 + [SNAP | LAST]
    assert run.counts["messages"] == 1 and run.counts["snapshots"] == 1
    lines = text.split(b"\n")
    assert [r[1] for r in recs] == list(range(2, 17))
    assert [r[2] for r in recs] == [sum(len(x) + 1 for x in lines[:i]) for i in range(1, 16)]
    assert [r[3] for r in recs] == [len(x) for x in lines[1:16]]


def test_real_file_explicit_increments():
    path = shared_file(FIXTURE)
    a = flat(list(decode_tardis(path)))
    b = flat(list(decode_tardis(path, **INC)))
    assert a == b
    run = decode_tardis(path, price_increment="1", size_increment="10")
    # 6421.5 is not a whole dollar: the price increment is refined to the data's, never rounded,
    # and every row is kept exactly as with the right increments.
    assert flat(list(run)) == a
    assert run.instruments[0].price_increment == "0.5"
    (r,) = run.counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["value"], r["file"], r["line"]) == (
        "price", "1", "0.5", "6421.5", str(path), 2)


# ---------------------------------------------------------------- snapshots and messages

def test_snapshot_reset_and_message_grouping(tmp_path):
    run, recs = run_rows(tmp_path, BOOK_HEADER, [
        row(1000, "true", "bid", "100", "10"),
        row(1000, "true", "ask", "101", "20"),
        row(2000, "false", "bid", "100", "0"),
        row(2000, "false", "ask", "101.5", "30"),
        row(3000, "false", "ask", "101.5", "40"),
        row(4000, "true", "bid", "99", "10"),   # snapshot after deltas: a new snapshot
        row(4000, "true", "ask", "102", "10"),
        row(5000, "true", "bid", "98", "10"),   # still a snapshot run: no reset (Tardis's rule)
    ], **INC)
    got = [[(e["kind"], e["side"], e["price"], e["qty"], e["flags"]) for e in r[5]] for r in recs]
    assert got == [
        [(CLEAR, 0, 0, 0, SNAP), (L2, 1, 200, 1, SNAP)],
        [(L2, 2, 202, 2, SNAP | LAST)],
        [(L2, 1, 200, 0, 0)],
        [(L2, 2, 203, 3, LAST)],
        [(L2, 2, 203, 4, LAST)],
        [(CLEAR, 0, 0, 0, SNAP), (L2, 1, 198, 1, SNAP)],
        [(L2, 2, 204, 1, SNAP | LAST)],
        [(L2, 1, 196, 1, SNAP | LAST)],
    ]
    assert recs[0][5][0]["ts_recv"] == 1000 * 1000 and recs[0][5][0]["ts_event"] == 900 * 1000
    assert run.counts["snapshots"] == 2 and run.counts["messages"] == 5
    assert run.counts["deltas_before_snapshot"] == 0


def test_snapshot_and_delta_rows_with_one_local_timestamp_are_two_messages(tmp_path):
    _, recs = run_rows(tmp_path, BOOK_HEADER, [
        row(1000, "false", "bid", "100", "10"),
        row(1000, "true", "bid", "100", "20"),
        row(1000, "true", "ask", "101", "20"),
    ], **INC)
    assert [[(e["kind"], e["flags"]) for e in r[5]] for r in recs] == [
        [(L2, LAST)], [(CLEAR, SNAP), (L2, SNAP)], [(L2, SNAP | LAST)]]


def test_deltas_before_snapshot_are_emitted(tmp_path):
    run, recs = run_rows(tmp_path, BOOK_HEADER, [
        row(1000, "false", "bid", "100", "10"),
        row(2000, "true", "bid", "100", "10"),
    ], **INC)
    assert run.requires_snapshot
    assert [[e["kind"] for e in r[5]] for r in recs] == [[L2], [CLEAR, L2]]
    assert run.counts["deltas_before_snapshot"] == 1


def test_several_symbols_and_venue_override(tmp_path):
    rows = [
        row(1000, "true", "bid", "100", "10", sym="ETH-PERPETUAL"),
        row(1000, "true", "bid", "200", "10"),
        row(1000, "true", "ask", "201", "10"),
        row(1000, "false", "ask", "101", "10", sym="ETH-PERPETUAL"),
    ]
    run, recs = run_rows(tmp_path, BOOK_HEADER, rows, venue="deribit-test", **INC)
    assert [(i.symbol, i.venue) for i in run.instruments] == [
        ("ETH-PERPETUAL", "deribit-test"), ("BTC-PERPETUAL", "deribit-test")]
    assert [[(e["instrument"], e["kind"], e["flags"]) for e in r[5]] for r in recs] == [
        [(0, CLEAR, SNAP), (0, L2, SNAP | LAST)],   # the next row is another symbol: new message
        [(1, CLEAR, SNAP), (1, L2, SNAP)],
        [(1, L2, SNAP | LAST)],
        [(0, L2, LAST)],                             # after its snapshot: no BOOK_CLEAR
    ]
    run2, _ = run_rows(tmp_path, BOOK_HEADER, rows, **INC)
    assert {i.venue for i in run2.instruments} == {"deribit"}


def test_inferred_increments_per_instrument(tmp_path):
    run, _ = run_rows(tmp_path, BOOK_HEADER, [
        row(1000, "true", "bid", "0.0150", "1.5", sym="A"),
        row(1000, "true", "bid", "0.0250", "0", sym="A"),
        row(1000, "true", "bid", "120", "1e-3", sym="B"),
        row(1000, "true", "bid", "84", "0.002", sym="B"),
    ])
    assert [(i.symbol, i.price_increment, i.size_increment) for i in run.instruments] == [
        ("A", "0.005", "1.5"), ("B", "12", "0.001")]
    assert set(run.counts["increment_source"].values()) == {"inferred"}


# ---------------------------------------------------------------- bad rows

def test_malformed_rows_with_line_and_offset(tmp_path):
    good = row(1000, "true", "bid", "100", "10")
    rows = [
        good,
        "deribit,BTC-PERPETUAL,900,1000,true,bid,100",          # 7 columns
        "deribit,BTC-PERPETUAL,900,1000,true,bid,100,10,x",     # 9 columns
        row(1000, "true", "bid", "1O0", "10"),                  # letter O
        row(1000, "yes", "bid", "100", "10"),
        row(1000, "true", "buy", "100", "10"),                  # a trade side in a book file
        "deribit,BTC-PERPETUAL,9.5,1000,true,bid,100,10",
        "deribit,BTC-PERPETUAL,900,,true,bid,100,10",
        ",BTC-PERPETUAL,900,1000,true,bid,100,10",
        row(1000, "true", "bid", "NaN", "10"),
        row(1000, "true", "bid", "100", "10"),
    ]
    run, recs = run_rows(tmp_path, BOOK_HEADER, rows, **INC)
    assert [r[4] for r in recs] == [Rule.OK] + [Rule.MALFORMED_RECORD] * 9 + [Rule.OK]
    assert all(r[6] for r in recs[1:10]) and "8 columns" in recs[1][6]
    assert [r[1] for r in recs] == list(range(2, 13))
    offsets = [len(BOOK_HEADER) + 1]
    for r in rows[:-1]:
        offsets.append(offsets[-1] + len(r) + 1)
    assert [r[2] for r in recs] == offsets
    # A bad row ends the message before it: the first row is LAST alone; the one after starts anew.
    assert recs[0][5][-1]["flags"] & LAST
    assert [e["kind"] for e in recs[10][5]] == [L2]  # its instrument stayed in its snapshot run
    assert run.counts["problems"] == {"malformed_record": 9}


def test_truncated_tail(tmp_path):
    rows = [row(1000, "true", "bid", "100", "10"), "deribit,BTC-PERPETUAL,900,10"]
    _, recs = run_rows(tmp_path, BOOK_HEADER, rows, tail=False, **INC)
    assert [r[4] for r in recs] == [Rule.OK, Rule.TRUNCATED_RECORD]
    # A complete last row without newline is an ordinary row.
    _, recs = run_rows(tmp_path, BOOK_HEADER, rows[:1], tail=False, **INC)
    assert [r[4] for r in recs] == [Rule.OK]


def test_crlf_blank_lines_gzip_and_repeated_header(tmp_path):
    rows = [row(1000, "true", "bid", "100", "10"), "", BOOK_HEADER, row(2000, "false", "bid", "100", "20")]
    text = ("\r\n".join([BOOK_HEADER] + rows) + "\r\n").encode()
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text))
    run = decode_tardis(path, **INC)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=2)
    recs = flat(chunks)
    assert [r[1] for r in recs] == [2, 5]
    assert recs[0][3] == len(rows[0])
    assert run.inputs[0].bytes_read == len(text)
    assert run.counts["repeated_headers"] == 1 and run.counts["blank_lines"] == 1


def test_headers(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("exchange,symbol,timestamp,local_timestamp,side,price,amount\n")
    with pytest.raises(DecodeError) as e:
        decode_tardis(bad)
    assert e.value.path == str(bad) and "header" in str(e.value)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError) as e:
        decode_tardis(empty)
    assert "empty.csv" in str(e.value)
    only = write(tmp_path, BOOK_HEADER, [], name="only.csv")
    run = decode_tardis(only, **INC)
    assert list(run) == [] and run.inputs[0].records == 0 and run.instruments == []


# ---------------------------------------------------------------- trades

def test_trades_csv(tmp_path):
    rows = [
        "deribit,BTC-PERPETUAL,1585699200100000,1585699200200000,12345,buy,6421.5,100",
        "deribit,BTC-PERPETUAL,1585699200110000,1585699200200000,12346,sell,6421,20",
        "deribit,BTC-PERPETUAL,1585699200120000,1585699200300000,a1b2-c3,unknown,6421,10",
        "deribit,BTC-PERPETUAL,1585699200130000,1585699200400000,,sell,6420.5,10",
        "deribit,BTC-PERPETUAL,1585699200140000,1585699200500000,9,bid,6420.5,10",
    ]
    run, recs = run_rows(tmp_path, TRADES_HEADER, rows, **INC)
    assert not run.requires_snapshot
    got = [[(e["kind"], e["side"], e["price"], e["qty"], e["seq"], e["flags"], e["ts_event"], e["ts_recv"])
            for e in r[5]] for r in recs]
    assert got == [
        [(TRADE, 1, 12843, 10, 12345, 0, 1585699200100000000, 1585699200200000000)],
        [(TRADE, 2, 12842, 2, 12346, LAST, 1585699200110000000, 1585699200200000000)],
        [(TRADE, 0, 12842, 1, 0, LAST, 1585699200120000000, 1585699200300000000)],
        [(TRADE, 2, 12841, 1, 0, LAST, 1585699200130000000, 1585699200400000000)],
        [],
    ]
    assert recs[4][4] == Rule.MALFORMED_RECORD and "buy, sell or unknown" in recs[4][6]
    assert run.counts["trade_rows"] == 4


def test_book_and_trades_files_in_one_run(tmp_path):
    b = write(tmp_path, BOOK_HEADER, [row(1000, "true", "bid", "100", "10")], name="b.csv")
    t = write(tmp_path, TRADES_HEADER, ["deribit,BTC-PERPETUAL,900,1000,1,buy,100,10"], name="t.csv")
    run = decode_tardis([b, t], **INC)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=2)
    recs = flat(chunks)
    assert run.requires_snapshot and len(run.instruments) == 1
    assert [r[0] for r in recs] == [0, 1]
    assert [e["kind"] for r in recs for e in r[5]] == [CLEAR, L2, TRADE]
    assert run.counts["file_kinds"] == {str(b): "incremental_book_L2", str(t): "trades"}


# ---------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


def _decode_bytes(tmp_path, data: bytes, **kw):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        run = decode_tardis(path, **kw)
        chunks = list(run)
    except DecodeError:
        return None, None
    lines = data.split(b"\n")
    header = lines[0].rstrip(b"\r").decode()
    expected = sum(1 for line in lines[1:] if line.strip() and line.rstrip(b"\r").decode("utf-8", "replace").strip() != header)
    check_accounting(run, chunks, expected_records=expected)
    return run, chunks


@FUZZ
@given(data=st.binary(max_size=1500), header=st.sampled_from([BOOK_HEADER, TRADES_HEADER, ""]))
def test_fuzz_random_bytes(tmp_path, data, header):
    _decode_bytes(tmp_path, (header + "\n").encode() + data if header else data)


@FUZZ
@given(cells=st.lists(st.lists(st.sampled_from(["deribit", "X", "", "1", "0", "-1", "1.5", "1e3", "true",
                                                   "false", "bid", "ask", "buy", "sell", "unknown", "99999999999999999999",
                                                   "1.", ".5", "\r", "0.0000001"]),
                               min_size=6, max_size=10), max_size=30),
       header=st.sampled_from([BOOK_HEADER, TRADES_HEADER]))
def test_fuzz_csv_shaped_rows(tmp_path, cells, header):
    text = header + "\n" + "\n".join(",".join(c) for c in cells)
    _decode_bytes(tmp_path, text.encode())


@FUZZ
@given(data=st.data())
def test_fuzz_fixture_drops_and_mutations(tmp_path, data):
    lines = shared_file(FIXTURE).read_bytes().split(b"\n")
    body = lines[1:]
    keep = data.draw(st.lists(st.booleans(), min_size=len(body), max_size=len(body)))
    kept = [line for line, k in zip(body, keep) if k]
    blob = bytearray(b"\n".join([lines[0]] + kept))
    n_mut = data.draw(st.integers(0, 4))
    for _ in range(n_mut):
        i = data.draw(st.integers(len(lines[0]) + 1, max(len(blob) - 1, len(lines[0]) + 1)))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip" and i < len(blob):
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del blob[i:]
        else:
            blob[i:i] = blob[i:i + 11]
    run, chunks = _decode_bytes(tmp_path, bytes(blob))
    assert run is not None, "the header was left intact"
    if n_mut == 0:
        recs = flat(chunks)
        assert all(r[4] == Rule.OK for r in recs) and len(recs) == len([k for k in kept if k.strip()])
        events = [e for r in recs for e in r[5]]
        assert sum(e["kind"] == CLEAR for e in events) == (1 if recs else 0)
        assert sum(e["flags"] & LAST for e in events) == (1 if recs else 0)
