"""What every decoder hands the data platform: canonical events tied back to the records they came from.

A *record* is one unit of input as the venue or capture wrote it: a line of a JSON or CSV capture
(header lines and blank lines are not records), one ITCH message, one DBN record, one raw frame.
Accounting is by records: for every input, records in canonical + records in quarantine = records
read.

A decode run yields `NormalizedChunk`s in input order. Chunk k covers the records
``[first_record, first_record + n_records)``; the next chunk starts where it ended. Each event
names the record it came from (``event_record``, non-decreasing). A record may yield no event
(a depth diff already inside a snapshot): it is still a record, and it goes where its neighbours go.

A decoder that finds a record it cannot use (malformed, a message type it does not decode, a torn
tail, a stale duplicate, a delta with no snapshot to apply it to) emits no event for it and marks
it with the `Rule` that says why (``rec_problem``), with a reason text for at least the first
few of each rule. A decoder that sees a sequence break emits a `GAP` event for the instrument
(kind 64) before the events of the record that revealed it; the validator does the rest.
"""
from __future__ import annotations

import gzip
import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa

from lockstep.data.dataset import Instrument
from lockstep.data.storage import locate
from lockstep.enums import Rule
from lockstep.events import COLUMN_NAMES, COLUMNS, Columns, EventKind, Flag, Side


@dataclass
class NormalizedChunk:
    """Decoded events of a run of consecutive records, and where each record sits in its input.

    Arrays may be longer than the counts; only the first ``n_events`` / ``n_records`` entries count.
    """

    events: Columns  # canonical columns (lockstep.events.COLUMNS)
    n_events: int
    event_record: np.ndarray  # int64 per event: global index of the record it came from
    first_record: int  # global index of this chunk's first record
    n_records: int
    rec_file: np.ndarray  # int32 per record: index into the run's input list
    rec_line: np.ndarray  # int64 per record: 1-based line in its file, 0 for binary formats
    rec_offset: np.ndarray  # int64 per record: byte offset in the file's uncompressed content
    rec_length: np.ndarray  # int64 per record: its length in bytes (line terminator excluded)
    rec_problem: np.ndarray  # uint8 per record: Rule found by the decoder, 0 (Rule.OK) if none
    problem_reasons: dict[int, str] = field(default_factory=dict)  # global record -> why


@dataclass(frozen=True)
class InputFile:
    """One input of a run as the report names it."""

    path: str
    bytes_read: int  # uncompressed bytes decoded
    records: int


class DecodeRun(Protocol):
    """One decode of an ordered list of inputs (one stream). Iterate once; then the rest is known."""

    format: str  # "binance", "bybit", "tardis", "dbn", "itch", "raw"
    requires_snapshot: bool  # True: L2 deltas before an instrument's first snapshot are unusable

    def __iter__(self) -> Iterator[NormalizedChunk]: ...

    @property
    def instruments(self) -> list[Instrument]: ...  # the table event `instrument` indexes into

    @property
    def inputs(self) -> list[InputFile]: ...

    @property
    def counts(self) -> dict[str, Any]: ...  # format-specific counters for the report


def open_decompressed(path: str | os.PathLike[str]) -> BinaryIO:
    """The uncompressed bytes of `path` (a local path or a pyarrow filesystem URI): gzip, zstd and
    single-member zip are detected by magic."""
    text = os.fspath(path)
    if "://" in text:
        loc = locate(text)
        f: Any = io.BytesIO(loc.read_bytes()) if text.endswith(".zip") else loc.fs.open_input_file(loc.path)
    else:
        f = open(text, "rb")
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        return pa.CompressedInputStream(pa.PythonFile(f, mode="r"), "zstd")  # type: ignore[return-value]
    if head == b"PK\x03\x04":
        archive = zipfile.ZipFile(f)
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise ValueError(f"{text}: a zip input must hold exactly one file, found {len(members)}")
        return archive.open(members[0])  # type: ignore[return-value]
    return f


def read_decompressed(path: str | os.PathLike[str]) -> bytes:
    with open_decompressed(path) as f:
        out = io.BytesIO()
        while chunk := f.read(1 << 20):
            out.write(chunk)
        return out.getvalue()


#: Canonical codes as plain ints, for decoders that build events one by one in Python.
L2_SET, L3_ADD, L3_MODIFY, L3_DELETE, L3_EXECUTE, BOOK_CLEAR, TRADE, GAP, TRADING_PHASE = (
    int(k) for k in (EventKind.L2_SET, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
                     EventKind.L3_EXECUTE, EventKind.BOOK_CLEAR, EventKind.TRADE, EventKind.GAP,
                     EventKind.TRADING_PHASE))
LAST, SNAPSHOT, BAD_TS_RECV = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.BAD_TS_RECV)
BID, ASK = int(Side.BID), int(Side.ASK)

_EVENT_ROW = np.dtype([*COLUMNS, ("record", np.int64)])
_RECORD_ROW = np.dtype([("file", np.int32), ("line", np.int64), ("offset", np.int64), ("length", np.int64),
                        ("problem", np.uint8)])


class ChunkBuilder:
    """Accumulates records and events (for decoders written in Python) and cuts NormalizedChunks.

    Call `record(...)` once per record, then `event(...)` for each event it yields; `take()` returns
    the chunk so far (None if empty) and starts the next one at the following record. Problems are
    counted per rule over the whole run (`problems`, by rule label); the reason text is kept for
    the first `reasons_per_rule` records of each rule (enough to diagnose, bounded on garbage).
    """

    def __init__(self, first_record: int = 0, capacity: int = 1 << 16, reasons_per_rule: int = 100) -> None:
        self._capacity = capacity
        self._reasons_per_rule = reasons_per_rule
        self.next_record = first_record
        self.problems: dict[str, int] = {}
        self._reset()

    def _reset(self) -> None:
        self._events: list[tuple[int, ...]] = []  # the canonical columns, then the record
        self._records: list[tuple[int, int, int, int, int]] = []  # file, line, offset, length, problem
        self._reasons: dict[int, str] = {}
        self._first = self.next_record

    @property
    def n_events(self) -> int:
        return len(self._events)

    @property
    def n_records(self) -> int:
        return len(self._records)

    @property
    def full(self) -> bool:
        return len(self._events) >= self._capacity or len(self._records) >= self._capacity

    def record(self, file: int, line: int, offset: int, length: int,
               problem: Rule = Rule.OK, reason: str | None = None) -> int:
        """Start a record; returns its global index."""
        index = self.next_record
        self.next_record += 1
        self._records.append((file, line, offset, length, int(problem)))
        if problem != Rule.OK:
            seen = self.problems.get(problem.label, 0)
            self.problems[problem.label] = seen + 1
            if reason is not None and seen < self._reasons_per_rule:
                self._reasons[index] = reason
        return index

    def event(self, ts_event: int, ts_recv: int, seq: int, instrument: int, kind: int, side: int,
              flags: int, price: int, qty: int, order_id: int = 0) -> None:
        """An event of the record started last."""
        self._events.append((ts_event, ts_recv, seq, instrument, kind, side, flags, price, qty, order_id,
                             self.next_record - 1))

    def add_flags(self, event: int, flags: int) -> None:
        """Sets `flags` on an event of the chunk being built (`event` counts from its first)."""
        row = self._events[event]
        if row[6] & flags != flags:
            self._events[event] = (*row[:6], row[6] | flags, *row[7:])

    def take(self) -> NormalizedChunk | None:
        if not self._records:
            return None
        n = len(self._events)
        events = np.array(self._events, dtype=_EVENT_ROW) if n else np.zeros(0, dtype=_EVENT_ROW)
        records = np.array(self._records, dtype=_RECORD_ROW)
        chunk = NormalizedChunk(
            events={name: np.ascontiguousarray(events[name]) for name in COLUMN_NAMES}, n_events=n,
            event_record=np.ascontiguousarray(events["record"]),
            first_record=self._first, n_records=len(self._records),
            rec_file=np.ascontiguousarray(records["file"]), rec_line=np.ascontiguousarray(records["line"]),
            rec_offset=np.ascontiguousarray(records["offset"]),
            rec_length=np.ascontiguousarray(records["length"]),
            rec_problem=np.ascontiguousarray(records["problem"]), problem_reasons=self._reasons,
        )
        self._reset()
        return chunk

    def take_if_full(self) -> Iterator[NormalizedChunk]:
        """The chunk so far when it is full (nothing otherwise)."""
        if self.full:
            yield from self.take_rest()

    def take_rest(self) -> Iterator[NormalizedChunk]:
        """The chunk so far unless it is empty."""
        chunk = self.take()
        if chunk is not None:
            yield chunk
