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

from lockstep.data.dataset import Instrument
from lockstep.enums import Rule
from lockstep.events import COLUMN_NAMES, COLUMNS, Columns


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
        from lockstep.data.storage import locate

        loc = locate(text)
        f: Any = io.BytesIO(loc.read_bytes()) if text.endswith(".zip") else loc.fs.open_input_file(loc.path)
    else:
        f = open(text, "rb")
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        import pyarrow as pa

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


class ChunkBuilder:
    """Accumulates records and events (for decoders written in Python) and cuts NormalizedChunks.

    Call `record(...)` once per record, then `event(...)` for each event it yields; `take()` returns
    the chunk so far (None if empty) and starts the next one at the following record.
    """

    def __init__(self, first_record: int = 0, capacity: int = 1 << 16) -> None:
        self._capacity = capacity
        self.next_record = first_record
        self._reset()

    def _reset(self) -> None:
        self._events: dict[str, list[int]] = {name: [] for name in COLUMN_NAMES}
        self._event_record: list[int] = []
        self._first = self.next_record
        self._files: list[int] = []
        self._lines: list[int] = []
        self._offsets: list[int] = []
        self._lengths: list[int] = []
        self._problems: list[int] = []
        self._reasons: dict[int, str] = {}

    @property
    def n_events(self) -> int:
        return len(self._event_record)

    @property
    def full(self) -> bool:
        return len(self._event_record) >= self._capacity or len(self._files) >= self._capacity

    def record(self, file: int, line: int, offset: int, length: int,
               problem: Rule = Rule.OK, reason: str | None = None) -> int:
        """Start a record; returns its global index."""
        index = self.next_record
        self.next_record += 1
        self._files.append(file)
        self._lines.append(line)
        self._offsets.append(offset)
        self._lengths.append(length)
        self._problems.append(int(problem))
        if problem != Rule.OK and reason is not None:
            self._reasons[index] = reason
        return index

    def event(self, ts_event: int, ts_recv: int, seq: int, instrument: int, kind: int, side: int,
              flags: int, price: int, qty: int, order_id: int = 0) -> None:
        """An event of the record started last."""
        ev = self._events
        ev["ts_event"].append(ts_event)
        ev["ts_recv"].append(ts_recv)
        ev["seq"].append(seq)
        ev["instrument"].append(instrument)
        ev["kind"].append(kind)
        ev["side"].append(side)
        ev["flags"].append(flags)
        ev["price"].append(price)
        ev["qty"].append(qty)
        ev["order_id"].append(order_id)
        self._event_record.append(self.next_record - 1)

    def take(self) -> NormalizedChunk | None:
        if not self._files:
            return None
        n = len(self._event_record)
        events = {name: np.asarray(self._events[name], dtype=dtype) if n else np.empty(0, dtype)
                  for name, dtype in COLUMNS}
        chunk = NormalizedChunk(
            events=events, n_events=n,
            event_record=np.asarray(self._event_record, dtype=np.int64),
            first_record=self._first, n_records=len(self._files),
            rec_file=np.asarray(self._files, dtype=np.int32),
            rec_line=np.asarray(self._lines, dtype=np.int64),
            rec_offset=np.asarray(self._offsets, dtype=np.int64),
            rec_length=np.asarray(self._lengths, dtype=np.int64),
            rec_problem=np.asarray(self._problems, dtype=np.uint8),
            problem_reasons=self._reasons,
        )
        self._reset()
        return chunk
