"""The journal of a live session: every input the live core applied, in the order it applied it,
with its receive stamp, and every output it produced (docs/journal.md is normative).

A journal is a raw capture (lockstep.data.raw_capture: CRC32C-checksummed frames, rotation,
torn-tail repair) whose file header says what it is (`info`: format, version, lockstep version,
the resolved config, the session's instruments and order-entry terms) and whose frames are one
stream per kind of record:

    inputs   itch      MoldUDP64 message blocks in sequence: u64 big-endian first sequence + blocks
             ouch      one OUCH 4.2 outbound message from the venue
             tick      a clock tick (empty)
             gap       a feed gap not recovered: u64 big-endian first sequence lost
             finish    the end of trading: the strategy's on_stop (empty)
             control   Control State: b"M" + a TradingMode value, or b"K" + 1 (kill) / 0 (off);
                       connection state: b"O" + 1 (order entry up) / 0 (down), b"S" + 0 (feed session)
    outputs  dispatch  one OUCH 4.2 inbound message the core handed over to send
             decision  one intent and Risk's verdict (DECISION below)
             execution one execution event of our orders (EXECUTION below)
             failure   the strategy failed: JSON {reason, exception, traceback}
             end       the session's end: JSON {digest, orders, fills, intents, denials, ...}

An input frame's receive_ns is its receive stamp; an output frame's is the stamp of the input
that caused it, and it follows that input's frame. `JournalWriter` appends; `read_journal`
yields the records back, checking every checksum: a damaged or cut journal is a DecodeError
naming the file and the offset.
"""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lockstep._bindings import engine as _engine
from lockstep._bindings import live_loop as _live_loop
from lockstep.data.raw_capture import (
    capture_files,
    file_metadata,
    next_sequence,
    read_frames,
    read_header,
    remove_stale_staging,
)
from lockstep.errors import DecodeError, LockstepError

#: `info["format"]` of a journal's file header.
FORMAT = "lockstep-journal"
VERSION = 1
#: File name prefix of the journal's files inside its directory.
PREFIX = "journal"

INPUT_STREAMS = ("itch", "ouch", "tick", "gap", "finish", "control", "snapshot", "snapshot_part")
OUTPUT_STREAMS = ("dispatch", "decision", "execution", "failure", "end")
# Stream id = position; a stream added later takes the next id, so older journals (whose
# header lists fewer) still read.
STREAMS = INPUT_STREAMS[:6] + OUTPUT_STREAMS + ("snapshot", "snapshot_part")
#: The most message-block bytes of a snapshot in one frame: a larger snapshot is journaled as
#: `snapshot_part` frames of its first blocks, then the `snapshot` frame with the rest (a frame
#: must fit the journal's ring, 16 MiB by default; a venue's snapshot can be hundreds).
SNAPSHOT_PART_BYTES = 1 << 20
_FIRST_STREAMS = 11  # the streams of the first journals

#: A decision frame: ts_recv, instrument, intent kind, side, tif, price, qty, client order id,
#: target order id, reason (lockstep.enums.RiskReason; 0 allowed). Little-endian.
DECISION = struct.Struct("<qIBBBqqQQB")
#: An execution frame: ts_event, ts_recv, instrument, kind (lockstep.events.EventKind), side,
#: flags, reason, price, qty, order id, fee. Little-endian.
EXECUTION = struct.Struct("<qqIBBBBqqQq")
SEQUENCE = struct.Struct(">Q")
#: Control records: b"M" (trading mode) or b"K" (kill switch), then one byte of value.
CONTROL_MODE = b"M"
CONTROL_KILL = b"K"
#: Connection state, journaled on the control stream too: b"O" + 1 (order entry logged in
#: again) / 0 (lost), and b"S" + 0 (the feed's MoldUDP64 session changed).
CONTROL_ORDER_ENTRY = b"O"
CONTROL_FEED_SESSION = b"S"

DECISION_FIELDS = ("ts_recv", "instrument", "intent", "side", "tif", "price", "qty",
                   "client_order_id", "target_order_id", "reason")
EXECUTION_FIELDS = ("ts_event", "ts_recv", "instrument", "kind", "side", "flags", "reason", "price",
                    "qty", "order_id", "fee")


@dataclass(frozen=True)
class JournalRecord:
    """One frame of a journal: its stream, receive stamp, payload and where it is."""

    stream: str
    receive_ns: int
    payload: bytes
    path: str
    offset: int

    @property
    def where(self) -> str:
        return f"{self.path}, offset {self.offset}"


# The packed layouts as numpy records, to rebuild Engine.drain()'s columns (for the execution
# records writer) from what the core packed, without a second drain.
_DECISION_DTYPE = np.dtype([("ts_recv", "<i8"), ("instrument", "<u4"), ("intent", "u1"),
                            ("side", "u1"), ("tif", "u1"), ("price", "<i8"), ("qty", "<i8"),
                            ("client_order_id", "<u8"), ("target_order_id", "<u8"),
                            ("reason", "u1")])
_EXECUTION_DTYPE = np.dtype([("ts_event", "<i8"), ("ts_recv", "<i8"), ("instrument", "<u4"),
                             ("kind", "u1"), ("side", "u1"), ("flags", "u1"), ("reason", "u1"),
                             ("price", "<i8"), ("qty", "<i8"), ("order_id", "<u8"),
                             ("fee", "<i8")])


def drained_columns(decisions: bytes, executions: bytes, samples: bytes
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(execution records, denials, PnL samples) as Engine.drain() gives them (EXEC_COLUMNS,
    DENIAL_COLUMNS, SAMPLE_COLUMNS), from packed decisions and execution records (denials are
    the decisions not allowed) and PNL_SAMPLE rows."""
    x = np.frombuffer(executions, _EXECUTION_DTYPE)
    d = np.frombuffer(decisions, _DECISION_DTYPE)
    d = d[d["reason"] != 0]
    s = np.frombuffer(samples, _engine.PNL_SAMPLE)
    exec_cols = {name: x["reason" if name == "seq" else name].astype(kind)
                 for name, kind in _engine.EXEC_COLUMNS}
    denial_cols = {name: d[name].astype(kind) for name, kind in _engine.DENIAL_COLUMNS}
    sample_cols = {name: s[name].astype(kind) for name, kind in _engine.SAMPLE_COLUMNS}
    return exec_cols, denial_cols, sample_cols


def split_records(data: bytes, size: int) -> list[bytes]:
    """The fixed-size records (DECISION, EXECUTION) packed back to back in `data`."""
    return [data[k:k + size] for k in range(0, len(data), size)]


def split_outbound(data: bytes) -> list[bytes]:
    """The OUCH messages of a [u16 length][message] stream (LiveCore.end_input()'s outbound)."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(bytes(data[pos + 2:pos + 2 + n]))
        pos += 2 + n
    return out


def snapshot_parts(blocks: bytes, most: int) -> list[bytes]:
    """A snapshot's `blocks` ([u16 length][message] ...) cut into runs of whole blocks of at
    most `most` bytes each (a block longer than `most` alone), one journal frame each; at least
    one run, empty when `blocks` is. A tail that is not a whole block stays with the last run."""
    runs: list[bytes] = []
    start = pos = 0
    while pos + 2 <= len(blocks):
        end = pos + 2 + int.from_bytes(blocks[pos:pos + 2], "big")
        if end > len(blocks):
            break
        if end - start > most and pos > start:
            runs.append(blocks[start:pos])
            start = pos
        pos = end
    runs.append(blocks[start:])
    return runs


class JournalWriter:
    """Appends a session's records to a journal directory (created if missing).

    `info` (the resolved config, instruments, terms) goes into every file's header with the
    format, version and lockstep version. Frames go through a ring to a writer thread (the C++
    journal writer, include/lockstep/runtime/journal.hpp, which the live node's C++ loop appends
    to as well), which hands them to the operating system as they come and fsyncs the file every
    `fsync_interval_ns` (fsync_every=1: after every frame); a full ring waits, so no frame is
    ever dropped. close() writes the rest, fsyncs and closes."""

    def __init__(self, directory: str | os.PathLike[str], info: Mapping[str, Any], *,
                 max_bytes: int = 1 << 30, fsync_every: int = 0,
                 fsync_interval_ns: int = 1_000_000_000, ring_bytes: int = 16 << 20) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stale_removed = remove_stale_staging(self.directory, PREFIX)
        header = {"format": FORMAT, "version": VERSION, **info}
        self.native = _live_loop.Journal(
            os.fspath(self.directory), PREFIX, next_sequence(self.directory, PREFIX),
            file_metadata(STREAMS, header), max_bytes, fsync_every > 0, fsync_interval_ns,
            ring_bytes)
        self.ring_bytes = ring_bytes
        self._ids = {name: i for i, name in enumerate(STREAMS)}
        self._closed = False

    def write(self, stream: str, receive_ns: int, payload: bytes = b"") -> None:
        if self._closed:
            raise ValueError("write to a closed journal")
        if not self.native.append(receive_ns, self._ids[stream], payload):
            self.check()
            raise LockstepError(f"{self.directory}: a {stream} frame of {len(payload):,} bytes does "
                                f"not fit the journal's ring of {self.ring_bytes:,} bytes")

    def check(self) -> None:
        """LockstepError when the writer has failed (the journal is incomplete from there)."""
        failure = self.native.failure()
        if failure is not None:
            what, err, path = failure
            raise LockstepError(f"{path}: the journal writer failed: {what}: {os.strerror(err)}")

    def flush(self) -> None:
        """Waits until every frame written so far is in the file (not fsynced)."""
        self.native.wait_written()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.native.close()

    @property
    def frames(self) -> int:
        return self.native.frames


def journal_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files of the journal at `path`: a journal directory, a session directory holding
    `journal/`, or one journal file. DecodeError when there is none."""
    p = Path(path)
    if p.is_file():
        return [p]
    if (p / "journal").is_dir():
        p = p / "journal"
    if not p.is_dir():
        raise DecodeError("no such journal (a journal directory, a session directory or a "
                          "journal file)", path=p)
    files = capture_files(p, PREFIX)
    if not files:
        raise DecodeError(f"no journal files ({PREFIX}-NNNNNN.lsraw) in this directory", path=p)
    return files


def journal_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file header info of the journal at `path` (format and version checked)."""
    first = journal_files(path)[0]
    header = read_header(first)
    info = header.info
    streams = tuple(header.streams)
    if info.get("format") != FORMAT or len(streams) < _FIRST_STREAMS or \
            streams != STREAMS[:len(streams)]:
        raise DecodeError(f"not a lockstep journal (format {info.get('format')!r})", path=first,
                          offset=0)
    if info.get("version") != VERSION:
        raise DecodeError(f"journal version {info.get('version')!r}, this build reads {VERSION}",
                          path=first, offset=0)
    return info


def read_journal(path: str | os.PathLike[str]) -> Iterator[JournalRecord]:
    """Every record of the journal at `path`, in order. A corrupt frame or a torn tail (a cut
    journal) raises DecodeError naming the file and the offset, after the records before it."""
    for file in journal_files(path):
        reader = read_frames(file, corrupt="raise")
        for batch in reader:
            offsets = batch.file_offset.tolist()
            for k, (stamp, stream_id, payload) in enumerate(batch):
                if stream_id >= len(STREAMS):
                    raise DecodeError(f"frame of unknown stream {stream_id}", path=file,
                                      offset=offsets[k])
                yield JournalRecord(STREAMS[stream_id], stamp, payload, str(file), offsets[k])
        torn = reader.reports[-1].torn_tail if reader.reports else None
        if torn is not None:
            raise DecodeError(torn.describe() + "; the journal is cut there (lockstep's raw "
                              "capture repair() cuts it to its last whole frame)",
                              path=file, offset=torn.offset)


def end_record(record: JournalRecord) -> dict[str, Any]:
    """The JSON of an `end` or `failure` record."""
    try:
        return json.loads(record.payload)
    except ValueError as e:
        raise DecodeError(f"{record.stream} record is not JSON: {e}", path=record.path,
                          offset=record.offset) from None


__all__ = [
    "CONTROL_FEED_SESSION", "CONTROL_KILL", "CONTROL_MODE", "CONTROL_ORDER_ENTRY", "DECISION", "EXECUTION", "FORMAT", "INPUT_STREAMS", "OUTPUT_STREAMS", "PREFIX", "SEQUENCE", "SNAPSHOT_PART_BYTES",
    "STREAMS", "VERSION", "JournalRecord", "JournalWriter", "drained_columns", "end_record",
    "journal_files",
    "journal_info", "read_journal", "snapshot_parts", "split_outbound", "split_records",
]
