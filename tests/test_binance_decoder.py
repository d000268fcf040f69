"""Binance capture decoding: real captures against a slow pure-Python oracle, and bad input.

The oracle (json.loads + Decimal) implements the documented rules independently of the C++
decoder: the encoding in include/lockstep/binance.hpp and Binance's update-id reconciliation.
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
import random
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from shared_data import SHARED_DATA, shared_file

from lockstep import _binance
from lockstep.errors import DecodeError, LockstepError
from lockstep.events import COLUMN_NAMES, EventKind, Flag, Side, empty_columns
from lockstep.importers import builtin_instruments, decode_binance

DATA = SHARED_DATA / "binance"
SPOT = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "spot" / "btcusdt_20240809.gz"]
USDM = [DATA / "usdm" / "btcusdt_20240808.gz"]

LAST, SNAP, BAD = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.BAD_TS_RECV)
L2, CLEAR, TRADE, BBO = (int(EventKind.L2_SET), int(EventKind.BOOK_CLEAR), int(EventKind.TRADE),
                         int(EventKind.VENUE_BBO))
BID, ASK, NOSIDE = int(Side.BID), int(Side.ASK), int(Side.NONE)


def need(paths):
    return [shared_file(str(p.relative_to(SHARED_DATA))) for p in paths]


def collect(run):
    """All batches of a run concatenated into one dict of arrays."""
    parts = [cols for cols, n in run]
    if not parts:
        return {name: arr[:0] for name, arr in empty_columns(0).items()}
    return {name: np.concatenate([p[name] for p in parts]) for name in COLUMN_NAMES}


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

    def run(self, paths):
        for fi, path in enumerate(paths):
            with gzip.open(path, "rb") as f:
                lines = f.read().split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            self.lines_per_file.append(len(lines))
            for ln, raw in enumerate(lines, 1):
                self.line(raw, (fi, ln))
        for sym, msgs in self.pending.items():
            for _, where in msgs:
                self.skip("depth_unsynced", where)
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
            self.events.append((te, ts, d["t"], idx, TRADE, ASK if d["m"] else BID, LAST | flags,
                                self.fixed(d["p"], p), self.fixed(d["q"], q)))
        elif kind == "bookTicker":
            self.messages["book_ticker"] += 1
            self.events.append((te, ts, d["u"], idx, BBO, BID, flags,
                                self.fixed(d["b"], p), self.fixed(d["B"], q)))
            self.events.append((te, ts, d["u"], idx, BBO, ASK, LAST | flags,
                                self.fixed(d["a"], p), self.fixed(d["A"], q)))
        else:
            assert kind.startswith("depth") and d["e"] == "depthUpdate"
            self.messages["depth"] += 1
            market = "usdm" if "pu" in d else "spot"
            assert self.market in (None, market)
            self.market = market
            msg = (d["U"], d["u"], d.get("pu"), te, self.levels(sym, d["b"], d["a"]))
            if sym not in self.state:
                self.pending.setdefault(sym, []).append((msg, where))
            else:
                self.apply(sym, msg, ts, flags, where)

    def snapshot(self, o, ts, flags):
        self.messages["snapshot"] += 1
        assert len(self.index) == 1, "oracle: snapshot needs exactly one symbol seen"
        (sym,) = self.index
        idx = self.index[sym]
        ms = o.get("T", o.get("E"))
        te = ms * 1_000_000 if ms is not None else ts
        lid = o["lastUpdateId"]
        levels = self.levels(sym, o["bids"], o["asks"])
        self.events.append((te, ts, lid, idx, CLEAR, NOSIDE,
                            SNAP | flags | (LAST if not levels else 0), 0, 0))
        for i, (side, px, qty) in enumerate(levels):
            self.events.append((te, ts, lid, idx, L2, side,
                                SNAP | flags | (LAST if i == len(levels) - 1 else 0), px, qty))
        self.state[sym] = ("await", lid)
        for msg, where in self.pending.pop(sym, []):
            if self.apply(sym, msg, ts, flags, where):
                self.replayed += 1

    def apply(self, sym, msg, ts, flags, where):
        first, final, prev, te, levels = msg
        spot = self.market == "spot"
        mode, x = self.state[sym]
        if mode == "await":
            if (final <= x) if spot else (final < x):
                self.skip("depth_in_snapshot", where)
                return False
            if not ((first <= x + 1 <= final) if spot else (first <= x <= final)):
                self.gaps.append(where)
        else:
            if final <= x:
                self.skip("depth_stale", where)
                return False
            if not ((first == x + 1) if spot else (prev == x)):
                self.gaps.append(where)
        self.state[sym] = ("live", final)
        if not levels:
            self.skip("depth_no_levels", where)
            return True
        idx = self.index[sym]
        for i, (side, px, qty) in enumerate(levels):
            self.events.append((te, ts, final, idx, L2, side,
                                flags | (LAST if i == len(levels) - 1 else 0), px, qty))
        return True

    def columns(self):
        names = ["ts_event", "ts_recv", "seq", "instrument", "kind", "side", "flags", "price",
                 "qty"]
        dtypes = {n: a.dtype for n, a in empty_columns(0).items()}
        cols = {n: np.array([e[i] for e in self.events], dtype=dtypes[n])
                for i, n in enumerate(names)}
        cols["order_id"] = np.zeros(len(self.events), dtype=np.uint64)
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


def test_events_identical_to_oracle(dataset):
    files, run, cols, oracle = dataset
    ref = oracle.columns()
    assert len(cols["kind"]) == len(ref["kind"])
    for name in COLUMN_NAMES:
        bad = np.flatnonzero(cols[name] != ref[name])
        assert bad.size == 0, f"{name} differs first at event {bad[0]}: " \
                              f"{cols[name][bad[0]]} != {ref[name][bad[0]]}"


def test_counts_per_kind_match_oracle(dataset):
    files, run, cols, oracle = dataset
    kinds = Counter(e[4] for e in oracle.events)
    ev = run.counts["events"]
    assert ev == {"l2_set": kinds[L2], "book_clear": kinds[CLEAR], "trade": kinds[TRADE],
                  "venue_bbo": kinds[BBO], "total": len(oracle.events)}
    assert ev["book_clear"] == 1
    msgs = run.counts["messages"]
    assert msgs == {"depth": oracle.messages["depth"], "trade": oracle.messages["trade"],
                    "book_ticker": oracle.messages["book_ticker"], "snapshot": 1}
    skipped = {k: v["count"] for k, v in run.counts["skipped"].items() if v["count"]}
    assert skipped == dict(oracle.skipped)
    assert run.counts["sequence_gaps"]["count"] == len(oracle.gaps) == 0
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
    assert run.instruments == [{
        "index": 0, "symbol": "BTCUSDT", "venue": venue, "price_increment": p,
        "size_increment": q, "increment_source": "builtin", "inferred_price_increment": None,
        "inferred_size_increment": None}]


def test_inference_on_real_data(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, infer=True)
    cols2 = collect(run)
    (row,) = run.instruments
    # Every price/size of the capture lies on the exchange grid, and the GCD finds exactly it.
    assert row["increment_source"] == "builtin"
    assert (row["inferred_price_increment"], row["inferred_size_increment"]) == ("0.1", "0.001")
    assert np.array_equal(cols2["price"], cols["price"])


def test_explicit_increments_scale_values(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, instruments={"btcusdt": ("0.01", "0.0001")}, batch_size=100_003)
    cols2 = collect(run)
    assert run.instruments[0]["increment_source"] == "explicit"
    assert np.array_equal(cols2["price"], cols["price"] * 10)
    assert np.array_equal(cols2["qty"], cols["qty"] * 10)
    assert np.array_equal(cols2["seq"], cols["seq"])


def test_small_batches_and_chunks_equal_one_batch(usdm):
    files, _, cols, _ = usdm
    run = decode_binance(files, price_increment="0.1", size_increment=Decimal("0.001"),
                         batch_size=4099)
    batches = [(c, n) for c, n in run]
    assert all(n <= 4099 for _, n in batches) and len(batches) > 100
    got = {name: np.concatenate([c[name] for c, _ in batches]) for name in COLUMN_NAMES}
    for name in COLUMN_NAMES:
        assert np.array_equal(got[name], cols[name]), name
    assert run.instruments[0]["increment_source"] == "option"


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
    out = empty_columns(1 << 20)
    size = pos = 0
    while pos < len(text):
        n = rng.choice([1, 2, 3, 17, 100, 1000, 65536])
        chunk = text[pos:pos + n]
        consumed, size, st = dec.feed(chunk, out, size)
        assert st == _binance.STATUS_OK and consumed == len(chunk)
        pos += n
    size, st = dec.finish(out, size)
    assert st == _binance.STATUS_OK
    for name in COLUMN_NAMES:
        assert np.array_equal(out[name][:size], cols[name][:size]), name


# ---------------------------------------------------------------------------------------------
# Hand-made input

TS = 1723161255000000000
E0 = 1723161256000


def trade(ts=TS, sym="BTCUSDT", t=1, p="61800.3", q="0.006", m=False, x="MARKET"):
    return (f'{ts} {{"stream":"{sym.lower()}@trade","data":{{"e":"trade","E":{E0},"T":{E0},'
            f'"s":"{sym}","t":{t},"p":"{p}","q":"{q}","X":"{x}","m":{str(m).lower()}}}}}')


def book(ts=TS, sym="BTCUSDT", u=10, b="61800.2", bq="1.000", a="61800.3", aq="2.000"):
    return (f'{ts} {{"stream":"{sym.lower()}@bookTicker","data":{{"e":"bookTicker","u":{u},'
            f'"s":"{sym}","b":"{b}","B":"{bq}","a":"{a}","A":"{aq}","T":{E0},"E":{E0}}}}}')


def depth(ts=TS, sym="BTCUSDT", U=1, u=2, pu=0, b=(("61800.2", "1.000"),), a=(), spot=False):
    lv = lambda levels: json.dumps([list(x) for x in levels], separators=(",", ":"))
    pu_part = "" if spot else f',"pu":{pu}'
    return (f'{ts} {{"stream":"{sym.lower()}@depth@0ms","data":{{"e":"depthUpdate","E":{E0},'
            f'"T":{E0},"s":"{sym}","U":{U},"u":{u}{pu_part},"b":{lv(b)},"a":{lv(a)}}}}}')


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
    kw.setdefault("price_increment", "0.1")
    kw.setdefault("size_increment", "0.001")
    path = write(tmp_path, lines, end=end)
    run = decode_binance([path], **kw)
    batches = []
    with pytest.raises(DecodeError) as info:
        for cols, n in run:
            batches.append(n)
    e = info.value
    assert e.path == str(path) and e.line == line, str(e)
    for w in words:
        assert w in e.reason, (w, e.reason)
    assert isinstance(e, LockstepError)
    return e, run, sum(batches)


def test_basic_messages(tmp_path):
    path, run, cols = run_lines(tmp_path, [trade(m=True), book(), trade(t=2, m=False)])
    assert list(cols["kind"]) == [TRADE, BBO, BBO, TRADE]
    assert list(cols["side"]) == [ASK, BID, ASK, BID]  # m=true: buyer is maker, seller aggressed
    assert list(cols["flags"]) == [LAST, 0, LAST, LAST]
    assert list(cols["price"]) == [618003, 618002, 618003, 618003]
    assert list(cols["qty"]) == [6, 1000, 2000, 6]
    assert list(cols["seq"]) == [1, 10, 10, 2]
    assert cols["ts_event"][0] == E0 * 1_000_000


def test_malformed_json_is_an_error(tmp_path):
    lines = [trade(), trade(t=2), trade(t=3)[:-5] + "}x}}"]
    e, run, n = expect_error(tmp_path, lines, 3, "malformed JSON")
    assert n == 2  # the complete lines before the error still reached the consumer
    assert e.offset > len(lines[0]) + len(lines[1])
    assert run.counts["lines"] == 3 and not run.complete


def test_unknown_stream_and_replies_are_counted_skips(tmp_path):
    agg = (f'{TS} {{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{E0},"s":"BTCUSDT",'
           f'"a":5,"p":"1.5","q":"2","f":1,"l":2,"T":{E0},"m":true}}}}')
    partial = f'{TS} {{"stream":"btcusdt@depth20@100ms","data":{{"lastUpdateId":1,"bids":[],"asks":[]}}}}'
    reply = f'{TS} {{"result":null,"id":1}}'
    path, run, cols = run_lines(tmp_path, [trade(), agg, reply, "", partial, trade(t=2)])
    sk = run.counts["skipped"]
    assert sk["unknown_stream"]["count"] == 2
    assert [(x["path"], x["line"]) for x in sk["unknown_stream"]["first"]] == [(str(path), 2),
                                                                              (str(path), 5)]
    assert sk["not_stream_message"]["count"] == 1 and sk["not_stream_message"]["first"][0]["line"] == 3
    assert sk["empty_line"]["count"] == 1 and sk["empty_line"]["first"][0]["line"] == 4
    assert list(cols["seq"]) == [1, 2]


def test_non_market_trade_is_skipped(tmp_path):
    path, run, cols = run_lines(tmp_path, [trade(x="INSURANCE_FUND"), trade(t=2)])
    assert run.counts["skipped"]["non_market_trade"]["first"][0]["line"] == 1
    assert list(cols["seq"]) == [2]


@pytest.mark.parametrize("bad,words", [
    ("abc", ["trade price", "not a decimal number", '"abc"']),
    ("61800.25", ["trade price", "not a multiple of the increment 0.1"]),
    ("1e5", ["not a decimal number"]),
    ("-5", ["negative"]),
    ("", ["not a decimal number"]),
    ("99999999999999999999999.1", ["overflows"]),
])
def test_bad_prices(tmp_path, bad, words):
    expect_error(tmp_path, [trade(), book(), trade(p=bad)], 3, *words)


def test_not_multiple_size_names_file_line_and_level(tmp_path):
    lines = [trade(), depth(b=(("61800.2", "1.000"), ("61800.1", "1.0005")))]
    expect_error(tmp_path, lines, 2, "bid quantity of level 1", '"1.0005"',
                 "not a multiple of the increment 0.001")


def test_missing_and_ill_typed_fields(tmp_path):
    no_p = trade().replace('"p":"61800.3",', "")
    expect_error(tmp_path, [trade(), no_p], 2, 'missing field "p"')
    str_t = trade().replace('"t":1,', '"t":"1",')
    expect_error(tmp_path, [str_t], 1, 'field "t" is not a non-negative integer')
    no_data = f'{TS} {{"stream":"btcusdt@trade"}}'
    expect_error(tmp_path, [no_data], 1, 'missing field "data"')
    bad_levels = depth().replace('"b":[["61800.2","1.000"]]', '"b":"x"')
    expect_error(tmp_path, [bad_levels], 1, 'field "b" is not an array')
    wrong_type = trade().replace('"e":"trade"', '"e":"aggTrade"')
    expect_error(tmp_path, [wrong_type], 1, 'event type "aggTrade"')
    mismatch = trade().replace('"s":"BTCUSDT"', '"s":"ETHUSDT"')
    expect_error(tmp_path, [mismatch], 1, 'does not match symbol "ETHUSDT"')
    dup = trade().replace('"q":"0.006"', '"q":"0.006","q":"0.007"')
    expect_error(tmp_path, [dup], 1, 'duplicate key "q"')
    neg_e = trade().replace(f'"E":{E0}', '"E":-1')
    # A time field that is present must be valid even when the other one would do.
    expect_error(tmp_path, [neg_e], 1, 'field "E" is not a non-negative integer')
    x_num = trade().replace('"X":"MARKET"', '"X":1')
    expect_error(tmp_path, [x_num], 1, 'field "X" is not a string')
    only_e = trade().replace(f'"T":{E0},', "").replace(f'"E":{E0}', '"E":1.5')
    expect_error(tmp_path, [only_e], 1, 'missing field "T"')


def test_receive_timestamp_errors(tmp_path):
    expect_error(tmp_path, ['{"stream":"x@trade","data":{}}'], 1, "receive timestamp")
    expect_error(tmp_path, [trade(ts="99999999999999999999")], 1, "out of range")
    expect_error(tmp_path, [trade().replace(" ", "\t", 1)], 1, "space after the receive")


def test_huge_times_overflow(tmp_path):
    big = trade().replace(f'"T":{E0}', '"T":18446744073709551615')
    expect_error(tmp_path, [big], 1, "transaction time T", "out of the nanosecond range")
    huger = trade().replace(f'"T":{E0}', '"T":184467440737095516150')
    expect_error(tmp_path, [huger], 1, 'field "T" is not a non-negative integer')


def test_truncated_last_line_is_a_counted_skip(tmp_path):
    lines = [trade(), trade(t=2), trade(t=3)[:57]]
    path, run, cols = run_lines(tmp_path, lines, end="")
    tr = run.counts["skipped"]["truncated_line"]
    assert tr["count"] == 1 and tr["first"][0] == {"path": str(path), "line": 3,
                                                   "offset": len(lines[0]) + len(lines[1]) + 2}
    assert list(cols["seq"]) == [1, 2] and run.complete
    # A complete final line without its newline is simply decoded.
    path, run, cols = run_lines(tmp_path, [trade(), trade(t=2)], end="")
    assert list(cols["seq"]) == [1, 2] and run.counts["skipped"]["truncated_line"]["count"] == 0


def test_truncated_line_in_the_middle_is_an_error(tmp_path):
    expect_error(tmp_path, [trade(), trade(t=2)[:80], trade(t=3)], 2, "malformed JSON",
                 "unterminated")


def test_garbage_bytes(tmp_path):
    bad_utf8 = trade().encode().replace(b'"BTCUSDT"', b'"BTC\xff\xfeUSDT"')
    expect_error(tmp_path, [trade().encode(), bad_utf8], 2, "invalid UTF-8")
    noise = bytes(range(256)).replace(b"\n", b"")
    expect_error(tmp_path, [trade().encode(), noise], 2)
    ctrl = trade().encode().replace(b"MARKET", b"MAR\x01KET")
    expect_error(tmp_path, [ctrl], 1, "control character")


def test_crlf_and_blank_lines(tmp_path):
    path, run, cols = run_lines(tmp_path, [trade() + "\r", "", "  \r", trade(t=2) + "\r"])
    assert list(cols["seq"]) == [1, 2]
    assert run.counts["skipped"]["empty_line"]["count"] == 2


def test_ts_recv_going_back_is_raised_flagged_and_counted(tmp_path):
    lines = [trade(ts=TS + 10), book(ts=TS + 5), trade(ts=TS + 20, t=2)]
    path, run, cols = run_lines(tmp_path, lines)
    assert list(cols["ts_recv"]) == [TS + 10, TS + 10, TS + 10, TS + 20]
    assert list(cols["flags"]) == [LAST, BAD, LAST | BAD, LAST]
    raised = run.counts["ts_recv_raised"]
    assert raised["count"] == 1
    assert raised["first"][0]["line"] == 2 and raised["first"][0]["got"] == TS + 5
    assert raised["first"][0]["expected"] == TS + 10


def test_depth_buffering_and_usdm_reconciliation(tmp_path):
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
    assert list(cols["kind"]) == [CLEAR, L2, L2, L2, L2, L2, L2, L2]
    assert list(cols["seq"]) == [100, 100, 100, 100, 105, 115, 125, 130]
    # buffered diffs come right after the snapshot, with its ts_recv
    assert list(cols["ts_recv"][:5]) == [TS + 1] * 5
    assert list(cols["qty"][4:5]) == [0]
    assert run.counts["depth_buffered"] == 3 and run.counts["depth_replayed"] == 2


def test_spot_rules_and_bridge_gap(tmp_path):
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


def test_diffs_without_snapshot_are_counted_unsynced(tmp_path):
    lines = [depth(U=1, u=2), depth(U=3, u=4, pu=2)]
    path, run, cols = run_lines(tmp_path, lines)
    assert len(cols["kind"]) == 0
    un = run.counts["skipped"]["depth_unsynced"]
    assert un["count"] == 2 and [x["line"] for x in un["first"]] == [1, 2]


def test_snapshot_attribution(tmp_path):
    expect_error(tmp_path, [snapshot()], 1, "names no symbol", "none was seen")
    expect_error(tmp_path, [trade(), trade(sym="ETHUSDT"), snapshot()], 3, "2 symbols")
    path, run, cols = run_lines(tmp_path, [trade(), trade(sym="ETHUSDT"), snapshot()],
                                snapshot_symbol="ethusdt")
    assert cols["instrument"][2] == 1 and cols["kind"][2] == CLEAR


def test_mixed_markets_is_an_error(tmp_path):
    expect_error(tmp_path, [depth(spot=True), depth(U=3, u=4, pu=2)], 2, "spot and USD-M")


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
    table = {r["symbol"]: r for r in run.instruments}
    assert table["FOOUSDT"]["increment_source"] == "inferred"
    assert (table["FOOUSDT"]["price_increment"], table["FOOUSDT"]["size_increment"]) == ("0.025", "2")
    # No depth here: trades carrying X (and bookTicker carrying E/T) identify USD-M.
    assert run.market_type == "usdm"
    assert table["BTCUSDT"]["increment_source"] == "builtin"
    assert table["BTCUSDT"]["price_increment"] == "0.1"
    assert list(cols["price"][:2]) == [50, 52] and list(cols["qty"][:2]) == [5, 2]
    # explicit beats everything; option covers the rest
    run = decode_binance([path], instruments=[{"symbol": "FOOUSDT", "price_increment": "0.005",
                                               "size_increment": "1", "index": 7}],
                         price_increment="0.01", size_increment="0.1")
    collect(run)
    table = {r["symbol"]: r for r in run.instruments}
    assert table["FOOUSDT"]["index"] == 7 and table["FOOUSDT"]["increment_source"] == "explicit"
    assert table["BTCUSDT"]["index"] == 8 and table["BTCUSDT"]["increment_source"] == "option"


def test_gzip_truncated_and_multi_member(tmp_path):
    lines = [trade(t=i) for i in range(1, 2001)]
    text = ("\n".join(lines) + "\n").encode()
    whole = tmp_path / "whole.gz"
    whole.write_bytes(gzip.compress(text[:50_000]) + gzip.compress(text[50_000:]))  # 2 members
    cols = collect(decode_binance([whole], price_increment="0.1", size_increment="0.001"))
    assert list(cols["seq"]) == list(range(1, 2001))
    cut = tmp_path / "cut.gz"
    blob = gzip.compress(text)
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    run = decode_binance([cut], price_increment="0.1", size_increment="0.001")
    got = []
    with pytest.raises(DecodeError) as info:
        for c, n in run:
            got.extend(c["seq"].tolist())
    e = info.value
    assert e.path == str(cut) and "truncated gzip" in e.reason
    assert got == list(range(1, len(got) + 1)) and len(got) > 100
    complete = text[: e.offset]
    assert e.line == complete.count(b"\n") + 1 and len(got) == complete.count(b"\n")
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


def test_inference_rereads_file_objects_beyond_the_sniff(tmp_path):
    # More text than the sniff reads ahead, a symbol that needs the scan pass, a file object.
    lines = [trade(sym="FOOUSDT", t=i, p=f"{1 + i % 7}.25", q="2") for i in range(1, 30001)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 3 << 20
    run = decode_binance([io.BytesIO(gzip.compress(data))])
    cols = collect(run)
    assert list(cols["seq"]) == list(range(1, 30001))
    assert run.instruments[0]["increment_source"] == "inferred"
    assert (run.instruments[0]["price_increment"], run.instruments[0]["size_increment"]) == ("0.25", "2")
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
    run = decode_binance([])
    assert collect(run)["kind"].size == 0 and run.counts["lines"] == 0
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
