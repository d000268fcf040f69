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

import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

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


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZIP_MAGIC = b"PK\x03\x04"
_COMPRESSED_READ = 1 << 16  # compressed bytes read from the input at once
_MAX_OUT = 1 << 20  # most uncompressed bytes one step produces (bounded memory on any ratio)
_ZSTD_STEP = 1 << 11  # compressed bytes per zstd step: its decompress() has no output bound (at
# most 32768 times its input: 64 MiB a step)
_ARROW_STEP = 1 << 12  # uncompressed bytes per read of pyarrow's zstd stream


@dataclass(frozen=True)
class StreamCut:
    """A compressed input that ends before its compressed stream does (a download, copy or write
    cut short): every byte before `offset` of the uncompressed content was read, nothing after it
    exists. Importers make what follows the last whole record one TRUNCATED_RECORD ending there."""

    compression: str  # "gzip", "zstd" or "zip"
    offset: int  # uncompressed bytes read: where the content ends
    withheld: bool = False  # pyarrow's zstd kept back what it had decoded of the last block

    @property
    def reason(self) -> str:
        text = (f"the {self.compression} stream is cut: the input ends before the stream does, "
                f"after {self.offset} uncompressed bytes")
        if self.withheld:
            text += " (the last bytes before the cut are lost: install zstandard to read zstd up to the cut)"
        return text


class DecompressedInput(io.RawIOBase):
    """The uncompressed content of one input, read up to its end or up to where it is cut.

    A compressed stream (gzip of any number of members, zstd of any number of frames, the one
    member of a zip) that the input ends inside ends quietly where the input ends, and `cut` then
    says so (None: the stream was whole, or the input is not compressed). A stream that is corrupt
    rather than cut raises as its decompressor does (zlib.error, OSError, ...)."""

    def __init__(self, src: Any, compression: str | None, *, owned: bool = True,
                 under: Any = None) -> None:
        super().__init__()
        self._src = src
        self._owned = owned  # closing this closes `src`, and `under` (what `src` reads) if given
        self._under = under
        self.compression = compression
        self.cut: StreamCut | None = None
        self._total = 0  # content handed out so far
        self._pending = memoryview(b"")
        self._ended: bool | None = None  # set by _end(): the stream is cut (value: withheld)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pending:
            piece = self._next()
            if piece is None:
                if self._ended is not None and self.cut is None:
                    self.cut = StreamCut(self.compression or "", self._total, self._ended)
                return 0
            self._pending = memoryview(piece)
            self._total += len(piece)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _next(self) -> bytes | None:
        """The next piece of content, None at its end (after _end() if the stream is cut)."""
        return self._src.read(_COMPRESSED_READ) or None

    def _end(self, withheld: bool = False) -> None:
        self._ended = withheld

    def close(self) -> None:
        if not self.closed and self._owned:
            self._src.close()
            if self._under is not None:
                self._under.close()
        super().close()


class _Members(DecompressedInput):
    """gzip members or zstd frames back to back; `new()` starts the decompressor of the next one
    (decompress(), eof and unused_data, as zlib's have)."""

    def __init__(self, src: Any, compression: str, new: Callable[[], Any], *, owned: bool) -> None:
        super().__init__(src, compression, owned=owned)
        self._new = new
        self._bounded = compression == "gzip"  # zlib's decompress takes an output bound
        self._d: Any = None
        self._left = memoryview(b"")  # compressed bytes not given to a decompressor yet

    def _next(self) -> bytes | None:
        while True:
            if not self._left:
                self._left = memoryview(self._src.read(_COMPRESSED_READ))
                if not self._left:
                    if self._d is not None:
                        self._end()
                    return None
            if self._d is None:
                self._d = self._new()
            if self._bounded:
                out = self._d.decompress(self._left, _MAX_OUT)
                self._left = memoryview(self._d.unconsumed_tail)
            else:
                out = self._d.decompress(self._left[:_ZSTD_STEP])
                self._left = self._left[_ZSTD_STEP:]
            if self._d.eof:
                self._left = memoryview(self._d.unused_data + self._left.tobytes())
                self._d = None
            if out:
                return out


class _ArrowZstd(DecompressedInput):
    """zstd through pyarrow when zstandard is not installed: pyarrow tells a cut stream only by
    an error, and keeps back what it had decoded of the last block."""

    def __init__(self, src: Any, *, owned: bool) -> None:
        super().__init__(src, "zstd", owned=owned)
        self._stream = pa.CompressedInputStream(pa.PythonFile(src, mode="r"), "zstd")

    def _next(self) -> bytes | None:
        try:
            # Small reads: a read that meets the cut loses all it had decoded.
            return self._stream.read(_ARROW_STEP) or None
        except OSError as e:
            if "truncated" not in str(e).lower():
                raise
            self._end(withheld=True)
            return None


class _ZipLocalMember(DecompressedInput):
    """A zip whose central directory is missing (the file is cut before its end): the first
    member, read from its local header, stored or deflated, up to the cut."""

    def __init__(self, src: Any, *, owned: bool) -> None:
        super().__init__(src, "zip", owned=owned)
        head = src.read(30)
        method = int.from_bytes(head[8:10], "little") if len(head) == 30 else 0
        if method not in (0, 8):
            raise ValueError(f"a zip member compressed with method {method} (stored and deflate are read)")
        names = int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
        self._done = len(head) < 30 or len(src.read(names)) < names
        self._size = int.from_bytes(head[18:22], "little")  # a stored member's size
        self._d = None if method == 0 else zlib.decompressobj(-15)

    def _next(self) -> bytes | None:
        while not self._done:
            if self._d is None:
                data = self._src.read(min(_COMPRESSED_READ, self._size - self._total))
                if data:
                    return data
                break
            data = self._d.unconsumed_tail or self._src.read(_COMPRESSED_READ)
            if not data:
                break
            out = self._d.decompress(data, _MAX_OUT)
            self._done = self._d.eof
            if out:
                return out
        # The member may be whole; the directory that should follow it is not.
        self._done = True
        self._end()
        return None


class Decompressed(io.BufferedReader):
    """What open_decompressed returns: a buffered binary file with `cut` (see StreamCut), known
    once reading has reached the end."""

    @property
    def cut(self) -> StreamCut | None:
        return getattr(self.raw, "cut", None)

    @property
    def compression(self) -> str | None:
        """"gzip", "zstd", "zip" or None (read as it is)."""
        return getattr(self.raw, "compression", None)


def _zstd(f: Any, owned: bool) -> DecompressedInput:
    try:
        import zstandard  # optional: pyarrow reads zstd too, but not up to a cut
    except ImportError:
        return _ArrowZstd(f, owned=owned)
    new = zstandard.ZstdDecompressor().decompressobj
    if not hasattr(new(), "eof"):  # too old to tell where a frame ends
        return _ArrowZstd(f, owned=owned)
    return _Members(f, "zstd", new, owned=owned)


def decompressed(f: Any, name: str, *, owned: bool = True) -> Decompressed:
    """The uncompressed content of the binary file `f`: gzip, zstd and single-member zip are
    told by their magic, anything else is read as it is. THE place compressed input is opened.
    owned: closing the result closes `f`."""
    if hasattr(f, "peek"):
        head = f.peek(4)[:4]
    else:
        head = f.read(4)
        f.seek(0)
    if head[:2] == _GZIP_MAGIC:
        raw: io.RawIOBase = _Members(f, "gzip", lambda: zlib.decompressobj(31), owned=owned)
    elif head == _ZSTD_MAGIC:
        raw = _zstd(f, owned)
    elif head == _ZIP_MAGIC:
        raw = _zip(f, name, owned)
    elif owned and isinstance(f, io.BufferedReader) and isinstance(f.raw, io.FileIO):
        raw = f.detach()  # a plain local file: read directly (the peek moved it on)
        raw.seek(0)
    else:
        raw = DecompressedInput(f, None, owned=owned)
    return Decompressed(raw, _COMPRESSED_READ)


def _zip(f: Any, name: str, owned: bool) -> DecompressedInput:
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile:  # no central directory: the file is cut
        f.seek(0)
        return _ZipLocalMember(f, owned=owned)
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1:
        raise ValueError(f"{name}: a zip input must hold exactly one file, found {len(members)}")
    return DecompressedInput(archive.open(members[0]), "zip", under=f if owned else None)


def open_decompressed(path: str | os.PathLike[str]) -> Decompressed:
    """The uncompressed content of `path` (a local path or a pyarrow filesystem URI), read up to
    where a compressed stream is cut (see decompressed())."""
    text = os.fspath(path)
    if "://" in text:
        loc = locate(text)
        f: Any = io.BytesIO(loc.read_bytes()) if text.endswith(".zip") else loc.fs.open_input_file(loc.path)
    else:
        f = open(text, "rb")  # noqa: SIM115 - handed to the caller
    return decompressed(f, text)


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
