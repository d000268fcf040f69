"""A MoldUDP64 feed into a capture: every datagram of the session as it arrived, gaps asked for
again, and the capture's history saying what was missed, recovered or lost.

The feed socket is read in recvmmsg batches (lockstep.net.UdpSocket, kernel receive stamps), and
each batch goes, in one call without the GIL, through the session layer's MoldUDP64 receiver
(include/lockstep/session/mold_receiver.hpp, the one the live node follows its feed with) and
into the capture's ring (include/lockstep/data/mold_capture.hpp): the datagrams of the session
followed are recorded as they arrived, late, repeated or ahead of a gap alike; the others (another
session, another source, shorter than a header, cut by their slot, an implausible sequence) are
counted by reason, the first few logged, and left out.

The receiver decides, and this module writes its decisions into the capture's history and sends
what it asks: a gap (`gap` record), the retransmission request due (MoldUDP64 request packets to
the `retransmit` server, again every `request_timeout`), a gap wholly filled (`retransmission`),
a hole given up after `request_timeout` x `request_attempts` without progress, or at once with
no server to ask, or when the recorder stops (`lost`), a new session followed (`session`), the
feed silent for `heartbeat_timeout` (`heartbeat_timeout`, then `feed_resumed`). Replies are
recorded like the feed's own datagrams (the same stream: they are the venue's bytes for those
numbers). The importer (lockstep.data.importers.capture) puts the messages back in sequence
order and makes what is lost a GAP.
"""
from __future__ import annotations

import dataclasses
import logging
import threading

import numpy as np

from lockstep._bindings.capture import MoldCapture
from lockstep.data.recorder.capture import CaptureSink, FeedCounts, clock_ns
from lockstep.data.recorder.config import FeedSettings
from lockstep.data.recorder.metrics import venue_lag_ns
from lockstep.enums import MoldNoticeKind, MoldVerdict
from lockstep.net import (
    DATAGRAM_TRUNCATED,
    READABLE,
    EventLoop,
    UdpSocket,
    parse_address,
)
from lockstep.protocols import moldudp64
from lockstep.protocols.fields import text_from_wire, text_to_wire
from lockstep.protocols.mold_receiver import MoldReceiverConfig

log = logging.getLogger("lockstep.record")

_LOGGED = 20  # rejected datagrams logged per feed (all are counted)
_SLOT_BYTES = 2048
_REJECTED = tuple(v for v in MoldVerdict if v not in (MoldVerdict.RECORDED, MoldVerdict.DROPPED))


@dataclasses.dataclass
class _Gap:
    first: int
    count: int
    requests: int  # requests sent before it opened


class MoldFeed:
    """One moldudp64 feed: binds its sockets on creation (so `address` is known before run())."""

    def __init__(self, feed: FeedSettings, sink: CaptureSink, *, batch: int = 256) -> None:
        self.feed = feed
        self.sink = sink
        self._counts = FeedCounts()
        session = text_to_wire(feed.option("session", ""), "session").ljust(moldudp64.SESSION_LENGTH)
        # Without a server to ask, a hole waits one request_timeout for datagrams arriving out of
        # order, then is lost; with one, request_attempts requests without progress.
        attempts = feed.request_attempts if feed.retransmit is not None else 1
        self.receiver_config = MoldReceiverConfig(
            session=feed.option("session", ""), first_sequence=feed.first_sequence,
            heartbeat_timeout_ns=feed.heartbeat_timeout_ns,
            request_interval_ns=feed.request_timeout_ns,
            give_up_ns=feed.request_timeout_ns * attempts, hold_slot_bytes=_SLOT_BYTES)
        c = self.receiver_config
        self._mold = MoldCapture(session, (
            c.first_sequence, c.heartbeat_timeout_ns, c.request_interval_ns, c.give_up_ns,
            c.max_request_count, c.hold_packets, c.hold_slot_bytes, c.max_sequence_jump))
        source = feed.option("source", "")
        self._source_ip = _ip(source) if source else 0
        self._sock = UdpSocket(feed.url, batch=batch, slot_bytes=_SLOT_BYTES,
                               receive_buffer=feed.receive_buffer,
                               interface=feed.option("interface", "127.0.0.1"))
        self._req: UdpSocket | None = None
        if feed.retransmit is not None:
            self._req = UdpSocket(f"udp://{feed.retransmit.host}:0", batch=64, slot_bytes=_SLOT_BYTES)
            self._retransmit_peer = (_ip(feed.retransmit.host), feed.retransmit.port)
        self._verdict = np.zeros(batch, np.uint8)
        self._gap: _Gap | None = None
        self._session = ""
        self._logged = 0

    @property
    def address(self) -> str:
        return self._sock.address

    def close(self) -> None:
        self._sock.close()
        if self._req is not None:
            self._req.close()

    @property
    def counts(self) -> FeedCounts:
        """The counts, brought up to date from the receive path's counters."""
        c = self._counts
        m = self._mold.counters
        r = self._mold.receiver_counters
        c.packets, c.messages, c.bytes = m["datagrams"], m["messages"], m["bytes"]
        c.retransmitted, c.drops, c.damaged = m["retransmitted"], m["ring_drops"], m["damaged"]
        c.duplicates, c.session_changes = r["duplicate_packets"], r["session_changes"]
        c.heartbeat_timeouts = r["heartbeat_timeouts"]
        for verdict in _REJECTED:
            if m[verdict.label]:
                c.rejected[verdict.label] = m[verdict.label]
        c.kernel_drops = self._sock.stats["kernel_drops"]
        if m["last_stamp_ns"]:
            c.lag_ns = venue_lag_ns(m["last_stamp_ns"], m["last_venue_ns"],
                                    self.feed.timezone, self.feed.date)
        return c

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
            now = clock_ns()
            self._mold.poll(now)
            self._decided(now)
            _, _, gap_open, ended = self._mold.state
            if ended and not gap_open:
                self._counts.ended = True
                break
            loop.wait(20)
        self._give_up_all()

    def _read(self, sock: UdpSocket, *, replies: bool) -> int:
        n = sock.receive()
        if n == 0:
            return 0
        if replies:
            want_ip, want_port = self._retransmit_peer
        else:
            want_ip, want_port = self._source_ip, 0
        refused = self._mold.on_batch(
            self.sink.writer, self.sink.producer, self.sink.stream_id, sock.data, sock.length,
            sock.stamp_ns, sock.flags, DATAGRAM_TRUNCATED, sock.peer_ip, sock.peer_port, n,
            replies, want_ip, want_port, self._verdict)
        if refused and self._logged < _LOGGED:
            self._log_rejected(sock, n)
        self._decided(clock_ns())
        return n

    def _log_rejected(self, sock: UdpSocket, n: int) -> None:
        for i in np.flatnonzero(self._verdict[:n] != MoldVerdict.RECORDED).tolist():
            verdict = MoldVerdict(int(self._verdict[i]))
            if verdict is MoldVerdict.DROPPED or self._logged >= _LOGGED:
                continue
            self._logged += 1
            log.warning("%s: datagram of %d bytes from %s rejected: %s", self.feed.name,
                        int(sock.length[i]), sock.peer(i), verdict.label.replace("_", " "))
            if self._logged == _LOGGED:
                log.warning("%s: further rejected datagrams are counted, not logged", self.feed.name)

    # -- what the receiver decided --

    def _decided(self, now_ns: int, *, stopping: bool = False) -> None:
        """Writes the receiver's notices into the history and sends the request due."""
        notices = self._mold.notices()
        for i, (kind, first, count, stamp) in enumerate(notices):
            kind = MoldNoticeKind(kind)
            if kind is MoldNoticeKind.GAP_DETECTED:
                self._open_gap(first, count, stamp)
            elif kind is MoldNoticeKind.GAP_RECOVERED:
                self._recovered()
            elif kind is MoldNoticeKind.GAP_ABANDONED:
                follows = notices[i + 1][0] if i + 1 < len(notices) else 0
                why = ("recorder stopped" if stopping else
                       "session changed" if follows == MoldNoticeKind.SESSION_CHANGED else
                       "no retransmit server" if self._req is None else
                       f"no reply after {self._counts.requests - self._gap.requests} requests"
                       if self._gap is not None else "given up")
                self._lose(first, count, why, clock_ns() if stopping else stamp)
            elif stopping:
                continue  # the clock was run forward to give every hole up: nothing else is news
            elif kind in (MoldNoticeKind.SESSION_STARTED, MoldNoticeKind.SESSION_CHANGED):
                self._new_session(kind, stamp)
            elif kind is MoldNoticeKind.HEARTBEAT_TIMEOUT:
                self.sink.history("heartbeat_timeout", silent_ns=count, receive_ns=stamp)
                log.warning("%s: nothing received for %.1f s", self.feed.name, count / 1e9)
            elif kind is MoldNoticeKind.FEED_RESUMED:
                self.sink.history("feed_resumed", receive_ns=stamp)
                log.info("%s: datagrams again", self.feed.name)
        if self._gap is not None and self._req is not None and not stopping:
            request = self._mold.take_request(now_ns)
            if request is not None:
                self._req.send_to(request, str(self.feed.retransmit))
                self._counts.requests += 1

    def _new_session(self, kind: MoldNoticeKind, stamp: int) -> None:
        session = text_from_wire(self._mold.session or b"")
        first = self.receiver_config.first_sequence
        if kind is MoldNoticeKind.SESSION_STARTED:
            self.sink.history("start", session=session, first_sequence=first, receive_ns=stamp)
        else:
            self.sink.history("session", session=session, previous=self._session,
                              first_sequence=first, receive_ns=stamp)
            log.warning("%s: session %r follows %r", self.feed.name, session, self._session)
        self._session = session

    def _open_gap(self, first: int, count: int, stamp: int) -> None:
        c = self._counts
        c.gaps += 1
        c.missing += count
        self.sink.history("gap", first=first, count=count, receive_ns=stamp)
        log.info("%s: gap of %d messages from %d", self.feed.name, count, first)
        self._gap = _Gap(first, count, c.requests)

    def _recovered(self) -> None:
        gap = self._gap
        if gap is not None:
            self.sink.history("retransmission", first=gap.first, count=gap.count,
                              attempts=self._counts.requests - gap.requests)
        self._gap = None

    def _lose(self, first: int, count: int, why: str, stamp: int) -> None:
        self._counts.lost += count
        self.sink.history("lost", first=first, count=count, reason=why, receive_ns=stamp)
        log.warning("%s: messages %d..%d lost (%s)", self.feed.name, first, first + count - 1, why)
        if not self._mold.state[2]:
            self._gap = None

    def _give_up_all(self) -> None:
        """Every hole still open is lost: the receiver's clock is run past its give-up time, one
        hole at a time (each abandon restarts it), so each is told with its own range."""
        now = clock_ns()
        for _ in range(self.receiver_config.hold_packets + 2):
            if not self._mold.state[2]:
                break
            now += self.receiver_config.give_up_ns
            self._mold.poll(now)
            self._decided(now, stopping=True)


def _ip(host: str) -> int:
    address = parse_address(f"udp://{host}:0")
    return int.from_bytes(bytes(int(p) for p in address.host.split(".")), "big")


__all__ = ["MoldFeed"]
