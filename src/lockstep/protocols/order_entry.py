"""OUCH 4.2 over SoupBinTCP 4.1 on our socket layer: the order-entry client of a live session.

    client = OrderEntryClient("tcp://127.0.0.1:9001", SoupClientConfig("ALICE", password))
    client.start()
    while running:
        for sequence, message, now_ns in client.poll(0.001):   # OUCH outbound, in order
            ...
        client.enter(ouch42.EnterOrder(...))                    # False when not logged in

With `decode=False` poll() hands out each OUCH message as the bytes the venue sent, and send()
takes encoded OUCH inbound messages: what a live core that decodes and encodes OUCH itself
(lockstep.live.session) exchanges, byte for byte as journaled.

One non-blocking TcpConnection (TCP_NODELAY) driven by the SoupBinTCP client session
(lockstep.protocols.soup_client): connect, log in, frame and number what the venue sends, send
heartbeats, notice a silent venue. A dropped connection (closed, reset, a silent venue, bytes
that break the protocol) is reconnected with exponential backoff, and the new login asks for the
next sequence number, so the venue replays the sequenced messages (fills) that were missed and
the session drops any it had already delivered. A rejected login or an end of session is final:
`state` says so and `reject_reason` why; except a re-login refused as "session not available",
which is retried with the backoff (the venue may hold our last connection until it notices it
is gone, as after a silent network). Bad bytes from the venue never raise: they are counted
and logged with the peer and the stream offset (or the sequence number of an OUCH message that
does not decode), and the connection is dropped where the stream cannot be trusted any more.

`fileno()` is the connection's descriptor for an outer selector (it changes on reconnect; -1
while there is none). Time: `clock` (monotonic ns) only drives timers and backoff; the receive
time handed out with each message is a read of it right after the bytes arrived.
"""
from __future__ import annotations

import collections
import logging
import select
import time
from collections.abc import Callable

from lockstep.enums import (
    LoginRejectReason,
    SoupClientState,
    SoupNoticeKind,
    WireProblem,
)
from lockstep.errors import PeerClosedError, ProtocolError, SocketError
from lockstep.net import TcpConnection
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols.soup_client import SoupClient, SoupClientConfig, SoupNotice

log = logging.getLogger("lockstep.protocols.order_entry")

_READ_CHUNK = 1 << 16
#: Reads per poll: bounded, so one flood cannot starve the caller's other work.
_READS_PER_POLL = 16
#: States after which the client does not reconnect by itself.
_FINAL = (SoupClientState.REJECTED, SoupClientState.ENDED, SoupClientState.LOGGED_OUT)

Received = tuple[int, ouch.Outbound | bytes, int]  # (sequence, message, now_ns when read)


class OrderEntryClient:
    """See the module docstring."""

    def __init__(self, address: str, config: SoupClientConfig, *,
                 backoff_initial_s: float = 0.05, backoff_max_s: float = 2.0,
                 write_capacity: int = 1 << 20, decode: bool = True,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("backoff_initial_s must be positive and at most backoff_max_s")
        self.address = address
        self.session = SoupClient(config)
        self._clock = clock
        self._decode = decode
        self._write_capacity = write_capacity
        self._backoff_initial = int(backoff_initial_s * 1e9)
        self._backoff_max = int(backoff_max_s * 1e9)
        self._backoff = self._backoff_initial
        self._retry_at: int | None = None
        self._conn: TcpConnection | None = None
        self._connecting = False
        self._peer = address
        self._buffer = bytearray(_READ_CHUNK)
        self._started = False
        self.counts = collections.Counter({k: 0 for k in (
            "connects", "connect_failures", "disconnects", "bad_messages", "orders_sent",
            "not_sent", "logins", "relogins_refused")})

    def __repr__(self) -> str:
        return f"OrderEntryClient({self.address!r}, {self.session!r})"

    # ---------------------------------------------------------------- the face a run loop uses

    def start(self) -> None:
        """Starts the first connection (poll() carries it on)."""
        self._started = True
        self._connect()

    def poll(self, timeout: float = 0.0) -> list[Received]:
        """One step: finishes a connection or a reconnect that is due, reads what arrived (at
        most `timeout` seconds of waiting for it), sends a heartbeat when due. The OUCH outbound
        messages read, in sequence order."""
        out: list[Received] = []
        if not self._started:
            return out
        now = self._clock()
        if self._conn is None:
            if self._retry_at is not None and now >= self._retry_at:
                self._connect()
            return out
        if self._connecting and not self._finish_connect(now):
            return out
        self._flush()
        if timeout > 0 and self._conn is not None:
            select.select([self._conn.fileno()], [], [], timeout)
        self._read(out)
        if self._conn is not None:
            self._send(self.session.poll(self._clock()))
            self._after_session()
        return out

    def enter(self, order: ouch.EnterOrder) -> bool:
        return self._order(order)

    def replace(self, order: ouch.ReplaceOrder) -> bool:
        return self._order(order)

    def cancel(self, order: ouch.CancelOrder) -> bool:
        return self._order(order)

    def send(self, message: bytes) -> bool:
        """Sends one encoded OUCH inbound message as Unsequenced Data: False (counted) when not
        logged in."""
        if not self.logged_in:
            self.counts["not_sent"] += 1
            return False
        self._send(self.session.send_data(message, self._clock()))
        if self._conn is None:
            self.counts["not_sent"] += 1
            return False
        self.counts["orders_sent"] += 1
        return True

    def send_framed(self, data: bytes) -> None:
        """SoupBinTCP packets already framed: the rest of a write another sender (the live
        node's C++ loop) made straight to fileno() and the kernel took only part of. Sent before
        anything sent after it."""
        self._send(data)

    @property
    def write_pending(self) -> int:
        """Bytes handed to the connection and not yet taken by the kernel: while there are any,
        nothing may be written straight to fileno() (it would overtake them)."""
        return 0 if self._conn is None else self._conn.pending

    def close(self, *, logout: bool = True) -> None:
        """Logs out (when logged in and asked to) and closes; no reconnect after this."""
        self._started = False
        self._retry_at = None
        if self._conn is not None:
            if logout and self.session.state is SoupClientState.LOGGED_IN:
                self._send(self.session.logout(self._clock()))
                try:
                    self._conn.flush()
                except SocketError:
                    pass
            self._close_connection()

    def fileno(self) -> int:
        return -1 if self._conn is None else self._conn.fileno()

    @property
    def state(self) -> SoupClientState:
        return self.session.state

    @property
    def logged_in(self) -> bool:
        return self._conn is not None and self.session.state is SoupClientState.LOGGED_IN

    @property
    def reject_reason(self) -> LoginRejectReason | None:
        return self.session.reject_reason

    @property
    def next_sequence(self) -> int:
        return self.session.next_sequence

    @property
    def reconnect_due_ns(self) -> int | None:
        """When the next connection attempt is due (clock ns), None if none is waiting."""
        return self._retry_at

    def summary(self) -> dict[str, int]:
        return {**self.counts, **self.session.counters}

    # ---------------------------------------------------------------- connections

    def _connect(self) -> None:
        self._retry_at = None
        self.counts["connects"] += 1
        try:
            self._conn = TcpConnection(self.address, write_capacity=self._write_capacity)
        except SocketError as exc:
            self._connect_failed(f"connect failed: {exc}")
            return
        self._connecting = True
        self._finish_connect(self._clock())

    def _finish_connect(self, now: int) -> bool:
        try:
            if not self._conn.finish_connect():
                return False
        except SocketError as exc:
            self._close_connection()
            self._connect_failed(f"connect failed: {exc}")
            return False
        self._connecting = False
        self._peer = self._conn.peer
        self._send(self.session.connected(now))
        return self._conn is not None

    def _connect_failed(self, reason: str) -> None:
        self.counts["connect_failures"] += 1
        log.warning("order entry %s: %s; retrying in %.3f s", self.address, reason,
                    self._backoff / 1e9)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def _close_connection(self, *, resume: bool = False) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._connecting = False
        if resume or self.session.state not in _FINAL:
            self.session.disconnected()

    def _relogin_refused(self) -> bool:
        """A re-login refused as "session not available": the venue still holds our last
        connection (it has not noticed it is gone). Worth another try, unlike a first login's."""
        return (self.session.state is SoupClientState.REJECTED and self.counts["logins"] > 0
                and self.session.reject_reason is LoginRejectReason.SESSION_NOT_AVAILABLE)

    def _drop(self, reason: str | None) -> None:
        """The connection is gone or not to be trusted: close it and reconnect unless final."""
        self.counts["disconnects"] += 1
        retry = self._relogin_refused()
        if retry:
            self.counts["relogins_refused"] += 1
            reason = "re-login refused (session not available: the venue still holds the last connection)"
        final = self.session.state in _FINAL and not retry
        if reason is not None:
            log.warning("order entry peer %s: %s; disconnected%s", self._peer, reason,
                        "" if final else f", reconnecting in {self._backoff / 1e9:.3f} s")
        self._close_connection(resume=retry)
        if not final and self._started:
            self._schedule_retry()

    # ---------------------------------------------------------------- bytes

    def _guarded(self, what: str, call, *args):
        """call(*args) on the connection; None (the connection dropped) if it failed."""
        try:
            return call(*args)
        except PeerClosedError:
            self._drop("closed by the peer")
        except SocketError as exc:
            self._drop(f"{what} failed: {exc}")
        return None

    def _send(self, data: bytes) -> None:
        if not data or self._conn is None:
            return
        if self._guarded("write", self._conn.write, data) is False:
            self._drop(f"write buffer full ({self._conn.write_capacity} bytes): the venue "
                       "does not read")

    def _order(self, message: ouch.Inbound) -> bool:
        return self.send(ouch.encode(message))

    def _flush(self) -> None:
        if self._conn is not None and self._conn.pending:
            self._guarded("write", self._conn.flush)

    def _read(self, out: list[Received]) -> None:
        for _ in range(_READS_PER_POLL):
            if self._conn is None:
                return
            n = self._guarded("read", self._conn.read_into, self._buffer)
            if not n:
                return
            now = self._clock()
            for sequence, payload, stamp in self.session.receive(
                    memoryview(self._buffer)[:n], now):
                self._message(sequence, payload, stamp, out)
            if self.session.state is not SoupClientState.LOGGED_IN:
                self._after_session()
                return

    def _message(self, sequence: int, payload: bytes, stamp: int, out: list[Received]) -> None:
        if not self._decode:
            out.append((sequence, bytes(payload), stamp))
            return
        try:
            out.append((sequence, ouch.decode_outbound(payload), stamp))
        except ProtocolError as exc:
            # The SoupBinTCP stream is intact; only this message is unreadable.
            self.counts["bad_messages"] += 1
            log.warning("order entry peer %s: sequenced message %d: %s at byte %d of %d; "
                        "skipped", self._peer, sequence, exc.problem.label, exc.offset,
                        len(payload))

    def _after_session(self) -> None:
        """Acts on what the session decided: a login, a rejection, a failure, an end."""
        for notice in self.session.notices():
            self._log_notice(notice)
        state = self.session.state
        if state is SoupClientState.LOGGED_IN:
            return
        if state is SoupClientState.LOGGING_IN or self._conn is None:
            return
        self._drop(None)

    def _log_notice(self, n: SoupNotice) -> None:
        kind = n.kind
        if kind is SoupNoticeKind.LOGIN_ACCEPTED:
            self.counts["logins"] += 1
            self._backoff = self._backoff_initial
            log.info("order entry %s: logged in as %s, session %s, next sequence %d",
                     self._peer, self.session.config.username, self.session.session, n.first)
        elif kind is SoupNoticeKind.LOGIN_REJECTED:
            # Final: the owner reports it (state, reject_reason) as its error, once.
            log.info("order entry %s: login as %s rejected: %s", self._peer,
                      self.session.config.username, LoginRejectReason(n.count).label)
        elif kind is SoupNoticeKind.SEQUENCE_GAP:
            log.error("order entry %s: messages %d..%d are no longer available at the venue",
                      self._peer, n.first, n.first + n.count - 1)
        elif kind is SoupNoticeKind.END_OF_SESSION:
            log.info("order entry %s: end of session", self._peer)
        elif kind is SoupNoticeKind.SERVER_TIMEOUT:
            log.warning("order entry peer %s: nothing received for %.1f s", self._peer,
                        n.count / 1e9)
        elif kind is SoupNoticeKind.PROTOCOL_ERROR:
            log.warning("order entry peer %s: %s at stream offset %d", self._peer,
                        WireProblem(n.count).label, n.first)
        else:
            log.warning("order entry peer %s: packet type %r out of place at stream offset %d",
                        self._peer, chr(n.count), n.first)


__all__ = ["OrderEntryClient", "Received"]
