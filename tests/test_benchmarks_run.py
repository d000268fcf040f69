"""The benchmark suites run (at a tiny scale) so they cannot rot between releases."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_run_at_tiny_scale(tmp_path):
    env = {**os.environ, "LOCKSTEP_BENCH_SCALE": "0.0005"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "benchmarks"), "-v", "-p",
             "no:cacheprovider", "--benchmark-disable", "-o", "python_files=bench_*.py",
             "--basetemp", str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
    except subprocess.TimeoutExpired as e:  # say which benchmark was still running
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"benchmarks still running after 600 s:\n{out[-3000:]}") from None
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1] and "failed" not in proc.stdout.splitlines()[-1]
