"""Replay from zstd Parquet on disk, whole process (`lockstep replay DATASET --json` in a
subprocess): events/s, and peak memory for a 10x longer dataset against the shorter one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import scaled

from lockstep.synth import generate

SIZES = {"short": 2_000_000, "long": 20_000_000}
_peak_rss: dict[str, int] = {}


@pytest.fixture(scope="module")
def datasets(bench_root):
    return {label: generate(scaled(n), seed=11, data=bench_root, name=f"bench-{label}") for label, n in SIZES.items()}


def _run(path: str):
    proc = subprocess.Popen([sys.executable, "-m", "lockstep.cli", "replay", path, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(err.decode())
    return json.loads(out), usage.ru_maxrss * 1024


@pytest.mark.parametrize("label", list(SIZES))
def test_replay_from_parquet_process(benchmark, datasets, label):
    ds = datasets[label]
    runs = []

    def once():
        start = time.perf_counter()
        summary, rss = _run(ds.path)
        runs.append((time.perf_counter() - start, summary, rss))

    benchmark.pedantic(once, rounds=3, iterations=1)
    best_wall, summary, _ = min(runs, key=lambda r: r[0])
    peak = max(r[2] for r in runs)
    _peak_rss[label] = peak
    benchmark.extra_info.update({
        "events": ds.rows,
        "events_per_second_whole_process": ds.rows / best_wall,
        "events_per_second_replay": summary["events_per_second"],
        "peak_rss_bytes": peak,
    })
    print(f"\n{label}: {ds.rows:,} events, whole process {ds.rows / best_wall:,.0f} events/s, "
          f"replay loop {summary['events_per_second']:,.0f} events/s, peak RSS {peak / 2**20:.0f} MiB")
    if label == "long" and "short" in _peak_rss:
        ratio = peak / _peak_rss["short"]
        benchmark.extra_info["peak_rss_ratio_long_vs_short"] = ratio
        print(f"peak RSS long/short: {ratio:.3f}")
