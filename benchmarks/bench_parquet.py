"""Replay from zstd Parquet on disk, whole process (`lockstep replay DATASET --json` in a
subprocess): events/s, and peak memory for a 10x longer dataset against the shorter one."""
from __future__ import annotations

import json
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


# The child reports its own high-water mark (VmHWM belongs to the exec'd image; ru_maxrss would
# carry over the forking pytest process's size).
_CHILD = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('VMHWM_KB ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "from lockstep.cli import main\n"
    "sys.argv = ['lockstep', 'replay', sys.argv[1], '--json']\n"
    "main()\n"
)


def _run(path: str) -> tuple[dict, int]:
    """Runs the CLI replay; returns its JSON summary and its peak resident set size in bytes."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    hwm_kb = int(proc.stderr.rsplit("VMHWM_KB", 1)[1].split()[0])
    return json.loads(proc.stdout), hwm_kb * 1024


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
