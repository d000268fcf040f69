"""A MoldUDP64 feed into a capture: every datagram of the session as it arrived, gaps asked for
again, and the capture's history saying what was missed, recovered or lost.

The feed socket is read in recvmmsg batches (lockstep.net.UdpSocket, kernel receive stamps); a
batch's headers are checked with numpy and the datagrams that belong to the session go to the
capture in one call (CaptureSink.datagrams, C++ under no GIL). What does not belong (another
session, another source, shorter than a header, cut by its slot) is counted, logged (the first
few) and left out. Sequence numbers are tracked over the batch: a datagram whose first sequence
number is past the next expected one opens a gap [expected, first), written as a `gap` history
record and asked for at the `retransmit` server (MoldUDP64 request packets, at most 65534
messages each, again after `request_timeout`, `request_attempts` times). Replies are recorded like
the feed's own datagrams (the same stream: they are the venue's bytes for those numbers); a gap
wholly filled gets a `retransmission` record, one given up (or one with no server to ask) a `lost`
record. The importer (lockstep.data.recorder.importer) puts the messages back in sequence order
and makes what is lost a GAP.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

import numpy as np

from lockstep.data.recorder.capture import CaptureSink
from lockstep.data.recorder.config import FeedSettings
from lockstep.net import (
    DATAGRAM_TRUNCATED,
    READABLE,
    EventLoop,
    UdpSocket,
    parse_address,
)
from lockstep.protocols import moldudp64
from lockstep.protocols.fields import text_to_wire

log = logging.getLogger("lockstep.record")

HEADER = moldudp64.HEADER_LENGTH
_MAX_REQUEST = 0xFFFE  # messages one request may ask for (0xFFFF is End of Session's count)
_LOGGED = 20  # rejected datagrams logged per feed (all are counted)
_DAY_NS = 86_400_000_000_000
_ITCH_TIMESTAMP = HEADER + 2 + 5  # first block: length (2), type, locate, tracking, timestamp (6)


def _be(cols: np.ndarray) -> np.ndarray:
    """Big-endian unsigned integers from rows of bytes."""
    out = np.zeros(len(cols), np.uint64)
    for j in range(cols.shape[1]):
        out = (out << np.uint64(8)) | cols[:, j].astype(np.uint64)
    return out


@dataclasses.dataclass
class FeedCounts:
    """What one feed has seen. Written by the feed's thread; read (racily, whole ints) by the
    status line and the metrics endpoint."""

    packets: int = 0  #: datagrams recorded (data, heartbeats, End of Session, retransmissions)
    messages: int = 0  #: message blocks in recorded datagrams
    bytes: int = 0  #: bytes of recorded datagrams
    gaps: int = 0  #: gaps detected
    missing: int = 0  #: messages in them
    retransmitted: int = 0  #: messages that came back in replies and filled a gap
    lost: int = 0  #: messages given up on
    duplicates: int = 0  #: datagrams whose every message was already had
    requests: int = 0  #: retransmission requests sent
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)  #: by reason
    drops: int = 0  #: datagrams the capture ring had no room for
    kernel_drops: int = 0  #: datagrams the kernel dropped on a full receive buffer
    lag_ns: int = 0  #: receive time minus the venue's ITCH timestamp, the latest packet
    ended: bool = False  #: End of Session seen


@dataclasses.dataclass
class _Gap:
    first: int
    end: int  # one past the last missing message
    size: int  # messages when it opened
    missing: list[tuple[int, int]]  # the ranges not yet filled
    attempts: int = 0
    asked_ns: int = 0


class MoldFeed:
    """One moldudp64 feed: binds its sockets on creation (so `address` is known before run())."""

    def __init__(self, feed: FeedSettings, sink: CaptureSink, *, batch: int = 256) -> None:
        self.feed = feed
        self.sink = sink
        self.counts = FeedCounts()
        session = feed.option("session", "")
        self._session = text_to_wire(session, "session").ljust(moldudp64.SESSION_LENGTH) if session else None
        source = feed.option("source", "")
        self._source_ip = _ip(source) if source else None
        self._sock = UdpSocket(feed.url, batch=batch, slot_bytes=2048,
                               receive_buffer=feed.receive_buffer,
                               interface=feed.option("interface", "127.0.0.1"))
        self._req: UdpSocket | None = None
        if feed.retransmit is not None:
            self._req = UdpSocket(f"udp://{feed.retransmit.host}:0", batch=64, slot_bytes=2048)
            self._retransmit_peer = (_ip(feed.retransmit.host), feed.retransmit.port)
        self._expected = 1
        self._gaps: list[_Gap] = []
        self._keep = np.zeros(batch, np.uint8)

    @property
    def address(self) -> str:
        return self._sock.address

    def close(self) -> None:
        self._sock.close()
        if self._req is not None:
            self._req.close()

    # -- the loop --

    def run(self, stop: threading.Event) -> None:
        loop = EventLoop(2)
        loop.add(self._sock.fileno(), READABLE, 0)
        if self._req is not None:
            loop.add(self._req.fileno(), READABLE, 1)
        while not stop.is_set():
            got = self._read(self._sock, replies=False)
            if self._req is not None:
                got += self._read(self._req, replies=True)
            if got:
                continue
            self._ask(time.monotonic_ns())
            if self.counts.ended and not self._gaps:
                break
            loop.wait(20)
        self._give_up_all("stopped")

    def _read(self, sock: UdpSocket, *, replies: bool) -> int:
        n = sock.receive()
        if n == 0:
            return 0
        c = self.counts
        if not replies:
            c.kernel_drops = sock.stats["kernel_drops"]
        keep = self._keep[:n]
        keep[:] = self._accept(sock, n, replies)
        kept = np.flatnonzero(keep)
        if not len(kept):
            return n
        c.drops += self.sink.datagrams(sock.data, sock.length, sock.stamp_ns, n, self._keep)
        heads = sock.data[kept, :HEADER]
        seqs = _be(heads[:, 10:18]).astype(np.int64)
        counts = _be(heads[:, 18:20]).astype(np.int64)
        c.packets += len(kept)
        c.bytes += int(sock.length[kept].sum())
        data_counts = np.where(counts == moldudp64.END_OF_SESSION_COUNT, 0, counts)
        c.messages += int(data_counts.sum())
        if replies:
            for s, k in zip(seqs.tolist(), data_counts.tolist()):
                self._fill(s, s + k, retransmitted=True)
            return n
        last = int(kept[-1])
        if data_counts[-1] > 0 and int(sock.length[last]) >= _ITCH_TIMESTAMP + 6:
            venue = int(_be(sock.data[last:last + 1, _ITCH_TIMESTAMP:_ITCH_TIMESTAMP + 6])[0])
            c.lag_ns = int(sock.stamp_ns[last]) % _DAY_NS - venue
        self._track(seqs, data_counts, counts == moldudp64.END_OF_SESSION_COUNT,
                    sock.stamp_ns[kept])
        return n

    def _accept(self, sock: UdpSocket, n: int, replies: bool) -> np.ndarray:
        """Per datagram of the batch: recorded (1) or rejected (0, counted and logged)."""
        length = sock.length[:n]
        ok = (length >= HEADER) & ((sock.flags[:n] & DATAGRAM_TRUNCATED) == 0)
        self._reject(sock, ~ok, "malformed")
        if replies:
            ip, port = self._retransmit_peer
            source = (sock.peer_ip[:n] == ip) & (sock.peer_port[:n] == port)
        elif self._source_ip is not None:
            source = sock.peer_ip[:n] == self._source_ip
        else:
            source = np.ones(n, bool)
        self._reject(sock, ok & ~source, "wrong_source")
        ok &= source
        if self._session is None and ok.any():
            first = int(np.flatnonzero(ok)[0])
            self._session = sock.data[first, :10].tobytes()
            self.sink.history("start", session=self._session.decode("ascii", "replace").rstrip())
        if self._session is not None:
            same = (sock.data[:n, :10] == np.frombuffer(self._session, np.uint8)).all(axis=1)
            self._reject(sock, ok & ~same, "wrong_session")
            ok &= same
        return ok

    def _reject(self, sock: UdpSocket, mask: np.ndarray, reason: str) -> None:
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        rejected = self.counts.rejected
        before = sum(rejected.values())
        rejected[reason] = rejected.get(reason, 0) + len(idx)
        for j, i in enumerate(idx.tolist()[:max(0, _LOGGED - before)]):
            log.warning("%s: datagram of %d bytes from %s rejected: %s", self.feed.name,
                        int(sock.length[i]), sock.peer(i), reason.replace("_", " "))
            if before + j + 1 == _LOGGED:
                log.warning("%s: further rejected datagrams are counted, not logged", self.feed.name)

    # -- sequence numbers --

    def _track(self, seqs: np.ndarray, counts: np.ndarray, eos: np.ndarray, stamps: np.ndarray) -> None:
        ends = seqs + counts
        reach = np.maximum.accumulate(np.concatenate(([self._expected], ends)))
        before = reach[:-1]  # the next expected number when each datagram arrived
        ahead = np.flatnonzero(seqs > before)
        behind = np.flatnonzero((seqs < before) & (counts > 0))
        for i in ahead.tolist():
            self._open_gap(int(before[i]), int(seqs[i]), int(stamps[i]))
        for i in behind.tolist():
            s, e = int(seqs[i]), int(ends[i])
            if not self._fill(s, e, retransmitted=False):
                self.counts.duplicates += 1
        self._expected = int(reach[-1])
        if eos.any():
            self.counts.ended = True

    def _open_gap(self, first: int, end: int, stamp_ns: int) -> None:
        c = self.counts
        c.gaps += 1
        c.missing += end - first
        self.sink.history("gap", first=first, count=end - first, receive_ns=stamp_ns)
        log.info("%s: gap of %d messages from %d", self.feed.name, end - first, first)
        gap = _Gap(first, end, end - first, [(first, end)])
        if self._req is None:
            self._lose(gap, "no retransmit server")
        else:
            self._gaps.append(gap)
            self._ask(time.monotonic_ns(), only=gap)

    def _fill(self, first: int, end: int, *, retransmitted: bool) -> bool:
        """Messages [first, end) arrived late or in a reply: taken off the gaps they fill."""
        filled = False
        for gap in list(self._gaps):
            if end <= gap.first or first >= gap.end:
                continue
            rest: list[tuple[int, int]] = []
            for a, b in gap.missing:
                lo, hi = max(a, first), min(b, end)
                if lo >= hi:
                    rest.append((a, b))
                    continue
                filled = True
                self.counts.retransmitted += hi - lo
                rest += [r for r in ((a, lo), (hi, b)) if r[0] < r[1]]
            gap.missing = rest
            if not rest:
                self._gaps.remove(gap)
                self.sink.history("retransmission", first=gap.first, count=gap.size,
                                  attempts=gap.attempts)
        return filled

    def _ask(self, now_ns: int, only: _Gap | None = None) -> None:
        if self._req is None or self._session is None:
            return
        for gap in [only] if only is not None else list(self._gaps):
            if gap.attempts and now_ns - gap.asked_ns < self.feed.request_timeout_ns:
                continue
            if gap.attempts >= self.feed.request_attempts:
                self._gaps.remove(gap)
                self._lose(gap, f"no reply after {gap.attempts} requests")
                continue
            gap.attempts += 1
            gap.asked_ns = now_ns
            for a, b in gap.missing:
                for s in range(a, b, _MAX_REQUEST):
                    request = moldudp64.RetransmissionRequest(
                        self._session.decode("ascii").rstrip(), s, min(_MAX_REQUEST, b - s))
                    self._req.send_to(moldudp64.encode_request(request), str(self.feed.retransmit))
                    self.counts.requests += 1

    def _lose(self, gap: _Gap, why: str) -> None:
        for a, b in gap.missing:
            self.counts.lost += b - a
            self.sink.history("lost", first=a, count=b - a, reason=why)
            log.warning("%s: messages %d..%d lost (%s)", self.feed.name, a, b - 1, why)

    def _give_up_all(self, why: str) -> None:
        for gap in self._gaps:
            self._lose(gap, why)
        self._gaps = []


def _ip(host: str) -> int:
    address = parse_address(f"udp://{host}:0")
    return int.from_bytes(bytes(int(p) for p in address.host.split(".")), "big")


__all__ = ["FeedCounts", "MoldFeed"]
