"""Execution records of a live session: the backtest's artifacts, written as the session runs.

    session = new_session_dir(cfg.name, cfg_text, data=data)     # ROOT/live/<name>-<stamp>-<tag>/
    records = RecordsWriter(session, instruments, flush_interval_ns=cfg.live.flush_interval_ns,
                            sample_interval_ns=cfg.output.sample_interval,
                            title=f"{cfg.name} live", config_text=cfg_text)
    ...
    records.add(*engine.drain())       # after each step or batch, as the backtest runner does
    records.maybe_flush()              # from the node's loop when idle: quiet markets flush too
    ...
    summary = records.close({"digest": ..., "complete": True, ...})

    behind = RecordsThread(records)    # the live node's: conversion and writes off its loop
    behind.add_packed(decisions, executions, samples)   # queued; a thread converts and flushes
    summary = behind.close({...})

The tables are the backtest's, made by the same code (lockstep.backtest.artifacts.RecordTables:
orders, fills, denials, pnl with their schemas), and a closed session's folder looks like a
backtest's run folder: config.toml, orders/fills/denials/pnl.parquet, summary.json (the node's
summary with the PnL metrics the backtest reports), report.html (lockstep.backtest.report), and
INCOMPLETE when it did not end cleanly. So read_artifact, BacktestResult-style analysis and the
report read both.

**Crash safety.** While the session runs, each table is an Arrow IPC stream, `<name>.arrows`,
appended to at every flush. Records wait in memory at most `flush_interval_ns` (the
`live.flush_interval` key) of the writer's monotonic clock, checked on every add() and
maybe_flush(): a process killed at any moment leaves streams whose complete batches hold every
record up to the last flush (a torn last batch is ignored by the reader). The bytes are handed
to the kernel at each flush, which survives the process, not the machine (no fsync).
read_artifact reads such a stream where the Parquet file is missing; recover_session() turns a
killed session's folder into a closed one (Parquet files, summary.json marked incomplete,
INCOMPLETE, the report). close() converts the streams to Parquet and removes them.

**Off the loop.** The live node hands its records to a RecordsThread: add_packed() only queues
the packed records of the loop (lockstep.live.journal.drained_columns reads them), and a thread
of its own wakes every half flush interval to convert, append and flush them (the node hands
them over at least every half interval too), so neither the Arrow conversion nor a slow disk
ever holds up the thread that trades. A write that fails there (a
full disk) is raised on the node's thread by the next add_packed(), check() or close().

The clock only decides when bytes reach the disk, never what they are.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lockstep._bindings.engine import PNL_SAMPLE
from lockstep.backtest.artifacts import (
    SCHEMAS,
    STREAM_SUFFIX,
    RecordTables,
    iter_stream_batches,
    read_artifact,
)
from lockstep.backtest.report import compute_metrics, write_report
from lockstep.backtest.runner import new_run_dir
from lockstep.checks import parse_duration
from lockstep.data.dataset import Instrument
from lockstep.data.storage import Location, locate, naming
from lockstep.errors import ConfigError, StorageError
from lockstep.events import EventKind
from lockstep.live.control import SESSIONS_AREA, local_root
from lockstep.live.journal import DECISION, EXECUTION, drained_columns

__all__ = ["KILLED", "RecordsThread", "RecordsWriter", "new_session_dir", "recover_session"]

#: Rows per Parquet row group when a stream becomes a Parquet file. Smaller than a backtest's
#: (1 << 16): the node converts at its stop, and what the stop needs beyond the session's memory
#: grows with one group's Parquet buffers (an orders group of 64k rows: about 30 MB, of 16k rows:
#: 7-15 MB), never with the session.
_ROW_GROUP = 1 << 14
_DEFAULT_SAMPLE_INTERVAL_NS = 1_000_000_000
KILLED = "the session ended without closing its records (the process was killed)"


def _local(directory: Location) -> str:
    if not isinstance(directory.fs, pafs.LocalFileSystem):
        raise StorageError(f"{directory.uri}: live records are appended as the session runs, "
                           "which needs a local storage root")
    return directory.path


def new_session_dir(name: str, config_text: str, *, data: str | os.PathLike[str] | None = None) -> Location:
    """A new folder for one live session: ROOT/live/<name>-<UTC stamp>-<config hash>/."""
    root = local_root(data, "live records are appended as the session runs")
    return new_run_dir(locate(root).join(SESSIONS_AREA), name, config_text)


class RecordsWriter(RecordTables):
    """Writes a live session's execution records into `directory` as they come (see the module
    docstring). `flushed` counts the rows of each table that have reached the kernel."""

    def __init__(self, directory: Location | str | os.PathLike[str], instruments: Sequence[Instrument], *,
                 flush_interval_ns: int, sample_interval_ns: int = _DEFAULT_SAMPLE_INTERVAL_NS,
                 title: str = "live session", config_text: str | None = None, report: bool = True,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(instruments, keep_series=False)
        if flush_interval_ns <= 0:
            raise ValueError(f"flush_interval_ns must be > 0, not {flush_interval_ns}")
        self.dir = directory if isinstance(directory, Location) else locate(directory)
        _local(self.dir)
        self.dir.mkdir()
        self.flush_interval_ns = flush_interval_ns
        self.sample_interval_ns = sample_interval_ns
        self.title = title
        self.report = report
        self._clock = clock
        self._pending: dict[str, list[pa.Table]] = {}
        self._streams: dict[str, tuple[pa.NativeFile, pa.ipc.RecordBatchStreamWriter]] = {}
        self.flushed = dict.fromkeys(SCHEMAS, 0)
        self.config_text = config_text
        if config_text is not None:
            self.dir.join("config.toml").write_bytes(config_text.encode())
        self._last_flush = clock()
        self._closed = False

    def _write(self, name: str, table: pa.Table) -> None:
        self._pending.setdefault(name, []).append(table)

    def add(self, x: dict, d: dict, s: dict) -> None:
        """One Engine.drain(): converted, hashed, and flushed if the interval has passed."""
        super().add(x, d, s)
        self.maybe_flush()

    def add_packed(self, decisions: bytes, executions: bytes, samples: bytes) -> None:
        """add() of records packed as the live core gives them (journal.drained_columns)."""
        self.add(*drained_columns(decisions, executions, samples))

    def warm_up(self) -> None:
        """Converts one made-up record of each kind (a fill, a denial, a PnL sample) and throws
        the tables away: nothing is written, counted or hashed. What the conversion imports or
        sets up on first use happens now, before trading, instead of in the thread that writes
        the records while a session runs, where it holds the GIL (importing pyarrow.compute
        alone took 140 ms and stalled the Python market maker's callbacks 30-70 ms)."""
        fill = EXECUTION.pack(0, 0, 0, int(EventKind.ORDER_FILLED), 0, 0, 0, 0, 0, 0, 0)
        denial = DECISION.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
        self._tables(*drained_columns(denial, fill, bytes(PNL_SAMPLE.itemsize)))

    def maybe_flush(self) -> bool:
        """Flushes if flush_interval_ns has passed since the last flush; True if it did."""
        if self._clock() - self._last_flush < self.flush_interval_ns:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Appends every pending record to its stream and hands the bytes to the kernel."""
        self._last_flush = self._clock()
        for name in sorted(self._pending):
            tables = self._pending.pop(name)
            table = pa.concat_tables(tables).combine_chunks()
            file = self.dir.join(name + STREAM_SUFFIX)
            with naming(file.uri):
                if name not in self._streams:
                    sink = pa.OSFile(file.path, "wb")
                    self._streams[name] = (sink, pa.ipc.new_stream(sink, SCHEMAS[name]))
                sink, writer = self._streams[name]
                writer.write_table(table)
                sink.flush()
            self.flushed[name] += len(table)

    def close(self, summary: Mapping[str, Any], *, complete: bool = True) -> dict[str, Any]:
        """Flushes, turns the streams into Parquet files and writes summary.json (`summary`
        with the PnL metrics and "complete"), INCOMPLETE if not `complete`, and report.html.
        Returns the summary written."""
        self.flush()
        self._close_streams()
        return finish_session(self.dir, summary, complete=complete, title=self.title,
                              sample_interval_ns=self.sample_interval_ns, report=self.report,
                              config_text=self.config_text)

    def abort(self) -> None:
        """Closes the streams without converting them, quietly (on a full disk closing fails
        too): the folder is left as a killed process leaves it, for recover_session()."""
        with contextlib.suppress(OSError):
            self._close_streams()

    def _close_streams(self) -> None:
        streams, self._streams = self._streams, {}
        for sink, writer in streams.values():
            writer.close()
            sink.close()


class RecordsThread:
    """A RecordsWriter fed from the live node's thread and written by a thread of its own (see
    the module docstring): add_packed() queues, the thread converts, appends and flushes what is
    queued every half `writer.flush_interval_ns`."""

    def __init__(self, writer: RecordsWriter) -> None:
        self.writer = writer
        writer.warm_up()
        self._queue: list[tuple[bytes, bytes, bytes]] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="lockstep-records", daemon=True)
        self._thread.start()

    def add_packed(self, decisions: bytes, executions: bytes, samples: bytes) -> None:
        self.check()
        with self._wake:
            self._queue.append((decisions, executions, samples))

    def check(self) -> None:
        """Raises what failed in the thread, if anything did."""
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        # Records reach the queue at most half an interval after they were made (the node's loop
        # returns that often at the latest), and are written at most half an interval later.
        interval_s = self.writer.flush_interval_ns / 2e9
        while True:
            with self._wake:
                if not self._stopping:
                    self._wake.wait(interval_s)
                queued, self._queue = self._queue, []
                stopping = self._stopping
            try:
                if queued:
                    self.writer.add_packed(*(b"".join(q[k] for q in queued) for k in range(3)))
                    self.writer.flush()
                    # What the conversion took goes back to the system, not kept by this thread's
                    # allocator arena: memory stays flat over a long session.
                    pa.default_memory_pool().release_unused()
            except Exception as e:  # noqa: BLE001  (a full disk: raised on the node's thread)
                self._error = e
                return
            if stopping:
                return

    def _join(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def close(self, summary: Mapping[str, Any], *, complete: bool = True) -> dict[str, Any]:
        """Writes what is queued, then RecordsWriter.close."""
        self._join()
        self.check()
        return self.writer.close(summary, complete=complete)

    def abort(self) -> None:
        """Stops the thread and leaves the folder as a killed process would (RecordsWriter.abort)."""
        self._join()
        self.writer.abort()


def finish_session(directory: Location, summary: Mapping[str, Any], *, complete: bool, title: str,
                   sample_interval_ns: int, report: bool = True,
                   config_text: str | None = None) -> dict[str, Any]:
    """The closing steps of RecordsWriter.close and recover_session on `directory`."""
    for name in SCHEMAS:
        _stream_to_parquet(directory, name)
    pnl = read_artifact(directory.uri, "pnl")
    metrics = compute_metrics(pnl, sample_interval_ns)
    out = {"run_dir": directory.uri, **summary}
    out["complete"] = complete
    if "fills" not in out:  # (a recovered session's summary has no count: read the table)
        out["fills"] = read_artifact(directory.uri, "fills").num_rows
    out.update({k: metrics[k] for k in ("pnl", "fees", "realized", "max_drawdown", "sharpe", "samples")})
    out["by_symbol"] = metrics.get("by_symbol", {})
    if not complete:
        directory.join("INCOMPLETE").write_bytes(b"this session stopped early: see summary.json 'error'\n")
    directory.join("summary.json").write_bytes(json.dumps(out, indent=2, default=str).encode())
    if report:
        write_report(directory.join("report.html").path, title=title, summary=out, series=pnl,
                     config_text=config_text)
    return out


def _stream_to_parquet(directory: Location, name: str) -> None:
    """`<name>.arrows` -> `<name>.parquet` (written aside and renamed in, so a crash here leaves
    the stream, which readers fall back to), then the stream removed. No stream: nothing."""
    stream = directory.join(name + STREAM_SUFFIX)
    if not stream.exists():
        return
    final = directory.join(f"{name}.parquet")
    if not final.exists():
        # A row group at a time: a day's records never have to fit in memory at once.
        schema = SCHEMAS[name]
        aside = directory.join(f".{name}.parquet.tmp")
        with naming(aside.uri):
            with pq.ParquetWriter(aside.path, schema, compression="zstd", compression_level=1) as writer:
                group: list[pa.RecordBatch] = []
                rows = 0
                for batch in iter_stream_batches(stream):
                    group.append(batch)
                    rows += batch.num_rows
                    if rows >= _ROW_GROUP:
                        writer.write_table(pa.Table.from_batches(group, schema=schema))
                        group, rows = [], 0
                if group:
                    writer.write_table(pa.Table.from_batches(group, schema=schema))
            os.replace(aside.path, final.path)
    with naming(stream.uri):
        os.unlink(stream.path)


def recover_session(directory: str | os.PathLike[str] | Location) -> dict[str, Any]:
    """Closes the records of a session whose process was killed: what its streams hold (every
    record up to its last flush) becomes the Parquet files, with summary.json marked incomplete,
    INCOMPLETE and the report. Returns the summary written."""
    where = directory if isinstance(directory, Location) else locate(directory)
    _local(where)
    config_file = where.join("config.toml")
    config_text = config_file.read_bytes().decode() if config_file.exists() else None
    name, sample_interval_ns = _name_and_interval(config_text, config_file.uri)
    summary = {"run_dir": where.uri, "name": name,
               "error": {"reason": KILLED, "position": None, "ts_recv": None,
                         "exception": None, "traceback": None}}
    return finish_session(where, summary, complete=False, title=f"{name} live session (recovered)",
                          sample_interval_ns=sample_interval_ns, config_text=config_text)


def _name_and_interval(config_text: str | None, source: str) -> tuple[str, int]:
    """The session's name and PnL sample interval from its resolved config.toml, if it has one."""
    if config_text is None:
        return "live", _DEFAULT_SAMPLE_INTERVAL_NS
    try:
        cfg = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"invalid TOML: {e}", source=source) from None
    interval = cfg.get("output", {}).get("sample_interval", _DEFAULT_SAMPLE_INTERVAL_NS)
    ns = parse_duration("output.sample_interval", interval, positive=True)
    return str(cfg.get("name", "live")), ns
