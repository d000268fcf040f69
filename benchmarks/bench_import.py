"""Binance import throughput in MB/s of uncompressed JSON lines, gunzip included: the decode alone
(batches in memory) and the whole import to a canonical Parquet dataset."""
from __future__ import annotations

from conftest import report_rate
from shared_data import shared_file

from lockstep.importers import decode_binance, import_binance

USDM = "binance/usdm/btcusdt_20240808.gz"


def test_binance_decode(benchmark):
    path = shared_file(USDM)
    sizes = []

    def once():
        run = decode_binance([path])
        for _ in run:
            pass
        sizes.append(run.bytes_read)

    benchmark.pedantic(once, rounds=3, iterations=1)
    report_rate(benchmark, sizes[-1] / 1e6, "MB")


def test_binance_import_to_parquet(benchmark, bench_root):
    path = shared_file(USDM)
    reports = []

    def once():
        reports.append(import_binance([path], data=bench_root))

    benchmark.pedantic(once, rounds=3, iterations=1)
    report_rate(benchmark, reports[-1].bytes_read / 1e6, "MB")
