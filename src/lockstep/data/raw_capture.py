"""lockstep raw capture files: what a recorder saw on the wire, frame by frame (docs/raw-format.md).

A capture is a directory of files ``<prefix>-<sequence>.lsraw`` (sequence 000001, 000002, ...), each
one a file header (format version, stream table, the caller's info) followed by append-only frames
``(receive_ns, stream_id, payload)``, each with CRC32C checksums over its header and its payload.

- RawWriter writes frames and rotates files by size and by receive time (never the wall clock).
- read_frames() streams the frames back in bounded memory as FrameBatch column batches, verifying
  every checksum (C++, include/lockstep/codecs/raw_capture.hpp).
- scan() reports what a file holds, including a torn tail (a crash mid-write: reported, not fatal)
  and corrupt frames (reported with offset and checksums); repair() cuts a torn tail.
- lines_from_frames() / open_lines() turn frames whose payload is one text message into the
  ``<receive ns> <payload>\\n`` lines the Binance importer reads; CaptureLines does the same for
  an import, with a damage line in place of each damaged stretch (a corrupt frame or region, a
  frame of an unknown stream id, a torn tail), so that every good frame is read and every damaged
  byte accounted for.
- is_capture_file() tells a capture, even one with a damaged header, from any other input.
"""
from __future__ import annotations

import io
import itertools
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from lockstep._bindings import raw_capture as _rc
from lockstep.enums import FrameStop
from lockstep.errors import DecodeError

PathLike = Union[str, "os.PathLike[str]"]

#: The stream table's name for a recorder's history records (docs/raw-format.md, "History
#: records"): the capture's notes about its feeds, never read as a feed's messages.
HISTORY_STREAM = "lockstep.history"
MAGIC = b"LSRAW\x00"
VERSION = 1
SUFFIX = ".lsraw"
FILE_HEADER_FIXED = 24  # magic, version, meta_length, flags, sequence; then metadata and its CRC
FRAME_HEADER: int = _rc.FRAME_HEADER
MAX_PAYLOAD: int = _rc.MAX_PAYLOAD
MAX_METADATA = 1 << 20
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

_BATCH_BYTES = 8 << 20  # bytes read per refill: a batch's data buffer
_BATCH_FRAMES = 1 << 16  # rows per batch
_KEEP_CORRUPT = 1000  # corrupt regions listed in a report (all are counted)


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of `data`, continuing `crc` like zlib.crc32 does (0 to start)."""
    return _rc.crc32c(data, crc)


# ---------------------------------------------------------------------------------------------
# file header


@dataclass(frozen=True)
class RawFileHeader:
    """The file header: `size` is its length in bytes (the offset of the first frame)."""

    path: str
    version: int
    sequence: int
    streams: tuple[str, ...]
    info: dict[str, Any]
    size: int


def file_metadata(streams: Sequence[str], info: Mapping[str, Any] | None) -> bytes:
    """A file header's metadata: the stream table and info as sorted-key compact ASCII JSON."""
    meta = json.dumps({"info": dict(info or {}), "streams": list(streams)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    if len(meta) > MAX_METADATA:
        raise ValueError(f"stream table and info take {len(meta)} bytes, over {MAX_METADATA}")
    return meta


def encode_file_header(sequence: int, streams: Sequence[str], info: Mapping[str, Any] | None) -> bytes:
    """The bytes of a file header (deterministic: sorted-key compact JSON, no clock)."""
    if not 0 <= sequence < (1 << 64):
        raise ValueError(f"sequence {sequence} does not fit uint64")
    meta = file_metadata(streams, info)
    head = (MAGIC + VERSION.to_bytes(2, "little") + len(meta).to_bytes(4, "little")
            + (0).to_bytes(4, "little") + sequence.to_bytes(8, "little") + meta)
    return head + crc32c(head).to_bytes(4, "little")


def _read_header(f: io.BufferedReader, path: str) -> RawFileHeader:
    fixed = f.read(FILE_HEADER_FIXED)
    if not fixed:
        raise DecodeError("empty file: no raw capture header", path=path, offset=0)
    if fixed[:len(MAGIC)] != MAGIC[:len(fixed)]:
        raise DecodeError(f"not a lockstep raw capture: starts with {fixed[:8]!r}, expected "
                          f"magic {MAGIC!r}", path=path, offset=0)
    if len(fixed) < FILE_HEADER_FIXED:
        raise DecodeError(f"truncated file header: the file ends after {len(fixed)} bytes",
                          path=path, offset=len(fixed))
    version = int.from_bytes(fixed[6:8], "little")
    if version != VERSION:
        raise DecodeError(f"unsupported raw capture format version {version} (this reader "
                          f"reads version {VERSION})", path=path, offset=6)
    meta_len = int.from_bytes(fixed[8:12], "little")
    if meta_len > MAX_METADATA:
        raise DecodeError(f"metadata length {meta_len} exceeds the format's {MAX_METADATA}",
                          path=path, offset=8)
    flags = int.from_bytes(fixed[12:16], "little")
    if flags != 0:
        raise DecodeError(f"unknown header flags 0x{flags:08x} (version {VERSION} has none)",
                          path=path, offset=12)
    rest = f.read(meta_len + 4)
    if len(rest) < meta_len + 4:
        raise DecodeError(f"truncated file header: {meta_len} bytes of metadata and a checksum "
                          f"expected, the file ends after {len(rest)}",
                          path=path, offset=FILE_HEADER_FIXED + len(rest))
    meta = rest[:meta_len]
    stored = int.from_bytes(rest[meta_len:], "little")
    computed = crc32c(fixed + meta)
    if stored != computed:
        raise DecodeError(f"file header checksum mismatch: stored 0x{stored:08x}, computed "
                          f"0x{computed:08x}", path=path, offset=FILE_HEADER_FIXED + meta_len)
    try:
        doc = json.loads(meta.decode("utf-8"))
        streams = doc["streams"]
        info = doc["info"]
        if not (isinstance(streams, list) and all(isinstance(s, str) for s in streams)
                and isinstance(info, dict)):
            raise ValueError("'streams' must be a list of strings and 'info' an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid header metadata: {exc}", path=path,
                          offset=FILE_HEADER_FIXED) from None
    return RawFileHeader(path=path, version=version, sequence=int.from_bytes(fixed[16:24], "little"),
                         streams=tuple(streams), info=info, size=FILE_HEADER_FIXED + meta_len + 4)


def read_header(path: PathLike) -> RawFileHeader:
    """The header of one capture file; DecodeError (naming file and offset) if it is not valid."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        return _read_header(f, p)


def is_capture_file(path: PathLike) -> bool:
    """A file that is, or was written as, a raw capture, so that it is read as one (and refused,
    naming the field, if its header is not valid) and never as anything else: its name ends in
    .lsraw, it starts with the magic, at least 4 of the magic's 6 bytes are in place (a damaged
    magic), or its fixed header holds version 1 and flags 0 with a metadata length in range and
    a header checksum that matches (the magic wholly overwritten)."""
    p = os.fspath(path)
    if p.endswith(SUFFIX):
        return True
    try:
        with open(p, "rb") as f:
            fixed = f.read(FILE_HEADER_FIXED)
            if sum(a == b for a, b in zip(fixed, MAGIC)) >= 4:
                return True
            meta_len = int.from_bytes(fixed[8:12], "little")
            if (len(fixed) < FILE_HEADER_FIXED or fixed[6:8] != VERSION.to_bytes(2, "little")
                    or fixed[12:16] != bytes(4) or meta_len > MAX_METADATA):
                return False
            rest = f.read(meta_len + 4)
    except OSError:
        return False
    return len(rest) == meta_len + 4 and crc32c(fixed + rest[:meta_len]) == int.from_bytes(rest[meta_len:], "little")


# ---------------------------------------------------------------------------------------------
# reports


@dataclass(frozen=True)
class TornTail:
    """The file ends inside a frame (a crash mid-write): `bytes` bytes from `offset` to the end.

    zero_filled: the tail is all zero bytes (a file extended by the filesystem but never written).
    """

    offset: int
    bytes: int
    zero_filled: bool = False

    def describe(self) -> str:
        if self.zero_filled:
            return (f"torn tail: {self.bytes} zero bytes from offset {self.offset} to the end (space "
                    "the filesystem gave the file that a crash kept from being written)")
        return (f"torn tail: the file ends {self.bytes} bytes into a frame at offset {self.offset} "
                "(a recorder stopped mid-write)")


@dataclass(frozen=True)
class CorruptRegion:
    """Bytes [offset, end) that do not hold valid frames.

    kind "frame": a frame whose header is valid but whose frame_crc is not (the payload or the
    timestamp/stream fields are damaged): exactly that frame, skipped. kind "header": a frame header
    fails its own checksum, so its length is not trusted; the reader resynchronises at the next
    position holding a whole valid frame and `end` is that position (or the end of the file).
    expected/got: the stored and the computed checksum (frame_crc resp. header_crc at `offset`).
    """

    offset: int
    end: int
    kind: str
    expected: int
    got: int

    def describe(self) -> str:
        """What is wrong with the region, in words (its offsets are the caller's to give)."""
        if self.kind == "frame":
            return (f"corrupt frame: frame checksum stored 0x{self.expected:08x}, computed "
                    f"0x{self.got:08x} ({self.end - self.offset} bytes)")
        return (f"corrupt frame header: header checksum stored 0x{self.expected:08x}, computed "
                f"0x{self.got:08x} (or a length over {MAX_PAYLOAD}); these "
                f"{self.end - self.offset} bytes hold no valid frame")


@dataclass
class RawScanReport:
    """What one capture file holds, as a reader sees it."""

    path: str
    header: RawFileHeader
    frames: int = 0
    payload_bytes: int = 0
    file_bytes: int = 0
    first_receive_ns: int | None = None
    last_receive_ns: int | None = None
    receive_ns_backwards: int = 0  # frames whose receive_ns is below the previous frame's
    unknown_stream_frames: int = 0  # stream_id outside a non-empty stream table
    torn_tail: TornTail | None = None
    corrupt: list[CorruptRegion] = field(default_factory=list)  # the first _KEEP_CORRUPT
    corrupt_count: int = 0
    unreadable_bytes: int = 0  # total size of the corrupt regions

    @property
    def clean(self) -> bool:
        return self.torn_tail is None and self.corrupt_count == 0


# ---------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """Frames of one file as columns. `data` is the read buffer (read-only); frame i's payload is
    data[offset[i] : offset[i] + length[i]]. file_offset is where each frame (its header) starts."""

    path: str
    streams: tuple[str, ...]
    receive_ns: np.ndarray  # int64
    stream_id: np.ndarray  # uint32
    offset: np.ndarray  # uint64, into data
    length: np.ndarray  # uint32
    file_offset: np.ndarray  # uint64, into the file
    data: memoryview

    def __len__(self) -> int:
        return len(self.receive_ns)

    def payload(self, i: int) -> bytes:
        o = int(self.offset[i])
        return bytes(self.data[o:o + int(self.length[i])])

    def payloads(self) -> list[bytes]:
        d = self.data
        return [bytes(d[o:o + n]) for o, n in zip(self.offset.tolist(), self.length.tolist())]

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        return iter(zip(self.receive_ns.tolist(), self.stream_id.tolist(), self.payloads()))


_CORRUPT_MODES = ("raise", "skip")


class FrameReader:
    """Iterates FrameBatch objects over one or more capture files, in order.

    corrupt="raise" (default): a corrupt frame raises DecodeError (file, offset, checksums) after
    the valid frames before it were yielded. corrupt="skip": it is recorded in the file's report and
    reading continues. A torn tail never raises: reading stops at the last whole frame and the
    report says where the tail is. `reports` (one RawScanReport per file) is complete once
    iteration ends. Memory is bounded by batch_bytes (or one frame, if larger).
    """

    def __init__(self, paths: PathLike | Iterable[PathLike], *, corrupt: str = "raise",
                 batch_bytes: int = _BATCH_BYTES, batch_frames: int = _BATCH_FRAMES) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [os.fspath(p) for p in paths]
        if corrupt not in _CORRUPT_MODES:
            raise ValueError(f"corrupt must be one of {_CORRUPT_MODES}, not {corrupt!r}")
        if batch_bytes < 1 or batch_frames < 1:
            raise ValueError("batch_bytes and batch_frames must be positive")
        self.corrupt = corrupt
        self.batch_bytes = batch_bytes
        self.batch_frames = batch_frames
        self.reports: list[RawScanReport] = []
        self.found: list[CorruptRegion] = []  # regions found since take_found() (all of them)

    def take_found(self) -> list[CorruptRegion]:
        """The corrupt regions found since the last call, in file order (every one, where a report
        keeps the first 1000): a caller placing them among the frames drains them per batch."""
        found, self.found = self.found, []
        return found

    def __iter__(self) -> Iterator[FrameBatch]:
        self.reports = []
        for path in self.paths:
            yield from self._file(path)

    def _file(self, path: str) -> Iterator[FrameBatch]:
        with open(path, "rb", buffering=0) as f:
            header = _read_header(f, path)
            rep = RawScanReport(path=path, header=header)
            self.reports.append(rep)
            yield from _FileWalk(self, f, rep).run()


class _FileWalk:
    """The read loop of one file: refills, walks, resynchronises, accounts."""

    def __init__(self, reader: FrameReader, f, rep: RawScanReport) -> None:
        self.r = reader
        self.f = f
        self.rep = rep
        self.base = rep.header.size  # file offset of buf[0]
        self.buf = bytearray()
        self.end = 0
        self.eof = False
        self.nstreams = len(rep.header.streams)
        self._new_columns()

    def _new_columns(self) -> None:
        n = self.r.batch_frames
        self.c_ns = np.empty(n, np.int64)
        self.c_sid = np.empty(n, np.uint32)
        self.c_off = np.empty(n, np.uint64)
        self.c_len = np.empty(n, np.uint32)
        self.size = 0

    def _batch(self) -> FrameBatch:
        k = self.size
        ns, sid, off, ln = self.c_ns[:k], self.c_sid[:k], self.c_off[:k], self.c_len[:k]
        if 4 * k < len(self.c_ns):  # a short batch should not pin full-capacity arrays
            ns, sid, off, ln = ns.copy(), sid.copy(), off.copy(), ln.copy()
        rep = self.rep
        if rep.frames == 0:
            rep.first_receive_ns = int(ns[0])
        prev = rep.last_receive_ns
        back = int(np.count_nonzero(ns[1:] < ns[:-1]))
        if prev is not None and ns[0] < prev:
            back += 1
        rep.receive_ns_backwards += back
        rep.last_receive_ns = int(ns[-1])
        rep.frames += k
        rep.payload_bytes += int(ln.sum(dtype=np.uint64))
        if self.nstreams:
            rep.unknown_stream_frames += int(np.count_nonzero(sid >= self.nstreams))
        batch = FrameBatch(path=rep.path, streams=rep.header.streams, receive_ns=ns, stream_id=sid,
                           offset=off, length=ln,
                           file_offset=off - np.uint64(FRAME_HEADER) + np.uint64(self.base),
                           data=memoryview(self.buf).toreadonly())
        self._new_columns()
        return batch

    def _refill(self, pos: int, need: int) -> None:
        """Keeps buf[pos:end], reads more so that at least `need` bytes (from pos) can be held."""
        keep = self.end - pos
        cap = max(self.r.batch_bytes, need, keep + 1)
        nb = bytearray(cap)
        nb[:keep] = self.buf[pos:self.end]
        view = memoryview(nb)
        filled = keep
        while filled < cap:
            n = self.f.readinto(view[filled:])
            if not n:
                self.eof = True
                break
            filled += n
        view.release()
        self.base += pos
        self.buf = nb
        self.end = filled

    def _corrupt(self, region: CorruptRegion) -> None:
        self.r.found.append(region)
        rep = self.rep
        rep.corrupt_count += 1
        rep.unreadable_bytes += region.end - region.offset
        if len(rep.corrupt) < _KEEP_CORRUPT:
            rep.corrupt.append(region)

    def _fail(self, region: CorruptRegion) -> DecodeError:
        return DecodeError(region.describe() + "; read with corrupt='skip' to continue past it",
                           path=self.rep.path, offset=region.offset)

    def _zero(self, a: int, b: int) -> bool:
        return self.buf.count(0, a, b) == b - a

    def run(self) -> Iterator[FrameBatch]:
        pos = 0
        while True:
            pos, self.size, stop, need, length, expected, got = _rc.walk_frames(
                self.buf, pos, self.end, self.c_ns, self.c_sid, self.c_off, self.c_len, self.size)
            if stop == FrameStop.OUTPUT_FULL:
                yield self._batch()
                continue
            if stop == FrameStop.BAD_FRAME:
                start = self.base + pos
                region = CorruptRegion(start, start + FRAME_HEADER + length, "frame", expected, got)
                self._corrupt(region)
                if self.r.corrupt == "raise":
                    if self.size:
                        yield self._batch()
                    raise self._fail(region)
                pos += FRAME_HEADER + length
                continue
            if stop == FrameStop.BAD_HEADER:
                if self.r.corrupt == "raise":
                    if self.size:
                        yield self._batch()
                    # The extent is found the same way scan() finds it, so the message can say it.
                    end = self._resync_extent(pos)
                    raise self._fail(CorruptRegion(self.base + pos, end, "header", expected, got))
                pos = yield from self._resync(pos, expected, got)
                if pos is None:
                    break
                continue
            # NeedMore
            if self.eof:
                if pos < self.end:
                    self.rep.torn_tail = TornTail(self.base + pos, self.end - pos,
                                                  self._zero(pos, self.end))
                break
            if self.size:
                yield self._batch()
            self._refill(pos, need)
            pos = 0
        if self.size:
            yield self._batch()
        self.rep.file_bytes = self.base + self.end

    def _resync_extent(self, pos: int) -> int:
        """File offset where the damage starting at buf[pos] ends (a valid frame or the end)."""
        scan = pos + 1
        while True:
            q, found = _rc.resync_frames(self.buf, scan, self.end)
            if found or self.eof:
                return self.base + (q if found else self.end)
            need = self._undecided_need(q)
            self._refill(q, need)
            scan = 0

    def _undecided_need(self, q: int) -> int:
        # resync stops short of a decision only at a valid header (whose whole frame is needed)
        # or with fewer than a header's bytes left.
        if self.end - q >= FRAME_HEADER:
            return FRAME_HEADER + int.from_bytes(self.buf[q + 12:q + 16], "little")
        return FRAME_HEADER

    def _resync(self, pos: int, expected: int, got: int):
        """Skips the damage at buf[pos]; returns the position of the next valid frame (None: the
        damage runs to the end of the file and has been recorded)."""
        start = self.base + pos
        zero = True
        scan = pos + 1
        while True:
            q, found = _rc.resync_frames(self.buf, scan, self.end)
            if found:
                zero = zero and self._zero(pos, q)
                self._corrupt(CorruptRegion(start, self.base + q, "header", expected, got))
                return q
            if self.eof:
                if self.end - q >= FRAME_HEADER:
                    # A valid header whose payload runs past the end: the damage ends there and
                    # the file ends with a torn frame.
                    self._corrupt(CorruptRegion(start, self.base + q, "header", expected, got))
                    self.rep.torn_tail = TornTail(self.base + q, self.end - q,
                                                  self._zero(q, self.end))
                    return None
                zero = zero and self._zero(pos, self.end)
                if zero:
                    # Nothing but zeros to the end: a tail the filesystem allocated but the crash
                    # kept us from writing. That is a torn tail, not damage.
                    self.rep.torn_tail = TornTail(start, self.base + self.end - start, True)
                else:
                    self._corrupt(CorruptRegion(start, self.base + self.end, "header", expected,
                                                got))
                return None
            zero = zero and self._zero(pos, q)
            if self.size:
                yield self._batch()
            self._refill(q, self._undecided_need(q))
            pos = scan = 0


def read_frames(paths: PathLike | Iterable[PathLike], *, corrupt: str = "raise",
                batch_bytes: int = _BATCH_BYTES, batch_frames: int = _BATCH_FRAMES) -> FrameReader:
    """The frames of one file or of several in order, as FrameBatch objects (see FrameReader)."""
    return FrameReader(paths, corrupt=corrupt, batch_bytes=batch_bytes, batch_frames=batch_frames)


def scan(path: PathLike, *, batch_bytes: int = _BATCH_BYTES) -> RawScanReport:
    """Reads one file through, verifying every frame; DecodeError only for an invalid file header."""
    reader = FrameReader(path, corrupt="skip", batch_bytes=batch_bytes)
    for _ in reader:
        pass
    return reader.reports[0]


def repair(path: PathLike, *, drop_corrupt: bool = False) -> int:
    """Truncates a torn tail (the file then ends with its last whole frame); returns bytes cut.

    Corrupt regions are left in place (readers skip them with corrupt="skip") unless drop_corrupt,
    which truncates at the first one, losing every frame after it. Idempotent.
    """
    p = os.fspath(path)
    total = 0
    while True:
        # One pass can leave new tail damage: damage that sat just before a torn frame becomes the
        # tail once the frame is cut (an all-zero region then is a zero-filled tail), so repeat
        # until nothing changes; each pass shortens the file.
        rep = scan(p)
        cut_at = None
        if drop_corrupt and rep.corrupt:
            cut_at = rep.corrupt[0].offset
        elif rep.torn_tail is not None:
            cut_at = rep.torn_tail.offset
        if cut_at is None:
            return total
        with open(p, "r+b") as f:
            f.truncate(cut_at)
            f.flush()
            os.fsync(f.fileno())
        total += rep.file_bytes - cut_at


# ---------------------------------------------------------------------------------------------
# writing


def _name_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(\d{{6,}}){re.escape(SUFFIX)}$")


def _check_prefix(prefix: str) -> None:
    if not prefix or "/" in prefix or os.sep in prefix or prefix in (".", ".."):
        raise ValueError(f"invalid capture prefix {prefix!r}: a non-empty file name part")


def capture_files(directory: PathLike, prefix: str) -> list[Path]:
    """The capture's files in sequence order (by the number in the name, not by text)."""
    _check_prefix(prefix)
    pat = _name_pattern(prefix)
    found = []
    for name in os.listdir(directory):
        m = pat.match(name)
        if m:
            found.append((int(m.group(1)), Path(directory, name)))
    return [p for _, p in sorted(found)]


def next_sequence(directory: PathLike, prefix: str) -> int:
    """The number a new writer of `prefix` in `directory` starts at: after the highest there."""
    existing = capture_files(directory, prefix)
    return int(_name_pattern(prefix).match(existing[-1].name).group(1)) + 1 if existing else 1


#: A writer's hidden file lives for the microseconds between its creation and its link: one this
#: old belongs to a writer that was killed there.
STALE_STAGING_S = 60.0


def remove_stale_staging(directory: PathLike, prefix: str) -> list[str]:
    """Removes the hidden files (`.PREFIX-NNNNNN.lsraw.new`) killed writers of `prefix` left in
    `directory`, and returns their names: one still linked under its published name as well (the
    kill came after the link), or one older than STALE_STAGING_S (it came before: a header at
    most). A younger one may be a running writer's and is left alone."""
    _check_prefix(prefix)
    pattern = re.compile(rf"^\.{re.escape(prefix)}-\d{{6,}}{re.escape(SUFFIX)}\.new$")
    removed = []
    for name in sorted(os.listdir(directory)):
        if not pattern.match(name):
            continue
        path = Path(directory, name)
        try:
            st = path.stat()
            if st.st_nlink > 1 or time.time() - st.st_mtime > STALE_STAGING_S:
                path.unlink()
                removed.append(name)
        except FileNotFoundError:  # its writer linked it in and removed it meanwhile
            continue
    return removed


def file_name(prefix: str, sequence: int) -> str:
    return f"{prefix}-{sequence:06d}{SUFFIX}"


class RawWriter:
    """Appends frames to a capture, rotating files by size and by receive time.

    A new file is started before a frame when the current file has frames and either
    - size + FRAME_HEADER + len(payload) would exceed max_bytes (a frame larger than that on its own
      still gets written, alone in its file), or
    - the frame's receive_ns lies in a later max_seconds window than the file's first frame
      (windows are [k * max_seconds, (k+1) * max_seconds) since the epoch, so 86400 gives UTC days).
    receive_ns is written as given, even when it goes backwards: a recorder records what it saw and
    the validator judges (scan() counts such frames); a backwards frame never starts a new file.

    Files are created exclusively (O_EXCL) and written append-only, numbered after the highest
    existing sequence of the prefix. Bytes are buffered (buffer_bytes) and reach the OS when the
    buffer fills, on flush(), at rotation and at close; fsync_every=N also fsyncs every N frames.
    Rotation and close always flush and fsync the file (and the directory after creating one).
    """

    def __init__(self, directory: PathLike, prefix: str, *, streams: Sequence[str] = (),
                 max_bytes: int = 1 << 30, max_seconds: float | None = None,
                 info: Mapping[str, Any] | None = None, fsync_every: int = 0,
                 buffer_bytes: int = 1 << 20) -> None:
        _check_prefix(prefix)
        self.directory = Path(directory)
        self.prefix = prefix
        self.streams = tuple(streams)
        if not all(isinstance(s, str) for s in self.streams):
            raise TypeError("stream names must be strings")
        if len(set(self.streams)) != len(self.streams):
            raise ValueError("stream names must be unique")
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = int(max_bytes)
        if max_seconds is None:
            self._window_ns = None
        else:
            self._window_ns = round(max_seconds * 1_000_000_000)
            if self._window_ns < 1:
                raise ValueError("max_seconds must be positive")
        self.info = dict(info or {})
        # Encode once: invalid info fails here, not at the first frame.
        encode_file_header(0, self.streams, self.info)
        if fsync_every < 0:
            raise ValueError("fsync_every must be >= 0")
        self.fsync_every = fsync_every
        self.buffer_bytes = buffer_bytes
        self._next_sequence = next_sequence(self.directory, prefix)
        self._f = None
        self._closed = False
        self._size = 0
        self._file_frames = 0
        self._window = 0
        self.paths: list[Path] = []  # files this writer created, in order
        self.frames = 0
        self.bytes = 0

    # -- lifecycle --

    def __enter__(self) -> RawWriter:  # noqa: PYI034 (3.10 has no typing.Self)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._f is not None:
            self._finish_file()

    @property
    def closed(self) -> bool:
        return self._closed

    def stream_id(self, name: str) -> int:
        return self.streams.index(name)

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def _open(self, receive_ns: int) -> None:
        seq = self._next_sequence
        path = self.directory / file_name(self.prefix, seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._f = os.fdopen(fd, "ab", buffering=self.buffer_bytes)
        head = encode_file_header(seq, self.streams, self.info)
        self._f.write(head)
        self._f.flush()
        self._next_sequence = seq + 1
        self._size = len(head)
        self._file_frames = 0
        self._window = self._window_of(receive_ns)
        self.paths.append(path)
        if self.fsync_every:
            self._fsync_directory()
        self.bytes += len(head)

    def _finish_file(self) -> None:
        f, self._f = self._f, None
        try:
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _window_of(self, receive_ns: int) -> int:
        return 0 if self._window_ns is None else receive_ns // self._window_ns

    # -- frames --

    def write(self, receive_ns: int, stream_id: int, payload: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed RawWriter")
        receive_ns = int(receive_ns)
        stream_id = int(stream_id)
        if not _INT64_MIN <= receive_ns <= _INT64_MAX:
            raise ValueError(f"receive_ns {receive_ns} does not fit int64")
        limit = len(self.streams) if self.streams else 1 << 32
        if not 0 <= stream_id < limit:
            raise ValueError(f"stream_id {stream_id} is not in the stream table "
                             f"({len(self.streams)} streams)" if self.streams
                             else f"stream_id {stream_id} does not fit uint32")
        n = len(payload)
        if n > MAX_PAYLOAD:
            raise ValueError(f"payload of {n} bytes exceeds the format's limit of {MAX_PAYLOAD}")
        frame = FRAME_HEADER + n
        if self._f is None:
            self._open(receive_ns)
        elif self._file_frames and (self._size + frame > self.max_bytes
                                    or self._window_of(receive_ns) > self._window):
            self._finish_file()
            self._open(receive_ns)
        f = self._f
        f.write(_rc.frame_header(receive_ns, stream_id, payload))
        f.write(payload)
        self._size += frame
        self._file_frames += 1
        self.frames += 1
        self.bytes += frame
        if self.fsync_every and self.frames % self.fsync_every == 0:
            f.flush()
            os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------
# text lines for the line-oriented importers


def lines_from_frames(source: PathLike | Iterable[PathLike] | Iterable[FrameBatch], *,
                      stream_ids: Iterable[int] | None = None,
                      corrupt: str = "raise") -> Iterator[bytes]:
    """Blocks of ``<receive ns> <payload>\\n`` lines, one line per frame, in frame order.

    For captures whose payload is one text message per frame (a websocket JSON message): the
    result is the line format lockstep.data.importers.binance reads. `source` is capture file path(s)
    (read with `corrupt`) or FrameBatch objects; stream_ids keeps only those streams. A newline
    inside a payload becomes a space, so a frame stays one line (in valid JSON a raw newline can
    only be whitespace between tokens; anything else is malformed either way).
    """
    batches = _batches(source, corrupt)
    keep = None if stream_ids is None else np.array(sorted(set(stream_ids)), np.uint32)
    for b in batches:
        if not len(b):
            continue
        idx = np.arange(len(b)) if keep is None else np.flatnonzero(np.isin(b.stream_id, keep))
        if HISTORY_STREAM in b.streams:
            idx = idx[b.stream_id[idx] != b.streams.index(HISTORY_STREAM)]
        if len(idx):
            yield _frame_lines(b, idx)


def _frame_lines(b: FrameBatch, idx: np.ndarray) -> bytes:
    """The ``<receive ns> <payload>\\n`` lines of frames `idx` of a batch (newlines in a
    payload become spaces)."""
    d = b.data
    parts = []
    for ns, o, n in zip(b.receive_ns[idx].tolist(), b.offset[idx].tolist(), b.length[idx].tolist()):
        parts.append(b"%d " % ns)
        parts.append(d[o:o + n])
        parts.append(b"\n")
    block = b"".join(parts)
    if block.count(b"\n") != len(idx):  # a payload holds a newline: rare, so fixed after
        block = b"".join(b"%d %s\n" % (int(b.receive_ns[i]), b.payload(i).replace(b"\n", b" "))
                         for i in idx.tolist())
    return block


@dataclass(frozen=True)
class Damage:
    """A stretch of a capture file that yields no usable frame: bytes [offset, end) of `path`.

    torn: a torn tail (the file ends inside a frame: a crash mid-write), which is a truncated
    record; otherwise corrupt bytes or a frame of a stream id outside the stream table, which
    are malformed. `what` says what is wrong."""

    path: str
    offset: int
    end: int
    what: str
    torn: bool = False

    def describe(self) -> str:
        return f"{self.path}, bytes {self.offset}..{self.end}: {self.what}"


class CaptureLines:
    """One capture file as the lines the line-oriented importers read, for an import that takes
    every good frame and accounts for every damaged byte.

    Each valid frame is a line ``<receive ns> <payload>`` (as lines_from_frames gives). Each
    stretch that holds no usable frame is one *damage line* ``! <what>`` in its place instead
    (a line no importer reads as a record of its format): a corrupt frame, the bytes from a
    corrupt header to where reading resumes at the next valid frame, a frame whose stream id is
    not in a non-empty stream table, a torn tail. `damage` maps each damage line's offset in the
    line stream to its Damage; it is complete once the stream has been read to its end. A file
    header that is not valid is a DecodeError at the first read.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self.damage: dict[int, Damage] = {}
        self.report: RawScanReport | None = None  # what the file held, once read to its end
        self._at = 0  # where the next line starts in the line stream

    def open(self) -> io.BufferedReader:
        return io.BufferedReader(_LineStream(self._blocks()), 1 << 20)

    def _blocks(self) -> Iterator[bytes]:
        self.damage = {}
        reader = FrameReader([self.path], corrupt="skip")
        pending: list[CorruptRegion] = []
        self._at = 0
        for b in reader:
            pending += reader.take_found()
            yield from self._batch_lines(b, pending)
        rep = self.report = reader.reports[0]
        marks = [self._mark(Damage(self.path, r.offset, r.end, r.describe()))
                 for r in pending + reader.take_found()]
        if rep.torn_tail is not None:
            t = rep.torn_tail
            marks.append(self._mark(Damage(self.path, t.offset, t.offset + t.bytes, t.describe(), torn=True)))
        if marks:
            yield b"".join(marks)

    def _batch_lines(self, b: FrameBatch, pending: list[CorruptRegion]) -> Iterator[bytes]:
        """The lines of a batch's frames with the damage lines among them, in file order;
        `pending` keeps the regions that lie after the batch's last frame."""
        n = len(b)
        if not n:
            return
        starts = b.file_offset
        limit = len(b.streams)
        odd = set(np.flatnonzero(b.stream_id >= limit).tolist()) if limit else set()
        # A recorder's history records are the capture's own notes, not the feed's messages.
        history = (set(np.flatnonzero(b.stream_id == b.streams.index(HISTORY_STREAM)).tolist())
                   if HISTORY_STREAM in b.streams else set())
        cuts = sorted(odd | history | {i for i in np.searchsorted(
            starts, np.array([r.offset for r in pending], np.uint64)).tolist() if i < n})
        begin = placed = 0  # the next frame and the next pending region to place
        for cut in [*cuts, n]:
            if cut > begin:
                block = _frame_lines(b, np.arange(begin, cut))
                self._at += len(block)
                yield block
            if cut == n:
                break
            first = placed
            while placed < len(pending) and pending[placed].offset < int(starts[cut]):
                placed += 1
            marks = [self._mark(Damage(self.path, r.offset, r.end, r.describe()))
                     for r in pending[first:placed]]
            begin = cut
            if cut in odd:
                end = int(starts[cut]) + FRAME_HEADER + int(b.length[cut])
                sid = int(b.stream_id[cut])
                marks.append(self._mark(Damage(self.path, int(starts[cut]), end,
                                               f"a frame of stream id {sid}, which the stream table "
                                               f"({limit} streams) does not name")))
                begin = cut + 1
            elif cut in history:
                begin = cut + 1
            yield b"".join(marks)
        del pending[:placed]

    def _mark(self, damage: Damage) -> bytes:
        """The damage line of `damage`, placed at the current end of the line stream."""
        line = b"! " + damage.what.encode("ascii", "replace") + b"\n"
        self.damage[self._at] = damage
        self._at += len(line)
        return line


def _batches(source, corrupt: str) -> Iterable[FrameBatch]:
    if isinstance(source, (str, os.PathLike)):
        return FrameReader([source], corrupt=corrupt)
    if isinstance(source, FrameReader):
        return source
    it = iter(source)
    first = next(it, None)
    if first is None:
        return []
    if isinstance(first, FrameBatch):
        return itertools.chain([first], it)
    return FrameReader(itertools.chain([first], it), corrupt=corrupt)


class _LineStream(io.RawIOBase):
    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._cur = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._pos >= len(self._cur):
            nxt = next(self._blocks, None)
            if nxt is None:
                return 0
            self._cur, self._pos = nxt, 0
        n = min(len(b), len(self._cur) - self._pos)
        b[:n] = self._cur[self._pos:self._pos + n]
        self._pos += n
        return n


def open_lines(paths: PathLike | Iterable[PathLike], *, stream_ids: Iterable[int] | None = None,
               corrupt: str = "raise") -> io.BufferedReader:
    """lines_from_frames() as a binary file object (for importers that take a file object)."""
    return io.BufferedReader(_LineStream(lines_from_frames(paths, stream_ids=stream_ids,
                                                           corrupt=corrupt)), 1 << 20)


__all__ = [
    "HISTORY_STREAM", "CaptureLines", "CorruptRegion", "Damage", "FrameBatch", "FrameReader",
    "RawFileHeader", "RawScanReport", "RawWriter", "TornTail", "capture_files", "crc32c",
    "encode_file_header", "file_metadata", "file_name", "is_capture_file", "lines_from_frames",
    "next_sequence", "open_lines", "read_frames", "read_header", "repair", "scan",
]
