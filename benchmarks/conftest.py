"""Benchmarks: run with `pytest benchmarks --benchmark-enable` (one core: they are single-threaded).

LOCKSTEP_BENCH_SCALE (default 1.0) scales every dataset size; the test suite runs these files at a
tiny scale so they cannot rot.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SCALE = float(os.environ.get("LOCKSTEP_BENCH_SCALE", "1"))


def scaled(n: int) -> int:
    return max(1000, int(n * SCALE))


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("bench-data"))


def report_rate(benchmark, amount: float, unit: str) -> float:
    """Records amount/second (from the fastest round) in the benchmark's extra_info and prints it."""
    best = benchmark.stats.stats.min if benchmark.stats else float("nan")
    rate = amount / best if best and best > 0 else float("nan")
    benchmark.extra_info[f"{unit}_per_second"] = rate
    benchmark.extra_info[unit] = amount
    print(f"\n{benchmark.name}: {rate:,.0f} {unit}/s ({amount:,.0f} {unit}, best {best:.4f} s)")
    return rate
