"""Replay from zstd Parquet on disk, whole process (`lockstep replay DATASET --json` in a
subprocess): events/s, and peak memory for a 10x longer dataset against the shorter one."""
from __future__ import annotations

import time

import pytest
from conftest import cli_peak_rss, scaled

from lockstep.data.synth import generate

SIZES = {"short": 2_000_000, "long": 20_000_000}
_peak_rss: dict[str, int] = {}


@pytest.fixture(scope="module")
def datasets(bench_root):
    return {label: generate(scaled(n), seed=11, data=bench_root, name=f"bench-{label}") for label, n in SIZES.items()}


def _run(path: str) -> tuple[dict, int]:
    """Runs the CLI replay; returns its JSON summary and its peak resident set size in bytes."""
    return cli_peak_rss("replay", path)


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
