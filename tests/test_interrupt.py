"""Ctrl-C: a real `lockstep` process interrupted by SIGINT stops on one line with exit status 130
and leaves its partial outputs marked incomplete, whether the strategy is Python (the interrupt
lands in a hook) or compiled (it lands while the C++ loop runs without the GIL)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lockstep.backtest.runner import BacktestInterrupted, run_backtest
from lockstep.data.synth import generate

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = {"python": REPO / "examples" / "market_maker.toml",
            "compiled": REPO / "examples" / "market_maker_compiled.toml"}
EVENTS = 6_000_000  # seconds for either market maker: Ctrl-C lands well inside the run


@pytest.fixture(scope="module")
def long_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt") / "data"
    root.mkdir()
    return str(root), generate(EVENTS, seed=11, data=str(root)).path


def start_lockstep(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LOCKSTEP_DATA"}
    return subprocess.Popen([sys.executable, "-m", "lockstep", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(found, proc: subprocess.Popen, seconds: float = 10.0):
    """Polls `found()` until it returns something, the process ends or `seconds` pass."""
    for _ in range(int(seconds / 0.02)):
        hit = found()
        if hit or proc.poll() is not None:
            return hit
        time.sleep(0.02)
    return None


@pytest.mark.parametrize("kind", ["python", "compiled"])
def test_ctrl_c_marks_a_backtest_incomplete_and_exits_130(long_dataset, tmp_path, kind):
    root, ds = long_dataset
    experiments = Path(root) / "experiments"
    before = set(experiments.iterdir()) if experiments.exists() else set()
    proc = start_lockstep("backtest", str(EXAMPLES[kind]), "--set", f"dataset={ds}", "--data", root, cwd=tmp_path)
    try:
        run = wait_for(lambda: next((d for d in set(experiments.glob("*")) - before
                                     if (d / "config.toml").exists()), None), proc)
        assert run is not None and proc.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.3)  # well inside the run: past the set-up, records already flowing
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in stderr, stderr
    assert (run / "INCOMPLETE").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False
    assert "interrupted" in summary["error"]["reason"]
    assert 0 < summary["events"] < EVENTS
    # the partial outputs are whole Parquet files (flushed and closed), holding what ran
    assert pq.read_table(run / "orders.parquet").num_rows > 0
    report = (run / "report.html").read_text()
    assert 'class="incomplete"' in report and "INCOMPLETE RUN: interrupted" in report


INTERRUPTED_IN_A_HOOK = '''
from lockstep.core.strategy import Strategy

class CtrlCInHook(Strategy):
    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            bid, _, ask, _ = ctx.touch(instrument)
            ctx.submit_limit(instrument, 1, bid, 1, 2)
        if self.calls == 5000:
            raise KeyboardInterrupt
'''


def test_keyboard_interrupt_in_a_python_hook_is_an_interruption_not_a_strategy_error(tmp_path):
    """Ctrl-C reaching a hook directly (a second Ctrl-C, or a run off the main thread) stops the
    run as an interruption: no 'the strategy raised', no traceback into the strategy."""
    root = tmp_path / "data"
    ds = generate(100_000, seed=3, data=str(root))
    (tmp_path / "ctrl_c.py").write_text(INTERRUPTED_IN_A_HOOK)
    cfg = tmp_path / "ctrl_c.toml"
    cfg.write_text(f'name = "ctrl_c"\ndataset = "{ds.path}"\n[strategy]\npath = "ctrl_c.py:CtrlCInHook"\n')
    with pytest.raises(BacktestInterrupted) as info:
        run_backtest(cfg, data=str(root))
    summary = info.value.result.summary
    assert isinstance(info.value, KeyboardInterrupt)
    assert summary["complete"] is False
    assert summary["error"]["reason"] == "interrupted (Ctrl-C)"
    assert summary["error"]["traceback"] is None and summary["error"]["exception"] is None
    assert 0 < summary["events"] < 100_000
    run = Path(summary["run_dir"].removeprefix("file://"))
    assert (run / "INCOMPLETE").is_file() and json.loads((run / "summary.json").read_text()) == summary
    assert pq.read_table(run / "orders.parquet").num_rows > 0
    assert "INCOMPLETE RUN: interrupted" in (run / "report.html").read_text()
