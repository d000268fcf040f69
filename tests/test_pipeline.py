"""The data path end to end: raw -> normalized -> validated -> canonical or quarantine.

Hand-built streams with verdicts worked out by hand, the real fixtures, and corrupted copies of
them made here (a line removed, garbage, a crossed level, a torn tail): each must land in quarantine
under the right rule, and for every import canonical + quarantined == read.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from lockstep.backtest.replay import replay
from lockstep.backtest.runner import run_backtest
from lockstep.data.dataset import Dataset, Instrument
from lockstep.data.importers.normalized import ChunkBuilder, InputFile, Rule
from lockstep.data.pipeline import (
    PipelineError,
    ValidationConfig,
    import_data,
    parse_duration_ns,
    promote_source,
    validate_source,
)
from lockstep.events import EventKind, Flag, Side
from lockstep.venue.matching import MatchReject

BYBIT = "bybit/xrpusdt_ob500_20241201.data.zip"
TARDIS = "tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"


# --- a tiny line format decoded by a test run, so every verdict can be worked out by hand ------
#
# "snap,T,BID,ASK"   -> BOOK_CLEAR + bid level + ask level (qty 5 each), a snapshot
# "bid,T,PX,QTY" / "ask,T,PX,QTY" -> one level
# "trade,T,PX,QTY"   -> a trade
# "gap,T"            -> GAP (expected 8, found 9) then a bid level at 99
# "lat,T,TS_EVENT"   -> a trade at 100 whose ts_event is given
# anything else      -> malformed_record


class LineRun:
    format = "tardis"
    requires_snapshot = True

    def __init__(self, path: Path, capacity: int = 3) -> None:
        self.path = path
        self.capacity = capacity
        self.instruments = [Instrument("X", "test", "0.01", "1")]
        self.inputs: list[InputFile] = []
        self.counts: dict = {}

    def __iter__(self):
        b = ChunkBuilder(capacity=self.capacity)
        offset = 0
        for number, line in enumerate(self.path.read_bytes().split(b"\n"), start=1):
            if not line:
                offset += 1
                continue
            f = line.decode().split(",")
            ok = f[0] in ("snap", "bid", "ask", "trade", "gap", "lat")
            b.record(0, number, offset, len(line), Rule.OK if ok else Rule.MALFORMED_RECORD,
                     None if ok else f"line {number}: not a record")
            offset += len(line) + 1
            if ok:
                t = int(f[1])
                if f[0] == "snap":
                    b.event(t, t, 0, 0, EventKind.BOOK_CLEAR, 0, Flag.SNAPSHOT, 0, 0)
                    b.event(t, t, 0, 0, EventKind.L2_SET, Side.BID, Flag.SNAPSHOT, int(f[2]), 5)
                    b.event(t, t, 0, 0, EventKind.L2_SET, Side.ASK, Flag.SNAPSHOT | Flag.LAST, int(f[3]), 5)
                elif f[0] in ("bid", "ask"):
                    side = Side.BID if f[0] == "bid" else Side.ASK
                    b.event(t, t, 0, 0, EventKind.L2_SET, side, Flag.LAST, int(f[2]), int(f[3]))
                elif f[0] == "trade":
                    b.event(t, t, 0, 0, EventKind.TRADE, Side.BID, Flag.LAST, int(f[2]), int(f[3]))
                elif f[0] == "gap":
                    b.event(t, t, 9, 0, EventKind.GAP, 0, Flag.LAST, 0, 0, 8)
                    b.event(t, t, 9, 0, EventKind.L2_SET, Side.BID, Flag.LAST, 99, 1)
                else:
                    b.event(int(f[2]), t, 0, 0, EventKind.TRADE, Side.BID, Flag.LAST, 100, 1)
            if b.full:
                yield b.take()
        if (chunk := b.take()) is not None:
            yield chunk


def line_import(tmp_path: Path, text: str, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "stream.txt"
    src.write_text(text)
    capacity = kw.pop("capacity", 3)
    return import_data("tardis", [src], data=str(tmp_path / "root"), name="lines",
                       run=LineRun(src, capacity), **kw)


def quarantined(result) -> dict[int, tuple[str, int]]:
    """record index -> (rule, cause) from the quarantine's records.parquet."""
    if result.paths.get("quarantine") is None:
        return {}
    t = pq.read_table(os.path.join(result.paths["quarantine"], "records.parquet")).to_pydict()
    return {r: (rule, cause) for r, rule, cause in zip(t["record"], t["rule"], t["cause"])}


class FailingRun(LineRun):
    """A LineRun that fails with `error` after handing out `chunks` chunks."""

    def __init__(self, path: Path, error: BaseException, chunks: int = 2) -> None:
        super().__init__(path, capacity=2)
        self.error = error
        self.chunks = chunks

    def __iter__(self):
        for k, chunk in enumerate(super().__iter__()):
            if k == self.chunks:
                raise self.error
            yield chunk


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("error", [KeyboardInterrupt(), PipelineError("the decoder gave up")],
                         ids=["ctrl-c", "error"])
@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_a_failed_import_leaves_the_root_as_it_found_it(tmp_path, error, named):
    """Raw copy, normalized files, quarantine entry, staging folder, empty folders: all go; an
    earlier import's areas stay."""
    earlier = line_import(tmp_path, "snap,1,99,101\nbid,2,98,1\n")
    assert earlier.verdict() == "pass"
    root = tmp_path / "root"
    before = tree(root)
    src = tmp_path / "failing.txt"
    src.write_text("snap,1,99,101\nbid,2,98,1\njunk\nask,3,102,1\nbid,4,97,1\njunk\ntrade,5,99,1\n")
    with pytest.raises(type(error)):
        import_data("tardis", [src], data=str(root), name="failing" if named else None,
                    run=FailingRun(src, error))
    assert tree(root) == before
    fresh = tmp_path / "fresh"  # a root the failed import created is taken away whole
    with pytest.raises(type(error)):
        import_data("tardis", [src], data=str(fresh), run=FailingRun(src, error))
    assert not fresh.exists()


STREAM = "\n".join([
    "bid,1,99,3",      # 0 delta before any snapshot
    "snap,2,100,101",  # 1 book valid: 100 / 101
    "bid,3,99,4",      # 2
    "trade,4,100,1",   # 3
    "junk",            # 4 malformed
    "gap,5",           # 5 GAP: book invalid from here
    "ask,6,102,1",     # 6 book record while invalid -> quarantined, caused by 5
    "trade,7,100,1",   # 7 trades keep flowing
    "snap,8,100,101",  # 8 restores the book
    "ask,9,100,1",     # 9 crosses (bid 100 >= ask 100)
    "bid,10,98,1",     # 10 invalid since 9
    "ask,11,103,1",    # 11 invalid since 9
]) + "\n"


@pytest.mark.parametrize("capacity", [1, 3, 100])
def test_hand_built_stream_verdicts(tmp_path, capacity):
    r = line_import(tmp_path, STREAM, capacity=capacity)
    assert (r.records_read, r.records_canonical, r.records_quarantined) == (12, 5, 7)
    assert quarantined(r) == {
        0: ("deltas_before_snapshot", -1), 4: ("malformed_record", -1), 5: ("sequence_gap", -1),
        6: ("sequence_gap", 5), 9: ("crossed_book", -1), 10: ("crossed_book", 9), 11: ("crossed_book", 9),
    }
    ds = Dataset.open(r.dataset)
    t = ds.read_all().to_pydict()
    kinds = [EventKind(k).name for k in t["kind"]]
    assert kinds == ["BOOK_CLEAR", "L2_SET", "L2_SET", "L2_SET", "TRADE", "GAP", "TRADE",
                     "BOOK_CLEAR", "L2_SET", "L2_SET", "GAP"]
    assert t["seq"][5] == 9 and t["order_id"][5] == 8  # the gap's own ids travel with its marker
    # segments are cut at each invalidation; the first stretch ends at the restoring snapshot
    assert [(s["first_row"], s["rows"]) for s in r.segments] == [(0, 5), (5, 5), (10, 1)]
    assert [(s["from_row"], s["to_row"], s["rule"]) for s in r.invalid_stretches] == [
        (5, 7, "sequence_gap"), (10, None, "crossed_book")]
    report = ds.manifest["source"]["validation_report"]
    assert report["records_read"] == report["records_canonical"] + report["records_quarantined"] == 12
    assert report["verdict"] == "partial"


def test_quarantine_keeps_positions_and_raw_bytes(tmp_path):
    r = line_import(tmp_path, STREAM)
    t = pq.read_table(os.path.join(r.paths["quarantine"], "records.parquet")).to_pydict()
    lines = STREAM.splitlines()
    for rec, line, offset, raw in zip(t["record"], t["line"], t["offset"], t["raw"]):
        assert raw == lines[rec].encode()
        assert line == rec + 1
        assert STREAM.encode()[offset:offset + len(raw)] == raw
    meta = json.loads(Path(r.paths["quarantine"], "quarantine.json").read_text())
    assert meta["records"] == 7
    gap = next(e for e in meta["entries"] if e["rule"] == "sequence_gap" and e["cause_record"] is None)
    assert "expected 8, found 9" in gap["reason"] and gap["first"]["line"] == 6


def test_replay_across_a_gap_reports_the_invalid_stretch(tmp_path):
    r = line_import(tmp_path, STREAM)
    tob = tmp_path / "tob.parquet"
    res = replay(r.dataset, top_of_book=str(tob))
    assert [(s["from_position"], s["to_position"]) for s in res.invalid_stretches] == [(5, 7), (10, None)]
    rows = pq.read_table(tob).to_pydict()
    # the row of each GAP says invalid, with no prices; the snapshot's row is valid again
    for valid, bid in zip(rows["book_valid"], rows["bid_price"]):
        assert valid or bid is None
    assert rows["book_valid"].count(False) >= 2
    assert res.top_of_book["X"].bid_price is None  # invalid at the end: no touch shown


def test_feed_latency_warns_by_default_and_quarantines_when_asked(tmp_path):
    text = "snap,10,100,101\nlat,20,25\nlat,30,40\n"  # the last one: ts_event after ts_recv
    warned = line_import(tmp_path / "a", text)
    # both "lat" records have ts_recv before ts_event: negative latency, below the default 0
    assert warned.records_quarantined == 0 and warned.warnings_by_rule == {"feed_latency": 2}
    strict = line_import(tmp_path / "b", text, validation=ValidationConfig.from_options(
        ["feed_latency=quarantine"], max_latency="4ns"))
    # 20 - 25 < 0 and 30 - 40 < 0 (ts_recv before ts_event); 10 - 10 = 0 is allowed
    assert strict.quarantined_by_rule == {"feed_latency": 2}
    assert quarantined(strict) == {1: ("feed_latency", -1), 2: ("feed_latency", -1)}


def test_validation_config_rejects_bad_rules():
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        ValidationConfig.from_options(["nope=warn"])
    with pytest.raises(ValueError, match="action 'maybe'"):
        ValidationConfig.from_options(["crossed_book=maybe"])
    with pytest.raises(ValueError, match="RULE=ACTION"):
        ValidationConfig.from_options(["crossed_book"])
    assert parse_duration_ns("-1.5s") == -1_500_000_000 and parse_duration_ns("250ms") == 250_000_000
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ns("soon")


def test_stop_after_normalize_then_promote_gives_the_same_dataset(tmp_path):
    full = line_import(tmp_path / "a", STREAM)
    staged = line_import(tmp_path / "b", STREAM, stop_after="normalize")
    assert staged.paths.get("canonical") is None and staged.verdict() == "not validated"
    promoted = promote_source(staged.paths["normalized"], data=str(tmp_path / "b" / "root"))
    assert (promoted.records_canonical, promoted.records_quarantined) == (5, 7)
    a = Dataset.open(full.dataset).read_all()
    b = Dataset.open(promoted.dataset).read_all()
    assert a.equals(b)
    assert quarantined(promoted) == quarantined(full)


def test_validate_alone_writes_nothing(tmp_path):
    r = line_import(tmp_path, STREAM, stop_after="normalize")
    root = tmp_path / "root"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    v = validate_source(r.paths["normalized"], data=str(root))
    assert (v.records_canonical, v.records_quarantined) == (5, 7)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_promoting_a_quarantine_entry_again_after_a_fix(tmp_path):
    text = "snap,10,100,101\nlat,20,25\ntrade,30,100,1\n"
    strict = ValidationConfig.from_options(["feed_latency=quarantine"])
    r = line_import(tmp_path, text, validation=strict)
    assert r.records_quarantined == 1
    # the fix: a looser latency bound. The quarantined record is decoded again from its raw bytes.
    src = tmp_path / "requeued.txt"
    again = promote_source(r.paths["quarantine"], data=str(tmp_path / "root"),
                           validation=ValidationConfig.from_options(["feed_latency=quarantine"],
                                                                    min_latency="-10ns"),
                           name="lines-fixed", run_factory=lambda paths: LineRun(Path(paths[0])))
    assert (again.records_read, again.records_canonical) == (1, 1)
    assert Dataset.open(again.dataset).rows == 1
    # the records decoded again sit under derived/, so positions reported for them name a real file
    (kept,) = (tmp_path / "root" / "derived" / "requeued").rglob("*requeued-stream.txt")
    assert kept.read_text() == "lat,20,25\n"
    del src


def test_reimport_makes_a_new_version_never_overwrites(tmp_path):
    a = line_import(tmp_path, STREAM)
    b = line_import(tmp_path, STREAM)
    assert a.dataset != b.dataset and a.import_id == b.import_id
    assert Dataset.open(a.dataset).read_all().equals(Dataset.open(b.dataset).read_all())


def test_missing_input_and_unknown_format(tmp_path):
    with pytest.raises(PipelineError, match="no such file"):
        import_data("bybit", [tmp_path / "nope.data"], data=str(tmp_path))
    with pytest.raises(PipelineError, match="unknown format"):
        import_data("csv", [tmp_path / "nope.data"], data=str(tmp_path))


# --- real fixtures and corrupted copies ------------------------------------------------------


def bybit_lines() -> list[bytes]:
    with zipfile.ZipFile(shared_file(BYBIT)) as z:
        return z.read(z.namelist()[0]).splitlines()


def write_lines(path: Path, lines: list[bytes], newline_at_end: bool = True) -> Path:
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end else b""))
    return path


def test_bybit_fixture_passes_whole(tmp_path):
    r = import_data("bybit", [shared_file(BYBIT)], data=str(tmp_path))
    assert r.verdict() == "pass"
    assert r.records_read == r.records_canonical == len(bybit_lines()) == 50
    ds = Dataset.open(r.dataset)
    assert ds.manifest["source"]["validation_report"]["records_quarantined"] == 0
    assert not replay(ds).invalid_stretches


def test_bybit_line_removed_opens_a_gap(tmp_path):
    lines = bybit_lines()
    cut = write_lines(tmp_path / "cut.data", lines[:20] + lines[21:])  # delta 20 lost
    r = import_data("bybit", [cut], data=str(tmp_path / "root"))
    assert r.records_read == 49 == r.records_canonical + r.records_quarantined
    # the delta after the lost one reveals the gap; every later delta waits for a snapshot that
    # never comes, so they are all quarantined, pointing at the first
    assert r.quarantined_by_rule == {"sequence_gap": 49 - 20}
    q = quarantined(r)
    assert q[20] == ("sequence_gap", -1) and all(q[i] == ("sequence_gap", 20) for i in range(21, 49))
    ds = Dataset.open(r.dataset)
    assert ds.manifest["source"]["validation_report"]["verdict"] == "partial"
    res = replay(ds)
    assert len(res.invalid_stretches) == 1 and res.invalid_stretches[0]["to_position"] is None


def test_bybit_garbage_and_torn_tail(tmp_path):
    lines = bybit_lines()
    bad = lines[:10] + [b"\x00\xff garbage {{{"] + lines[10:30] + [lines[30][: len(lines[30]) // 2]]
    path = write_lines(tmp_path / "bad.data", bad, newline_at_end=False)
    r = import_data("bybit", [path], data=str(tmp_path / "root"))
    assert r.records_read == 32 == r.records_canonical + r.records_quarantined
    q = quarantined(r)
    assert q[10] == ("malformed_record", -1)
    assert q[31] == ("truncated_record", -1)
    assert all(i not in q for i in range(10))  # everything before the garbage is intact
    raw = pq.read_table(os.path.join(r.paths["quarantine"], "records.parquet")).to_pydict()
    assert raw["raw"][raw["record"].index(10)] == b"\x00\xff garbage {{{"


def test_tardis_crossed_level_is_quarantined(tmp_path):
    text = shared_file(TARDIS).read_text().splitlines()
    header, rows = text[0], text[1:]
    # a later update that puts a bid above every ask: the book crosses after that message
    best_ask = min(float(r.split(",")[6]) for r in rows if r.split(",")[5] == "ask")
    t = int(rows[-1].split(",")[3]) + 1000
    crossing = f"deribit,BTC-PERPETUAL,{t},{t},false,bid,{best_ask + 10},10"
    path = tmp_path / "crossed.csv"
    path.write_text("\n".join([header, *rows, crossing]) + "\n")
    r = import_data("tardis", [path], data=str(tmp_path / "root"))
    assert r.records_read == len(rows) + 1 == r.records_canonical + r.records_quarantined
    assert quarantined(r) == {len(rows): ("crossed_book", -1)}


def test_uri_root_works_like_a_path(tmp_path):
    plain = import_data("bybit", [shared_file(BYBIT)], data=str(tmp_path / "plain"))
    uri = import_data("bybit", [shared_file(BYBIT)], data=(tmp_path / "uri").as_uri())
    assert uri.dataset.startswith("file://")
    assert sorted(p.name for p in (tmp_path / "uri").iterdir()) == sorted(
        ["raw", "normalized", "canonical", "derived", "quarantine", "experiments"])
    assert (uri.records_read, uri.records_canonical) == (plain.records_read, plain.records_canonical)
    a = Dataset.open(plain.dataset).read_all()
    b = Dataset.open(uri.dataset).read_all()
    assert a.equals(b)
    assert replay(uri.dataset).digest == replay(plain.dataset).digest


WATCHER = '''
import json
from lockstep.core.strategy import Strategy

class Watcher(Strategy):
    def setup(self, ctx):
        self.seen = []
        ctx.subscribe(0, book=True, trades=True)

    def on_book(self, ctx, instrument):
        self.seen.append(["book", ctx.now, ctx.book_valid(instrument), list(ctx.touch(instrument))])

    def on_trade(self, ctx, instrument, price, qty, aggressor):
        self.seen.append(["trade", ctx.now, ctx.book_valid(instrument), list(ctx.touch(instrument))])
        if not ctx.book_valid(instrument):  # the venue must not match this against a stale book
            ctx.submit_limit(instrument, 1, 101, 1)

    def on_order(self, ctx, update):
        self.seen.append(["order", ctx.now, update.kind, update.reason])

    def on_stop(self, ctx):
        with open(OUT, "w") as f:
            json.dump(self.seen, f)
'''


def test_a_strategy_never_sees_a_stale_book(tmp_path):
    r = line_import(tmp_path, STREAM)
    out = tmp_path / "seen.json"
    (tmp_path / "watcher.py").write_text(WATCHER.replace("OUT", repr(str(out))))
    cfg = tmp_path / "watch.toml"
    cfg.write_text(f'name = "watch"\ndataset = "{r.dataset}"\n[strategy]\npath = "watcher.py:Watcher"\n'
                   '[venue.latency]\nmodel = "constant"\nentry = "0ns"\nresponse = "0ns"\n'
                   "[output]\nreport = false\n")
    run_backtest(cfg, data=str(tmp_path / "root"))
    log = json.loads(out.read_text())
    orders = [tuple(x[2:]) for x in log if x[0] == "order"]
    # the buy at 101 would take the stale ask at 101: the venue refuses it while the book is invalid
    assert orders == [(int(EventKind.ORDER_REJECTED), int(MatchReject.BOOK_UNAVAILABLE))]
    seen = [tuple(x[:3]) + (tuple(x[3]),) for x in log if x[0] != "order"]
    # canonical rows: snapshot at 2, bid at 3, trade at 4, GAP at 5, trade at 7, snapshot at 8,
    # then the crossing record's GAP at 9 (the crossing ask itself is in quarantine)
    assert seen == [
        ("book", 2, True, (100, 5, 101, 5)),
        ("book", 3, True, (100, 5, 101, 5)),
        ("trade", 4, True, (100, 5, 101, 5)),
        ("trade", 7, False, (0, 0, 0, 0)),  # after the gap: no touch, and no on_book at 5
        ("book", 8, True, (100, 5, 101, 5)),
    ]


def test_receive_clock_going_back_is_quarantined_whatever_the_action(tmp_path):
    # canonical data is in Processing Order, so a record stamped before what was promoted cannot
    # be promoted, even with ts_recv_backwards set to warn (that governs decoder-raised stamps)
    text = "snap,10,100,101\ntrade,20,100,1\ntrade,15,100,1\ntrade,25,100,1\nbid,18,99,1\n"
    r = line_import(tmp_path, text, validation=ValidationConfig.from_options(["ts_recv_backwards=warn"]))
    assert quarantined(r) == {2: ("ts_recv_backwards", -1), 4: ("ts_recv_backwards", -1)}
    t = Dataset.open(r.dataset).read_all()
    ts = t.column("ts_recv").to_pylist()
    assert ts == sorted(ts)
    # the level update lost with record 4 leaves the book unknown: a GAP closes the data
    assert t.column("kind").to_pylist()[-1] == EventKind.GAP and r.invalid_stretches[0]["to_row"] is None


BUYER = '''
import json
from lockstep.core.strategy import Strategy

class Buyer(Strategy):
    """Buys 1 at the best ask after every book change; records the venue's answers."""
    def setup(self, ctx):
        self.seen = []
        ctx.subscribe(0, book=True)

    def on_book(self, ctx, instrument):
        bid, _, ask, ask_qty = ctx.touch(instrument)
        self.seen.append([ctx.now, "phase", int(ctx.trading_phase(instrument))])
        if ask_qty:
            ctx.submit_limit(instrument, 1, ask, 1)

    def on_order(self, ctx, update):
        self.seen.append([ctx.now, update.kind, update.reason])

    def on_stop(self, ctx):
        with open(OUT, "w") as f:
            json.dump(self.seen, f)
'''


def test_the_simulated_venue_fills_nothing_outside_continuous_trading(tmp_path):
    from events_util import make_columns

    from lockstep.data.dataset import DatasetWriter
    from lockstep.enums import TradingPhase
    from lockstep.events import PHASE_SCOPE_SESSION

    K, LAST = EventKind, Flag.LAST
    rows = [
        # pre-open: a bid rests above the ask; buying the ask there must not fill
        dict(ts_recv=1_000, kind=K.TRADING_PHASE, side=TradingPhase.PRE_OPEN, order_id=PHASE_SCOPE_SESSION,
             flags=LAST),
        dict(ts_recv=2_000, kind=K.L3_ADD, side=Side.BID, price=102, qty=5, order_id=1, flags=LAST),
        dict(ts_recv=3_000, kind=K.L3_ADD, side=Side.ASK, price=101, qty=5, order_id=2, flags=LAST),
        # the open: the cross is gone, the book is normal and the venue matches again
        dict(ts_recv=10_000, kind=K.L3_DELETE, side=Side.BID, price=102, order_id=1),
        dict(ts_recv=10_000, kind=K.TRADING_PHASE, side=TradingPhase.CONTINUOUS,
             order_id=PHASE_SCOPE_SESSION, flags=LAST),
        dict(ts_recv=11_000, kind=K.L3_ADD, side=Side.BID, price=100, qty=5, order_id=3, flags=LAST),
    ]
    cols = make_columns(rows)
    cols["ts_event"][:] = cols["ts_recv"]
    root = str(tmp_path / "root")
    with DatasetWriter("phases", [Instrument("ES", "TEST", "1", "1", book="l3")], data=root) as w:
        w.write(cols)
    out = tmp_path / "seen.json"
    (tmp_path / "buyer.py").write_text(BUYER.replace("OUT", repr(str(out))))
    cfg = tmp_path / "buy.toml"
    cfg.write_text('name = "buy"\ndataset = "phases"\n[strategy]\npath = "buyer.py:Buyer"\n'
                   '[venue.latency]\nmodel = "constant"\nentry = "0ns"\nresponse = "0ns"\n'
                   "[output]\nreport = false\n")
    run_backtest(cfg, data=root)
    seen = [tuple(x) for x in json.loads(out.read_text())]
    phases = [(t, p) for t, what, p in seen if what == "phase"]
    assert phases == [(2_000, TradingPhase.PRE_OPEN), (3_000, TradingPhase.PRE_OPEN),
                      (10_000, TradingPhase.CONTINUOUS), (11_000, TradingPhase.CONTINUOUS)]
    seen = [s for s in seen if s[1] != "phase"]
    rejected, accepted, filled = (int(EventKind.ORDER_REJECTED), int(EventKind.ORDER_ACCEPTED),
                                  int(EventKind.ORDER_FILLED))
    not_trading = int(MatchReject.NOT_TRADING)
    # the two pre-open book changes: refused; after the open: the buy takes the ask
    assert [s for s in seen if s[0] < 10_000] == [(3_000, rejected, not_trading)]
    assert [k for t, k, _ in seen if t >= 10_000][:1] in ([accepted], [filled])
    assert filled in [k for t, k, _ in seen if t >= 10_000]
