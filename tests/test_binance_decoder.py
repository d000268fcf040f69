"""Binance capture decoding: real captures against a slow pure-Python oracle, and bad input.

The oracle (json.loads + Decimal) implements the documented rules independently of the C++
decoder: the encoding in include/lockstep/codecs/codecs/binance/decoder.hpp, Binance's update-id reconciliation and the
record accounting of lockstep.data.importers.normalized (one record per non-empty line).
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import zlib
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest
from shared_data import SHARED_DATA, shared_file

from lockstep._bindings import binance as _binance
from lockstep.data.dataset import Instrument
from lockstep.data.importers import builtin_instruments, decode_binance
from lockstep.data.importers import binance as binance_module
from lockstep.data.importers.binance import _Buffers
from lockstep.data.importers.normalized import InputFile, Rule
from lockstep.enums import Status
from lockstep.errors import DecodeError, DecodeRestart, LockstepError
from lockstep.events import COLUMN_NAMES, EventKind, Flag, Side, empty_columns

DATA = SHARED_DATA / "binance"
SPOT = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "spot" / "btcusdt_20240809.gz"]
USDM = [DATA / "usdm" / "btcusdt_20240808.gz"]

LAST, SNAP, BAD = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.BAD_TS_RECV)
L2, CLEAR, TRADE, BBO, GAP = (int(EventKind.L2_SET), int(EventKind.BOOK_CLEAR),
                              int(EventKind.TRADE), int(EventKind.VENUE_BBO), int(EventKind.GAP))
OK, MALFORMED, UNSUPPORTED, DUPLICATE, BEFORE_SNAP, TRUNCATED = (
    Rule.OK, Rule.MALFORMED_RECORD, Rule.UNSUPPORTED_MESSAGE, Rule.DUPLICATE_MESSAGE,
    Rule.DELTAS_BEFORE_SNAPSHOT, Rule.TRUNCATED_RECORD)
BID, ASK, NOSIDE = int(Side.BID), int(Side.ASK), int(Side.NONE)


def need(paths):
    return [shared_file(str(p.relative_to(SHARED_DATA))) for p in paths]


class Collected(dict):
    """A run's events concatenated (the dict) plus .event_record, .rec (per-record arrays),
    .reasons and .chunks; collect() checks the chunk contract while gathering."""


def check_chunks(chunks):
    """The accounting invariant of the record contract, independent of the decoder."""
    expect_first = 0
    last_rec = -1
    for c in chunks:
        assert c.first_record == expect_first, "chunks must be contiguous"
        assert c.n_records >= 1
        expect_first += c.n_records
        er = c.event_record[: c.n_events]
        assert len(er) == c.n_events and all(len(c.events[k]) == c.n_events for k in COLUMN_NAMES)
        if c.n_events:
            assert er[0] >= max(last_rec, c.first_record), "event_record must not decrease"
            assert np.all(np.diff(er) >= 0)
            assert er[-1] < c.first_record + c.n_records, "events belong to the chunk's records"
            last_rec = int(er[-1])
            bad = c.rec_problem[er - c.first_record] != 0
            assert not bad.any(), "a record with a problem has no events"
        for r in c.problem_reasons:
            assert c.first_record <= r < c.first_record + c.n_records
            assert c.rec_problem[r - c.first_record] != 0
    return expect_first


def collect(run):
    """All chunks of a run concatenated, after checking the accounting invariant."""
    chunks = []
    try:
        for c in run:
            chunks.append(c)
    finally:
        check_chunks(chunks)
    out = Collected()
    if chunks:
        for name in COLUMN_NAMES:
            out[name] = np.concatenate([c.events[name][: c.n_events] for c in chunks])
    else:
        out.update({name: arr[:0] for name, arr in empty_columns(0).items()})
    out.event_record = (np.concatenate([c.event_record[: c.n_events] for c in chunks])
                        if chunks else np.zeros(0, np.int64))
    out.rec = {k: (np.concatenate([getattr(c, k)[: c.n_records] for c in chunks]) if chunks
                   else np.zeros(0)) for k in ("rec_file", "rec_line", "rec_offset", "rec_length",
                                               "rec_problem")}
    out.reasons = {}
    for c in chunks:
        out.reasons.update(c.problem_reasons)
    out.chunks = chunks
    return out


# ---------------------------------------------------------------------------------------------
# The oracle


class Oracle:
    """Slow, obvious reference decoder for well-formed captures."""

    def __init__(self, increments: dict[str, tuple[str, str]]):
        self.inc = {s: (Decimal(p), Decimal(q)) for s, (p, q) in increments.items()}
        self.index: dict[str, int] = {}
        self.events: list[tuple] = []
        self.lines_per_file: list[int] = []
        self.messages = Counter()
        self.skipped = Counter()
        self.skip_where: dict[str, list[tuple[int, int]]] = {}
        self.gaps: list[tuple[int, int]] = []
        self.market = None
        self.state: dict[str, tuple[str, int]] = {}
        self.pending: dict[str, list] = {}
        self.last_ts = None
        self.replayed = 0
        self.records: list[tuple] = []  # (file, line, offset, length, problem)
        self.event_records: list[int] = []
        self.record = -1

    @staticmethod
    def fixed(text: str, inc: Decimal) -> int:
        q = Decimal(text) / inc
        assert q == q.to_integral_value(), (text, inc)
        return int(q)

    def see(self, sym):
        if sym not in self.index:
            self.index[sym] = len(self.index)
        return self.index[sym]

    def skip(self, reason, where):
        self.skipped[reason] += 1
        self.skip_where.setdefault(reason, []).append(where)

    def emit(self, *event, record=None):
        self.events.append(event)
        self.event_records.append(self.record if record is None else record)

    def run(self, paths):
        for fi, path in enumerate(paths):
            with gzip.open(path, "rb") as f:
                lines = f.read().split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            self.lines_per_file.append(len(lines))
            offset = 0
            for ln, raw in enumerate(lines, 1):
                if raw.strip(b" \t\r"):
                    self.record += 1
                    self.records.append([fi, ln, offset, len(raw), 0])
                    self.line(raw, (fi, ln))
                else:
                    self.skip("empty_line", (fi, ln))
                offset += len(raw) + 1
        for sym, msgs in self.pending.items():
            for (msg, record), where in msgs:
                self.skip("depth_unsynced", where)
                self.records[record][4] = int(BEFORE_SNAP)
        return self

    def levels(self, sym, bids, asks):
        p, q = self.inc[sym]
        return ([(BID, self.fixed(a, p), self.fixed(b, q)) for a, b, *_ in bids]
                + [(ASK, self.fixed(a, p), self.fixed(b, q)) for a, b, *_ in asks])

    def line(self, raw, where):
        ts_text, text = raw.split(b" ", 1)
        ts = int(ts_text)
        flags = 0
        if self.last_ts is not None and ts < self.last_ts:
            ts, flags = self.last_ts, BAD
        else:
            self.last_ts = ts
        o = json.loads(text)
        if "stream" not in o:
            return self.snapshot(o, ts, flags)
        d = o["data"]
        sym = d["s"]
        idx = self.see(sym)
        kind = o["stream"].split("@", 1)[1]
        ms = d.get("T", d.get("E"))
        te = ms * 1_000_000 if ms is not None else ts
        p, q = self.inc[sym]
        if kind == "trade":
            self.messages["trade"] += 1
            if d.get("X", "MARKET") != "MARKET":
                return self.skip("non_market_trade", where)
            self.emit(te, ts, d["t"], idx, TRADE, ASK if d["m"] else BID, LAST | flags,
                      self.fixed(d["p"], p), self.fixed(d["q"], q))
        elif kind == "bookTicker":
            self.messages["book_ticker"] += 1
            self.emit(te, ts, d["u"], idx, BBO, BID, flags,
                      self.fixed(d["b"], p), self.fixed(d["B"], q))
            self.emit(te, ts, d["u"], idx, BBO, ASK, LAST | flags,
                      self.fixed(d["a"], p), self.fixed(d["A"], q))
        else:
            assert kind.startswith("depth") and d["e"] == "depthUpdate"
            self.messages["depth"] += 1
            market = "usdm" if "pu" in d else "spot"
            assert self.market in (None, market)
            self.market = market
            msg = (d["U"], d["u"], d.get("pu"), te, self.levels(sym, d["b"], d["a"]))
            if sym not in self.state:
                self.pending.setdefault(sym, []).append(((msg, self.record), where))
            else:
                self.apply(sym, msg, ts, flags, where, self.record)

    def snapshot(self, o, ts, flags):
        self.messages["snapshot"] += 1
        assert len(self.index) == 1, "oracle: snapshot needs exactly one symbol seen"
        (sym,) = self.index
        idx = self.index[sym]
        ms = o.get("T", o.get("E"))
        te = ms * 1_000_000 if ms is not None else ts
        lid = o["lastUpdateId"]
        levels = self.levels(sym, o["bids"], o["asks"])
        self.emit(te, ts, lid, idx, CLEAR, NOSIDE, SNAP | flags | (LAST if not levels else 0), 0, 0)
        for i, (side, px, qty) in enumerate(levels):
            self.emit(te, ts, lid, idx, L2, side,
                      SNAP | flags | (LAST if i == len(levels) - 1 else 0), px, qty)
        self.state[sym] = ("await", lid)
        # Buffered diffs: applied now, their events belong to the snapshot's record.
        for (msg, record), where in self.pending.pop(sym, []):
            if self.apply(sym, msg, ts, flags, where, record):
                self.replayed += 1

    def apply(self, sym, msg, ts, flags, where, record):
        first, final, prev, te, levels = msg
        spot = self.market == "spot"
        mode, x = self.state[sym]
        idx = self.index[sym]
        if mode == "await":
            if (final <= x) if spot else (final < x):
                self.skip("depth_in_snapshot", where)
                return False
            if not ((first <= x + 1 <= final) if spot else (first <= x <= final)):
                self.gaps.append(where)
                self.emit(te, ts, first, idx, GAP, NOSIDE, LAST | flags, 0, 0, x + 1 if spot else x)
        else:
            if final <= x:
                self.skip("depth_stale", where)
                self.records[record][4] = int(DUPLICATE)
                return False
            if not ((first == x + 1) if spot else (prev == x)):
                self.gaps.append(where)
                self.emit(te, ts, first if spot else prev, idx, GAP, NOSIDE, LAST | flags, 0, 0,
                          x + 1 if spot else x)
        self.state[sym] = ("live", final)
        if not levels:
            self.skip("depth_no_levels", where)
            return True
        for i, (side, px, qty) in enumerate(levels):
            self.emit(te, ts, final, idx, L2, side,
                      flags | (LAST if i == len(levels) - 1 else 0), px, qty)
        return True

    def columns(self):
        names = ["ts_event", "ts_recv", "seq", "instrument", "kind", "side", "flags", "price",
                 "qty"]
        dtypes = {n: a.dtype for n, a in empty_columns(0).items()}
        cols = {n: np.array([e[i] for e in self.events], dtype=dtypes[n])
                for i, n in enumerate(names)}
        cols["order_id"] = np.array([e[9] if len(e) > 9 else 0 for e in self.events],
                                    dtype=np.uint64)
        return cols


BUILTIN = {(r["venue"], r["symbol"]): (r["price_increment"], r["size_increment"])
           for r in builtin_instruments()}


@pytest.fixture(scope="module")
def spot():
    files = need(SPOT)
    run = decode_binance(files)
    cols = collect(run)
    oracle = Oracle({"BTCUSDT": BUILTIN[("spot", "BTCUSDT")]}).run(files)
    return files, run, cols, oracle


@pytest.fixture(scope="module")
def usdm():
    files = need(USDM)
    run = decode_binance(files)
    cols = collect(run)
    oracle = Oracle({"BTCUSDT": BUILTIN[("usdm", "BTCUSDT")]}).run(files)
    return files, run, cols, oracle


@pytest.fixture(params=["spot", "usdm"])
def dataset(request):
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------------------------
# Real captures


def test_line_counts(dataset):
    files, run, cols, oracle = dataset
    assert [f["lines"] for f in run.counts["files"]] == oracle.lines_per_file
    assert [f["path"] for f in run.counts["files"]] == [str(p) for p in files]
    assert run.counts["lines"] == sum(oracle.lines_per_file)
    expected = {"spot": [41249, 58325], "usdm": [93954]}[run.market_type]
    assert oracle.lines_per_file == expected  # the README's numbers
    assert run.bytes_read == run.counts["bytes"] == sum(f["bytes"] for f in run.counts["files"])
    assert run.complete
    # Records: every non-empty line, each exactly once (collect() checked contiguity).
    assert [(i.path, i.records, i.bytes_read) for i in run.inputs] == \
        [(str(p), n, f["bytes"]) for p, n, f in zip(files, oracle.lines_per_file, run.counts["files"])]
    assert run.counts["records"] == len(oracle.records) == len(cols.rec["rec_line"])
    assert sum(c.n_records for c in cols.chunks) == sum(oracle.lines_per_file)


def test_events_identical_to_oracle(dataset):
    files, run, cols, oracle = dataset
    ref = oracle.columns()
    assert len(cols["kind"]) == len(ref["kind"])
    for name in COLUMN_NAMES:
        bad = np.flatnonzero(cols[name] != ref[name])
        assert bad.size == 0, f"{name} differs first at event {bad[0]}: " \
                              f"{cols[name][bad[0]]} != {ref[name][bad[0]]}"
    assert np.array_equal(cols.event_record, np.array(oracle.event_records))


def test_records_identical_to_oracle(dataset):
    files, run, cols, oracle = dataset
    ref = np.array(oracle.records, dtype=np.int64)
    for i, name in enumerate(("rec_file", "rec_line", "rec_offset", "rec_length", "rec_problem")):
        assert np.array_equal(cols.rec[name].astype(np.int64), ref[:, i]), name
    assert not cols.rec["rec_problem"].any() and not cols.reasons  # clean captures
    # Spot-check offsets and lengths against the text itself.
    with gzip.open(files[0], "rb") as f:
        text = f.read()
    for k in (0, 7, 100, len(oracle.records) // 3):
        if cols.rec["rec_file"][k] == 0:
            off, n = int(cols.rec["rec_offset"][k]), int(cols.rec["rec_length"][k])
            assert text[off + n:off + n + 1] == b"\n" and (off == 0 or text[off - 1:off] == b"\n")


def test_counts_per_kind_match_oracle(dataset):
    files, run, cols, oracle = dataset
    kinds = Counter(e[4] for e in oracle.events)
    ev = run.counts["events"]
    assert ev == {"l2_set": kinds[L2], "book_clear": kinds[CLEAR], "trade": kinds[TRADE],
                  "venue_bbo": kinds[BBO], "gap": 0, "total": len(oracle.events)}
    assert ev["book_clear"] == 1
    msgs = run.counts["messages"]
    assert msgs == {"depth": oracle.messages["depth"], "trade": oracle.messages["trade"],
                    "agg_trade": 0, "book_ticker": oracle.messages["book_ticker"], "snapshot": 1}
    skipped = {k: v["count"] for k, v in run.counts["skipped"].items() if v["count"]}
    assert skipped == dict(oracle.skipped)
    assert run.counts["sequence_gaps"]["count"] == len(oracle.gaps) == 0
    assert run.counts["problems"] == {}
    assert run.counts["ts_recv_raised"]["count"] == 0
    assert run.counts["depth_replayed"] == oracle.replayed


def test_output_invariants(dataset):
    files, run, cols, oracle = dataset
    assert np.all(np.diff(cols["ts_recv"]) >= 0)  # Processing Order
    # Exactly one LAST per message: every message ends with a LAST event.
    last = (cols["flags"] & LAST) != 0
    assert last[-1]
    msgs = run.counts["messages"]
    emitted_msgs = (msgs["trade"] + msgs["book_ticker"] + msgs["snapshot"]
                    + msgs["depth"] - sum(run.counts["skipped"][r]["count"] for r in
                                          ("depth_in_snapshot", "depth_no_levels",
                                           "depth_stale", "depth_unsynced")))
    assert int(last.sum()) == emitted_msgs
    assert set(np.unique(cols["instrument"])) == {0}
    assert np.all(cols["order_id"] == 0)
    assert np.all(cols["qty"] >= 0) and np.all(cols["price"] >= 0)


def test_spot_snapshot_reconciliation(spot):
    files, run, cols, oracle = spot
    assert run.market_type == "spot"
    # Line 8 is the snapshot; lines 1, 2 and 6 are diffs before it: 1 and 2 are inside it
    # (u <= lastUpdateId), 6 bridges it (U <= lastUpdateId + 1 <= u) and is replayed after it.
    skipped = run.counts["skipped"]["depth_in_snapshot"]
    assert [(f["path"], f["line"]) for f in skipped["first"]] == [(str(files[0]), 1),
                                                                   (str(files[0]), 2)]
    assert run.counts["depth_buffered"] == 3 and run.counts["depth_replayed"] == 1
    clear = np.flatnonzero(cols["kind"] == CLEAR)
    assert clear.size == 1
    c = clear[0]
    with gzip.open(files[0], "rt") as f:
        lines = [next(f) for _ in range(8)]
    snap_ts = int(lines[7].split(" ", 1)[0])
    snap = json.loads(lines[7].split(" ", 1)[1])
    line6 = json.loads(lines[5].split(" ", 1)[1])["data"]
    assert cols["seq"][c] == snap["lastUpdateId"] == 50093239218
    assert cols["ts_recv"][c] == snap_ts and cols["ts_event"][c] == snap_ts  # spot REST: no time
    n_levels = len(snap["bids"]) + len(snap["asks"])
    body = slice(c + 1, c + 1 + n_levels)
    assert np.all(cols["flags"][body] & SNAP) and cols["flags"][c + n_levels] & LAST
    # The replayed diff follows the snapshot with the snapshot's ts_recv and its own E and u.
    r = c + 1 + n_levels
    n6 = len(line6["b"]) + len(line6["a"])
    assert np.all(cols["seq"][r:r + n6] == line6["u"])
    assert np.all(cols["ts_recv"][r:r + n6] == snap_ts)
    assert np.all(cols["ts_event"][r:r + n6] == line6["E"] * 1_000_000)
    assert not np.any(cols["flags"][r:r + n6] & SNAP)


def test_spot_rotation_has_no_gap(spot):
    files, run, cols, oracle = spot
    assert run.counts["sequence_gaps"]["count"] == 0
    # The chain crosses the file boundary: the first diff of file 2 continues the last of file 1.
    with gzip.open(files[0], "rt") as f:
        last_u = [json.loads(l.split(" ", 1)[1])["data"]["u"] for l in f
                  if "@depth" in l[:80]][-1]
    with gzip.open(files[1], "rt") as f:
        first = next(json.loads(l.split(" ", 1)[1])["data"] for l in f if "@depth" in l[:80])
    assert first["U"] == last_u + 1
    depth = cols["kind"] == L2
    seqs = np.unique(cols["seq"][depth & ((cols["flags"] & SNAP) == 0)])
    assert last_u in seqs and first["u"] in seqs


def test_usdm_pu_chain(usdm):
    files, run, cols, oracle = usdm
    assert run.market_type == "usdm"
    assert run.counts["sequence_gaps"]["count"] == 0
    # Independently: every depth message's pu equals the previous message's u.
    with gzip.open(files[0], "rt") as f:
        diffs = [json.loads(l.split(" ", 1)[1])["data"] for l in f if "@depth" in l[:80]]
    assert all(b["pu"] == a["u"] for a, b in zip(diffs, diffs[1:]))
    # Snapshot (line 55): usdm rules drop u < lastUpdateId and bridge U <= lastUpdateId <= u.
    skipped = run.counts["skipped"]["depth_in_snapshot"]
    assert [f["line"] for f in skipped["first"]] == [1, 12, 20, 38]
    assert run.counts["depth_replayed"] == 2
    c = int(np.flatnonzero(cols["kind"] == CLEAR)[0])
    assert cols["seq"][c] == 5123107852948
    assert cols["ts_event"][c] == 1723161256493 * 1_000_000  # T preferred over E


def test_instrument_table_and_sources(dataset):
    files, run, cols, oracle = dataset
    venue = "binance-" + run.market_type
    p, q = BUILTIN[(run.market_type, "BTCUSDT")]
    # the data increments, and the venue's order-entry rules the table gives for the market
    (row,) = [r for r in builtin_instruments() if (r["venue"], r["symbol"]) == (run.market_type, "BTCUSDT")]
    rules = {k: row[k] for k in ("tick_size", "lot_size", "min_qty", "min_notional")}
    assert run.instruments == [Instrument("BTCUSDT", venue, p, q, "l2", **rules)]
    assert run.instrument_info == [{
        "index": 0, "symbol": "BTCUSDT", "venue": venue, "price_increment": p,
        "size_increment": q, "increment_source": "builtin", "inferred_price_increment": None,
        "inferred_size_increment": None}]  # every value lies on the table's grid: no first pass ran
    assert run.counts["increments_refined"] == []


def test_inference_on_real_data(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, infer=True)
    cols2 = collect(run)
    (row,) = run.instrument_info
    # Every price/size of the capture lies on the exchange grid, and the GCD finds exactly it.
    assert row["increment_source"] == "builtin"
    assert (row["inferred_price_increment"], row["inferred_size_increment"]) == ("0.1", "0.001")
    assert np.array_equal(cols2["price"], cols["price"])


def test_explicit_increments_scale_values(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, instruments={"btcusdt": ("0.01", "0.0001")}, batch_size=100_003)
    cols2 = collect(run)
    assert run.instrument_info[0]["increment_source"] == "explicit"
    assert np.array_equal(cols2["price"], cols["price"] * 10)
    assert np.array_equal(cols2["qty"], cols["qty"] * 10)
    assert np.array_equal(cols2["seq"], cols["seq"])


def test_small_batches_and_chunks_equal_one_batch(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, price_increment="0.1", size_increment=Decimal("0.001"),
                         batch_size=4099)
    got = collect(run)
    assert all(c.n_events <= 4099 and c.n_records <= 4099 for c in got.chunks)
    assert len(got.chunks) > 100
    for name in COLUMN_NAMES:
        assert np.array_equal(got[name], cols[name]), name
    assert np.array_equal(got.event_record, cols.event_record)
    for name in cols.rec:
        assert np.array_equal(got.rec[name], cols.rec[name]), name
    assert run.instrument_info[0]["increment_source"] == "option"


def test_random_feed_splits_equal_whole(usdm):
    """Lines split across feed calls at arbitrary points decode identically."""
    files, _, cols, _ = usdm
    with gzip.open(files[0], "rb") as f:
        text = f.read(3_000_000)
    text = text[: text.rindex(b"\n") + 1]
    rng = random.Random(7)
    dec = _binance.BinanceDecoder()
    dec.add_instrument("BTCUSDT", 0, "0.1", "0.001")
    dec.begin_file(0, "x")
    out = _Buffers._make(1 << 20, 1 << 20)
    size = nrec = pos = 0
    while pos < len(text):
        n = rng.choice([1, 2, 3, 17, 100, 1000, 65536])
        chunk = text[pos:pos + n]
        consumed, size, nrec, st = dec.feed(chunk, out, size, nrec)
        assert st == Status.OK and consumed == len(chunk)
        pos += n
    size, nrec, st = dec.finish(out, size, nrec)
    assert st == Status.OK
    for name in COLUMN_NAMES:
        assert np.array_equal(out[name][:size], cols[name][:size]), name
    assert np.array_equal(out["event_record"][:size], cols.event_record[:size])
    assert np.array_equal(out["rec_offset"][:nrec], cols.rec["rec_offset"][:nrec])


# ---------------------------------------------------------------------------------------------
# Hand-made input

TS = 1723161255000000000
E0 = 1723161256000


def trade(ts=TS, sym="BTCUSDT", t=1, p="61800.3", q="0.006", m=False, x="MARKET"):
    return (f'{ts} {{"stream":"{sym.lower()}@trade","data":{{"e":"trade","E":{E0},"T":{E0},'
            f'"s":"{sym}","t":{t},"p":"{p}","q":"{q}","X":"{x}","m":{str(m).lower()}}}}}')


def agg(ts=TS, sym="BTCUSDT", a=5, f=10, l=12, p="61800.3", q="0.006", m=True):
    return (f'{ts} {{"stream":"{sym.lower()}@aggTrade","data":{{"e":"aggTrade","E":{E0},'
            f'"s":"{sym}","a":{a},"p":"{p}","q":"{q}","f":{f},"l":{l},"T":{E0},'
            f'"m":{str(m).lower()}}}}}')


def book(ts=TS, sym="BTCUSDT", u=10, b="61800.2", bq="1.000", a="61800.3", aq="2.000"):
    return (f'{ts} {{"stream":"{sym.lower()}@bookTicker","data":{{"e":"bookTicker","u":{u},'
            f'"s":"{sym}","b":"{b}","B":"{bq}","a":"{a}","A":"{aq}","T":{E0},"E":{E0}}}}}')


def depth(ts=TS, sym="BTCUSDT", U=1, u=2, pu=0, b=(("61800.2", "1.000"),), a=(), spot=False,
          ps=None):
    lv = lambda levels: json.dumps([list(x) for x in levels], separators=(",", ":"))
    pu_part = "" if spot else f',"pu":{pu}'
    ps_part = "" if ps is None else f',"ps":"{ps}"'
    return (f'{ts} {{"stream":"{sym.lower()}@depth@0ms","data":{{"e":"depthUpdate","E":{E0},'
            f'"T":{E0},"s":"{sym}"{ps_part},"U":{U},"u":{u}{pu_part},"b":{lv(b)},"a":{lv(a)}}}}}')


def snapshot(ts=TS, lid=100, bids=(("61800.2", "1.000"),), asks=(("61800.3", "1.000"),)):
    return (f'{ts} {{"lastUpdateId":{lid},"E":{E0},"T":{E0},'
            f'"bids":{json.dumps([list(x) for x in bids])},'
            f'"asks":{json.dumps([list(x) for x in asks])}}}')


def write(tmp_path, lines, name="capture.txt", end="\n"):
    path = tmp_path / name
    data = "\n".join(lines) + end if isinstance(lines[0], str) else b"\n".join(lines) + end.encode()
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def run_lines(tmp_path, lines, end="\n", **kw):
    kw.setdefault("price_increment", "0.1")
    kw.setdefault("size_increment", "0.001")
    path = write(tmp_path, lines, end=end)
    run = decode_binance([path], **kw)
    return path, run, collect(run)


def expect_error(tmp_path, lines, line, *words, end="\n", **kw):
    """A fatal error (configuration): DecodeError naming file and line."""
    kw.setdefault("price_increment", "0.1")
    kw.setdefault("size_increment", "0.001")
    path = write(tmp_path, lines, end=end)
    run = decode_binance([path], **kw)
    chunks = []
    with pytest.raises(DecodeError) as info:
        for c in run:
            chunks.append(c)
    check_chunks(chunks)
    e = info.value
    assert e.path == str(path) and e.line == line, str(e)
    for w in words:
        assert w in e.reason, (w, e.reason)
    assert isinstance(e, LockstepError)
    return e, run, sum(c.n_events for c in chunks)


def expect_problem(tmp_path, lines, line, rule, *words, end="\n", **kw):
    """The record of `line` (no blank lines before it) carries `rule`, no event and a reason
    naming its place; the other lines decode."""
    path, run, cols = run_lines(tmp_path, lines, end=end, **kw)
    k = line - 1
    assert cols.rec["rec_line"][k] == line
    assert cols.rec["rec_problem"][k] == rule, (cols.rec["rec_problem"], cols.reasons)
    assert k not in cols.event_record
    text = cols.reasons[k]
    offset = sum(len(x) + 1 for x in lines[:k])
    assert text.startswith(f"{path}, line {line}, offset {offset}: "), text
    for w in words:
        assert w in text, (w, text)
    assert run.counts["problems"][rule.label]["count"] >= 1 and run.complete
    return path, run, cols


def problems(cols):
    return [int(x) for x in cols.rec["rec_problem"]]


def test_basic_messages(tmp_path):
    lines = [trade(m=True), book(), trade(t=2, m=False)]
    path, run, cols = run_lines(tmp_path, lines)
    assert list(cols["kind"]) == [TRADE, BBO, BBO, TRADE]
    assert list(cols["side"]) == [ASK, BID, ASK, BID]  # m=true: buyer is maker, seller aggressed
    assert list(cols["flags"]) == [LAST, 0, LAST, LAST]
    assert list(cols["price"]) == [618003, 618002, 618003, 618003]
    assert list(cols["qty"]) == [6, 1000, 2000, 6]
    assert list(cols["seq"]) == [1, 10, 10, 2]
    assert cols["ts_event"][0] == E0 * 1_000_000
    assert list(cols.event_record) == [0, 1, 1, 2]
    n0, n1, n2 = (len(x) for x in lines)
    assert list(cols.rec["rec_line"]) == [1, 2, 3]
    assert list(cols.rec["rec_offset"]) == [0, n0 + 1, n0 + n1 + 2]
    assert list(cols.rec["rec_length"]) == [n0, n1, n2]
    assert list(cols.rec["rec_file"]) == [0, 0, 0] and problems(cols) == [0, 0, 0]
    assert run.inputs == [InputFile(str(path), n0 + n1 + n2 + 3, 3)]


def test_record_positions_across_files_and_blank_lines(tmp_path):
    a, b, c = trade(), trade(t=2), trade(t=3)
    pa = tmp_path / "a.txt"
    pa.write_bytes(f"{a}\n\n{b}\r\n".encode())
    pb = tmp_path / "b.txt"
    pb.write_bytes(f"  \n{c}".encode())  # blank first line, no final newline
    run = decode_binance([pa, pb], price_increment="0.1", size_increment="0.001")
    cols = collect(run)
    assert list(cols.rec["rec_file"]) == [0, 0, 1]
    assert list(cols.rec["rec_line"]) == [1, 3, 2]
    assert list(cols.rec["rec_offset"]) == [0, len(a) + 2, 3]
    assert list(cols.rec["rec_length"]) == [len(a), len(b) + 1, len(c)]  # the CR is the line's
    assert list(cols.event_record) == [0, 1, 2] and list(cols["seq"]) == [1, 2, 3]
    assert [(i.records, i.bytes_read) for i in run.inputs] == [(2, len(a) + len(b) + 4),
                                                               (1, len(c) + 3)]
    assert run.counts["skipped"]["empty_line"]["count"] == 2 and run.counts["records"] == 3


def test_malformed_json_is_a_record(tmp_path):
    lines = [trade(), trade(t=2), trade(t=3)[:-5] + "}x}}", trade(t=4)]
    path, run, cols = expect_problem(tmp_path, lines, 3, MALFORMED, "malformed JSON")
    assert list(cols["seq"]) == [1, 2, 4] and list(cols.event_record) == [0, 1, 3]
    assert problems(cols) == [0, 0, 9, 0]
    assert run.counts["skipped"]["malformed"]["count"] == 1
    first = run.counts["problems"]["malformed_record"]["first"]
    assert first == [{"path": str(path), "line": 3, "offset": len(lines[0]) + len(lines[1]) + 2}]


def test_unknown_stream_and_replies(tmp_path):
    kline = (f'{TS} {{"stream":"btcusdt@kline_1m","data":{{"e":"kline","E":{E0},"s":"BTCUSDT",'
             f'"k":{{}}}}}}')
    partial = f'{TS} {{"stream":"btcusdt@depth20@100ms","data":{{"lastUpdateId":1,"bids":[],"asks":[]}}}}'
    reply = f'{TS} {{"result":null,"id":1}}'
    path, run, cols = run_lines(tmp_path, [trade(), kline, reply, "", partial, trade(t=2)])
    # Blank line 4 is not a record: records are lines 1, 2, 3, 5, 6.
    assert list(cols.rec["rec_line"]) == [1, 2, 3, 5, 6]
    assert problems(cols) == [0, UNSUPPORTED, 0, UNSUPPORTED, 0]
    assert list(cols.event_record) == [0, 4]
    assert "btcusdt@kline_1m" in cols.reasons[1] and set(cols.reasons) == {1, 3}
    sk = run.counts["skipped"]
    assert sk["unknown_stream"]["count"] == 2
    assert [(x["path"], x["line"]) for x in sk["unknown_stream"]["first"]] == [(str(path), 2),
                                                                              (str(path), 5)]
    assert sk["not_stream_message"]["count"] == 1 and sk["not_stream_message"]["first"][0]["line"] == 3
    assert sk["empty_line"]["count"] == 1 and sk["empty_line"]["first"][0]["line"] == 4
    assert list(cols["seq"]) == [1, 2]


def test_non_market_trade_is_a_zero_event_record(tmp_path):
    path, run, cols = run_lines(tmp_path, [trade(x="INSURANCE_FUND"), trade(t=2)])
    assert run.counts["skipped"]["non_market_trade"]["first"][0]["line"] == 1
    assert list(cols["seq"]) == [2] and list(cols.event_record) == [1] and problems(cols) == [0, 0]


@pytest.mark.parametrize("bad,words", [
    ("abc", ["trade price", "not a decimal number", '"abc"']),
    ("61800.25", ["trade price", "not a multiple of the increment 0.1"]),
    ("1e5", ["not a decimal number"]),
    ("-5", ["negative"]),
    ("", ["not a decimal number"]),
    ("99999999999999999999999.1", ["overflows"]),
])
def test_bad_prices(tmp_path, bad, words):
    # infer=False trusts the given increments (no first pass): a value off them is malformed.
    path, run, cols = expect_problem(tmp_path, [trade(), book(), trade(p=bad), trade(t=4)], 3,
                                     MALFORMED, *words, infer=False)
    assert list(cols["seq"]) == [1, 10, 10, 4]


def test_not_multiple_size_names_file_line_and_level(tmp_path):
    lines = [trade(), depth(b=(("61800.2", "1.000"), ("61800.1", "1.0005")))]
    expect_problem(tmp_path, lines, 2, MALFORMED, "bid quantity of level 1", '"1.0005"',
                   "not a multiple of the increment 0.001", infer=False)


def test_values_finer_than_the_option_refine_it_and_are_kept(tmp_path):
    """The first pass finds a quantity finer than the size option: the size increment becomes
    the data's, every record is canonical, and the warning names the value, file and line."""
    lines = [trade(), trade(t=2, q="0.0065"), trade(t=3, q="0.00125")]
    path, run, cols = run_lines(tmp_path, lines)
    assert problems(cols) == [0, 0, 0]
    assert run.instruments[0].size_increment == "0.00025"  # GCD of 0.001, 0.006, 0.0065, 0.00125
    assert list(cols["qty"]) == [24, 26, 5]
    (r,) = run.counts["increments_refined"]
    assert (r["symbol"], r["what"], r["given"], r["used"], r["source"]) == (
        "BTCUSDT", "size", "0.001", "0.00025", "option")
    assert (r["value"], r["file"], r["line"]) == ("0.0065", str(path), 2)


def _opens(monkeypatch):
    """Counts the openings of inputs by the Binance importer (each is one read of a file)."""
    opened = []
    real = binance_module.open_decompressed

    def counting(path, *a, **kw):
        opened.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(binance_module, "open_decompressed", counting)
    return opened


def test_data_on_the_table_grid_is_read_once(monkeypatch):
    """The common case: every symbol is in the built-in table and every value lies on its grid.
    The capture is read once (the sniff's bytes are replayed to the decode), not scanned first."""
    opened = _opens(monkeypatch)
    run = decode_binance(USDM)
    cols = collect(run)
    assert opened == [str(USDM[0])]
    assert problems(cols) == [0] * len(cols.rec["rec_problem"])
    assert run.counts["increments_refined"] == []


def _late_finer_lines():
    """Trades on the option's grid, then one quantity finer than it (line 40)."""
    return [trade(t=i) for i in range(1, 40)] + [trade(t=40, q="0.0065"), trade(t=41)]


def test_a_finer_value_after_chunks_were_handed_out_is_refined_all_the_same(tmp_path):
    """A consumer that cannot restart is handed nothing before every value was checked: with
    chunks of one record and the finer value on line 40, the result is the first pass's."""
    path, run, cols = run_lines(tmp_path, _late_finer_lines(), batch_size=1)
    _, _, scanned = run_lines(tmp_path, _late_finer_lines(), batch_size=1, infer=True)
    assert problems(cols) == [0] * 41
    assert run.instruments[0].size_increment == "0.0005"
    assert np.array_equal(cols["qty"], scanned["qty"]) and cols["qty"][39] == 13
    (r,) = run.counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["value"], r["line"]) == ("size", "0.001", "0.0005", "0.0065", 40)


def test_a_consumer_that_can_restart_gets_chunks_at_once_and_a_restart(tmp_path):
    """allow_restart(): chunks come out before any first pass; the finer value on line 40 ends
    the iteration with DecodeRestart, whose restarted() run refines the increment."""
    path = write(tmp_path, _late_finer_lines())
    run = decode_binance([path], price_increment="0.1", size_increment="0.001", batch_size=1)
    run.allow_restart()
    handed = []
    with pytest.raises(DecodeRestart) as e:
        for c in run:
            handed.append(c.n_records)
    assert 0 < len(handed) < 41  # chunks were handed out before the finer value was met
    again = e.value.restarted()
    cols = collect(again)
    assert problems(cols) == [0] * 41
    assert again.instruments[0].size_increment == "0.0005"
    (r,) = again.counts["increments_refined"]
    assert (r["value"], r["line"]) == ("0.0065", 40)


def test_a_tick_that_is_not_a_power_of_ten_is_refined_too(tmp_path):
    lines = [trade(p="61800.25"), trade(t=2, p="61800.5"), trade(t=3, p="61800.3")]
    path, run, cols = run_lines(tmp_path, lines, instruments={"BTCUSDT": ("0.25", "0.001")})
    assert problems(cols) == [0, 0, 0]
    assert run.instruments[0].price_increment == "0.05"  # GCD of 0.25, 61800.25, 61800.5, 61800.3
    assert list(cols["price"]) == [1236005, 1236010, 1236006]
    (r,) = run.counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["source"], r["value"], r["line"]) == (
        "price", "0.25", "0.05", "explicit", "61800.3", 3)


def test_overflow_after_refinement_is_malformed_and_says_so(tmp_path):
    # 1e-18 forces a grid on which 10 units of quantity no longer fit int64.
    lines = [trade(), trade(t=2, q="10.000"), trade(t=3, q="0.000000000000000001")]
    path, run, cols = run_lines(tmp_path, lines)
    assert run.instruments[0].size_increment == "0.000000000000000001"
    assert problems(cols) == [0, MALFORMED, 0]
    assert "overflows int64" in cols.reasons[1]


@pytest.mark.parametrize("line,words", [
    (trade().replace('"p":"61800.3",', ""), ['missing field "p"']),
    (trade().replace('"t":1,', '"t":"1",'), ['field "t" is not a non-negative integer']),
    (f'{TS} {{"stream":"btcusdt@trade"}}', ['missing field "data"']),
    (depth().replace('"b":[["61800.2","1.000"]]', '"b":"x"'), ['field "b" is not an array']),
    (trade().replace('"e":"trade"', '"e":"aggTrade"'), ['event type "aggTrade"']),
    (trade().replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'), ['does not match symbol "ETHUSDT"']),
    (trade().replace('"q":"0.006"', '"q":"0.006","q":"0.007"'), ['duplicate key "q"']),
    # A time field that is present must be valid even when the other one would do.
    (trade().replace(f'"E":{E0}', '"E":-1'), ['field "E" is not a non-negative integer']),
    (trade().replace('"X":"MARKET"', '"X":1'), ['field "X" is not a string']),
    (trade().replace(f'"T":{E0},', "").replace(f'"E":{E0}', '"E":1.5'), ['missing field "T"']),
    (agg().replace('"a":5,', ""), ['aggTrade message: missing field "a"']),
    (agg().replace('"a":5,', '"a":"5",'), ['field "a" is not a non-negative integer']),
    (agg().replace('"l":12,', '"l":-1,'), ['field "l" is not a non-negative integer']),
    (depth(U=5, u=4), ["first update id U=5 is after final update id u=4"]),
])
def test_missing_and_ill_typed_fields(tmp_path, line, words):
    expect_problem(tmp_path, [trade(), line, trade(t=3)], 2, MALFORMED, *words)


@pytest.mark.parametrize("line,words", [
    ('{"stream":"x@trade","data":{}}', ["receive timestamp"]),
    (trade(ts="99999999999999999999"), ["out of range"]),
    (trade().replace(" ", "\t", 1), ["space after the receive"]),
    (trade().replace(f'"T":{E0}', '"T":18446744073709551615'),
     ["transaction time T", "out of the nanosecond range"]),
    (trade().replace(f'"T":{E0}', '"T":184467440737095516150'),
     ['field "T" is not a non-negative integer']),
    (trade().replace('"BTCUSDT"', '"BTC USDT"').replace("btcusdt@", "btc usdt@"),
     ['invalid symbol']),
])
def test_bad_lines_are_malformed_records(tmp_path, line, words):
    expect_problem(tmp_path, [line, trade(t=2)], 1, MALFORMED, *words)


def test_a_line_ending_after_its_timestamp_mid_file_is_malformed(tmp_path):
    expect_problem(tmp_path, [trade(), f"{TS}", trade(t=3)], 2, MALFORMED, "ends after")


def test_truncated_last_line_is_a_truncated_record(tmp_path):
    lines = [trade(), trade(t=2), trade(t=3)[:57]]
    path, run, cols = expect_problem(tmp_path, lines, 3, TRUNCATED, end="")
    tr = run.counts["skipped"]["truncated_line"]
    assert tr["count"] == 1 and tr["first"][0] == {"path": str(path), "line": 3,
                                                   "offset": len(lines[0]) + len(lines[1]) + 2}
    assert cols.rec["rec_length"][2] == 57
    assert list(cols["seq"]) == [1, 2] and run.complete
    # A complete final line without its newline is simply decoded.
    path, run, cols = run_lines(tmp_path, [trade(), trade(t=2)], end="")
    assert list(cols["seq"]) == [1, 2] and run.counts["skipped"]["truncated_line"]["count"] == 0


def test_truncated_line_in_the_middle_is_malformed(tmp_path):
    expect_problem(tmp_path, [trade(), trade(t=2)[:80], trade(t=3)], 2, MALFORMED,
                   "malformed JSON", "unterminated")


def test_garbage_bytes(tmp_path):
    def run_bytes(lines):
        path = write(tmp_path, lines)
        cols = collect(decode_binance([path], price_increment="0.1", size_increment="0.001"))
        return path, cols
    bad_utf8 = trade().encode().replace(b'"BTCUSDT"', b'"BTC\xff\xfeUSDT"')
    path, cols = run_bytes([trade().encode(), bad_utf8, trade(t=3).encode()])
    assert problems(cols) == [0, MALFORMED, 0] and "invalid UTF-8" in cols.reasons[1]
    noise = bytes(range(256)).replace(b"\n", b"")
    path, cols = run_bytes([trade().encode(), noise])
    assert problems(cols) == [0, MALFORMED] and cols.rec["rec_length"][1] == 255
    ctrl = trade().encode().replace(b"MARKET", b"MAR\x01KET")
    path, cols = run_bytes([ctrl])
    assert problems(cols) == [MALFORMED] and "control character" in cols.reasons[0]


def test_crlf_and_blank_lines(tmp_path):
    path, run, cols = run_lines(tmp_path, [trade() + "\r", "", "  \r", trade(t=2) + "\r"])
    assert list(cols["seq"]) == [1, 2]
    assert run.counts["skipped"]["empty_line"]["count"] == 2
    assert list(cols.rec["rec_line"]) == [1, 4] and run.counts["records"] == 2


def test_reasons_are_kept_for_the_first_twenty_per_rule(tmp_path):
    lines = [trade(t=i, p="x") for i in range(1, 26)] + [trade(t=99)]
    path, run, cols = run_lines(tmp_path, lines)
    assert problems(cols) == [MALFORMED] * 25 + [0]
    assert sorted(cols.reasons) == list(range(20))
    log = run.counts["problems"]["malformed_record"]
    assert log["count"] == 25 and [x["line"] for x in log["first"]] == list(range(1, 21))


def test_ts_recv_going_back_is_raised_flagged_and_counted(tmp_path):
    lines = [trade(ts=TS + 10), book(ts=TS + 5), trade(ts=TS + 20, t=2)]
    path, run, cols = run_lines(tmp_path, lines)
    assert list(cols["ts_recv"]) == [TS + 10, TS + 10, TS + 10, TS + 20]
    assert list(cols["flags"]) == [LAST, BAD, LAST | BAD, LAST]
    raised = run.counts["ts_recv_raised"]
    assert raised["count"] == 1
    assert raised["first"][0]["line"] == 2 and raised["first"][0]["got"] == TS + 5
    assert raised["first"][0]["expected"] == TS + 10


def test_rejected_records_do_not_move_the_clock(tmp_path):
    # Line 2 is far ahead but malformed: line 3 must not be raised to it; line 4 goes back
    # relative to line 3 only... and is malformed too, so nothing is raised at all.
    lines = [trade(ts=TS + 10), trade(ts=TS + 99, p="bad"), trade(ts=TS + 20, t=3),
             trade(ts=TS + 5, t=4, q="x")]
    path, run, cols = run_lines(tmp_path, lines)
    assert list(cols["ts_recv"]) == [TS + 10, TS + 20] and list(cols["flags"]) == [LAST, LAST]
    assert run.counts["ts_recv_raised"]["count"] == 0


def test_depth_buffering_usdm_reconciliation_and_gap_event(tmp_path):
    lines = [
        depth(U=90, u=95, pu=80),                                  # inside the snapshot: dropped
        depth(U=96, u=100, pu=95),                                 # u == lastUpdateId: kept
        depth(U=101, u=105, pu=100, b=(), a=(("61800.5", "0"),)),  # buffered, then applied
        snapshot(ts=TS + 1, lid=100),
        depth(ts=TS + 2, U=106, u=110, pu=105, b=()),              # no levels: chain advances
        depth(ts=TS + 3, U=111, u=115, pu=110),
        depth(ts=TS + 4, U=120, u=125, pu=118),                    # gap: pu != 115
        depth(ts=TS + 5, U=126, u=130, pu=125),
    ]
    path, run, cols = run_lines(tmp_path, lines)
    assert run.market_type == "usdm"
    sk = run.counts["skipped"]
    assert [x["line"] for x in sk["depth_in_snapshot"]["first"]] == [1]
    assert [x["line"] for x in sk["depth_no_levels"]["first"]] == [5]
    gaps = run.counts["sequence_gaps"]
    assert gaps["count"] == 1
    assert gaps["first"][0] == {"path": str(path), "line": 7, "offset": gaps["first"][0]["offset"],
                                "expected": 115, "got": 118}
    assert list(cols["kind"]) == [CLEAR, L2, L2, L2, L2, L2, GAP, L2, L2]
    assert list(cols["seq"]) == [100, 100, 100, 100, 105, 115, 118, 125, 130]
    # buffered diffs come right after the snapshot, with its ts_recv, in the snapshot's record
    assert list(cols["ts_recv"][:5]) == [TS + 1] * 5
    assert list(cols["qty"][4:5]) == [0]
    assert list(cols.event_record) == [3, 3, 3, 3, 3, 5, 6, 6, 7]
    # the gap: before the diff that revealed it, id found / id expected, the diff's times
    g = 6
    assert (cols["order_id"][g], cols["flags"][g], cols["side"][g], cols["instrument"][g]) == \
        (115, LAST, NOSIDE, 0)
    assert (cols["ts_recv"][g], cols["ts_event"][g]) == (TS + 4, E0 * 1_000_000)
    assert problems(cols) == [0] * 8  # in-snapshot, replayed and empty diffs are ordinary records
    assert run.counts["depth_buffered"] == 3 and run.counts["depth_replayed"] == 2
    assert run.counts["events"]["gap"] == 1


def test_spot_rules_bridge_gap_and_stale_duplicate(tmp_path):
    lines = [
        depth(U=90, u=100, spot=True),  # u <= lastUpdateId: dropped
        snapshot(lid=100),
        depth(U=103, u=104, spot=True),  # does not bridge lastUpdateId + 1 = 101: a gap
        depth(U=105, u=106, spot=True),
        depth(U=105, u=106, spot=True),  # replayed message: stale
    ]
    path, run, cols = run_lines(tmp_path, lines)
    assert run.market_type == "spot"
    gaps = run.counts["sequence_gaps"]
    assert gaps["count"] == 1 and gaps["first"][0]["expected"] == 101 and gaps["first"][0]["got"] == 103
    assert run.counts["skipped"]["depth_stale"]["first"][0]["line"] == 5
    assert list(cols["kind"]) == [CLEAR, L2, L2, GAP, L2, L2]
    assert list(cols["seq"]) == [100, 100, 100, 103, 104, 106]
    assert cols["order_id"][3] == 101
    assert list(cols.event_record) == [1, 1, 1, 2, 2, 3]
    assert problems(cols) == [0, 0, 0, 0, DUPLICATE]
    assert "u=106" in cols.reasons[4]


def test_diffs_without_snapshot_are_deltas_before_snapshot(tmp_path):
    lines = [depth(U=1, u=2), depth(U=3, u=4, pu=2)]
    path, run, cols = run_lines(tmp_path, lines)
    assert len(cols["kind"]) == 0
    un = run.counts["skipped"]["depth_unsynced"]
    assert un["count"] == 2 and [x["line"] for x in un["first"]] == [1, 2]
    assert problems(cols) == [BEFORE_SNAP, BEFORE_SNAP]
    assert "never met a snapshot" in cols.reasons[0]
    assert cols.reasons[1].startswith(f"{path}, line 2, offset {len(lines[0]) + 1}: ")


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_buffered_diffs_across_chunk_boundaries(tmp_path, batch_size):
    lines = [depth(U=96, u=100, pu=95),  # r0: buffered, replayed after r3
             trade(t=1), trade(t=2),      # r1, r2: held back behind r0
             snapshot(lid=100),           # r3: clear + 2 levels + r0's level
             trade(t=3)]                  # r4
    path, run, cols = run_lines(tmp_path, lines, batch_size=batch_size)
    assert list(cols["kind"]) == [TRADE, TRADE, CLEAR, L2, L2, L2, TRADE]
    assert list(cols.event_record) == [1, 2, 3, 3, 3, 3, 4]
    assert problems(cols) == [0] * 5
    if batch_size == 1:  # each record in its own chunk; the snapshot's grows to its 4 events
        assert [(c.first_record, c.n_records, c.n_events) for c in cols.chunks] == \
            [(0, 1, 0), (1, 1, 1), (2, 1, 1), (3, 1, 4), (4, 1, 1)]
    # Without the snapshot the diff's record is settled at the end, still first and in order.
    path, run, cols = run_lines(tmp_path, lines[:3], batch_size=batch_size)
    assert problems(cols) == [BEFORE_SNAP, 0, 0] and list(cols.event_record) == [1, 2]


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_held_records_are_bounded_by_data_not_batches(tmp_path, batch_size):
    lines = [depth(U=1, u=2, pu=0)] + [trade(t=i) for i in range(1, 6)] + [snapshot(lid=2)]
    # Default bound: the diff waits for the snapshot and is applied (usdm: U <= 2 <= u).
    path, run, cols = run_lines(tmp_path, lines, batch_size=batch_size)
    assert problems(cols) == [0] * 7 and list(cols.event_record) == [1, 2, 3, 4, 5, 6, 6, 6, 6]
    # Bound 3: after record 3 the diff has waited for more than 3 records and is given up.
    path, run, cols = run_lines(tmp_path, lines, batch_size=batch_size, max_held_records=3)
    assert problems(cols) == [BEFORE_SNAP] + [0] * 6
    assert list(cols.event_record) == [1, 2, 3, 4, 5, 6, 6, 6]
    assert "held-record bound" in cols.reasons[0]


def test_agg_trades(tmp_path):
    lines = [agg(a=5, f=10, l=12, m=True),     # r0: Trade seq 5, seller aggressed
             agg(a=6, f=13, l=13, m=False),    # r1: Trade seq 6
             trade(t=12),                      # r2: first trade: inside agg 5's range, no event
             trade(t=14, m=True),              # r3: new print
             agg(a=7, f=14, l=14)]             # r4: the trade stream carries it: no event
    path, run, cols = run_lines(tmp_path, lines)
    assert list(cols["kind"]) == [TRADE, TRADE, TRADE]
    assert list(cols["seq"]) == [5, 6, 14] and list(cols["side"]) == [ASK, BID, ASK]
    assert list(cols["price"]) == [618003] * 3 and list(cols["qty"]) == [6] * 3
    assert list(cols["ts_event"]) == [E0 * 1_000_000] * 3
    assert list(cols.event_record) == [0, 1, 3] and problems(cols) == [0] * 5
    sk = run.counts["skipped"]
    assert [x["line"] for x in sk["trade_in_agg_trade"]["first"]] == [3]
    assert [x["line"] for x in sk["agg_trade_duplicate"]["first"]] == [5]
    assert run.counts["messages"]["agg_trade"] == 3


def coinm_lines():
    sym = "BTCUSD_PERP"
    return [
        depth(sym=sym, ps="BTCUSD", U=90, u=99, pu=89, b=(("61800.1", "12"),)),  # r0: in snapshot
        snapshot(lid=100, bids=(("61800.2", "7"),), asks=(("61800.3", "3"),)),    # r1
        depth(sym=sym, ps="BTCUSD", U=95, u=105, pu=99, b=(("61800.2", "0"),)),   # r2: bridges
        depth(sym=sym, ps="BTCUSD", U=110, u=112, pu=107, b=(),
              a=(("61800.4", "25"),)),                                     # r3: gap
        trade(sym=sym, t=3, p="61800.4", q="2", m=True),                           # r4
        agg(sym=sym, a=1, f=3, l=3, p="61800.4", q="2"),                           # r5: duplicate
        book(sym=sym, u=112, b="61800.3", bq="1", a="61800.4", aq="25"),           # r6
    ]


def test_coinm_from_symbols_with_builtin_increments(tmp_path):
    path = write(tmp_path, coinm_lines())
    run = decode_binance([path])  # BTCUSD_PERP: tick 0.1, lot 1 contract (built in)
    cols = collect(run)
    assert run.market_type == "coinm"
    assert run.instruments == [Instrument("BTCUSD_PERP", "binance-coinm", "0.1", "1", "l2",
                                          tick_size="0.1", lot_size="1", min_qty="1")]  # no notional rule
    assert run.instrument_info[0]["increment_source"] == "builtin"
    assert list(cols["kind"]) == [CLEAR, L2, L2, L2, GAP, L2, TRADE, BBO, BBO]
    assert list(cols["seq"]) == [100, 100, 100, 105, 107, 112, 3, 112, 112]
    assert list(cols["price"]) == [0, 618002, 618003, 618002, 0, 618004, 618004, 618003, 618004]
    assert list(cols["qty"]) == [0, 7, 3, 0, 0, 25, 2, 1, 25]
    assert cols["order_id"][4] == 105  # the gap: pu 107 found, 105 expected
    assert list(cols.event_record) == [1, 1, 1, 2, 3, 3, 4, 6, 6]
    assert problems(cols) == [0] * 7
    assert run.counts["skipped"]["agg_trade_duplicate"]["count"] == 1


def test_coinm_given_explicitly(tmp_path):
    lines = [depth(sym="BTCUSDT", U=1, u=2, pu=0), snapshot(lid=2)]
    path, run, cols = run_lines(tmp_path, lines, market_type="coinm")
    assert run.market_type == "coinm" and run.instruments[0].venue == "binance-coinm"
    assert list(cols["seq"]) == [2, 2, 2, 2]
    # Spot given, futures diffs found: a configuration problem, fatal.
    expect_error(tmp_path, [depth(U=1, u=2, pu=0)], 1, "spot and futures depth mixed",
                 market_type="spot")
    with pytest.raises(ValueError, match="market_type"):
        decode_binance([path], market_type="margin")


def test_snapshot_attribution(tmp_path):
    expect_error(tmp_path, [snapshot()], 1, "names no symbol", "none was seen")
    expect_error(tmp_path, [trade(), trade(sym="ETHUSDT"), snapshot()], 3, "2 symbols")
    path, run, cols = run_lines(tmp_path, [trade(), trade(sym="ETHUSDT"), snapshot()],
                                snapshot_symbol="ethusdt")
    assert cols["instrument"][2] == 1 and cols["kind"][2] == CLEAR


def test_mixed_markets_is_an_error(tmp_path):
    e, run, n = expect_error(tmp_path, [depth(spot=True), depth(U=3, u=4, pu=2)], 2,
                             "spot and futures depth mixed")
    assert e.offset == len(depth(spot=True)) + 1


def test_unknown_symbol_without_inference(tmp_path):
    lines = [trade(), trade(sym="FOOUSDT"), trade()]
    path = write(tmp_path, lines)
    run = decode_binance([path], instruments={"BTCUSDT": ("0.1", "0.001")}, infer=False)
    with pytest.raises(DecodeError) as info:
        collect(run)
    assert info.value.line == 2 and "FOOUSDT" in info.value.reason


def test_inference_and_sources(tmp_path):
    lines = [trade(sym="FOOUSDT", p="1.250", q="10"), trade(sym="FOOUSDT", t=2, p="1.300", q="4"),
             book(sym="FOOUSDT", b="1.375", bq="6", a="1.400", aq="0"),
             trade(sym="BTCUSDT", t=3, p="61800.3", q="0.5")]
    path = write(tmp_path, lines)
    run = decode_binance([path])  # FOOUSDT is nowhere: the scan pass infers it
    cols = collect(run)
    table = {r["symbol"]: r for r in run.instrument_info}
    assert table["FOOUSDT"]["increment_source"] == "inferred"
    assert (table["FOOUSDT"]["price_increment"], table["FOOUSDT"]["size_increment"]) == ("0.025", "2")
    # No depth here: trades carrying X (and bookTicker carrying E/T) identify USD-M.
    assert run.market_type == "usdm"
    assert table["BTCUSDT"]["increment_source"] == "builtin"
    assert table["BTCUSDT"]["price_increment"] == "0.1"
    assert list(cols["price"][:2]) == [50, 52] and list(cols["qty"][:2]) == [5, 2]
    assert [i.symbol for i in run.instruments] == ["FOOUSDT", "BTCUSDT"]
    # explicit beats everything; option covers the rest
    run = decode_binance([path], instruments=[
        {"symbol": "FOOUSDT", "price_increment": "0.005", "size_increment": "1", "index": 1},
        {"symbol": "ETHUSDT", "price_increment": "0.01", "size_increment": "0.01", "index": 0}],
        price_increment="0.01", size_increment="0.1")
    cols = collect(run)
    table = {r["symbol"]: r for r in run.instrument_info}
    assert table["FOOUSDT"]["index"] == 1 and table["FOOUSDT"]["increment_source"] == "explicit"
    assert table["BTCUSDT"]["index"] == 2 and table["BTCUSDT"]["increment_source"] == "option"
    assert [i.symbol for i in run.instruments] == ["ETHUSDT", "FOOUSDT", "BTCUSDT"]
    assert list(cols["instrument"]) == [1, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="without holes"):
        decode_binance([path], instruments=[{"symbol": "FOOUSDT", "price_increment": "0.005",
                                             "size_increment": "1", "index": 7}])


def test_a_malformed_line_does_not_poison_inference(tmp_path):
    # Line 2's first level is fine but its second is garbage: its values must not reach the GCD.
    lines = [trade(sym="FOOUSDT", p="1.25", q="2"),
             depth(sym="FOOUSDT", b=(("1.001", "2"), ("x", "2")), spot=True),
             trade(sym="FOOUSDT", t=2, p="1.50", q="4")]
    path, run, cols = run_lines(tmp_path, lines, price_increment=None, size_increment=None,
                                infer=True)
    assert run.instrument_info[0]["inferred_price_increment"] == "0.25"
    assert problems(cols) == [0, MALFORMED, 0] and list(cols["price"]) == [5, 6]


def test_gzip_truncated_and_multi_member(tmp_path):
    lines = [trade(t=i) for i in range(1, 2001)]
    text = ("\n".join(lines) + "\n").encode()
    whole = tmp_path / "whole.gz"
    whole.write_bytes(gzip.compress(text[:50_000]) + gzip.compress(text[50_000:]))  # 2 members
    cols = collect(decode_binance([whole], price_increment="0.1", size_increment="0.001"))
    assert list(cols["seq"]) == list(range(1, 2001))
    blob = gzip.compress(text)
    for keep, name in ((len(blob) * 2 // 3, "cut.gz"), (len(blob) - 4, "no-trailer.gz")):
        # cut inside the deflate data, and cut inside the trailer (every line whole, the stream not)
        cut = tmp_path / name
        cut.write_bytes(blob[:keep])
        present = zlib.decompressobj(31).decompress(blob[:keep])  # what the cut leaves readable
        cols = collect(decode_binance([cut], price_increment="0.1", size_increment="0.001"))
        whole = present.count(b"\n")
        assert list(cols["seq"]) == list(range(1, whole + 1)) and whole > 100
        assert problems(cols) == [0] * whole + [int(Rule.TRUNCATED_RECORD)]
        tail = present.rsplit(b"\n", 1)[1]
        assert cols.rec["rec_offset"][-1] == len(present) - len(tail)
        assert cols.rec["rec_length"][-1] == len(tail) and cols.rec["rec_line"][-1] == whole + 1
        assert "cut" in cols.reasons[whole] and str(cut) in cols.reasons[whole]
    assert tail == b""  # the trailer cut: an empty truncated record says the stream is not whole
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(blob[:200] + bytes(100) + blob[300:])
    with pytest.raises(DecodeError, match="corrupt gzip"):
        collect(decode_binance([corrupt], price_increment="0.1", size_increment="0.001"))


def test_file_objects_and_state_across_files(tmp_path):
    a = io.BytesIO(("\n".join([depth(U=1, u=2), snapshot(lid=2)]) + "\n").encode())
    b = io.BytesIO(gzip.compress((depth(U=3, u=4, pu=2) + "\n").encode()))
    run = decode_binance([a, b], price_increment="0.1", size_increment="0.001")
    cols = collect(run)
    # clear, 2 snapshot levels, the buffered diff (usdm keeps u == lastUpdateId), file 2's diff
    assert list(cols["seq"]) == [2, 2, 2, 2, 4] and run.counts["sequence_gaps"]["count"] == 0
    assert [f["lines"] for f in run.counts["files"]] == [2, 1]
    assert list(cols.rec["rec_file"]) == [0, 0, 1] and list(cols.event_record) == [1, 1, 1, 1, 2]


def test_inference_rereads_file_objects_beyond_the_sniff(tmp_path):
    # More text than the sniff reads ahead, a symbol that needs the scan pass, a file object.
    lines = [trade(sym="FOOUSDT", t=i, p=f"{1 + i % 7}.25", q="2") for i in range(1, 30001)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 3 << 20
    run = decode_binance([io.BytesIO(gzip.compress(data))])
    cols = collect(run)
    assert list(cols["seq"]) == list(range(1, 30001))
    info = run.instrument_info[0]
    assert info["increment_source"] == "inferred"
    assert (info["price_increment"], info["size_increment"]) == ("0.25", "2")
    assert run.bytes_read == len(data)


def test_api_validation():
    with pytest.raises(TypeError, match="floats are not exact"):
        decode_binance([], price_increment=0.1, size_increment="0.001")
    with pytest.raises(ValueError, match="give both"):
        decode_binance([], price_increment="0.1")
    with pytest.raises(ValueError, match="invalid increment"):
        decode_binance([], instruments={"X": ("0", "1")})
    with pytest.raises(ValueError, match="batch_size"):
        decode_binance([], batch_size=0)
    with pytest.raises(ValueError, match="max_held_records"):
        decode_binance([], max_held_records=0)
    run = decode_binance([])
    assert (run.format, run.requires_snapshot) == ("binance", True)
    assert collect(run)["kind"].size == 0 and run.counts["lines"] == 0
    assert run.inputs == [] and run.instruments == [] and run.counts["records"] == 0
    with pytest.raises(LockstepError, match="only once"):
        iter(run)
    with pytest.raises(LockstepError, match="not been iterated"):
        decode_binance([]).counts


def test_decimal_conversion():
    f = _binance.decimal_to_fixed
    assert f("61800.20", "0.1") == 618002
    assert f("61800.20000000", "0.01") == 6180020
    assert f("0.00000000", "0.00001") == 0
    assert f("2.5", "0.25") == 10
    assert f("1500", "100") == 15
    assert f("9223372036854775807", "1") == 2**63 - 1
    for bad, status in [("61800.25", "multiple"), ("1500", "multiple"), ("9223372036854775808", "overflow"),
                        ("1.", "decode"), (".5", "decode"), ("+1", "decode"), ("1e2", "decode"),
                        ("0x10", "decode"), (" 1", "decode")]:
        inc = "0.1" if bad != "1500" else "1000"
        with pytest.raises(ValueError, match=status):
            f(bad, inc)
    assert _binance.parse_increment_text("0.0100") == (1, -2)
    assert _binance.parse_increment_text("100") == (1, 2)


def test_decode_error_pickles():
    e = DecodeError("bad", path="a.gz", line=3, offset=10)
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.line, e2.offset, e2.reason, str(e2)) == ("a.gz", 3, 10, "bad", str(e))
    assert str(e) == "a.gz, line 3, offset 10: bad"
