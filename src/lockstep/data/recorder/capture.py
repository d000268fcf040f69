"""The recorder's capture: raw capture files (docs/raw-format.md) fed through lock-free rings.

    capture = Capture(directory, "rec", ["itch", "binance"], settings)
    sink = capture.sink("itch")          # one per feed, used by that feed's thread only
    capture.start()
    sink.frame(receive_ns, payload)      # one message as received
    sink.history("gap", first=10, count=5)
    capture.close()

Every feed is a stream of the capture; one more stream, HISTORY_STREAM, holds the capture's
history: gaps, retransmissions, reconnects, snapshots, drops, each one frame whose payload is a
compact JSON object with at least `record` (its kind) and `stream` (the feed it is about). The
frames go through a single-producer ring per feed to one writer thread (C++,
include/lockstep/data/capture.hpp), so a feed's receive loop never waits for the disk; a frame
that finds its ring full is counted and told in a `drop` history record.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lockstep._bindings import capture as _capture
from lockstep.data.raw_capture import (
    HISTORY_STREAM,
    FrameReader,
    PathLike,
    capture_files,
    file_metadata,
    next_sequence,
    remove_stale_staging,
)
from lockstep.enums import FsyncPolicy
from lockstep.errors import StorageError

#: The kinds of history record (docs/raw-format.md, "History records").
HISTORY_RECORDS = ("start", "gap", "retransmission", "lost", "reconnect", "snapshot", "drop",
                   "rejected", "end", "login", "session", "heartbeat_timeout", "feed_resumed")

clock_ns = _capture.clock_ns


@dataclasses.dataclass(frozen=True, slots=True)
class CaptureSettings:
    """How a capture is written: rotation (max_bytes, window_ns of receive time, 0 none), the
    fsync policy (fsync_interval_ns for INTERVAL) and each feed's ring size (a power of two)."""

    max_bytes: int = 1 << 30
    window_ns: int = 0
    fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    fsync_interval_ns: int = 1_000_000_000
    ring_bytes: int = 64 << 20


def history_payload(record: str, stream: str, fields: Mapping[str, Any]) -> bytes:
    """A history record's payload: sorted-key compact ASCII JSON with `record` and `stream`."""
    if record not in HISTORY_RECORDS:
        raise ValueError(f"unknown history record {record!r} (one of {', '.join(HISTORY_RECORDS)})")
    body = {**fields, "record": record, "stream": stream}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


@dataclasses.dataclass
class FeedCounts:
    """What one feed has seen (the summary and the metrics read these). Written by the feed's thread; read (racily, whole ints) by the
    status line and the metrics endpoint."""

    packets: int = 0  #: datagrams recorded (data, heartbeats, End of Session, retransmissions)
    messages: int = 0  #: message blocks in recorded datagrams
    bytes: int = 0  #: bytes of recorded datagrams
    gaps: int = 0  #: gaps detected
    missing: int = 0  #: messages in them when they opened
    retransmitted: int = 0  #: messages that came back in replies and filled a gap
    lost: int = 0  #: messages given up on
    duplicates: int = 0  #: datagrams whose every message was already had
    requests: int = 0  #: retransmission requests sent
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)  #: by reason
    drops: int = 0  #: datagrams the capture ring had no room for
    kernel_drops: int = 0  #: datagrams the kernel dropped on a full receive buffer
    lag_ns: int = 0  #: receive time minus the venue's time of the latest data datagram
    ended: bool = False  #: End of Session seen
    damaged: int = 0  #: recorded datagrams whose blocks are damaged past the header
    session_changes: int = 0  #: new sessions followed after the first
    heartbeat_timeouts: int = 0  #: times the feed was silent for heartbeat_timeout


class CaptureSink:
    """Where one feed puts what it received: `frame` for a message as it arrived, `history` for
    a record of what happened to the stream. Used by one thread only (the feed's)."""

    def __init__(self, capture: Capture, producer: int, stream_id: int, name: str) -> None:
        self.writer = capture._writer  #: the binding's writer (a feed's batch path pushes to it)
        self.producer = producer  #: this sink's ring in it
        self._history_id = capture.history_stream_id
        self.stream_id = stream_id
        self.name = name
        self.records: dict[str, int] = {}  #: history records written, by kind

    def frame(self, receive_ns: int, payload: bytes) -> bool:
        """One received message; False when it was dropped (counted, and told in the capture)."""
        return self.writer.push(self.producer, receive_ns, self.stream_id, payload)

    def history(self, record: str, **fields: Any) -> bool:
        """A history record about this stream, stamped now (`receive_ns` in fields overrides)."""
        at = fields.pop("receive_ns", None)
        payload = history_payload(record, self.name, fields)
        written = self.writer.push(self.producer, clock_ns() if at is None else at,
                                   self._history_id, payload)
        if written:  # one that found the ring full is not told here (the caller may retry it)
            self.records[record] = self.records.get(record, 0) + 1
        return written

    def datagrams(self, data: np.ndarray, length: np.ndarray, stamp_ns: np.ndarray, n: int,
                  keep: np.ndarray | None = None) -> int:
        """Rows 0..n of a UDP receive batch (lockstep.net.UdpSocket's arrays), only those where
        `keep` (uint8) is nonzero if given, in one call; how many were dropped."""
        return self.writer.push_slots(self.producer, self.stream_id, data, length, stamp_ns,
                                       keep, n)


class Capture:
    """A capture being written: one file series `<prefix>-NNNNNN.lsraw` in `directory`, whose
    stream table is the feeds' names and HISTORY_STREAM. A restarted recorder (same directory and
    prefix) continues in a new file after the highest one there and never opens an old one."""

    def __init__(self, directory: PathLike, prefix: str, feeds: Sequence[str],
                 settings: CaptureSettings = CaptureSettings(), *,
                 info: Mapping[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        if len(set(feeds)) != len(feeds) or HISTORY_STREAM in feeds:
            raise ValueError(f"feed names must be unique and not {HISTORY_STREAM!r}")
        self.streams = (*feeds, HISTORY_STREAM)
        self.history_stream_id = len(feeds)
        self.settings = settings
        self.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise StorageError(f"{self.directory}: cannot write there (permission denied)")
        self.stale_removed = remove_stale_staging(self.directory, prefix)
        self.first_sequence = next_sequence(self.directory, prefix)
        # A producer per feed, and the last for the recorder itself (start and end records).
        self._writer = _capture.CaptureWriter(
            os.fspath(self.directory), prefix, self.first_sequence,
            file_metadata(self.streams, info), settings.max_bytes, settings.window_ns,
            int(settings.fsync), settings.fsync_interval_ns, settings.ring_bytes,
            len(feeds) + 1, self.history_stream_id)
        self._sinks = {name: CaptureSink(self, i, i, name) for i, name in enumerate(feeds)}
        self.recorder_sink = CaptureSink(self, len(feeds), self.history_stream_id, HISTORY_STREAM)
        self._started = False

    def sink(self, feed: str) -> CaptureSink:
        return self._sinks[feed]

    def start(self) -> None:
        self._writer.start()
        self._started = True

    def close(self) -> None:
        """Waits until every frame pushed so far is written, then closes (and fsyncs) the file."""
        if self._started:
            self._writer.stop()
            self._started = False

    def failure(self) -> tuple[str, int, str] | None:
        """None, or (operation, errno, path) once the writer stopped on an error (a full disk)."""
        return self._writer.failure()

    def writer_stats(self) -> dict[str, int]:
        """frames, bytes, files, last_sequence, writes, write_ns, write_ns_max, fsyncs."""
        return self._writer.stats()

    def feed_stats(self, feed: str) -> dict[str, int]:
        """A feed's ring: frames and bytes (data frames pushed, history records not counted),
        dropped, dropped_bytes, drop_records and ring_used."""
        return self._writer.producer_stats(self._sinks[feed].producer)

    @property
    def ring_bytes(self) -> int:
        return self._writer.ring_capacity

    def files(self) -> list[Path]:
        """The files this capture has written, in order."""
        last = self.writer_stats()["last_sequence"]
        return [p for p in capture_files(self.directory, self.prefix)
                if self.first_sequence <= int(p.name[len(self.prefix) + 1:-len(".lsraw")]) <= last]


def read_history(paths: PathLike | Iterable[PathLike]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The history records of capture files, in file order: (receive_ns, record)."""
    reader = FrameReader(paths, corrupt="skip")
    for batch in reader:
        if HISTORY_STREAM not in batch.streams:
            continue
        sid = batch.streams.index(HISTORY_STREAM)
        for i in np.flatnonzero(batch.stream_id == sid).tolist():
            yield int(batch.receive_ns[i]), json.loads(batch.payload(i))


__all__ = ["HISTORY_RECORDS", "HISTORY_STREAM", "Capture", "CaptureSettings", "CaptureSink", "FeedCounts",
           "clock_ns", "history_payload", "read_history"]
