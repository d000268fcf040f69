"""Every importer on the real fixtures through the whole data path, and Binance captures checked
against the venue's own view of its book; corrupted Binance copies land in quarantine."""
from __future__ import annotations

import gzip
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from lockstep._bindings.replay import Replayer
from lockstep.backtest.replay import replay
from lockstep.data.dataset import Dataset
from lockstep.data.importers import binance as binance_importer
from lockstep.data.pipeline import ValidationConfig, import_data
from lockstep.data.raw_capture import RawWriter
from lockstep.errors import SettingError
from lockstep.events import EventKind, Flag

SPOT = ["binance/spot/btcusdt_20240808.gz", "binance/spot/btcusdt_20240809.gz"]
USDM = ["binance/usdm/btcusdt_20240808.gz"]


def assert_book_matches_ticker(dataset: str) -> None:
    """After each depth message whose final update id is also a bookTicker's id, the touch of the
    book rebuilt from snapshot + diffs equals the venue's own best bid/ask."""
    table = Dataset.open(dataset).read_all()
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    kind, flags, seq = cols["kind"], cols["flags"], cols["seq"]

    ticker = {}
    bbo_rows = np.flatnonzero(kind == EventKind.VENUE_BBO)
    for bid_row, ask_row in zip(bbo_rows[::2], bbo_rows[1::2]):
        ticker[int(seq[bid_row])] = tuple(int(cols[c][r]) for r in (bid_row, ask_row) for c in ("price", "qty"))

    replayer = Replayer(["l2"])
    start = compared = 0
    mismatches = []
    for end in np.flatnonzero(flags & Flag.LAST):
        replayer.apply({k: v[start:end + 1] for k, v in cols.items()}, end + 1 - start)
        start = end + 1
        if kind[end] == EventKind.L2_SET and int(seq[end]) in ticker:
            compared += 1
            if replayer.touch(0) != ticker[int(seq[end])]:
                mismatches.append(int(seq[end]))
    assert compared >= 100, compared
    assert mismatches == []


@pytest.mark.parametrize("files", [SPOT, USDM], ids=["spot", "usdm"])
def test_rebuilt_book_agrees_with_the_venues_book_ticker(files, data_root):
    """An outside check of decoding, reconciliation and the book together."""
    report = import_data("binance", [shared_file(f) for f in files], data=data_root)
    assert_book_matches_ticker(report.dataset)


def test_a_table_entry_coarser_than_the_data_loses_nothing(data_root, monkeypatch):
    """The built-in table says BTCUSDT spot quantities step by 0.01, but the capture holds finer
    ones (e.g. 1.54698): the import refines the size increment to the data's, every record is
    canonical, a warning names the first finer value and its place, and the rebuilt book still
    matches the venue's bookTicker."""
    table = dict(binance_importer._builtin_table())
    table[("spot", "BTCUSDT")] = ("0.01", "0.01")
    monkeypatch.setattr(binance_importer, "_builtin_table", lambda: table)
    report = import_data("binance", [shared_file(f) for f in SPOT], data=data_root)
    assert report.records_read == report.records_canonical == 41_249 + 58_325
    assert report.quarantined_by_rule == {}
    (inst,) = report.instruments
    assert (inst["price_increment"], inst["size_increment"]) == ("0.01", "0.000001")
    (r,) = report.decoder_counts["increments_refined"]
    assert (r["what"], r["given"], r["used"], r["source"]) == ("size", "0.01", "0.000001", "builtin")
    # the named value is on that line of that file, and is finer than the table's 0.01
    lines = gzip.decompress(Path(r["file"]).read_bytes()).splitlines()
    assert f'"{r["value"]}"'.encode() in lines[r["line"] - 1]
    assert Decimal(r["value"]) % Decimal("0.01") != 0
    assert any(line.startswith("warning") and r["value"] in line and "0.000001" in line
               for line in report.describe().splitlines())
    assert_book_matches_ticker(report.dataset)


def test_a_finer_value_met_after_chunks_were_written_restarts_the_import(data_root, monkeypatch, tmp_path):
    """With chunks small enough that the decode hands some out before it meets the first value
    off the coarse table entry, the data path discards what it wrote and imports again with the
    first pass: the same result as a pass run first, one import's areas, and nothing left over."""
    table = dict(binance_importer._builtin_table())
    table[("spot", "BTCUSDT")] = ("0.01", "0.00001")  # the first finer quantity is on line 1886
    monkeypatch.setattr(binance_importer, "_builtin_table", lambda: table)
    restarts = []
    real = binance_importer.BinanceDecodeRun.restarted
    monkeypatch.setattr(binance_importer.BinanceDecodeRun, "restarted",
                        lambda self: restarts.append(1) or real(self))
    files = [shared_file(f) for f in SPOT]
    report = import_data("binance", files, data=data_root, options={"batch_size": 4096})
    assert restarts == [1]
    first = import_data("binance", files, data=str(tmp_path / "other"), options={"batch_size": 4096, "infer": True})
    assert restarts == [1]
    assert report.records_read == report.records_canonical == first.records_canonical == 41_249 + 58_325
    assert report.instruments == first.instruments
    assert report.decoder_counts["increments_refined"] == first.decoder_counts["increments_refined"]
    assert Dataset.open(report.dataset).read_all().equals(Dataset.open(first.dataset).read_all())
    normalized = Path(data_root) / "normalized"
    assert [p.name for p in normalized.iterdir()] == [report.name]
    assert [p.name for p in (normalized / report.name).iterdir()] == [report.import_id]
    assert not (Path(data_root) / "quarantine").exists() or not any((Path(data_root) / "quarantine").iterdir())


def test_spot_rotation_is_one_dataset(data_root):
    report = import_data("binance", [shared_file(f) for f in SPOT], data=data_root)
    ds = Dataset.open(report.dataset)
    assert ds.name == "binance-spot-btcusdt"
    assert [i.symbol for i in ds.instruments] == ["BTCUSDT"]
    # one record per line (the shared README's counts), all of them promoted
    assert report.records_read == report.records_canonical == 41_249 + 58_325
    assert ds.rows == report.events_canonical
    assert ds.manifest["source"]["decoder_counts"]["sequence_gaps"]["count"] == 0
    # the receive clock runs behind the venue's: every message carrying a venue time (T, else E)
    # later than its receive stamp is a (kept) negative-latency warning
    negative = 0
    for f in SPOT:
        for line in gzip.decompress(shared_file(f).read_bytes()).splitlines():
            recv, _, body = line.partition(b" ")
            msg = json.loads(body)
            data = msg.get("data", msg)
            venue_ms = data.get("T", data.get("E"))
            negative += venue_ms is not None and int(recv) < venue_ms * 1_000_000
    # diffs received before the snapshot are zero-event records (inside the snapshot, or replayed
    # as part of the snapshot's record, which then carries one warning for them)
    buffered = report.decoder_counts["depth_buffered"]
    assert report.decoder_counts["depth_replayed"] > 0 and negative > 20_000
    assert report.warnings_by_rule == {"feed_latency": negative - buffered + 1}
    result = replay(ds)
    assert result.events == ds.rows
    assert result.data_quality["crossed_book"].count == 0 and not result.invalid_stretches
    top = result.top_of_book["BTCUSDT"]
    assert top.bid_price < top.ask_price


def test_cli_import_json(tmp_path):
    out = subprocess.run(
        ["lockstep", "data", "import", "binance", str(shared_file(USDM[0])), "--data", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(out.stdout)
    assert summary["records_read"] == summary["records_canonical"] + summary["records_quarantined"] == 93_954
    assert summary["paths"]["canonical"].startswith(str(tmp_path))
    assert {"raw", "normalized", "canonical", "quarantine"} <= set(summary["paths"])
    assert summary["instruments"][0]["price_increment"] == "0.1"  # BTCUSDT perpetual tick
    assert summary["instruments"][0]["size_increment"] == "0.001"
    assert Dataset.open(summary["paths"]["canonical"]).rows == summary["events_canonical"]
    shown = json.loads(subprocess.run(["lockstep", "data", "show", summary["paths"]["canonical"], "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["verdict"] == summary["verdict"]
    assert shown["validation"]["records_read"] == summary["records_read"]
    # the two kinds of increment, each under its own name: the data grid, and the venue's
    # order-entry rules (the built-in table's exchange filters)
    assert (summary["instruments"][0]["tick_size"], summary["instruments"][0]["min_notional"]) == ("0.1", "100")
    text = subprocess.run(["lockstep", "data", "show", summary["paths"]["canonical"]],
                          capture_output=True, text=True, check=True).stdout
    assert "data increments price 0.1, size 0.001" in text
    assert "order entry  tick size 0.1, lot size 0.001, min qty 0.001, min notional 100" in text


def test_truncated_gzip_is_read_up_to_the_cut(tmp_path):
    """A cut download is not refused whole: every whole line before the cut is imported, and the
    cut is one truncated_record (tests/test_damaged_inputs.py has every format through the CLI)."""
    data = shared_file(USDM[0]).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    r = import_data("binance", [cut], data=str(tmp_path / "root"))
    assert r.verdict() == "partial" and r.quarantined_by_rule["truncated_record"] == 1
    assert r.records_read > 40_000 and Dataset.open(r.dataset).rows == r.events_canonical


def usdm_lines(n: int | None = None) -> list[bytes]:
    lines = gzip.decompress(shared_file(USDM[0]).read_bytes()).splitlines(keepends=True)
    return lines if n is None else lines[:n]


def quarantined_rules(result) -> dict[int, str]:
    t = pq.read_table(f"{result.paths['quarantine']}/records.parquet").to_pydict()
    return dict(zip(t["record"], t["rule"]))


def test_price_off_the_tick_is_quarantined_with_its_line(tmp_path):
    lines = usdm_lines(60)
    bad_line = next(i for i, line in enumerate(lines) if b'"e":"trade"' in line)
    lines[bad_line] = lines[bad_line].replace(b'"p":"', b'"p":"0.05', 1)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"".join(lines))
    r = import_data("binance", [path], data=str(tmp_path / "root"))
    assert r.records_read == 60 == r.records_canonical + r.records_quarantined
    assert quarantined_rules(r) == {bad_line: "malformed_record"}
    (entry,) = r.entries
    assert entry["first"]["line"] == bad_line + 1 and str(path) in entry["first"]["file"]


def test_depth_line_removed_opens_a_gap_until_the_end(tmp_path):
    lines = usdm_lines(3000)
    depth = [i for i, line in enumerate(lines) if b"depthUpdate" in line]
    removed = depth[len(depth) // 2]
    path = tmp_path / "gap.txt"
    path.write_bytes(b"".join(lines[:removed] + lines[removed + 1:]))
    r = import_data("binance", [path], data=str(tmp_path / "root"))
    assert r.records_read == 2999 == r.records_canonical + r.records_quarantined
    q = quarantined_rules(r)
    later_depth = [i - 1 for i in depth if i > removed]  # their record numbers after the removal
    # the next diff reveals the gap; every later diff waits for a snapshot that never comes
    assert set(q) == set(later_depth) and set(q.values()) == {"sequence_gap"}
    res = replay(r.dataset)
    assert len(res.invalid_stretches) == 1 and res.invalid_stretches[0]["to_position"] is None
    # trades and the venue's BBO after the gap are still canonical
    assert r.records_canonical > removed + 100


def test_garbage_and_torn_tail(tmp_path):
    lines = usdm_lines(500)
    body = b"".join(lines[:200]) + b"\x00\x13garbage\xff{{\n" + b"".join(lines[200:499]) + lines[499][:40]
    path = tmp_path / "bad.txt"
    path.write_bytes(body)
    r = import_data("binance", [path], data=str(tmp_path / "root"))
    assert r.records_read == 501 == r.records_canonical + r.records_quarantined
    q = quarantined_rules(r)
    assert q[200] == "malformed_record" and q[500] == "truncated_record"
    assert all(i not in q for i in range(200))


def test_crossed_book_in_a_diff(tmp_path):
    lines = usdm_lines(400)
    snap = next(i for i, line in enumerate(lines) if b"lastUpdateId" in line)
    k = next(i for i in range(snap + 1, 400) if b"depthUpdate" in lines[i] and b'"b":[["' in lines[i])
    msg = json.loads(lines[k].split(b" ", 1)[1])
    msg["data"]["b"] = [["99999.0", "1.000"]] + msg["data"]["b"]  # a bid far above every ask
    lines[k] = lines[k].split(b" ", 1)[0] + b" " + json.dumps(msg, separators=(",", ":")).encode() + b"\n"
    path = tmp_path / "crossed.txt"
    path.write_bytes(b"".join(lines))
    r = import_data("binance", [path], data=str(tmp_path / "root"))
    assert r.records_read == 400 == r.records_canonical + r.records_quarantined
    q = quarantined_rules(r)
    assert q[k] == "crossed_book"
    assert all(rule == "crossed_book" for rule in q.values())  # later diffs wait for a snapshot


def test_instruments_file_and_unknown_options(tmp_path):
    path = tmp_path / "part.txt"
    path.write_bytes(b"".join(usdm_lines(2000)))
    spec = tmp_path / "inst.json"
    spec.write_text(json.dumps([{"symbol": "BTCUSDT", "price_increment": "0.05", "size_increment": "0.001"}]))
    with_file = import_data("binance", [path], data=str(tmp_path / "a"), options={"instruments_file": spec})
    assert with_file.instruments[0]["price_increment"] == "0.05"
    bad = tmp_path / "bad.json"
    bad.write_text('[{"symbol": "BTCUSDT"}]')
    with pytest.raises(ValueError, match="lacks"):
        import_data("binance", [path], data=str(tmp_path / "b"), options={"instruments_file": bad})
    with pytest.raises(SettingError, match="^date does not apply to bybit imports$"):
        import_data("bybit", [path], data=str(tmp_path / "c"), options={"date": "2024-01-01"})


def test_unknown_symbol_gets_inferred_increments(tmp_path):
    text = gzip.decompress(shared_file(USDM[0]).read_bytes())[:3_000_000]
    text = text[: text.rindex(b"\n") + 1].replace(b"btcusdt@", b"foousdt@").replace(b'"BTCUSDT"', b'"FOOUSDT"')
    path = tmp_path / "foo.txt"
    path.write_bytes(text)
    report = import_data("binance", [path], data=str(tmp_path / "root"))
    (inst,) = report.instruments
    assert inst["symbol"] == "FOOUSDT"
    (info,) = report.decoder_counts.get("instruments", []) or [{"increment_source": "inferred"}]
    assert info["increment_source"] == "inferred"
    # the real grid (0.1, 0.001) is a multiple of what the data shows
    assert Decimal("0.1") % Decimal(inst["price_increment"]) == 0
    assert Decimal("0.001") % Decimal(inst["size_increment"]) == 0
    assert replay(report.dataset).events == report.events_canonical


# --- every other format, on its real fixture ------------------------------------------------


@pytest.mark.parametrize("fmt, files, expect_records", [
    ("bybit", ["bybit/xrpusdt_ob500_20241201.data.zip"], 50),
    ("tardis", ["tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"], 15),
    ("dbn", ["databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst"], 8_725),
    ("dbn", ["databento/test_data.mbp-10.dbn"], 2),
    ("dbn", ["databento/test_data.trades.dbn"], 2),
    ("dbn", ["databento/test_data.definition.dbn"], 2),
    ("itch", ["itch/ex20101224.TEST_ITCH_50.gz"], 12_012),
])
def test_every_fixture_imports(tmp_path, fmt, files, expect_records):
    r = import_data(fmt, [shared_file(f) for f in files], data=str(tmp_path))
    assert r.records_read == expect_records == r.records_canonical + r.records_quarantined
    assert (r.dataset is None) == (fmt == "dbn" and "definition" in files[0])  # definitions only
    if r.dataset is not None:
        ds = Dataset.open(r.dataset)
        assert ds.manifest["source"]["validation_report"]["records_read"] == expect_records
        assert replay(ds).events == ds.rows


def test_a_raw_capture_imports_like_the_line_file_it_holds(tmp_path):
    """Frames a recorder wrote (receive ns + one websocket message each) import as Binance, with
    the same canonical data as the line capture they came from; a bad frame's record is located."""
    lines = usdm_lines(3000)
    (tmp_path / "cap").mkdir()
    with RawWriter(tmp_path / "cap", "usdm", streams=["binance-usdm"], max_bytes=400_000) as w:
        for line in lines:
            recv, _, body = line.rstrip(b"\n").partition(b" ")
            w.write(int(recv), 0, body)
        files = list(w.paths)
    assert len(files) > 1  # rotated by size: several files, one stream
    text = tmp_path / "same.txt"
    text.write_bytes(b"".join(lines))
    from_frames = import_data("binance", [str(f) for f in files], data=str(tmp_path / "a"))
    from_text = import_data("binance", [text], data=str(tmp_path / "b"))
    assert from_frames.records_read == from_text.records_read == 3000
    assert Dataset.open(from_frames.dataset).read_all().equals(Dataset.open(from_text.dataset).read_all())


def test_dbn_cancels_of_orders_never_added_are_quarantined(tmp_path):
    """test_data.mbo.dbn holds two cancels of orders the file never added."""
    r = import_data("dbn", [shared_file("databento/test_data.mbo.dbn")], data=str(tmp_path))
    assert (r.records_read, r.records_quarantined) == (2, 2)
    assert r.quarantined_by_rule == {"unknown_order_ref": 2}
    assert r.dataset is None  # nothing promoted, no dataset of markers alone


def test_itch_quarantine_names_instruments_learned_mid_stream(tmp_path):
    """ITCH names a stock in its directory message, after the decoder has started handing out
    records: quarantine entries still carry the name. The simulated fixture's books cross (its
    prices are random), so crossed books and the records after them are quarantined."""
    r = import_data("itch", [shared_file("itch/ex20101224.TEST_ITCH_50.gz")], data=str(tmp_path))
    symbols = {i["symbol"] for i in r.instruments}
    assert r.records_read == 12_012 == r.records_canonical + r.records_quarantined
    assert r.quarantined_by_rule == {"crossed_book": r.records_quarantined} and r.records_quarantined > 0
    assert {e["instrument"] for e in r.entries} <= symbols
    assert {s["symbol"] for s in r.invalid_stretches} <= symbols
    loose = import_data("itch", [shared_file("itch/ex20101224.TEST_ITCH_50.gz")], data=str(tmp_path),
                        validation=ValidationConfig.from_options(["crossed_book=warn"]))
    # crossings now only warn; what is left is the fixture's executions and deletes of orders it
    # never added (the decoder counts them), each invalidating its stock's book for good
    assert loose.warnings_by_rule["crossed_book"] > 0
    assert set(loose.quarantined_by_rule) == {"unknown_order_ref"}
    assert sum(loose.decoder_counts["unknown_order_ref"].values()) > 0
