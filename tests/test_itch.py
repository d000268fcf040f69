"""NASDAQ TotalView-ITCH 5.0 decoder (lockstep.data.importers.itch).

Messages here come from a tiny encoder written from the ITCH 5.0 specification's field tables
(not from the decoder); expected events are worked out by hand from the mapping documented in
include/lockstep/codecs/itch.hpp. The RITCH sample (SIMULATED data, zero length prefixes) is checked
against an independent framing walk written in this file.
"""
from __future__ import annotations

import datetime as dt
import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import shared_file

from lockstep.backtest.replay import replay_batches
from lockstep.data.importers import itch as itch_mod
from lockstep.data.importers.itch import date_from_name, decode_itch
from lockstep.data.importers.normalized import Rule
from lockstep.data.pipeline import import_data
from lockstep.errors import DecodeError, LockstepError

FIXTURE = "itch/ex20101224.TEST_ITCH_50.gz"

# Message lengths (type byte included) from the ITCH 5.0 specification, section 4.
SPEC_LENGTH = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
               "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
               "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48}

L2_ADD, ADD, MODIFY, DELETE, EXECUTE, TRADE, PHASE = 1, 2, 3, 4, 5, 7, 65
BID, ASK = 1, 2
# trading phases (docs/encoding.md) and the scope of a session-wide one
UNKNOWN, PRE_OPEN, AUCTION, CONTINUOUS, HALTED, CLOSED = range(6)
SESSION = 1


# ---- a tiny encoder, from the spec ----

def hdr(t: str, locate: int, ts: int, tracking: int = 0) -> bytes:
    return t.encode() + struct.pack(">HH", locate, tracking) + ts.to_bytes(6, "big")


def stock(s: str) -> bytes:
    return s.encode().ljust(8, b" ")


def msg_R(locate, ts, sym):
    return (hdr("R", locate, ts) + stock(sym) + b"Q" + b"N" + struct.pack(">I", 100) + b"N"
            + b"C" + b"Z " + b"P" + b"N" + b"N" + b"1" + b"N" + struct.pack(">I", 0) + b"N")


def msg_S(ts, code):
    return hdr("S", 0, ts) + code


def msg_H(locate, ts, sym, state):
    return hdr("H", locate, ts) + stock(sym) + state + b" " + b"    "


def msg_A(locate, ts, ref, side, shares, sym, price):
    return hdr("A", locate, ts) + struct.pack(">QcI", ref, side, shares) + stock(sym) + \
        struct.pack(">I", price)


def msg_F(locate, ts, ref, side, shares, sym, price, mpid=b"GSCO"):
    return hdr("F", locate, ts) + struct.pack(">QcI", ref, side, shares) + stock(sym) + \
        struct.pack(">I", price) + mpid


def msg_E(locate, ts, ref, shares, match):
    return hdr("E", locate, ts) + struct.pack(">QIQ", ref, shares, match)


def msg_C(locate, ts, ref, shares, match, printable, price):
    return hdr("C", locate, ts) + struct.pack(">QIQcI", ref, shares, match, printable, price)


def msg_X(locate, ts, ref, shares):
    return hdr("X", locate, ts) + struct.pack(">QI", ref, shares)


def msg_D(locate, ts, ref):
    return hdr("D", locate, ts) + struct.pack(">Q", ref)


def msg_U(locate, ts, old, new, shares, price):
    return hdr("U", locate, ts) + struct.pack(">QQII", old, new, shares, price)


def msg_P(locate, ts, shares, sym, price, match, side=b"B"):
    return hdr("P", locate, ts) + struct.pack(">QcI", 0, side, shares) + stock(sym) + \
        struct.pack(">IQ", price, match)


def msg_Q(locate, ts, shares, sym, price, match):
    return hdr("Q", locate, ts) + struct.pack(">Q", shares) + stock(sym) + \
        struct.pack(">IQc", price, match, b"O")


def no_event_messages(locate, ts) -> list[bytes]:
    """One message of every known type that has no canonical form, field by field."""
    s = stock("AAPL")
    return [
        hdr("Y", locate, ts) + s + b"0",
        hdr("L", locate, ts) + b"GSCO" + s + b"Y" + b"N" + b"A",
        hdr("V", 0, ts) + struct.pack(">QQQ", 1, 2, 3),
        hdr("W", 0, ts) + b"1",
        hdr("K", locate, ts) + s + struct.pack(">I", 34200) + b"A" + struct.pack(">I", 1000),
        hdr("J", locate, ts) + s + struct.pack(">IIII", 1, 2, 3, 4),
        hdr("h", locate, ts) + s + b"Q" + b"H",
        hdr("I", locate, ts) + struct.pack(">QQ", 1, 2) + b"B" + s + struct.pack(">III", 1, 2, 3)
        + b"O" + b"1",
        hdr("N", locate, ts) + s + b"N",
        hdr("O", locate, ts) + s + b"Y" + struct.pack(">III", 1, 2, 3) + struct.pack(">Q", 4)
        + struct.pack(">II", 5, 6),
        hdr("B", locate, ts) + struct.pack(">Q", 77),
    ]


def frame(messages, zero: bool = False) -> bytes:
    out = b""
    for m in messages:
        assert len(m) == SPEC_LENGTH[chr(m[0])], chr(m[0])
        out += struct.pack(">H", 0 if zero else len(m)) + m
    return out


# ---- decoding helpers ----

class Result:
    def __init__(self, chunks, run):
        self.chunks = chunks
        self.run = run
        ev = [c.events for c in chunks]
        names = chunks[0].events.keys() if chunks else []
        self.events = {k: np.concatenate([e[k][:c.n_events] for e, c in zip(ev, chunks)])
                       for k in names}
        self.event_record = np.concatenate([c.event_record[:c.n_events] for c in chunks]) \
            if chunks else np.empty(0, np.int64)
        for name in ("rec_file", "rec_line", "rec_offset", "rec_length", "rec_problem"):
            setattr(self, name, np.concatenate([getattr(c, name)[:c.n_records] for c in chunks])
                    if chunks else np.empty(0))
        self.reasons = {}
        for c in chunks:
            self.reasons.update(c.problem_reasons)

    def rows(self):
        """(record, kind, side, flags, price, qty, order_id, instrument) per event."""
        e = self.events
        return [(int(self.event_record[i]), int(e["kind"][i]), int(e["side"][i]),
                 int(e["flags"][i]), int(e["price"][i]), int(e["qty"][i]), int(e["order_id"][i]),
                 int(e["instrument"][i])) for i in range(len(self.event_record))]


def decode(paths, **kw) -> Result:
    run = decode_itch(paths, **kw)
    chunks = list(run)
    check_accounting(chunks)
    return Result(chunks, run)


def write(tmp_path, data: bytes, name: str = "t20240102.itch"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def check_accounting(chunks, sizes=None):
    """Records contiguous across chunks, each once; events tied to their chunk's records in
    order; problem records without events; one LAST per record with events, on its last."""
    nxt = 0
    for c in chunks:
        assert c.first_record == nxt
        assert c.n_records > 0
        nxt += c.n_records
        rec = c.event_record[:c.n_events]
        assert np.all(np.diff(rec) >= 0)
        if c.n_events:
            assert rec[0] >= c.first_record and rec[-1] < c.first_record + c.n_records
        problem = c.rec_problem[:c.n_records]
        if c.n_events:
            assert not np.any(problem[rec - c.first_record] != 0)
        last = (c.events["flags"][:c.n_events] & 1) != 0
        ends = np.r_[rec[1:] != rec[:-1], True] if c.n_events else np.empty(0, bool)
        assert np.array_equal(last, ends)
        assert np.all(c.rec_line[:c.n_records] == 0)
    if sizes is not None:  # per file: offsets contiguous from 0, lengths sum to the size
        def cat(name):
            return np.concatenate([getattr(c, name)[:c.n_records] for c in chunks]
                                  + [np.empty(0, np.int64)])
        files, offs, lens = cat("rec_file"), cat("rec_offset"), cat("rec_length")
        for f, size in enumerate(sizes):
            sel = files == f
            o, n = offs[sel], lens[sel]
            assert list(o) == list(np.r_[0, np.cumsum(n)[:-1]]) if len(o) else True
            assert int(n.sum()) == size
    return nxt


# ---- time ----

NY_MIDNIGHT_2024_01_02 = int(dt.datetime(2024, 1, 2, 5, tzinfo=dt.timezone.utc).timestamp()) * 10**9
NY_MIDNIGHT_2024_07_01 = int(dt.datetime(2024, 7, 1, 4, tzinfo=dt.timezone.utc).timestamp()) * 10**9


def test_timestamps_are_new_york_midnight_plus_ns_and_seq_counts_messages(tmp_path):
    ts = 34_200_000_000_123  # 09:30:00.000000123
    data = frame([hdr("W", 0, 1) + b"1", msg_A(5, ts, 1, b"B", 100, "AAPL", 1000)])
    r = decode(write(tmp_path, data), date="2024-01-02")
    assert r.events["ts_event"].tolist() == [NY_MIDNIGHT_2024_01_02 + ts]
    assert r.events["ts_recv"].tolist() == r.events["ts_event"].tolist()
    assert r.events["seq"].tolist() == [2]
    summer = decode(write(tmp_path, data, "x.itch"), date=dt.date(2024, 7, 1))
    assert summer.events["ts_event"].tolist() == [NY_MIDNIGHT_2024_07_01 + ts]
    # The date in the file name: YYYYMMDD, and NASDAQ's own MMDDYYYY
    named = decode(write(tmp_path, data, "S07012024-v50.itch"))  # no 8-digit run: MMDDYYYY
    assert named.events["ts_event"].tolist() == [NY_MIDNIGHT_2024_07_01 + ts]
    assert date_from_name("ex20101224.TEST_ITCH_50.gz") == dt.date(2010, 12, 24)
    assert date_from_name("01302019.NASDAQ_ITCH50.gz") == dt.date(2019, 1, 30)
    with pytest.raises(LockstepError, match="date"):
        decode_itch(write(tmp_path, data, "nodate.itch"))


def test_every_decoded_type_maps_as_documented(tmp_path):
    t = 1000
    msgs = [
        msg_R(7, t, "AAPL"),                                   # 0: instrument 0
        msg_R(3, t, "MSFT"),                                   # 1: instrument 1
        msg_A(7, t, 1, b"B", 100, "AAPL", 1234500),            # 2
        msg_F(7, t, 2, b"S", 50, "AAPL", 1235000),             # 3
        msg_E(7, t, 1, 30, 9001),                              # 4: 70 left on 1
        msg_C(7, t, 2, 10, 9002, b"Y", 1234900),               # 5: 40 left on 2
        msg_C(7, t, 2, 5, 9003, b"N", 1234900),                # 6: 35 left on 2
        msg_X(7, t, 1, 20),                                    # 7: 50 left on 1
        msg_U(7, t, 1, 3, 70, 1234600),                        # 8: 1 -> 3
        msg_D(7, t, 3),                                        # 9
        msg_X(7, t, 2, 35),                                    # 10: 0 left: removed
        msg_P(3, t, 300, "MSFT", 4000000, 9004),               # 11
        msg_Q(3, t, 1000, "MSFT", 4010000, 9005),              # 12
        msg_Q(3, t, 0, "MSFT", 4010000, 9006),                 # 13: no volume, no event
        msg_A(9, t, 4, b"S", 10, "ZZZZ", 500),                 # 14: locate 9 has no directory
        msg_S(t, b"O"),                                        # 15: the session: pre-open
        msg_H(7, t, "AAPL", b"T"),                             # 16: AAPL is free to trade
    ] + no_event_messages(7, t) + [                            # 17..27
        msg_E(7, t, 99, 5, 1),                                 # 28: unknown refs from here
        msg_X(7, t, 98, 5),                                    # 29
        msg_D(7, t, 97),                                       # 30
        msg_U(7, t, 96, 95, 8, 1230000),                       # 31
        msg_C(7, t, 94, 6, 2, b"Y", 1231000),                  # 32
        msg_E(7, t, 2, 1, 3),                                  # 33: 2 was fully removed by X
    ]
    r = decode(write(tmp_path, frame(msgs)), date="2024-01-02")
    expected = [
        (2, ADD, BID, 1, 1234500, 100, 1, 0),
        (3, ADD, ASK, 1, 1235000, 50, 2, 0),
        (4, EXECUTE, BID, 0, 1234500, 30, 1, 0),
        (4, TRADE, ASK, 1, 1234500, 30, 0, 0),
        (5, EXECUTE, ASK, 0, 1234900, 10, 2, 0),
        (5, TRADE, BID, 1, 1234900, 10, 0, 0),
        (6, EXECUTE, ASK, 1, 1234900, 5, 2, 0),
        (7, MODIFY, BID, 1, 1234500, 50, 1, 0),
        (8, DELETE, BID, 0, 1234500, 0, 1, 0),
        (8, ADD, BID, 1, 1234600, 70, 3, 0),
        (9, DELETE, BID, 1, 1234600, 0, 3, 0),
        (10, MODIFY, ASK, 1, 1235000, 0, 2, 0),
        (11, TRADE, 0, 1, 4000000, 300, 0, 1),
        (12, TRADE, 0, 1, 4010000, 1000, 0, 1),
        (14, ADD, ASK, 1, 500, 10, 4, 2),
        (15, PHASE, PRE_OPEN, 1, 0, 0, SESSION, 0),
        (16, PHASE, CONTINUOUS, 1, 0, 0, 0, 0),
        (28, EXECUTE, 0, 1, 0, 5, 99, 0),
        (29, MODIFY, 0, 1, 0, 0, 98, 0),
        (30, DELETE, 0, 1, 0, 0, 97, 0),
        (31, DELETE, 0, 0, 0, 0, 96, 0),
        (31, ADD, 0, 1, 1230000, 8, 95, 0),
        (32, EXECUTE, 0, 0, 1231000, 6, 94, 0),
        (32, TRADE, 0, 1, 1231000, 6, 0, 0),
        (33, EXECUTE, 0, 1, 0, 1, 2, 0),
    ]
    assert r.rows() == expected
    assert r.events["seq"].tolist() == [rec + 1 for rec, *_ in expected]
    assert not r.rec_problem.any()
    assert [(i.symbol, i.venue, i.price_increment, i.size_increment, i.book)
            for i in r.run.instruments] == [
        ("AAPL", "nasdaq", "0.0001", "1", "l3"), ("MSFT", "nasdaq", "0.0001", "1", "l3"),
        ("LOCATE9", "nasdaq", "0.0001", "1", "l3")]
    c = r.run.counts
    assert c["records"] == len(msgs)
    assert c["messages"]["A"] == 2 and c["messages"]["Q"] == 2 and c["messages"]["B"] == 1
    assert all(c["messages"][k] == 1 for k in "SHYLVWKJhINO")
    assert c["unknown_order_ref"] == {"E": 2, "X": 1, "D": 1, "U": 1, "C": 1}
    assert c["cross_no_volume"] == 1
    assert c["placeholder_instruments"] == 1
    assert c["framing"] == {"zero_prefix": 0, "length_prefix": len(msgs)}
    # Record accounting: offsets are where each length prefix sits, lengths include it
    lengths = [len(m) + 2 for m in msgs]
    assert r.rec_length.tolist() == lengths
    assert r.rec_offset.tolist() == list(np.r_[0, np.cumsum(lengths)[:-1]])
    assert r.run.inputs[0].records == len(msgs) and r.run.inputs[0].bytes_read == sum(lengths)


def test_directory_after_use_names_the_placeholder(tmp_path):
    msgs = [msg_A(4, 1, 1, b"B", 1, "LATE", 1), msg_R(2, 2, "EARLY"), msg_R(4, 3, "LATE")]
    r = decode(write(tmp_path, frame(msgs)), date="2024-01-02")
    assert [i.symbol for i in r.run.instruments] == ["LATE", "EARLY"]
    assert r.events["instrument"].tolist() == [0]


def test_zero_prefixes_fall_back_to_fixed_lengths(tmp_path):
    msgs = [msg_R(1, 1, "AB"), msg_A(1, 2, 5, b"S", 10, "AB", 100), msg_D(1, 3, 5)]
    zero = decode(write(tmp_path, frame(msgs, zero=True)), date="2024-01-02")
    real = decode(write(tmp_path, frame(msgs), "b.itch"), date="2024-01-02")
    assert zero.rows() == real.rows() == [(1, ADD, ASK, 1, 100, 10, 5, 0),
                                          (2, DELETE, ASK, 1, 100, 0, 5, 0)]
    assert zero.run.counts["framing"]["zero_prefix"] == 3


def test_wrong_length_prefix_is_malformed_and_framing_follows_the_prefix(tmp_path):
    good = [msg_A(1, 1, 1, b"B", 10, "X", 100), msg_D(1, 2, 1)]
    bad = msg_E(1, 3, 1, 5, 0) + b"\0\0"  # prefix 33 for a 31-byte type
    data = frame(good[:1]) + struct.pack(">H", len(bad)) + bad + frame(good[1:])
    r = decode(write(tmp_path, data), date="2024-01-02")
    assert r.rec_problem.tolist() == [0, Rule.MALFORMED_RECORD, 0]
    assert r.rec_length.tolist() == [38, 35, 21]
    assert "33" in r.reasons[1] and "31" in r.reasons[1]
    assert [row[:2] for row in r.rows()] == [(0, ADD), (2, DELETE)]
    assert r.events["qty"].tolist() == [10, 0]  # the malformed execution changed nothing


def test_invalid_side_or_printable_is_malformed(tmp_path):
    msgs = [msg_A(1, 1, 1, b"Z", 10, "X", 100), msg_A(1, 1, 2, b"B", 10, "X", 100),
            msg_C(1, 1, 2, 1, 0, b"?", 100)]
    r = decode(write(tmp_path, frame(msgs)), date="2024-01-02")
    assert r.rec_problem.tolist() == [Rule.MALFORMED_RECORD, 0, Rule.MALFORMED_RECORD]
    assert r.rows() == [(1, ADD, BID, 1, 100, 10, 2, 0)]


def test_unknown_type_with_real_prefix_is_unsupported_and_decoding_continues(tmp_path):
    data = frame([msg_D(1, 1, 1)]) + struct.pack(">H", 5) + b"zABCD" + frame([msg_D(1, 1, 2)])
    r = decode(write(tmp_path, data), date="2024-01-02")
    assert r.rec_problem.tolist() == [0, Rule.UNSUPPORTED_MESSAGE, 0]
    assert r.rec_length.tolist() == [21, 7, 21]
    assert "'z'" in r.reasons[1]
    assert r.events["order_id"].tolist() == [1, 2]


def test_unknown_type_with_zero_prefix_raises_with_offset(tmp_path):
    data = frame([msg_D(1, 1, 1), msg_D(1, 1, 2)], zero=True) + b"\0\0z" + b"\0" * 30
    path = write(tmp_path, data)
    run = decode_itch(path, date="2024-01-02")
    got = []
    with pytest.raises(DecodeError) as e:
        for c in run:
            got.append(c)  # noqa: PERF402 - keep what came before the error
    assert e.value.offset == 42 and e.value.path == str(path)
    assert "0x7a" in str(e.value)
    assert check_accounting(got) == 2  # what came before is delivered


def test_truncated_tail_is_one_record_and_earlier_records_are_intact(tmp_path):
    fixture = gzip.decompress(shared_file(FIXTURE).read_bytes())
    full = decode(write(tmp_path, fixture, "ex20101224.itch"))
    # cut inside the 101st message, and inside a header (1 byte after a message)
    for cut_record, extra in ((100, 7), (200, 1)):
        cut = int(full.rec_offset[cut_record]) + extra
        r = decode(write(tmp_path, fixture[:cut], "ex20101224.cut"))
        assert len(r.rec_problem) == cut_record + 1
        assert r.rec_problem[-1] == Rule.TRUNCATED_RECORD and not r.rec_problem[:-1].any()
        assert r.rec_offset[-1] == full.rec_offset[cut_record] and r.rec_length[-1] == extra
        assert np.array_equal(r.rec_length[:-1], full.rec_length[:cut_record])
        n = int(np.searchsorted(full.event_record, cut_record))
        for k in r.events:
            assert np.array_equal(r.events[k], full.events[k][:n])
        assert "ends inside" in r.reasons[cut_record]


def _fixture_walk(raw: bytes):
    """Independent framing of the RITCH sample: (offset, type, message) per message."""
    out, p = [], 0
    while p < len(raw):
        assert raw[p:p + 2] == b"\0\0"
        t = chr(raw[p + 2])
        out.append((p, t, raw[p + 2:p + 2 + SPEC_LENGTH[t]]))
        p += 2 + SPEC_LENGTH[t]
    return out


def test_ritch_fixture(tmp_path):
    path = shared_file(FIXTURE)
    raw = gzip.decompress(path.read_bytes())
    walk = _fixture_walk(raw)
    assert len(walk) == 12_012
    r = decode([path])
    assert r.run.counts["records"] == 12_012 and len(r.rec_offset) == 12_012
    assert r.rec_offset.tolist() == [o for o, _, _ in walk]
    assert not r.rec_problem.any()
    types = {}
    for _, t, _ in walk:
        types[t] = types.get(t, 0) + 1
    assert r.run.counts["messages"] == dict(sorted(types.items()))
    directory = [m[11:19].decode().strip() for _, t, m in walk if t == "R"]
    assert sorted(i.symbol for i in r.run.instruments) == sorted(directory)
    assert all(i.book == "l3" and i.venue == "nasdaq" for i in r.run.instruments)
    # the first add: its ts, price, qty and ref read straight from the bytes
    rec, (_, _, m) = next((k, w) for k, w in enumerate(walk) if w[1] == "A")
    i = int(np.searchsorted(r.event_record, rec))
    assert r.events["ts_event"][i] == (int(dt.datetime(2010, 12, 24, 5, tzinfo=dt.timezone.utc)
                                           .timestamp()) * 10**9 + int.from_bytes(m[5:11], "big"))
    assert r.events["price"][i] == struct.unpack(">I", m[32:36])[0]
    assert r.events["qty"][i] == struct.unpack(">I", m[20:24])[0]
    assert r.events["order_id"][i] == struct.unpack(">Q", m[11:19])[0]
    # every P is one TRADE with side none; every A/F one L3_ADD
    assert r.run.counts["events"]["trade"] >= types["P"]
    assert int((r.events["kind"] == ADD).sum()) == types["A"] + types["F"] + types["U"]
    # Real length prefixes give the same decode (and a gz input the same as plain)
    prefixed = b"".join(struct.pack(">H", len(m)) + m for _, _, m in walk)
    p = decode(write(tmp_path, prefixed, "ex20101224.itch"))
    assert p.rows() == r.rows() and not p.rec_problem.any()
    assert p.run.counts["framing"]["zero_prefix"] == 0


def test_small_batches_and_several_files_are_one_stream(tmp_path):
    a = frame([msg_R(1, 1, "AB"), msg_A(1, 2, 5, b"S", 10, "AB", 100),
               msg_A(1, 2, 6, b"B", 10, "AB", 90)])
    b = frame([msg_E(1, 3, 5, 4, 1), msg_D(1, 4, 6)], zero=True)
    pa_, pb = write(tmp_path, a, "20240102a.itch"), write(tmp_path, gzip.compress(b), "20240103b.gz")
    big = decode([pa_, pb])
    small = decode([pa_, pb], batch=4)
    assert len(small.chunks) > 1
    assert small.rows() == big.rows() == [
        (1, ADD, ASK, 1, 100, 10, 5, 0), (2, ADD, BID, 1, 90, 10, 6, 0),
        (3, EXECUTE, ASK, 0, 100, 4, 5, 0), (3, TRADE, BID, 1, 100, 4, 0, 0),
        (4, DELETE, BID, 1, 90, 0, 6, 0)]
    assert big.rec_file.tolist() == [0, 0, 0, 1, 1]
    assert big.rec_offset.tolist() == [0, 41, 79, 0, 33]
    # each file's own date (from its name) dates its messages
    day2 = int(dt.datetime(2024, 1, 3, 5, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert big.events["ts_event"][-1] == day2 + 4
    assert [f.records for f in big.run.inputs] == [3, 2]
    assert [f.bytes_read for f in big.run.inputs] == [len(a), len(b)]


def test_torn_gzip_gives_a_truncated_tail(tmp_path):
    data = frame([msg_D(1, 1, k) for k in range(2000)])
    gz = gzip.compress(data)
    r = decode(write(tmp_path, gz[: len(gz) // 2], "20240102.gz"))
    assert r.run.counts["compressed_stream_truncated"]
    assert not r.rec_problem[:-1].any()
    assert r.rec_problem[-1] == Rule.TRUNCATED_RECORD  # the cut is never silent


# ---- fuzz: hostile bytes never crash or hang, and the accounting always holds ----

def _fuzz_decode(tmp_path, data: bytes, batch: int) -> None:
    path = tmp_path / "f20240102.itch"
    path.write_bytes(data)
    chunks = []
    run = decode_itch(path, batch=batch)
    try:
        for c in run:
            chunks.append(c)  # noqa: PERF402 - keep what came before an error
    except DecodeError as e:
        assert e.offset is not None and 0 <= e.offset <= len(data)
        check_accounting(chunks)
        return
    size = run.inputs[0].bytes_read  # uncompressed: random bytes may start with gzip's magic
    assert data[:2] == b"\x1f\x8b" or size == len(data)
    assert check_accounting(chunks, sizes=[size]) == run.counts["records"]


_SAMPLE = None


def _sample() -> bytes:
    global _SAMPLE
    if _SAMPLE is None:
        raw = gzip.decompress(shared_file(FIXTURE).read_bytes())
        _SAMPLE = raw[:20_000]
    return _SAMPLE


_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(data=st.binary(max_size=400), batch=st.integers(4, 64))
def test_fuzz_random_bytes(tmp_path, data, batch):
    _fuzz_decode(tmp_path, data, batch)


@_settings
@given(cut=st.integers(0, 20_000), edits=st.lists(st.tuples(st.integers(0, 19_999),
                                                            st.integers(0, 255)), max_size=8),
       prefixed=st.booleans(), batch=st.integers(4, 300))
def test_fuzz_mutated_fixture(tmp_path, cut, edits, prefixed, batch):
    raw = _sample()
    if prefixed:  # the same messages with real prefixes, so mutations hit length fields too
        walk, p = [], 0
        while p + 3 <= len(raw):
            n = SPEC_LENGTH[chr(raw[p + 2])]
            if p + 2 + n > len(raw):
                break
            walk.append(raw[p + 2:p + 2 + n])
            p += 2 + n
        raw = b"".join(struct.pack(">H", len(m)) + m for m in walk)
    data = bytearray(raw[:cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    _fuzz_decode(tmp_path, bytes(data), batch)


def test_ritch_fixture_replays_with_only_the_anomalies_the_sample_has():
    """The L3 replay (independent code) agrees with the decoder about the sample: its only order
    anomalies are the references the excerpt never added, and the two replaces of such
    references (an add whose side lived in the unknown order). The sample's books cross: it is
    random simulated data (buy and sell prices drawn from overlapping ranges)."""
    run = decode_itch(shared_file(FIXTURE))
    chunks = list(run)
    res = replay_batches(((c.events, c.n_events) for c in chunks), run.instruments)
    unknown = run.counts["unknown_order_ref"]
    assert res.data_quality["unknown_order"].count == sum(unknown.values()) > 0
    assert res.data_quality["bad_side"].count == unknown.get("U", 0)
    for name in ("duplicate_order", "bad_quantity", "bad_price", "bad_instrument",
                 "wrong_book_kind", "unknown_kind"):
        assert res.data_quality[name].count == 0, name
    assert res.events == sum(c.n_events for c in chunks) == run.counts["events"]["total"]


@pytest.mark.parametrize("read_size", [1, 37, 4096])
def test_messages_split_across_reads_decode_the_same(tmp_path, monkeypatch, read_size):
    """Reads are bounded (1 MB by default); a message cut by a read boundary is completed by the
    next read, whatever the boundary, in plain and in multi-member gzip input."""
    raw = gzip.decompress(shared_file(FIXTURE).read_bytes())[:60_000]
    whole = decode(write(tmp_path, raw, "ex20101224.itch"))
    monkeypatch.setattr(itch_mod, "_READ", read_size)
    plain = decode(write(tmp_path, raw, "ex20101224.split"))
    half = len(raw) // 3
    members = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    gz = decode(write(tmp_path, members, "ex20101224.gz"))
    for r in (plain, gz):
        assert r.rows() == whole.rows()
        assert np.array_equal(r.rec_offset, whole.rec_offset)
        assert np.array_equal(r.rec_problem, whole.rec_problem)
        assert r.run.inputs[0].bytes_read == len(raw)


# ---- trading phases ----

def _crossing(t):
    """AAPL's directory, then a bid at 10.01 and an ask at 10.00 under it: crossed."""
    return [msg_R(7, t, "AAPL"), msg_A(7, t + 1, 1, b"B", 100, "AAPL", 100100),
            msg_A(7, t + 2, 2, b"S", 100, "AAPL", 100000), msg_A(7, t + 3, 3, b"S", 100, "AAPL", 100500)]


def _import(tmp_path, msgs):
    path = write(tmp_path, frame(msgs))
    return import_data("itch", [str(path)], data=str(tmp_path / "root"), options={"date": "2024-01-02"})


def test_system_events_and_trading_actions_become_phase_events(tmp_path):
    msgs = [msg_S(1, b"O"),  # before any instrument: held until the first one exists
            msg_R(7, 2, "AAPL"), msg_S(3, b"S"), msg_H(7, 4, "AAPL", b"H"), msg_H(7, 5, "AAPL", b"Q"),
            msg_H(7, 6, "AAPL", b"P"), msg_H(7, 7, "AAPL", b"T"), msg_S(8, b"Q"), msg_S(9, b"M"),
            msg_S(10, b"E"), msg_S(11, b"C")]
    r = decode(write(tmp_path, frame(msgs)), date="2024-01-02")
    assert [(rec, kind, side, flags, order_id, inst) for rec, kind, side, flags, _, _, order_id, inst in r.rows()] == [
        (1, PHASE, PRE_OPEN, 1, SESSION, 0), (2, PHASE, PRE_OPEN, 1, SESSION, 0),
        (3, PHASE, HALTED, 1, 0, 0), (4, PHASE, AUCTION, 1, 0, 0), (5, PHASE, HALTED, 1, 0, 0),
        (6, PHASE, CONTINUOUS, 1, 0, 0), (7, PHASE, CONTINUOUS, 1, SESSION, 0),
        (8, PHASE, CLOSED, 1, SESSION, 0), (9, PHASE, CLOSED, 1, SESSION, 0), (10, PHASE, CLOSED, 1, SESSION, 0)]
    assert r.events["ts_event"][0] == NY_MIDNIGHT_2024_01_02 + 2  # the directory's time, not the S's


def test_undefined_system_event_code_or_trading_state_is_malformed(tmp_path):
    r = decode(write(tmp_path, frame([msg_R(7, 1, "AAPL"), msg_S(2, b"X"), msg_H(7, 3, "AAPL", b"Z")])),
               date="2024-01-02")
    assert r.rec_problem.tolist() == [0, int(Rule.MALFORMED_RECORD), int(Rule.MALFORMED_RECORD)]
    assert "system event code" in r.reasons[1] and "trading state" in r.reasons[2]


def test_a_book_crossed_before_the_market_opens_is_canonical(tmp_path):
    r = _import(tmp_path, [msg_S(1, b"S"), *_crossing(10), msg_S(20, b"Q"), msg_D(7, 21, 1)])
    assert r.records_quarantined == 0 and r.records_canonical == 7
    assert "crossed_book_phase_unknown" not in r.warnings_by_rule


def test_a_book_crossed_in_a_halted_stock_is_canonical(tmp_path):
    msgs = [msg_S(1, b"Q"), msg_R(7, 2, "AAPL"), msg_H(7, 3, "AAPL", b"H"), *_crossing(10)[1:]]
    r = _import(tmp_path, msgs)
    assert r.records_quarantined == 0 and "crossed_book_phase_unknown" not in r.warnings_by_rule


def test_a_book_crossed_in_market_hours_is_quarantined(tmp_path):
    r = _import(tmp_path, [msg_S(1, b"Q"), *_crossing(10)])
    assert r.quarantined_by_rule == {"crossed_book": 2}
    assert r.decoder_counts["events"]["trading_phase"] == 1  # the open is in the canonical data


def test_a_book_crossed_with_no_system_event_is_a_warning(tmp_path):
    r = _import(tmp_path, [*_crossing(10), msg_D(7, 21, 1), msg_A(7, 22, 4, b"B", 5, "AAPL", 99000)])
    assert r.records_quarantined == 0 and r.warnings_by_rule.get("crossed_book_phase_unknown") == 2
