"""The whole import path (raw copy, decode, normalized Parquet, validation, canonical Parquet,
quarantine) as `lockstep data import` runs it: MB/s of uncompressed text, gunzip included, and peak
memory for a 10x longer input against the shorter one (memory must be bounded by a chunk).

Targets (issue 4): Binance import with validation >= 100 MB/s; ITCH import >= 20M messages/s
(benchmarks/bench_itch.py measures the decoder alone); memory bounded by a batch.
"""
from __future__ import annotations

import gzip
import json
import random
import time
from pathlib import Path

import pytest
from conftest import cli_peak_rss, report_rate, scaled
from shared_data import shared_file

from lockstep.data.pipeline import import_data

USDM = "binance/usdm/btcusdt_20240808.gz"
SPOT = ["binance/spot/btcusdt_20240808.gz", "binance/spot/btcusdt_20240809.gz"]


@pytest.mark.parametrize("label", ["usdm", "spot"])
def test_binance_import_validated(benchmark, bench_root, label):
    files = [str(shared_file(USDM))] if label == "usdm" else [str(shared_file(f)) for f in SPOT]
    results = []

    def once():
        results.append(import_data("binance", files, data=bench_root, name=f"bench-import-{label}"))

    benchmark.pedantic(once, rounds=3, iterations=1)
    r = results[-1]
    assert r.records_read == r.records_canonical + r.records_quarantined
    benchmark.extra_info.update({"records": r.records_read, "events": r.events_canonical,
                                 "quarantined": r.records_quarantined})
    report_rate(benchmark, r.bytes_read / 1e6, "MB")


def synthetic_usdm_capture(path: Path, messages: int, seed: int = 5) -> int:
    """A USD-M style capture: one REST snapshot, then depth diffs whose update ids chain
    (U = previous u + 1, pu = previous u), trades and bookTickers in between. Returns its bytes."""
    rng = random.Random(seed)
    ts = 1_700_000_000_000_000_000
    update = 1000
    lines = []
    bids = [[f"{59_000 + i / 10:.1f}", "1.000"] for i in range(0, 9990, 10)]
    asks = [[f"{60_000 + i / 10:.1f}", "1.000"] for i in range(0, 9990, 10)]
    # A REST snapshot names no symbol: a stream message before it says which one it is.
    lines.append(f'{ts} {{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{update},'
                 f'"s":"BTCUSDT","b":"59999.0","B":"1.000","a":"60000.0","A":"1.000","T":{ts // 10**6},'
                 f'"E":{ts // 10**6}}}}}')
    # USD-M rule: the first diff after the snapshot bridges it (U <= lastUpdateId <= u).
    lines.append(f'{ts} {{"lastUpdateId":{update + 1},"E":{ts // 10**6},"T":{ts // 10**6},'
                 f'"bids":{json.dumps(bids)},"asks":{json.dumps(asks)}}}')
    trade_id = 1
    written = 0
    with gzip.open(path, "wt", compresslevel=1) as out:
        for line in lines:
            out.write(line + "\n")
            written += len(line) + 1
        for n in range(messages):
            ts += rng.randrange(50_000, 2_000_000)
            ms = ts // 10**6
            kind = n % 4
            if kind < 2:
                first, update = update + 1, update + rng.randrange(1, 40)
                b = [[f"{59_000 + rng.randrange(0, 9990) / 10:.1f}", f"{rng.randrange(0, 5000) / 1000:.3f}"]
                     for _ in range(rng.randrange(1, 12))]
                a = [[f"{60_000 + rng.randrange(0, 9990) / 10:.1f}", f"{rng.randrange(0, 5000) / 1000:.3f}"]
                     for _ in range(rng.randrange(1, 12))]
                line = (f'{ts} {{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":{ms},"T":{ms},'
                        f'"s":"BTCUSDT","U":{first},"u":{update},"pu":{first - 1},"b":{json.dumps(b)},'
                        f'"a":{json.dumps(a)}}}}}')
            elif kind == 2:
                line = (f'{ts} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{ms},"T":{ms},"s":"BTCUSDT",'
                        f'"t":{trade_id},"p":"59999.{rng.randrange(0, 10)}","q":"0.00{rng.randrange(1, 10)}",'
                        f'"X":"MARKET","m":{"true" if rng.random() < 0.5 else "false"}}}}}')
                trade_id += 1
            else:
                line = (f'{ts} {{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{update},'
                        f'"s":"BTCUSDT","b":"59999.0","B":"1.000","a":"60000.0","A":"1.000","T":{ms},"E":{ms}}}}}')
            out.write(line + "\n")
            written += len(line) + 1
    return written


SIZES = {"short": 300_000, "long": 3_000_000}
_peak: dict[str, int] = {}


@pytest.mark.parametrize("label", list(SIZES))
def test_import_memory_is_bounded_by_a_chunk(benchmark, bench_root, tmp_path_factory, label):
    path = tmp_path_factory.mktemp("capture") / f"synthetic-usdm-{label}.gz"
    text_bytes = synthetic_usdm_capture(path, scaled(SIZES[label]))
    runs = []

    def once():
        start = time.perf_counter()
        summary, hwm = cli_peak_rss("data", "import", "binance", str(path), "--data", bench_root)
        runs.append((time.perf_counter() - start, summary, hwm))

    benchmark.pedantic(once, rounds=1, iterations=1)
    wall, summary, hwm = runs[-1]
    assert summary["records_quarantined"] == 0, summary["quarantined_by_rule"]
    _peak[label] = hwm
    benchmark.extra_info.update({"records": summary["records_read"], "text_bytes": text_bytes,
                                 "peak_rss_bytes": hwm, "mb_per_second_whole_process": text_bytes / 1e6 / wall})
    print(f"\n{label}: {summary['records_read']:,} records, {text_bytes / 1e6:,.0f} MB of text, whole process "
          f"{text_bytes / 1e6 / wall:,.0f} MB/s, peak RSS {hwm / 2**20:.0f} MiB")
    if label == "long" and "short" in _peak:
        ratio = hwm / _peak["short"]
        benchmark.extra_info["peak_rss_ratio_long_vs_short"] = ratio
        print(f"peak RSS long/short: {ratio:.3f}")
