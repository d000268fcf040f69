"""Bybit v5 websocket decoder: the real nautilus capture, every rule on hand-written lines, fuzz.

Expected values are worked out by hand or read from the fixture with the json module, never taken
from the decoder.
"""
from __future__ import annotations

import gzip
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import shared_file

from lockstep.data.importers import text as text_importers
from lockstep.data.importers.bybit import decode_bybit
from lockstep.data.importers.normalized import Rule
from lockstep.errors import DecodeError, LockstepError

FIXTURE = "bybit/xrpusdt_ob500_20241201.data.zip"
GAP, L2, CLEAR, TRADE = 64, 1, 6, 7
LAST, SNAP = 1, 2


# ---------------------------------------------------------------- helpers (also used by test_tardis)

def check_accounting(run, chunks, expected_records: int | None = None) -> None:
    """The contract of lockstep.data.importers.normalized, checked on a finished run."""
    nxt = 0
    for ch in chunks:
        assert ch.first_record == nxt, "chunks must cover contiguous records"
        assert ch.n_records > 0
        n, r = ch.n_events, ch.n_records
        for name in ("rec_file", "rec_line", "rec_offset", "rec_length", "rec_problem"):
            assert len(getattr(ch, name)) >= r
        assert len(ch.event_record) >= n
        for arr in ch.events.values():
            assert len(arr) >= n
        er = ch.event_record[:n]
        assert np.all(er >= ch.first_record) and np.all(er < ch.first_record + r)
        assert np.all(np.diff(er) >= 0)
        problems = ch.rec_problem[:r]
        bad = np.nonzero(problems)[0] + ch.first_record
        assert not np.isin(er, bad).any(), "a record with a problem must have no events"
        assert set(ch.problem_reasons) <= set(bad.tolist())
        assert np.all(ch.rec_file[:r] >= 0) and np.all(ch.rec_file[:r] < len(run.inputs))
        assert np.all(ch.rec_length[:r] >= 0) and np.all(ch.rec_offset[:r] >= 0)
        assert np.all(ch.events["instrument"][:n] < max(len(run.instruments), 1))
        nxt += r
    assert nxt == sum(f.records for f in run.inputs) == run.counts["records"]
    if expected_records is not None:
        assert nxt == expected_records


def flat(chunks):
    """Per record: (file, line, offset, length, problem, [events as dicts])."""
    out = []
    for ch in chunks:
        for i in range(ch.n_records):
            out.append([int(ch.rec_file[i]), int(ch.rec_line[i]), int(ch.rec_offset[i]),
                        int(ch.rec_length[i]), Rule(int(ch.rec_problem[i])), [],
                        ch.problem_reasons.get(ch.first_record + i)])
        for j in range(ch.n_events):
            rec = int(ch.event_record[j]) - ch.first_record
            ev = {k: int(v[j]) for k, v in ch.events.items()}
            out[len(out) - ch.n_records + rec][5].append(ev)
    return out


def write(tmp_path: Path, lines: list[str] | bytes, name: str = "cap.jsonl", end: bytes = b"\n") -> Path:
    path = tmp_path / name
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_bytes(b"".join(line.encode() + end for line in lines))
    return path


def run_lines(tmp_path, lines, **kw):
    run = decode_bybit(write(tmp_path, lines), **kw)
    chunks = list(run)
    check_accounting(run, chunks)
    return run, flat(chunks)


def book(kind: str, u: int, bids=(), asks=(), ts=1000, cts: int | None = 900, sym="XRPUSDT") -> str:
    msg = {"topic": f"orderbook.50.{sym}", "type": kind, "ts": ts,
           "data": {"s": sym, "b": [list(x) for x in bids], "a": [list(x) for x in asks], "u": u, "seq": 7}}
    if cts is not None:
        msg["cts"] = cts
    return json.dumps(msg)


def trade_msg(trades, ts=5000, sym="BTCUSDT") -> str:
    return json.dumps({"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts, "data": trades})


INC = {"price_increment": "0.0001", "size_increment": "1"}


# ---------------------------------------------------------------- the real capture

def _fixture_messages():
    path = shared_file(FIXTURE)
    with zipfile.ZipFile(path) as z:
        text = z.read(z.namelist()[0])
    return path, text, [json.loads(line) for line in text.splitlines() if line.strip()]


def test_real_capture_counts_and_levels():
    path, text, msgs = _fixture_messages()
    run = decode_bybit(path)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=len(msgs))
    recs = flat(chunks)
    assert len(msgs) == 50 and msgs[0]["type"] == "snapshot"
    assert run.requires_snapshot and run.format == "bybit"
    assert run.counts["snapshots"] == 1 and run.counts["deltas"] == 49 and run.counts["gaps"] == 0
    assert run.counts["ts_recv_source"] == {"capture": 0, "message_ts": 50}
    # XRPUSDT linear trades in 0.0001 USDT ticks and whole-XRP lots.
    [inst] = run.instruments
    assert (inst.symbol, inst.venue, inst.price_increment, inst.size_increment) == (
        "XRPUSDT", "bybit-linear", "0.0001", "1")
    assert run.inputs[0].bytes_read == len(text)
    expected_events = sum(1 + len(m["data"]["b"]) + len(m["data"]["a"]) if m["type"] == "snapshot"
                          else len(m["data"]["b"]) + len(m["data"]["a"]) for m in msgs)
    assert sum(len(r[5]) for r in recs) == expected_events

    snap = msgs[0]
    evs = recs[0][5]
    assert evs[0]["kind"] == CLEAR and evs[0]["flags"] == SNAP
    levels = [(1, p, q) for p, q in snap["data"]["b"]] + [(2, p, q) for p, q in snap["data"]["a"]]
    assert len(evs) == 1 + len(levels)
    for ev, (side, p, q) in zip(evs[1:], levels):
        assert ev["kind"] == L2 and ev["side"] == side
        assert ev["price"] == Decimal(p) / Decimal("0.0001") and ev["qty"] == Decimal(q)
        assert ev["seq"] == snap["data"]["u"]
        assert ev["ts_event"] == snap["cts"] * 10**6 and ev["ts_recv"] == snap["ts"] * 10**6
    assert [ev["flags"] for ev in evs[:-1]] == [SNAP] * (len(evs) - 1) and evs[-1]["flags"] == SNAP | LAST

    # Every message ends with exactly one LAST; lines and offsets point at the message's text.
    lines = text.split(b"\n")
    offset = 0
    for i, (rec, msg) in enumerate(zip(recs, msgs)):
        assert rec[1] == i + 1 and rec[2] == offset
        assert rec[3] == len(lines[i].rstrip(b"\r"))
        offset += len(lines[i]) + 1
        assert [e["flags"] & LAST for e in rec[5]] == [0] * (len(rec[5]) - 1) + [1]
        if i:
            want = [(1, p, q) for p, q in msg["data"]["b"]] + [(2, p, q) for p, q in msg["data"]["a"]]
            got = [(e["side"], e["price"], e["qty"]) for e in rec[5]]
            assert got == [(s, int(Decimal(p) / Decimal("0.0001")), int(Decimal(q))) for s, p, q in want]
            assert all(e["seq"] == msg["data"]["u"] and e["flags"] & SNAP == 0 for e in rec[5])


def test_real_capture_explicit_increments_agree_and_coarse_ones_are_refined():
    path, text, _ = _fixture_messages()
    a = flat(list(decode_bybit(path)))
    b = flat(list(decode_bybit(path, instruments={"xrpusdt": ("0.0001", "1")})))
    c = flat(list(decode_bybit(path, **INC)))
    assert a == b == c
    # Prices like 1.9531 are finer than 0.001 and sizes finer than 10: both increments are refined
    # to the data's, every record is kept exactly as with the right ones, and the warning names
    # the first value off each increment with its line.
    run = decode_bybit(path, price_increment="0.001", size_increment="10")
    assert flat(list(run)) == a
    assert (run.instruments[0].price_increment, run.instruments[0].size_increment) == ("0.0001", "1")
    lines = text.splitlines()
    refined = {r["what"]: r for r in run.counts["increments_refined"]}
    assert set(refined) == {"price", "size"}
    for what, given in (("price", "0.001"), ("size", "10")):
        r = refined[what]
        assert (r["given"], r["source"], r["file"]) == (given, "option", str(path))
        assert Decimal(r["value"]) % Decimal(given) != 0
        assert f'"{r["value"]}"'.encode() in lines[r["line"] - 1]
    assert run.counts["increment_source"] == {"bybit-linear:XRPUSDT": "option"}


def test_gzip_and_multi_file_stream(tmp_path):
    a = tmp_path / "a.jsonl.gz"
    a.write_bytes(gzip.compress((book("snapshot", 10, [("1.5", "2")]) + "\n").encode()))
    b = write(tmp_path, [book("delta", 11, [("1.5", "0")]), book("delta", 13)], name="b.jsonl")
    run = decode_bybit([a, b], **INC)
    recs = flat(list(run))
    assert [r[0] for r in recs] == [0, 1, 1]
    assert recs[1][5][0]["qty"] == 0  # size "0" removes the level
    gap = recs[2][5][0]
    assert (gap["kind"], gap["seq"], gap["order_id"], gap["flags"]) == (GAP, 13, 12, LAST)
    assert [f.records for f in run.inputs] == [1, 2]


# ---------------------------------------------------------------- every rule by hand

def test_gap_before_the_events_of_the_record_that_reveals_it(tmp_path):
    run, recs = run_lines(tmp_path, [
        book("snapshot", 10, [("1.0000", "5")], [("1.0002", "3")]),
        book("delta", 11, [("1.0001", "4")]),
        book("delta", 14, [("1.0000", "0")], [("1.0003", "2")], ts=2000, cts=1990),
    ], **INC)
    assert [r[4] for r in recs] == [Rule.OK] * 3
    evs = recs[2][5]
    assert [(e["kind"], e["side"], e["price"], e["qty"], e["flags"], e["seq"], e["order_id"]) for e in evs] == [
        (GAP, 0, 0, 0, LAST, 14, 12),
        (L2, 1, 10000, 0, 0, 14, 0),
        (L2, 2, 10003, 2, LAST, 14, 0),
    ]
    assert all(e["ts_event"] == 1990 * 10**6 and e["ts_recv"] == 2000 * 10**6 for e in evs)
    assert run.counts["gaps"] == 1


def test_duplicates_and_restart(tmp_path):
    run, recs = run_lines(tmp_path, [
        book("snapshot", 10, [("1.0000", "5")]),
        book("delta", 11, [("1.0001", "4")]),
        book("delta", 11, [("1.0001", "4")]),    # same id again
        book("delta", 9, [("1.0001", "4")]),     # older
        book("snapshot", 11, [("1.0000", "5")]), # a snapshot not above the last id
        book("delta", 12, [("1.0001", "1")]),    # continues after 11: no gap
        book("snapshot", 1, [("2.0000", "1")]),  # service restart: u back to 1
        book("delta", 2, [("2.0000", "2")]),
    ], **INC)
    assert [r[4] for r in recs] == [Rule.OK, Rule.OK, Rule.DUPLICATE_MESSAGE, Rule.DUPLICATE_MESSAGE,
                                   Rule.DUPLICATE_MESSAGE, Rule.OK, Rule.OK, Rule.OK]
    assert all(not r[5] for r in recs[2:5])
    assert "11" in recs[2][6] and "not above" in recs[2][6]
    assert [e["kind"] for e in recs[5][5]] == [L2]
    assert [(e["kind"], e["flags"]) for e in recs[6][5]] == [(CLEAR, SNAP), (L2, SNAP | LAST)]
    assert [e["kind"] for e in recs[7][5]] == [L2]
    assert run.counts["restarts"] == 1 and run.counts["gaps"] == 0
    assert run.counts["problems"] == {"duplicate_message": 3}


def test_deltas_before_the_first_snapshot_are_emitted(tmp_path):
    run, recs = run_lines(tmp_path, [
        book("delta", 5, [("1.0000", "1")]),
        book("delta", 6, [("1.0000", "2")]),
        book("delta", 8, [("1.0000", "3")]),
        book("snapshot", 9, [("1.0000", "4")]),
    ], **INC)
    assert run.requires_snapshot
    assert [r[4] for r in recs] == [Rule.OK] * 4
    assert [[e["kind"] for e in r[5]] for r in recs] == [[L2], [L2], [GAP, L2], [CLEAR, L2]]
    assert run.counts["deltas_before_snapshot"] == 3


def test_replies_unknown_topics_and_malformed_lines(tmp_path):
    lines = [
        '{"success":true,"ret_msg":"","conn_id":"abc","req_id":"","op":"subscribe"}',
        '{"success":true,"ret_msg":"pong","conn_id":"abc","op":"ping"}',
        '{"topic":"tickers.XRPUSDT","type":"snapshot","ts":1,"data":{"symbol":"XRPUSDT"}}',
        '{"hello":1}',
        '{"topic":"orderbook.50.XRPUSDT","type":"delta",',
        '[1,2,3]',
        book("delta", 3, [("1.0"[:3], "x")]),
        book("delta", 3, [("abc", "1")]),
        '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUSDT","b":[["1.0"]],"a":[],"u":3}}',
        '{"topic":"orderbook.50.XRPUSDT","type":"update","ts":1,"data":{"s":"XRPUSDT","b":[],"a":[],"u":3}}',
        '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":"1","data":{"s":"XRPUSDT","b":[],"a":[],"u":3}}',
        '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1,"data":{"s":"ETHUSDT","b":[],"a":[],"u":3}}',
        '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUSDT","b":[],"a":[],"u":-3}}',
        '{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":NaN,"data":{}}',
        "\xff\xfe not utf-8",
    ]
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(line.encode("latin-1") + b"\n" for line in lines))
    run = decode_bybit(path, **INC)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=len(lines))
    recs = flat(chunks)
    M, U = Rule.MALFORMED_RECORD, Rule.UNSUPPORTED_MESSAGE
    assert [r[4] for r in recs] == [Rule.OK, Rule.OK, U, U, M, M, M, M, M, M, M, M, M, M, M]
    assert all(not r[5] for r in recs)
    assert all(r[6] for r in recs[2:]), "every problem record carries its reason"
    assert "tickers.XRPUSDT" in recs[2][6]
    assert run.counts["replies"] == 2
    assert run.instruments == []


def test_truncated_tail_versus_complete_last_line(tmp_path):
    good = book("snapshot", 1, [("1.0000", "1")])
    cut = book("delta", 2, [("1.0001", "1")])[:40]
    path = tmp_path / "t.jsonl"
    path.write_bytes((good + "\n" + cut).encode())
    run = decode_bybit(path, **INC)
    recs = flat(list(run))
    assert [r[4] for r in recs] == [Rule.OK, Rule.TRUNCATED_RECORD]
    assert recs[1][2] == len(good) + 1 and recs[1][3] == 40
    assert run.inputs[0].bytes_read == len(good) + 1 + 40
    # A last line without newline that parses is an ordinary record.
    path.write_bytes((good + "\n" + book("delta", 2, [("1.0001", "1")])).encode())
    assert [r[4] for r in flat(list(decode_bybit(path, **INC)))] == [Rule.OK, Rule.OK]
    # The same cut line inside the file is malformed, not truncated.
    path.write_bytes((cut + "\n" + good + "\n").encode())
    assert [r[4] for r in flat(list(decode_bybit(path, **INC)))] == [Rule.MALFORMED_RECORD, Rule.OK]


def test_trades(tmp_path):
    t1 = {"T": 4990, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50", "L": "PlusTick",
          "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False}
    t2 = {"T": 4995, "s": "BTCUSDT", "S": "Sell", "v": "0.250", "p": "16578.00",
          "i": "2290000000061666327", "BT": False}
    run, recs = run_lines(tmp_path, [trade_msg([t1, t2]), trade_msg([]),
                                     trade_msg([dict(t1, S="Sideways")])],
                          instruments={"BTCUSDT": ("0.10", "0.001")})
    evs = recs[0][5]
    assert [(e["kind"], e["side"], e["price"], e["qty"], e["seq"], e["flags"], e["ts_event"], e["ts_recv"])
            for e in evs] == [
        (TRADE, 1, 165785, 1, 0, 0, 4990 * 10**6, 5000 * 10**6),
        (TRADE, 2, 165780, 250, 2290000000061666327, LAST, 4995 * 10**6, 5000 * 10**6),
    ]
    assert recs[1][4] == Rule.OK and recs[1][5] == []
    assert recs[2][4] == Rule.MALFORMED_RECORD
    assert run.counts["trades"] == 2 and run.counts["trade_messages"] == 2
    assert run.instruments[0].price_increment == "0.1"


def test_capture_receive_time_missing_cts_crlf_and_blank_lines(tmp_path):
    lines = [f"1700000000123456789 {book('snapshot', 4, [('1.0000', '1')], ts=1000, cts=None)}", "",
             "   ", book("delta", 5, [("1.0000", "2")], ts=1100, cts=1050)]
    path = write(tmp_path, lines, end=b"\r\n")
    run = decode_bybit(path, **INC)
    chunks = list(run)
    check_accounting(run, chunks, expected_records=2)
    recs = flat(chunks)
    assert [e["ts_recv"] for e in recs[0][5]] == [1700000000123456789] * 2
    assert [e["ts_event"] for e in recs[0][5]] == [1000 * 10**6] * 2  # no cts: the message time
    assert recs[1][5][0]["ts_recv"] == 1100 * 10**6 and recs[1][5][0]["ts_event"] == 1050 * 10**6
    assert [r[1] for r in recs] == [1, 4]
    assert recs[0][3] == len(lines[0])  # the \r\n is not part of the record
    assert recs[1][2] == len(lines[0]) + 2 + 2 + 5
    assert run.counts["ts_recv_source"] == {"capture": 1, "message_ts": 1}
    assert run.counts["blank_lines"] == 2


def test_inferred_increment_is_the_exact_decimal_gcd(tmp_path):
    run, recs = run_lines(tmp_path, [
        book("snapshot", 1, [("1.50", "0.30"), ("2.25", "1.2")], [("3.00", "0")]),
    ])
    [inst] = run.instruments
    # gcd(1.50, 2.25, 3.00) = 0.75; gcd(0.3, 1.2) = 0.3 (0 says nothing)
    assert (inst.price_increment, inst.size_increment) == ("0.75", "0.3")
    assert [(e["price"], e["qty"]) for e in recs[0][5][1:]] == [(2, 1), (3, 4), (4, 0)]
    assert run.counts["increment_source"] == {"bybit-linear:XRPUSDT": "inferred"}


def test_explicit_increments_coarser_than_a_value_are_refined(tmp_path):
    run, recs = run_lines(tmp_path, [book("snapshot", 1, [("1.00005", "1")])],
                          instruments=[{"symbol": "XRPUSDT", "price_increment": "0.0001", "size_increment": "1"}])
    assert recs[0][4] == Rule.OK and run.instruments[0].price_increment == "0.00005"
    (r,) = run.counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["source"], r["value"], r["line"]) == (
        "price", "0.0001", "0.00005", "explicit", "1.00005", 1)


def test_a_value_beyond_int64_in_units_of_its_increment_is_malformed(tmp_path):
    run, recs = run_lines(tmp_path, [book("snapshot", 1, [("1", "1"), ("2", "99999999999999999999")])],
                          price_increment="1", size_increment="1")
    assert recs[0][4] == Rule.MALFORMED_RECORD and "not an int64 multiple" in recs[0][6]


def test_bad_arguments_and_unreadable_inputs(tmp_path):
    with pytest.raises(ValueError):
        decode_bybit(tmp_path / "x", price_increment="0.1")
    with pytest.raises(TypeError):
        decode_bybit(tmp_path / "x", price_increment=0.1, size_increment=1)
    with pytest.raises(ValueError):
        decode_bybit(tmp_path / "x", price_increment="0", size_increment="1")
    with pytest.raises(DecodeError) as e:
        list(decode_bybit(tmp_path / "missing.jsonl", **INC))
    assert "missing.jsonl" in str(e.value)
    bad = tmp_path / "bad.gz"
    blob = gzip.compress(b'{"op":"ping"}\n' * 1000)
    bad.write_bytes(blob[:20] + bytes(b ^ 0xFF for b in blob[20:40]) + blob[40:])  # corrupt, not cut
    with pytest.raises(DecodeError) as e:
        list(decode_bybit(bad, **INC))
    assert e.value.path == str(bad) and e.value.offset is not None
    run = decode_bybit(tmp_path / "missing.jsonl")
    with pytest.raises(LockstepError):
        run.counts  # noqa: B018 - the report exists only after iteration


def test_chunks_are_cut_and_stay_contiguous(tmp_path, monkeypatch):
    class Small(text_importers.ChunkBuilder):
        def __init__(self, first_record=0, capacity=3):
            super().__init__(first_record, capacity)

    monkeypatch.setattr(text_importers, "ChunkBuilder", Small)  # where text-format runs make theirs
    lines = [book("snapshot", 1, [("1.0000", "1"), ("1.0001", "1")])] + [
        book("delta", u, [("1.0000", str(u))]) for u in range(2, 12)] + ["garbage"] * 4
    run = decode_bybit(write(tmp_path, lines), **INC)
    chunks = list(run)
    assert len(chunks) > 3
    check_accounting(run, chunks, expected_records=len(lines))


# ---------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


def _decode_bytes(tmp_path, data: bytes, **kw):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    try:
        run = decode_bybit(path, **kw)
        chunks = list(run)
    except DecodeError:
        return None, None
    expected = sum(1 for line in data.split(b"\n") if line.strip())
    check_accounting(run, chunks, expected_records=expected)
    return run, chunks


@FUZZ
@given(data=st.binary(max_size=2000))
def test_fuzz_random_bytes(tmp_path, data):
    _decode_bytes(tmp_path, data)


@FUZZ
@given(data=st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b",", b":", b"\n", b"\r", b"0", b"1",
                                      b"-", b".", b"e", b'"topic"', b'"orderbook.1.X"', b'"publicTrade.X"',
                                      b'"data"', b'"u"', b'"b"', b'"a"', b'"ts"', b'"type"', b'"delta"',
                                      b'"snapshot"', b'"s"', b'"X"', b"null", b"true", b" "]),
                     max_size=300).map(b"".join))
def test_fuzz_json_shaped_bytes(tmp_path, data):
    _decode_bytes(tmp_path, data, **INC)


def _fixture_lines() -> list[bytes]:
    path = shared_file(FIXTURE)
    with zipfile.ZipFile(path) as z:
        return z.read(z.namelist()[0]).split(b"\n")[:-1][:12]


@FUZZ
@given(data=st.data())
def test_fuzz_fixture_drops_and_mutations(tmp_path, data):
    lines = _fixture_lines()
    keep = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    kept = [line for line, k in zip(lines, keep) if k]
    n_mut = data.draw(st.integers(0, 4))
    blob = bytearray(b"\n".join(kept) + (b"\n" if kept else b""))
    for _ in range(n_mut if blob else 0):
        i = data.draw(st.integers(0, len(blob) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del blob[i:]
            if not blob:
                break
        else:
            blob[i:i] = blob[i:i + 17]
    run, chunks = _decode_bytes(tmp_path, bytes(blob))
    if run is not None and n_mut == 0:
        recs = flat(chunks)
        # Dropped lines only ever show up as gaps, never as malformed records.
        assert all(r[4] in (Rule.OK, Rule.DUPLICATE_MESSAGE) for r in recs)
        ids = [json.loads(line)["data"]["u"] for line in kept]
        snap_seen = bool(keep[0]) if kept else False
        want_gaps = sum(1 for i in range(1, len(ids)) if ids[i] != ids[i - 1] + 1) if kept else 0
        assert run.counts["gaps"] == want_gaps
        assert run.counts["deltas_before_snapshot"] == (0 if snap_seen else len(kept))
