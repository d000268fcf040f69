"""A live node's memory does not grow with the session's length: `lockstep live` against
`lockstep venue serve`, a short session and one ten times longer on the same market, the node's
resident set read from /proc/PID/status as it runs. The benchmark with longer sessions is
benchmarks/bench_live_memory.py."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from live_util import live_config
from test_live_node import DEADLINE_S, PASSWORD, Venue, _env, live_cmd

from lockstep.data.synth import generate

SHORT_S = 0.6
TIMES = 10
#: The venue's pace: fast enough to keep the node busy, slow enough that this shared machine
#: keeps up (no gap given up), and the dataset lasts the long session.
SPEED = 4.0
#: How much more a session may hold at the end of its trading than in its first tenth: what the
#: allocator and Arrow's pools keep around, not a per-message or per-order cost (1 KB per order
#: or 100 bytes per message would exceed it in the long session). The peak of the whole process
#: (the stop included) may differ by twice that between two processes: each starts its own
#: allocator arenas and the stop's Parquet writers and readers may or may not find memory free.
BOUND_BYTES = 16 << 20
#: A node's resident set climbs for about its first second of trading (it catches up on the
#: backlog the venue sent before the login, then flushes its first records) and then stays put.
WARM_UP_S = 1.5
_SAMPLE_S = 0.05


@dataclass
class NodeRun:
    """One `lockstep live` session: its summary, what the venue served, and the node's memory."""

    summary: dict
    served: dict
    rss: list[tuple[float, int]]  # (seconds since the session folder appeared, VmRSS bytes)
    peak: int  # VmHWM at the last sample: the peak of the whole life, stop included

    def trading(self, since: float, until: float) -> int:
        """The most VmRSS sampled from `since` to `until` seconds after the login (when the
        session's folder appears): neither its start-up nor its stop (records to Parquet, the
        report)."""
        return max((r for t, r in self.rss if since <= t <= until), default=0)

    def grown(self, seconds: float) -> int:
        """How much more the session held in the last tenth of its `seconds` of trading than in
        its first tenth or its warm-up (WARM_UP_S: the backlog caught up, the first flush of the
        records), whichever is longer."""
        tenth = seconds / TIMES
        return self.trading(seconds - tenth, seconds) - self.trading(0.0, max(tenth, WARM_UP_S))


def _status_bytes(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of `pid` in bytes; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, KeyError):
        return None


def run_node(tmp: Path, ds_path: str, root: Path | str, example: str, seconds: float, *,
             speed: float = SPEED) -> NodeRun:
    """`lockstep live` trading `example` for `seconds` against a fresh venue on `ds_path`."""
    root = Path(root)
    venue = Venue(tmp, ds_path, speed=speed)
    rss: list[tuple[float, int]] = []
    peak = 0
    sessions = root / "live"
    folders = len(list(sessions.glob("*-*"))) if sessions.is_dir() else 0
    start = None
    try:
        # The venue starts sending before the node logs in: the node catches up on that backlog
        # by retransmission, which on a busy machine may take longer than the default 1 s
        # before a gap is given up (and the books stay invalid for the session).
        proc = subprocess.Popen(live_cmd(live_config(tmp, example), ds_path, root, venue,
                                         "--duration", str(seconds), "--set=live.gap_timeout=10s"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
                                env=_env(LOCKSTEP_PASSWORD=PASSWORD))
        deadline = time.monotonic() + seconds + DEADLINE_S
        while proc.poll() is None and time.monotonic() < deadline:
            status = _status_bytes(proc.pid)
            if start is None and sessions.is_dir() and len(list(sessions.glob("*-*"))) > folders:
                start = time.monotonic()  # logged in: the session has begun
            if status is not None:
                rss.append((-1.0 if start is None else time.monotonic() - start, status[0]))
                peak = max(peak, status[1])
            time.sleep(_SAMPLE_S)
        try:
            out, err = proc.communicate(timeout=DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        served = venue.stop()
    assert proc.returncode == 0, err
    return NodeRun(json.loads(out), served, rss, peak)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """A synthetic L2 market lasting well over the long session at SPEED."""
    root = tmp_path_factory.mktemp("memory") / "data"
    return generate(300_000, seed=5, data=str(root)), root


def test_a_session_ten_times_longer_holds_no_more_memory(market, tmp_path):
    ds, root = market
    short = run_node(tmp_path, ds.path, root, "market_maker.toml", SHORT_S)
    long = run_node(tmp_path, ds.path, root, "market_maker.toml", SHORT_S * TIMES)
    for run in (short, long):
        s = run.summary
        assert s["stopped_by"] == "duration" and s["complete"] and s["gaps_abandoned"] == 0
        assert run.served["orders"] == s["orders"] and run.served["fills"] == s["fills"]
    # the long session did trade for ten times as long (the short one's messages are mostly
    # the backlog it caught up on from the retransmission server at its start)
    assert long.summary["feed_messages"] > 2 * short.summary["feed_messages"] > 0
    assert long.summary["orders"] > 5 * max(short.summary["orders"], 1)
    whole = SHORT_S * TIMES
    assert long.grown(whole) <= BOUND_BYTES, (
        f"resident set {long.trading(0, WARM_UP_S) >> 20} MB in the first {WARM_UP_S:g} s of "
        f"trading, {long.trading(whole - SHORT_S, whole) >> 20} MB in the last {SHORT_S:g} s "
        f"({long.summary['feed_messages']:,} messages, {long.summary['orders']:,} orders)")
    assert long.peak - short.peak <= 2 * BOUND_BYTES, (short.peak >> 20, long.peak >> 20)


# The child writes a long orders stream as a live session leaves it, has recover_session turn it
# into Parquet and prints Arrow's peak allocation during that alone.
_CONVERT = """
import sys
import pyarrow as pa
from lockstep.backtest.artifacts import ORDERS_SCHEMA, STREAM_SUFFIX
from lockstep.live.records import recover_session
folder, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
columns = {f.name: pa.array([1] * rows if f.name != "symbol" and f.name != "kind" else ["SYN0"] * rows,
                            type=f.type) for f in ORDERS_SCHEMA if f.name not in ("maker",)}
columns["maker"] = pa.array([True] * rows)
batch = pa.RecordBatch.from_pydict(columns, schema=ORDERS_SCHEMA)
with pa.OSFile(folder + "/orders" + STREAM_SUFFIX, "wb") as sink, pa.ipc.new_stream(sink, ORDERS_SCHEMA) as w:
    for _ in range(batches):
        w.write_batch(batch)
pool = pa.default_memory_pool()
before = pool.max_memory()
del batch, columns
recover_session(folder)
print(pool.max_memory() - before)
"""


def test_closing_a_long_sessions_records_holds_a_row_group_not_the_session(tmp_path):
    """The streams become Parquet a row group at a time: closing a day's session needs no memory
    for the whole day's records."""
    batches, rows = 200, 5_000  # 1M orders rows, ~70 MB in Arrow
    proc = subprocess.run([sys.executable, "-c", _CONVERT, str(tmp_path), str(batches), str(rows)],
                          capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert proc.returncode == 0, proc.stderr
    grown = int(proc.stdout.split()[0])
    whole = batches * rows * 60  # bytes of the table's fixed-width columns alone
    assert grown < whole // 4, f"{grown >> 20} MB over the stream's own peak for a {whole >> 20} MB table"
    assert pq.ParquetFile(tmp_path / "orders.parquet").metadata.num_rows == batches * rows
