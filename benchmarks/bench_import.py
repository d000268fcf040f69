"""Binance decode throughput in MB/s of uncompressed JSON lines, gunzip included, chunks in memory.
The whole import path (validation, Parquet, quarantine) is benchmarks/bench_pipeline.py."""
from __future__ import annotations

from conftest import report_rate
from shared_data import shared_file

from lockstep.data.importers import decode_binance

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
