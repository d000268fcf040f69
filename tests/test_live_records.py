"""A live session's execution records: the backtest's tables, written as they come, readable after
the writing process is killed."""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lockstep.backtest import runner
from lockstep.backtest.artifacts import STREAM_SUFFIX, read_artifact
from lockstep.backtest.runner import run_backtest
from lockstep.data.dataset import Dataset
from lockstep.data.synth import generate
from lockstep.live.records import (
    KILLED,
    RecordsWriter,
    new_session_dir,
    recover_session,
)

REPO = Path(__file__).resolve().parents[1]
MM_PY = REPO / "examples" / "market_maker.toml"
TABLES = ("orders", "fills", "denials", "pnl")
MS = 1_000_000


def _rows(table: pa.Table) -> dict[str, list]:
    """A table as lists, NaN as "nan" (so that equal tables compare equal)."""
    return {k: ["nan" if isinstance(v, float) and math.isnan(v) else v for v in col]
            for k, col in table.to_pydict().items()}


@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    """A backtest of the Python market maker with a tight open-order limit (so that there are
    denials), and every batch of records its engine drained, copied as it came."""
    root = tmp_path_factory.mktemp("records") / "data"
    root.mkdir()
    ds = generate(60_000, seed=3, data=str(root))
    batches = []
    original = runner._Outputs.add

    def capture(self, x, d, s):
        batches.append(tuple({k: np.array(v, copy=True) for k, v in cols.items()} for cols in (x, d, s)))
        original(self, x, d, s)

    mp = pytest.MonkeyPatch()
    mp.setattr(runner._Outputs, "add", capture)
    try:
        result = run_backtest(MM_PY, overrides=[f"dataset={ds.path}", "risk.max_open_orders=1"],
                              data=str(root), batch_size=2_000)
    finally:
        mp.undo()
    assert result.fills > 0 and result.summary["denied"] > 0
    return result, batches, Dataset.open(ds.path).instruments


def test_a_closed_session_holds_the_backtests_tables_report_and_digest_hash(backtest, tmp_path):
    result, batches, instruments = backtest
    writer = RecordsWriter(tmp_path / "session", instruments, flush_interval_ns=10 * MS,
                           sample_interval_ns=1_000 * MS, title="mm live", config_text="name = \"mm\"\n")
    for batch in batches:
        writer.add(*batch)
    summary = writer.close({"digest": "d" * 64, "events": 123})
    for name in TABLES:
        assert _rows(read_artifact(str(tmp_path / "session"), name)) == \
            _rows(read_artifact(result.run_dir, name)), name
        assert not (tmp_path / "session" / f"{name}{STREAM_SUFFIX}").exists()
    assert summary["fills"] == result.fills
    assert summary["pnl"] == pytest.approx(result.summary["pnl"])
    assert summary["max_drawdown"] == pytest.approx(result.summary["max_drawdown"])
    assert summary["complete"] and summary["digest"] == "d" * 64
    assert summary["run_dir"] == str(tmp_path / "session") and summary["events"] == 123
    on_disk = json.loads((tmp_path / "session" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary, default=str))
    report = (tmp_path / "session" / "report.html").read_text()
    assert "<svg" in report and "mm live" in report and "INCOMPLETE" not in report
    assert (tmp_path / "session" / "config.toml").read_text() == 'name = "mm"\n'


def test_the_records_hash_is_the_documented_one_empty_drains_included(backtest, tmp_path):
    """docs/backtest.md, Digest: every drain's columns, sorted by name, each as its name and raw
    bytes; an empty drain adds its names (it takes a shortcut that must not change that)."""
    _, batches, instruments = backtest
    empty = tuple({k: v[:0] for k, v in cols.items()} for cols in batches[0])
    drains = [batches[0], empty, batches[1], empty]
    writer = RecordsWriter(tmp_path, instruments, flush_interval_ns=1)
    expected = hashlib.sha256()
    for drain in drains:
        writer.add(*drain)
        for cols in drain:
            for name in sorted(cols):
                expected.update(name.encode() + cols[name].tobytes())
    assert writer.hash.hexdigest() == expected.hexdigest()
    writer.abort()


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_records_reach_the_disk_once_the_flush_interval_has_passed(backtest, tmp_path):
    _, batches, instruments = backtest
    clock = FakeClock()
    writer = RecordsWriter(tmp_path, instruments, flush_interval_ns=100 * MS, clock=clock)
    with_orders = [b for b in batches if len(b[0]["kind"])]
    writer.add(*with_orders[0])
    clock.ns = 99 * MS
    assert not writer.maybe_flush()
    assert read_artifact(str(tmp_path), "orders").num_rows == 0
    clock.ns = 100 * MS
    assert writer.maybe_flush()
    first = len(with_orders[0][0]["kind"])
    assert read_artifact(str(tmp_path), "orders").num_rows == first == writer.flushed["orders"]
    # add() flushes by itself once the interval has passed again
    writer.add(*with_orders[1])
    assert read_artifact(str(tmp_path), "orders").num_rows == first
    clock.ns = 200 * MS
    writer.add(*with_orders[2])
    assert read_artifact(str(tmp_path), "orders").num_rows == \
        first + len(with_orders[1][0]["kind"]) + len(with_orders[2][0]["kind"])
    writer.abort()


def test_a_torn_last_batch_is_left_out_and_the_rest_read(backtest, tmp_path):
    _, batches, instruments = backtest
    writer = RecordsWriter(tmp_path, instruments, flush_interval_ns=1, clock=FakeClock())
    with_orders = [b for b in batches if len(b[0]["kind"])][:3]
    for batch in with_orders:
        writer.add(*batch)
        writer.flush()
    writer.abort()
    stream = tmp_path / f"orders{STREAM_SUFFIX}"
    whole = read_artifact(str(tmp_path), "orders")
    assert whole.num_rows == sum(len(b[0]["kind"]) for b in with_orders)
    stream.write_bytes(stream.read_bytes()[:-40])  # the last batch cut short
    torn = read_artifact(str(tmp_path), "orders")
    assert torn.num_rows == whole.num_rows - len(with_orders[-1][0]["kind"])
    assert torn.equals(whole.slice(0, torn.num_rows))
    stream.write_bytes(stream.read_bytes()[:10])  # not even the schema is whole
    assert read_artifact(str(tmp_path), "orders").num_rows == 0


_WRITER_SCRIPT = """
import pickle, sys, time, json
from lockstep.live.records import RecordsWriter
batches, instruments = pickle.load(open(sys.argv[1], "rb"))
writer = RecordsWriter(sys.argv[2], instruments, flush_interval_ns=20_000_000,
                       sample_interval_ns=1_000_000_000, config_text='name = "killed"\\noutput = {sample_interval = "1s"}\\n')
seen = dict(writer.flushed)
for batch in batches:
    writer.add(*batch)
    if writer.flushed != seen:
        seen = dict(writer.flushed)
        print(json.dumps(seen), flush=True)
    time.sleep(0.01)
print("finished", flush=True)
"""


def test_a_killed_writer_loses_at_most_the_last_flush_interval(backtest, tmp_path):
    _, batches, instruments = backtest
    feed = tmp_path / "batches.pickle"
    feed.write_bytes(pickle.dumps((batches, instruments)))
    session = tmp_path / "session"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(feed), str(session)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reported = []
        deadline = time.monotonic() + 60
        while len(reported) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line and line != "finished\n", proc.stderr.read()
            reported.append(json.loads(line))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL and len(reported) == 5
    # Everything reported flushed before the kill is there, and what is there is a prefix of
    # what was fed, in order: records in memory at the kill are the only loss.
    expected = RecordsWriter(tmp_path / "expected", instruments, flush_interval_ns=1)
    for batch in batches:
        expected.add(*batch)
    expected.close({}, complete=True)
    for name in TABLES:
        got = read_artifact(str(session), name)
        assert got.num_rows >= reported[-1][name], name
        full = read_artifact(str(tmp_path / "expected"), name)
        assert _rows(got) == _rows(full.slice(0, got.num_rows)), name
    assert not (session / "summary.json").exists()
    summary = recover_session(session)
    assert not summary["complete"] and summary["error"]["reason"] == KILLED
    assert summary["fills"] == read_artifact(str(session), "fills").num_rows >= reported[-1]["fills"]
    assert (session / "INCOMPLETE").is_file()
    for name in TABLES:
        assert not (session / f"{name}{STREAM_SUFFIX}").exists()
    report = (session / "report.html").read_text()
    assert "<svg" in report and "INCOMPLETE RUN" in report and "killed" in report


def test_sessions_get_their_own_folder_under_the_storage_root(tmp_path):
    a = new_session_dir("mm", 'name = "mm"\n', data=str(tmp_path / "root"))
    b = new_session_dir("mm", 'name = "mm"\n', data=str(tmp_path / "root"))
    assert a.path != b.path
    assert Path(a.path).parent == tmp_path / "root" / "live"
    assert Path(a.path).name.startswith("mm-") and Path(a.path).is_dir()


def test_flush_interval_must_be_positive(tmp_path, backtest):
    with pytest.raises(ValueError, match="flush_interval_ns"):
        RecordsWriter(tmp_path, backtest[2], flush_interval_ns=0)
    assert not os.listdir(tmp_path)


_WARM_UP_SCRIPT = """
import pickle, sys, json
from lockstep.live.records import RecordsThread, RecordsWriter
batches, instruments = pickle.load(open(sys.argv[1], "rb"))
writer = RecordsWriter(sys.argv[2], instruments, flush_interval_ns=10**12, report=False)
fresh = RecordsWriter(sys.argv[3], instruments, flush_interval_ns=10**12, report=False)
records = RecordsThread(writer)  # warms the writer up, on this thread, before trading
warm = set(sys.modules)
untouched = (writer.hash.hexdigest() == fresh.hash.hexdigest() and writer.counts == fresh.counts
             and writer.series == [] and writer.flushed == fresh.flushed)
for batch in batches:
    writer.add(*batch)
print(json.dumps({"untouched": untouched, "imported": sorted(set(sys.modules) - warm),
                  "pyarrow.compute": "pyarrow.compute" in warm, "fills": writer.counts["fills"]}))
records.abort()
fresh.abort()
"""


def test_the_records_thread_imports_and_sets_up_everything_before_trading(backtest, tmp_path):
    """A conversion that first imports pyarrow.compute holds the GIL for about 140 ms: in the
    records' thread mid-session, that stalls a Python strategy. Warmed up when the thread is
    made, the writer imports nothing more while records come, and the warm-up itself wrote,
    counted and hashed nothing (a fresh process, so earlier tests' imports do not hide it)."""
    _, batches, instruments = backtest
    state = tmp_path / "batches.pickle"
    state.write_bytes(pickle.dumps((batches[:20], instruments)))
    done = subprocess.run([sys.executable, "-c", _WARM_UP_SCRIPT, str(state), str(tmp_path / "a"),
                           str(tmp_path / "b")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["fills"] > 0  # the batches did convert fills (the path that filters)
    assert out["untouched"] and out["pyarrow.compute"]
    assert out["imported"] == []
