"""Benchmarks: run with `pytest benchmarks --benchmark-enable` (one core: they are single-threaded).

LOCKSTEP_BENCH_SCALE (default 1.0) scales every dataset size; the test suite runs these files at a
tiny scale so they cannot rot.
"""
from __future__ import annotations

import json
import os
import subprocess
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


# The child reports its own high-water mark (VmHWM belongs to the exec'd image; ru_maxrss would
# carry over the forking pytest process's size).
_CLI_CHILD = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('VMHWM_KB ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "from lockstep.cli import main\n"
    "sys.argv = ['lockstep', *sys.argv[1:]]\n"
    "main()\n"
)


def cli_peak_rss(*args: str) -> tuple[dict, int]:
    """Runs `lockstep ARGS... --json` in a fresh process: its JSON output and its peak resident
    set size in bytes."""
    proc = subprocess.run([sys.executable, "-c", _CLI_CHILD, *args, "--json"], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:] + proc.stdout[-2000:])
    hwm_kb = int(proc.stderr.rsplit("VMHWM_KB", 1)[1].split()[0])
    return json.loads(proc.stdout), hwm_kb * 1024
