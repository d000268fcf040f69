"""Binance import into canonical datasets, checked against the venue's own view of its book."""
from __future__ import annotations

import gzip
import json
import subprocess
from decimal import Decimal

import numpy as np
import pytest
from shared_data import shared_file

from lockstep._replay import Replayer
from lockstep.dataset import Dataset
from lockstep.errors import DecodeError
from lockstep.events import EventKind, Flag
from lockstep.importers import import_binance
from lockstep.replay import replay

SPOT = ["binance/spot/btcusdt_20240808.gz", "binance/spot/btcusdt_20240809.gz"]
USDM = ["binance/usdm/btcusdt_20240808.gz"]


@pytest.mark.parametrize("files", [SPOT, USDM], ids=["spot", "usdm"])
def test_rebuilt_book_agrees_with_the_venues_book_ticker(files, data_root):
    """After each depth message whose final update id is also a bookTicker's id, the touch of the
    book rebuilt from snapshot + diffs equals the venue's own best bid/ask: an outside check of
    decoding, reconciliation and the book together."""
    report = import_binance([shared_file(f) for f in files], data=data_root)
    table = Dataset.open(report.dataset).read_all()
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


def test_spot_rotation_is_one_dataset(data_root):
    report = import_binance([shared_file(f) for f in SPOT], data=data_root)
    ds = Dataset.open(report.dataset)
    assert ds.name == "binance-spot-btcusdt"
    assert [i.symbol for i in ds.instruments] == ["BTCUSDT"]
    assert ds.rows == report.events == report.counts["events"]["total"]
    assert ds.manifest["source"]["counts"]["sequence_gaps"]["count"] == 0
    assert sum(f["lines"] for f in report.files) == 41_249 + 58_325  # the shared README's counts
    result = replay(ds)
    assert result.events == ds.rows
    assert result.data_quality["crossed_book"].count == 0
    top = result.top_of_book["BTCUSDT"]
    assert top.bid_price < top.ask_price


def test_cli_import_json(tmp_path):
    out = subprocess.run(
        ["lockstep", "data", "import", "binance", str(shared_file(USDM[0])), "--data", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(out.stdout)
    assert summary["events"] > 0 and summary["dataset"].startswith(str(tmp_path))
    assert summary["instruments"][0]["price_increment"] == "0.1"  # BTCUSDT perpetual tick
    assert summary["instruments"][0]["size_increment"] == "0.001"
    assert Dataset.open(summary["dataset"]).rows == summary["events"]


def test_truncated_gzip_is_an_error_naming_the_file_and_leaves_no_dataset(tmp_path):
    src = shared_file(USDM[0])
    cut = tmp_path / "cut.gz"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    root = tmp_path / "root"
    with pytest.raises(DecodeError) as err:
        import_binance([cut], data=str(root))
    assert str(cut) in str(err.value) and "truncated" in str(err.value)
    assert not list((root / "canonical").glob("*/v*"))
    proc = subprocess.run(["lockstep", "data", "import", "binance", str(cut), "--data", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "truncated" in proc.stderr and "Traceback" not in proc.stderr


def test_price_not_a_multiple_names_file_and_line(tmp_path):
    lines = gzip.decompress(shared_file(USDM[0]).read_bytes()).splitlines(keepends=True)[:60]
    bad_line = next(i for i, line in enumerate(lines) if b'"e":"trade"' in line)
    lines[bad_line] = lines[bad_line].replace(b'"p":"', b'"p":"0.05', 1)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"".join(lines))
    with pytest.raises(DecodeError) as err:
        import_binance([path], data=str(tmp_path / "root"))
    assert err.value.line == bad_line + 1 and str(path) in str(err.value)


def test_instruments_file_and_inference(tmp_path):
    lines = gzip.decompress(shared_file(USDM[0]).read_bytes()).splitlines(keepends=True)[:2000]
    path = tmp_path / "part.txt"
    path.write_bytes(b"".join(lines))
    spec = tmp_path / "inst.json"
    spec.write_text(json.dumps([{"symbol": "BTCUSDT", "price_increment": "0.05", "size_increment": "0.001"}]))
    with_file = import_binance([path], data=str(tmp_path / "a"), instruments_file=spec)
    assert with_file.instruments[0]["price_increment"] == "0.05"
    bad = tmp_path / "bad.json"
    bad.write_text('[{"symbol": "BTCUSDT"}]')
    with pytest.raises(ValueError, match="lacks"):
        import_binance([path], data=str(tmp_path / "b"), instruments_file=bad)


def test_unknown_symbol_gets_inferred_increments(tmp_path):
    text = gzip.decompress(shared_file(USDM[0]).read_bytes())[:3_000_000]
    text = text[: text.rindex(b"\n") + 1].replace(b"btcusdt@", b"foousdt@").replace(b'"BTCUSDT"', b'"FOOUSDT"')
    path = tmp_path / "foo.txt"
    path.write_bytes(text)
    report = import_binance([path], data=str(tmp_path / "root"))
    (inst,) = report.instruments
    assert inst["symbol"] == "FOOUSDT" and inst["increment_source"] == "inferred"
    # the real grid (0.1, 0.001) is a multiple of what the data shows
    assert Decimal("0.1") % Decimal(inst["price_increment"]) == 0
    assert Decimal("0.001") % Decimal(inst["size_increment"]) == 0
    assert replay(report.dataset).events == report.events
