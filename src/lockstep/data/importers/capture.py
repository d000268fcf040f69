"""Captures written by `lockstep record` -> NormalizedChunks, through the decoder of what the feed
carried (docs/recorder.md, "Importing a capture").

A MoldUDP64 feed's datagrams are put back in sequence order (replies to retransmission requests
arrive late; a datagram seen twice gives its messages once) and handed, as the
``[u16 length][message]`` stream an ITCH file is, to the ITCH importer (importers/itch.py): one
decoder for files and captures. A SoupBinTCP feed's frames are one message each, numbered by
their place after the stream's last `login` history record. Where the capture's history says messages were lost (a `lost`
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
import heapq
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
_END_OF_SESSION = 0xFFFF
_BLOCK = 1 << 20  # bytes of message stream handed to the decoder per step
#: Bytes of messages held waiting for a hole before them to be filled or told lost. Past this,
#: the hole is given up (a GAP, counted in `holes_given_up`): a capture cut by a crash says
#: nothing about a gap it had open, and memory must not grow with what waits behind it.
MAX_PENDING_BYTES = 64 << 20
_PENDING_OVERHEAD = 64  # bytes of bookkeeping per message held, besides the message itself
#: The kinds of recorder feed whose capture imports as ITCH 5.0 message blocks.
ITCH_FEED_KINDS = ("moldudp64", "soupbintcp")


class _Ordered:
    """The messages of one MoldUDP64 stream of a capture in sequence order, as a binary file of
    [u16 length][message] (what the ITCH decoder reads), noting where a hole was skipped.

    A datagram of another session than the one being read starts a new session (the venue's
    numbers restart): what the old one still holds is handed out, its holes marked, and the new
    one is read from 1. A datagram of a session already left behind is counted
    (`other_session`) and skipped."""

    def __init__(self, paths: list[str], stream: str, kind: str = "moldudp64") -> None:
        self._paths = paths
        self._stream = stream
        self._kind = kind
        self._next_soup = 1  # soupbintcp: the number of the stream's next frame
        self.cut = None  # never a cut compressed stream
        self.holes: list[tuple[int, int, int]] = []  # (record index after it, first seq, count)
        self.counts = {"datagrams": 0, "duplicates": 0, "lost": 0, "holes_given_up": 0,
                       "sessions": 0, "other_session": 0}
        # Per message handed out, from record `origin_base` on: its capture file and the offset of
        # its block ([u16 length][message]) there; the run takes these over chunk by chunk.
        self.origin_base = 0
        self.origin_file: list[int] = []
        self.origin_offset: list[int] = []
        self._blocks = self._generate()
        self._buf = b""
        self._pos = 0
        # the session being read: its messages held ahead of a hole, and what was told lost
        self._session = b""
        self._left: set[bytes] = set()
        self._pending: dict[int, tuple[bytes, int, int]] = {}
        self._have: list[int] = []  # a heap of the held sequence numbers
        self._pending_bytes = 0
        self._lost: list[tuple[int, int]] = []
        self._expected = 1
        self._emitted = 0
        self._session_emitted = 0
        self._first_seen: int | None = None  # the session's first datagram's sequence
        self._out: list[bytes] = []
        self._size = 0

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
        for batch in FrameReader(self._paths, corrupt="skip"):
            file = self._paths.index(batch.path)
            sid = batch.streams.index(self._stream)
            hid = batch.streams.index(HISTORY_STREAM) if HISTORY_STREAM in batch.streams else -1
            for i in np.flatnonzero((batch.stream_id == sid) | (batch.stream_id == hid)).tolist():
                payload = batch.payload(i)
                if int(batch.stream_id[i]) == hid:
                    self._history(json.loads(payload))
                elif self._kind == "soupbintcp":
                    self._sequenced(payload, file, int(batch.file_offset[i]) + FRAME_HEADER)
                else:
                    self.counts["datagrams"] += 1
                    self._datagram(payload, file, int(batch.file_offset[i]) + FRAME_HEADER)
                self._advance(at_end=False)
                if self._size >= _BLOCK:
                    yield self._take()
        self._advance(at_end=True)
        if self._out:
            yield self._take()

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out, self._size = [], 0
        return out

    def _history(self, record: dict[str, Any]) -> None:
        if record.get("stream") != self._stream:
            return
        if record.get("record") == "lost":
            self._lost.append((int(record["first"]), int(record["count"])))
            if self._kind == "soupbintcp":  # the numbers skipped before the next frame
                self._next_soup = max(self._next_soup, int(record["first"]) + int(record["count"]))
        elif record.get("record") == "login" and self._kind == "soupbintcp":
            self._next_soup = int(record["sequence"])  # the number of the next frame
        # A recorder that joined its session late (first_sequence 0) started at the first
        # datagram it received: the numbers before it were never asked for, not lost. The record
        # follows the datagrams of the batch that started the session, none of them handed out
        # yet unless it was the session's first number.
        elif (record.get("record") in ("start", "session") and record.get("first_sequence") == 0
              and self._session_emitted == 0 and self._first_seen is not None):
            self._expected = min([self._first_seen, *self._have[:1]])

    def _sequenced(self, payload: bytes, file: int, file_offset: int) -> None:
        """One SoupBinTCP frame: one message, numbered by its place after the last `login` (a
        SoupBinTCP stream numbers its frames by position, docs/recorder.md)."""
        s = self._next_soup
        self._next_soup += 1
        self._hold(s, payload, file, file_offset)

    def _hold(self, s: int, message: bytes, file: int, at: int) -> None:
        if s < self._expected or s in self._pending:
            self.counts["duplicates"] += 1
        else:
            self._pending[s] = (message, file, at)
            heapq.heappush(self._have, s)
            self._pending_bytes += len(message) + _PENDING_OVERHEAD

    def _datagram(self, payload: bytes, file: int, file_offset: int) -> None:
        if len(payload) < _MOLD_HEADER:
            return
        session = payload[:10]
        if session != self._session:
            if session in self._left:
                self.counts["other_session"] += 1
                return
            if self._session:  # the venue moved on: what the old session holds goes out first
                self._advance(at_end=True)
                self._left.add(self._session)
                self._lost, self._expected, self._session_emitted = [], 1, 0
                self._first_seen = None
            self._session = session
            self.counts["sessions"] += 1
        seq = int.from_bytes(payload[10:18], "big")
        count = int.from_bytes(payload[18:20], "big")
        if self._first_seen is None:
            self._first_seen = seq
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
            self._hold(seq + k, message, file, file_offset + at)
            at += 2 + n

    def _advance(self, *, at_end: bool) -> None:
        """Hands out messages in order as far as what is held and what is known lost allow; at
        the end (of the capture or of a session) past every hole."""
        pending, have = self._pending, self._have
        while True:
            expected = self._expected
            if expected in pending:
                m, f, at = pending.pop(expected)
                heapq.heappop(have)  # the smallest held number is `expected` itself
                self._pending_bytes -= len(m) + _PENDING_OVERHEAD
                self.origin_file.append(f)
                self.origin_offset.append(at)
                self._out.append(len(m).to_bytes(2, "big") + m)
                self._size += 2 + len(m)
                self._emitted += 1
                self._session_emitted += 1
                self._expected += 1
                continue
            if not have:
                return
            # A hole before the next message held: skipped when told lost (never past what is
            # held), at the end, or when too much waits behind it.
            nxt = have[0]
            told = next((f + c for f, c in self._lost if f <= expected < f + c), None)
            if told is not None:
                end = min(told, nxt)
            elif at_end or self._pending_bytes > MAX_PENDING_BYTES:
                end = nxt
                self.counts["holes_given_up"] += not at_end
            else:
                return
            self.holes.append((self._emitted, expected, end - expected))
            self.counts["lost"] += end - expected
            self._expected = end


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


def capture_feeds(path: str | os.PathLike[str]) -> dict[str, str]:
    """A capture file's feeds as {stream name: kind}, from the recorder's info."""
    header = read_header(path)
    feeds = header.info.get("feeds") if isinstance(header.info, dict) else None
    if not isinstance(feeds, list):
        raise DecodeError("not a recorder capture: its header names no feeds (info.feeds)",
                          path=os.fspath(path), offset=0)
    return {f.get("name"): f.get("kind") for f in feeds if isinstance(f, dict)}


def itch_feeds(path: str | os.PathLike[str]) -> list[str]:
    """The feeds of a capture that import as ITCH (ITCH_FEED_KINDS), in the capture's order:
    `lockstep data import capture` makes a dataset of each."""
    return [name for name, kind in capture_feeds(path).items() if kind in ITCH_FEED_KINDS]


def _first_receive_ns(paths: list[str]) -> int | None:
    for batch in FrameReader(paths, corrupt="skip"):
        if len(batch):
            return int(batch.receive_ns[0])
    return None


def decode_capture(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                   date: Any = None, stream: str | None = None,
                   batch: int = 1 << 16) -> ItchDecodeRun:
    """Decode a recorder capture (its files, in order) into NormalizedChunks.

    stream: the feed to import when the capture holds several (`itch_feeds`).
    date: the ITCH session date (default: the New York day of the first receive stamp).
    """
    names = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if not names:
        raise DecodeError("no capture files given", path="", offset=0)
    feeds = capture_feeds(names[0])
    mold = itch_feeds(names[0])
    if stream is not None:
        if feeds.get(stream) not in ITCH_FEED_KINDS:
            raise DecodeError(f"stream {stream!r} is not a {' or '.join(ITCH_FEED_KINDS)} feed of this "
                              f"capture (its feeds: {', '.join(mold) or 'none'})", path=names[0], offset=0)
        mold = [stream]
    if len(mold) != 1:
        what = (f"no {' or '.join(ITCH_FEED_KINDS)} feed" if not mold else
                f"{len(mold)} feeds ({', '.join(mold)}): pick one with stream")
        raise DecodeError(f"capture has {what}", path=names[0], offset=0)
    if date is not None:
        day = _parse_date(date)
    else:
        first = _first_receive_ns(names)
        if first is None:
            raise DecodeError("the capture holds no frames", path=names[0], offset=0)
        day = _dt.datetime.fromtimestamp(first / 1e9, NEW_YORK).date()
    return CaptureItchRun(names, mold[0], session_day_start_ns(day), batch, feeds[mold[0]])


__all__ = ["ITCH_FEED_KINDS", "MAX_PENDING_BYTES", "CaptureItchRun", "capture_feeds", "decode_capture",
           "itch_feeds"]
