"""Captures written by `lockstep record` -> NormalizedChunks, through the decoder of what the feed
carried (docs/recorder.md, "Importing a capture").

A MoldUDP64 feed's datagrams are put back in sequence order (replies to retransmission requests
arrive late; a datagram seen twice gives its messages once) and handed, as the
``[u16 length][message]`` stream an ITCH file is, to the ITCH importer (importers/itch.py): one
decoder for files and captures. Where the capture's history says messages were lost (a `lost`
record: the recorder gave up asking, or had no server to ask), or where numbers are simply missing
at the end, the instruments seen so far get a `GAP` event before the first message after the hole,
and the validator takes it from there (docs/data.md, "Books, gaps, segments"). Records are
messages; their offsets count in that message stream.

Timestamps: ITCH counts from New York midnight of the session day, which is the `date` setting,
else the New York day of the capture's first receive stamp.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from lockstep.data.importers.itch import (
    NEW_YORK,
    ItchDecodeRun,
    _parse_date,
    session_day_start_ns,
)
from lockstep.data.importers.normalized import GAP, LAST, InputFile, NormalizedChunk
from lockstep.data.raw_capture import (
    FRAME_HEADER,
    HISTORY_STREAM,
    FrameReader,
    read_header,
)
from lockstep.errors import DecodeError
from lockstep.events import COLUMNS

_MOLD_HEADER = 20
_ITCH_FEEDS = ("moldudp64", "soupbintcp")  # feed kinds whose messages are ITCH 5.0
_END_OF_SESSION = 0xFFFF
_BLOCK = 1 << 20  # bytes of message stream handed to the decoder per step
# Messages held waiting for a hole to be filled or told lost: past this, the hole is taken as lost
# (a capture cut by a crash says nothing about a gap it had open), which bounds memory.
_MAX_PENDING = 1 << 20


class _Ordered:
    """The messages of one MoldUDP64 stream of a capture in sequence order, as a binary file of
    [u16 length][message] (what the ITCH decoder reads), noting where a hole was skipped."""

    def __init__(self, paths: list[str], stream: str, kind: str = "moldudp64") -> None:
        self._paths = paths
        self._stream = stream
        self._kind = kind
        self._next_soup = 1  # soupbintcp: the number of the stream's next frame
        self.cut = None  # never a cut compressed stream
        self.holes: list[tuple[int, int, int]] = []  # (record index after it, first seq, count)
        self.counts = {"datagrams": 0, "duplicates": 0, "lost": 0}
        # Per message handed out, from record `origin_base` on: its capture file and the offset of
        # its block ([u16 length][message]) there; the run takes these over chunk by chunk.
        self.origin_base = 0
        self.origin_file: list[int] = []
        self.origin_offset: list[int] = []
        self._blocks = self._generate()
        self._buf = b""
        self._pos = 0

    def __enter__(self) -> _Ordered:  # noqa: PYI034 (3.10 has no typing.Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._blocks.close()

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._buf):
            nxt = next(self._blocks, None)
            if nxt is None:
                return 0
            self._buf, self._pos = nxt, 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n

    def _generate(self) -> Iterator[bytes]:
        pending: dict[int, tuple[bytes, int, int]] = {}
        lost: list[tuple[int, int]] = []
        expected = 1
        emitted = 0
        out: list[bytes] = []
        size = 0
        for batch in FrameReader(self._paths, corrupt="skip"):
            file = self._paths.index(batch.path)
            sid = batch.streams.index(self._stream)
            hid = batch.streams.index(HISTORY_STREAM) if HISTORY_STREAM in batch.streams else -1
            for i in np.flatnonzero((batch.stream_id == sid) | (batch.stream_id == hid)).tolist():
                payload = batch.payload(i)
                if int(batch.stream_id[i]) == hid:
                    record = json.loads(payload)
                    if record.get("record") == "lost" and record.get("stream") == self._stream:
                        lost.append((int(record["first"]), int(record["count"])))
                    if self._kind == "soupbintcp":
                        self._renumber(record)
                elif self._kind == "soupbintcp":
                    self._sequenced(payload, expected, pending, file,
                                    int(batch.file_offset[i]) + FRAME_HEADER)
                else:
                    self.counts["datagrams"] += 1
                    self._blocks_of(payload, expected, pending, file,
                                    int(batch.file_offset[i]) + FRAME_HEADER)
                while True:  # move on as far as what is had and what is known lost allow
                    if expected in pending:
                        m, f, at = pending.pop(expected)
                        self.origin_file.append(f)
                        self.origin_offset.append(at)
                        out.append(len(m).to_bytes(2, "big") + m)
                        size += 2 + len(m)
                        emitted += 1
                        expected += 1
                        continue
                    hole = next(((f, c) for f, c in lost if f <= expected < f + c), None)
                    if hole is None and len(pending) > _MAX_PENDING:  # never filled, never told
                        hole = (expected, min(pending) - expected)
                    if hole is None:
                        break
                    end = hole[0] + hole[1]
                    self.holes.append((emitted, expected, end - expected))
                    self.counts["lost"] += end - expected
                    expected = end
                if size >= _BLOCK:
                    yield b"".join(out)
                    out, size = [], 0
        for seq in sorted(pending):  # numbers never received and never told lost: holes too
            if seq > expected:
                self.holes.append((emitted, expected, seq - expected))
                self.counts["lost"] += seq - expected
            m, f, at = pending[seq]
            self.origin_file.append(f)
            self.origin_offset.append(at)
            out.append(len(m).to_bytes(2, "big") + m)
            emitted += 1
            expected = seq + 1
        if out:
            yield b"".join(out)

    def _renumber(self, record: dict[str, Any]) -> None:
        """A SoupBinTCP stream numbers its frames by position: a `login` says the number of the
        next frame, a `lost` the numbers skipped before it (docs/recorder.md)."""
        if record.get("stream") != self._stream:
            return
        if record.get("record") == "login":
            self._next_soup = int(record["sequence"])
        elif record.get("record") == "lost":
            self._next_soup = max(self._next_soup, int(record["first"]) + int(record["count"]))

    def _sequenced(self, payload: bytes, expected: int, pending: dict[int, tuple[bytes, int, int]],
                   file: int, file_offset: int) -> None:
        """One SoupBinTCP frame: one message, numbered by its place after the last login."""
        s = self._next_soup
        self._next_soup += 1
        if s < expected or s in pending:
            self.counts["duplicates"] += 1
        else:
            pending[s] = (payload, file, file_offset)

    def _blocks_of(self, payload: bytes, expected: int, pending: dict[int, tuple[bytes, int, int]],
                   file: int, file_offset: int) -> None:
        if len(payload) < _MOLD_HEADER:
            return
        seq = int.from_bytes(payload[10:18], "big")
        count = int.from_bytes(payload[18:20], "big")
        if count == _END_OF_SESSION:
            return
        at = _MOLD_HEADER
        for k in range(count):
            if at + 2 > len(payload):
                break
            n = int.from_bytes(payload[at:at + 2], "big")
            message = payload[at + 2:at + 2 + n]
            if len(message) < n:
                break
            s = seq + k
            if s < expected or s in pending:
                self.counts["duplicates"] += 1
            else:
                pending[s] = (message, file, file_offset + at)
            at += 2 + n


class CaptureItchRun(ItchDecodeRun):
    """The ITCH decode of a MoldUDP64 stream of a capture, with a GAP per instrument seen so
    far where messages were lost."""

    def __init__(self, paths: list[str], stream: str, day_start: int, batch: int,
                 kind: str = "moldudp64") -> None:
        label = paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} capture files)"
        super().__init__([label], [day_start], batch)
        self._capture_paths = paths
        self._stream = stream
        self._kind = kind
        self._ordered: _Ordered | None = None
        self._seen: set[int] = set()
        self._gap_events = 0

    def _open(self, path: str) -> _Ordered:
        self._ordered = _Ordered(self._capture_paths, self._stream, self._kind)
        return self._ordered

    def _run(self) -> Iterator[NormalizedChunk]:
        placed = 0
        records = np.zeros(len(self._capture_paths), np.int64)
        for chunk in super()._run():
            ordered = self._ordered
            assert ordered is not None  # opened by the first read, before any chunk
            end = chunk.first_record + chunk.n_records
            mine = [h for h in ordered.holes[placed:] if h[0] < end]
            placed += len(mine)
            self._place(chunk, ordered)
            records += np.bincount(chunk.rec_file[:chunk.n_records], minlength=len(records))
            yield self._with_gaps(chunk, mine) if mine else chunk
            self._seen.update(np.unique(chunk.events["instrument"][:chunk.n_events]).tolist())
        if self._ordered is not None:
            self._counts["capture"] = dict(self._ordered.counts, gaps=len(self._ordered.holes))
        if self._gap_events:
            events = self._counts.setdefault("events", {})
            events["gap"] = events.get("gap", 0) + self._gap_events
            events["total"] = events.get("total", 0) + self._gap_events
        self._inputs = [InputFile(path=p, bytes_read=os.path.getsize(p), records=int(r))
                        for p, r in zip(self._capture_paths, records.tolist())]

    @staticmethod
    def _place(chunk: NormalizedChunk, ordered: _Ordered) -> None:
        """Positions of the chunk's records in the capture files (where each message's block
        is), instead of in the message stream the decoder read."""
        m = chunk.n_records
        lo = chunk.first_record - ordered.origin_base
        files = np.array(ordered.origin_file[lo:lo + m], np.int32)
        offsets = np.array(ordered.origin_offset[lo:lo + m], np.int64)
        k = len(files)  # a record past the messages (a cut at the end) keeps its stream position
        chunk.rec_file = chunk.rec_file.copy()
        chunk.rec_offset = chunk.rec_offset.copy()
        chunk.rec_file[:k] = files
        chunk.rec_offset[:k] = offsets
        del ordered.origin_file[:lo + m], ordered.origin_offset[:lo + m]
        ordered.origin_base = chunk.first_record + m

    def _with_gaps(self, chunk: NormalizedChunk, holes: list[tuple[int, int, int]]) -> NormalizedChunk:
        """The chunk with, before the first event of the record after each hole, a GAP for every
        instrument seen so far (that record's, so the GAP goes where its record goes)."""
        n = chunk.n_events
        rec = chunk.event_record[:n]
        inst = chunk.events["instrument"][:n]
        at_list: list[int] = []
        rows: list[dict[str, int]] = []
        for record, first, _count in holes:
            at = int(np.searchsorted(rec, record))
            ref = min(at, n - 1)
            for i in sorted(self._seen | set(np.unique(inst[:at]).tolist())):
                at_list.append(at)
                rows.append({"ts_event": int(chunk.events["ts_event"][ref]) if n else 0,
                             "ts_recv": int(chunk.events["ts_recv"][ref]) if n else 0,
                             "seq": first, "instrument": i, "kind": GAP, "side": 0, "flags": LAST,
                             "price": 0, "qty": 0, "order_id": first, "record": record})
        if not rows:
            return chunk
        self._gap_events += len(rows)
        positions = np.array(at_list, np.int64)
        events = {name: np.insert(chunk.events[name][:n], positions,
                                  np.array([r[name] for r in rows], dtype))
                  for name, dtype in COLUMNS}
        records = np.insert(rec, positions, np.array([r["record"] for r in rows], np.int64))
        return dataclasses.replace(chunk, events=events, n_events=n + len(rows), event_record=records)


def _capture_feeds(path: str) -> dict[str, str]:
    """A capture file's feeds as {stream name: kind}, from the recorder's info."""
    header = read_header(path)
    feeds = header.info.get("feeds") if isinstance(header.info, dict) else None
    if not isinstance(feeds, list):
        raise DecodeError("not a recorder capture: its header names no feeds (info.feeds)",
                          path=path, offset=0)
    return {f.get("name"): f.get("kind") for f in feeds if isinstance(f, dict)}


def _first_receive_ns(paths: list[str]) -> int | None:
    for batch in FrameReader(paths, corrupt="skip"):
        if len(batch):
            return int(batch.receive_ns[0])
    return None


def decode_capture(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                   date: Any = None, stream: str | None = None,
                   batch: int = 1 << 16) -> ItchDecodeRun:
    """Decode a recorder capture (its files, in order) into NormalizedChunks.

    stream: the feed to import when the capture holds several MoldUDP64 feeds.
    date: the ITCH session date (default: the New York day of the first receive stamp).
    """
    names = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if not names:
        raise DecodeError("no capture files given", path="", offset=0)
    feeds = _capture_feeds(names[0])
    mold = [name for name, kind in feeds.items() if kind in _ITCH_FEEDS]
    if stream is not None:
        if feeds.get(stream) not in _ITCH_FEEDS:
            raise DecodeError(f"stream {stream!r} is not an ITCH feed (moldudp64, soupbintcp) of this capture "
                              f"(its ITCH feeds: {', '.join(mold) or 'none'})", path=names[0], offset=0)
        mold = [stream]
    if len(mold) != 1:
        what = "no ITCH feed (moldudp64, soupbintcp)" if not mold else f"{len(mold)} ITCH feeds ({', '.join(mold)}): pick one with stream"
        raise DecodeError(f"capture has {what}", path=names[0], offset=0)
    if date is not None:
        day = _parse_date(date)
    else:
        first = _first_receive_ns(names)
        if first is None:
            raise DecodeError("the capture holds no frames", path=names[0], offset=0)
        day = _dt.datetime.fromtimestamp(first / 1e9, NEW_YORK).date()
    return CaptureItchRun(names, mold[0], session_day_start_ns(day), batch, feeds[mold[0]])


__all__ = ["CaptureItchRun", "decode_capture"]
