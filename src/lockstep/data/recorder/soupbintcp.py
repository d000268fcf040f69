"""A SoupBinTCP 4.1 feed into a capture: a sequenced stream (ITCH 5.0 over SoupBinTCP, as NASDAQ
offers TotalView) recorded message by message, the session logged in again from the next
sequence number after every drop, and the capture's history saying where the numbering stands.

    feed = SoupFeed(name, url, settings, sink, FeedCounts())   # settings: SoupFeedSettings
    feed.run(stop)                      # until stop is set, End of Session, or a rejected login

The connection is the order-entry client's (lockstep.protocols.order_entry.OrderEntryClient with
decode=False: a non-blocking TcpConnection, the SoupBinTCP client session of
include/lockstep/session/soup_client.hpp, heartbeats both ways, a silent server given up,
reconnects with exponential backoff, each login asking for the number after the last message
delivered, so the server's replay fills what was missed and anything it sends twice is dropped).
Here its notices and drops become log lines with the feed's name and history records.

What reaches the sink:

- every Sequenced Data payload (one ITCH message) as one frame, stamped with CLOCK_REALTIME read
  right after the bytes were read. SoupBinTCP numbers its messages by position, so the frames
  carry no number: a `login` record (`session`, `sequence`: the number of the next frame,
  `peer`) is written on every login, and from there the frames are numbered one by one;
- `reconnect` (`reason` the last connection ended, `attempts`: connections it took) before the
  `login` of every connection after the first;
- `gap` and `lost` (`first`, `count`) when a Login Accepted starts past the number asked for:
  the server no longer has those messages;
- `lost` (`first`, `count`, reason "capture ring full") for messages that found the capture's
  ring full, written before the next message recorded, so the numbering stays right.

A history record that finds the ring full is kept and written before the next message, so no
frame is ever numbered wrongly. Bad input never stops the feed: bytes that break SoupBinTCP, a
packet out of place or a silent server drop the connection (counted in `rejected` by reason,
logged with the peer and the stream offset) and it reconnects. A rejected login is final:
`run` raises LoginRejected, which ends the recording with that one line (exit 1). The password
is a Secret (lockstep.live.config) until it goes into the Login Request; it is never logged,
recorded or shown.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lockstep.checks import config_int, parse_duration
from lockstep.data.recorder.capture import CaptureSink, FeedCounts, clock_ns
from lockstep.enums import (
    LoginRejectReason,
    SoupClientState,
    SoupNoticeKind,
    Transport,
    WireProblem,
)
from lockstep.errors import ConfigError, LoginRejected
from lockstep.logins import (
    USERNAME_WIDTH,
    Secret,
    address_setting,
    credential_setting,
    password_setting,
)
from lockstep.net import Address
from lockstep.protocols.order_entry import OrderEntryClient
from lockstep.protocols.soup_client import (
    SERVER_TIMEOUT_NS,
    SoupClientConfig,
    SoupNotice,
)

__all__ = ["KEYS", "SoupFeed", "SoupFeedSettings"]

log = logging.getLogger("lockstep.record")

#: The keys a `record.feeds` table of kind "soupbintcp" takes besides name, kind and url.
KEYS = ("username", "password", "password_env", "password_file", "session", "first_sequence",
        "heartbeat", "timeout", "reconnect_backoff", "reconnect_backoff_max")
_SESSION = re.compile(r"[A-Za-z0-9]{0,10}")
_WAIT_S = 0.02  # the longest one poll waits for bytes: a stop is noticed within it
_CONNECT_WAIT_S = 0.002  # while a connection or a login is under way
_DAY_NS = 86_400_000_000_000
_ITCH_TIMESTAMP = slice(5, 11)  # type (1), stock locate (2), tracking number (2), timestamp (6)
_LOGGED_IN_FULL = 10  # connection failures logged one by one; then every power of 10


@dataclasses.dataclass(frozen=True, slots=True)
class SoupFeedSettings:
    """A `soupbintcp` feed's own keys, checked. The password is a Secret; password_env or
    password_file says where it came from."""

    address: Address
    username: str
    password: Secret
    password_env: str = ""
    password_file: str = ""
    session: str = ""  #: "" = the session currently active
    first_sequence: int = 1  #: what the first login asks for; 0 = from the newest message
    heartbeat_ns: int = 1_000_000_000
    timeout_ns: int = SERVER_TIMEOUT_NS
    reconnect_backoff_ns: int = 50_000_000
    reconnect_backoff_max_ns: int = 2_000_000_000

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str, *, base_dir: Path,
                  environ: Mapping[str, str] = os.environ) -> SoupFeedSettings:
        address = address_setting(prefix + "url", data["url"], Transport.TCP)
        if address.port == 0:
            raise ConfigError(prefix + "url", "needs the server's port, not 0")
        if "username" not in data:
            raise ConfigError(prefix + "username", "missing")
        kw: dict[str, Any] = {"address": address,
                              "username": credential_setting(prefix + "username", data["username"], USERNAME_WIDTH)}
        kw.update(password_setting(data, prefix, base_dir, environ))
        if "session" in data:
            session = data["session"]
            if not isinstance(session, str) or not _SESSION.fullmatch(session):
                raise ConfigError(prefix + "session", f"must be up to 10 letters or digits, not {session!r}")
            kw["session"] = session
        if "first_sequence" in data:
            kw["first_sequence"] = config_int(prefix + "first_sequence", data["first_sequence"],
                                              (1 << 63) - 1)
        for key in ("heartbeat", "timeout", "reconnect_backoff", "reconnect_backoff_max"):
            if key in data:
                kw[key + "_ns"] = parse_duration(prefix + key, data[key], positive=True)
        settings = cls(**kw)
        if settings.reconnect_backoff_max_ns < settings.reconnect_backoff_ns:
            raise ConfigError(prefix + "reconnect_backoff_max", "must be >= reconnect_backoff")
        return settings

    def client_config(self) -> SoupClientConfig:
        return SoupClientConfig(self.username, self.password.reveal(), self.session,
                                self.first_sequence, self.heartbeat_ns, self.timeout_ns)


class _FeedClient(OrderEntryClient):
    """The order-entry client's connection, its notices and drops told to the feed (which logs
    them under its own name and writes them into the capture's history)."""

    def __init__(self, owner: SoupFeed, settings: SoupFeedSettings) -> None:
        super().__init__(str(settings.address), settings.client_config(), decode=False,
                         backoff_initial_s=settings.reconnect_backoff_ns / 1e9,
                         backoff_max_s=settings.reconnect_backoff_max_ns / 1e9)
        self._owner = owner

    def drain_notices(self) -> None:
        """Notices poll() left queued (it acts on them only while the connection is up): a
        connection that closed right after its login still tells the login."""
        for n in self.session.notices():
            self._log_notice(n)

    def _log_notice(self, n: SoupNotice) -> None:
        if n.kind is SoupNoticeKind.LOGIN_ACCEPTED:
            self._backoff = self._backoff_initial
        self._owner.on_notice(n, self._peer)

    def _drop(self, reason: str | None) -> None:
        self._owner.on_drop(reason, self._peer)
        super()._drop(None)

    def _connect_failed(self, reason: str) -> None:
        self.counts["connect_failures"] += 1
        self._owner.on_connect_failed(reason, self.counts["connect_failures"], self._backoff)
        self._schedule_retry()


class SoupFeed:
    """One soupbintcp feed (see the module docstring); connects when run() starts."""

    def __init__(self, name: str, url: Address, settings: SoupFeedSettings, sink: CaptureSink,
                 counts: FeedCounts) -> None:
        self.name = name
        self.sink = sink
        self.counts = counts  # the recorder's counts of a feed (what its summary reads)
        self.address = url
        self.logins = 0
        self.disconnects = 0
        self._client = _FeedClient(self, settings)
        self._pending: list[tuple[str, dict[str, Any]]] = []  # history before the next message
        self._ring_lost: tuple[int, int] | None = None  # (first, count) dropped, not yet told
        self._last_reason = ""  # why the last connection ended
        self._connects_at_login = 0  # connection attempts made before the last login
        self._rejected_by = ""
        self._gap: tuple[int, int] | None = None  # a Login Accepted past the number asked for

    # -- the loop --

    def run(self, stop: threading.Event) -> None:
        client = self._client
        client.start()
        try:
            while not stop.is_set():
                got = client.poll(_WAIT_S)
                client.drain_notices()  # before the messages: a login numbers those after it
                if got:
                    offset = clock_ns() - time.monotonic_ns()  # monotonic read -> realtime stamp
                    self._record(got, offset)
                    self._lag(got[-1][2] + offset, got[-1][1])
                elif self._pending or self._ring_lost:
                    self._flush_pending(clock_ns())
                state = client.state
                if state is SoupClientState.ENDED:
                    self.counts.ended = True
                    break
                if state is SoupClientState.REJECTED:
                    raise LoginRejected(self._rejected_by)
                if client.fileno() == -1:
                    due = client.reconnect_due_ns
                    left = _WAIT_S if due is None else (due - time.monotonic_ns()) / 1e9
                    stop.wait(min(max(left, 0.0), _WAIT_S))
                elif not client.logged_in:
                    stop.wait(_CONNECT_WAIT_S)
        finally:
            client.close()
            self._flush_pending(clock_ns())

    def close(self) -> None:
        self._client.close(logout=False)

    # -- messages --

    def _record(self, got: list[tuple[int, bytes, int]], offset_ns: int) -> None:
        """The messages of one poll, each stamped at its read (monotonic) plus `offset_ns`."""
        frame = self.sink.frame
        recorded = size = 0
        for sequence, payload, stamp in got:
            if (self._pending or self._ring_lost) and not self._flush_pending(stamp + offset_ns):
                self._ring_full(sequence)
            elif frame(stamp + offset_ns, payload):
                recorded += 1
                size += len(payload)
            else:
                self._ring_full(sequence)
        c = self.counts
        c.packets += recorded
        c.messages += recorded
        c.bytes += size

    def _ring_full(self, sequence: int) -> None:
        self.counts.drops += 1
        first, count = self._ring_lost or (sequence, 0)
        self._ring_lost = (first, count + 1)

    def _lag(self, receive_ns: int, payload: bytes) -> None:
        if len(payload) >= _ITCH_TIMESTAMP.stop:
            venue = int.from_bytes(payload[_ITCH_TIMESTAMP], "big")
            self.counts.lag_ns = receive_ns % _DAY_NS - venue

    def _history(self, record: str, **fields: Any) -> None:
        """A history record, written before any message that follows it."""
        self._pending.append((record, fields))
        self._flush_pending(clock_ns())

    def _flush_pending(self, at_ns: int) -> bool:
        """Writes what must precede the next message; False while the ring has no room."""
        if self._ring_lost is not None:
            first, count = self._ring_lost
            if not self.sink.history("lost", first=first, count=count,
                                     reason="capture ring full", receive_ns=at_ns):
                return False
            self._ring_lost = None
            self.counts.lost += count
            log.warning("%s: messages %d..%d lost: the capture ring was full", self.name,
                        first, first + count - 1)
        while self._pending:
            record, fields = self._pending[0]
            if not self.sink.history(record, receive_ns=at_ns, **fields):
                return False
            self._pending.pop(0)
        return True

    # -- what the connection tells --

    def on_notice(self, n: SoupNotice, peer: str) -> None:
        name = self.name
        kind = n.kind
        c = self.counts
        if kind is SoupNoticeKind.LOGIN_ACCEPTED:
            session = self._client.session.session
            connects = self._client.counts["connects"]
            if self.logins:
                self._history("reconnect", reason=self._last_reason,
                              attempts=connects - self._connects_at_login, peer=peer)
            if self._gap is not None:  # told just before the login it belongs to
                first, count = self._gap
                self._gap = None
                self._history("gap", first=first, count=count)
                self._history("lost", first=first, count=count,
                              reason="the server no longer has them")
            self.logins += 1
            self._connects_at_login = connects
            self._last_reason = ""
            self._history("login", session=session, sequence=n.first, peer=peer)
            log.info("%s: logged in at %s, session %s, next sequence %d", name, peer, session,
                     n.first)
        elif kind is SoupNoticeKind.SEQUENCE_GAP:
            c.gaps += 1
            c.missing += n.count
            c.lost += n.count
            self._gap = (n.first, n.count)
            log.warning("%s: messages %d..%d are no longer available at %s", name, n.first,
                        n.first + n.count - 1, peer)
        elif kind is SoupNoticeKind.LOGIN_REJECTED:
            # Final: run() raises it as the recording's one error line.
            self._rejected_by = (f"login as {self._client.session.config.username} rejected by "
                                 f"{peer}: {LoginRejectReason(n.count).label}")
        elif kind is SoupNoticeKind.END_OF_SESSION:
            self._last_reason = "end of session"
            log.info("%s: end of session at %s", name, peer)
        elif kind is SoupNoticeKind.SERVER_TIMEOUT:
            self._reject("server_timeout", f"nothing received for {n.count / 1e9:.1f} s", peer)
        elif kind is SoupNoticeKind.PROTOCOL_ERROR:
            self._reject("protocol_error", f"{WireProblem(n.count).label} at stream offset "
                                           f"{n.first}", peer)
        else:
            self._reject("unexpected_packet", f"packet type {chr(n.count)!r} out of place at "
                                              f"stream offset {n.first}", peer)

    def _reject(self, reason: str, what: str, peer: str) -> None:
        rejected = self.counts.rejected
        rejected[reason] = rejected.get(reason, 0) + 1
        self._last_reason = what
        log.warning("%s: peer %s: %s", self.name, peer, what)

    def on_drop(self, reason: str | None, peer: str) -> None:
        self.disconnects += 1
        if reason is not None:
            self._last_reason = reason
            log.warning("%s: peer %s: %s; reconnecting", self.name, peer, reason)

    def on_connect_failed(self, reason: str, failures: int, backoff_ns: int) -> None:
        self._last_reason = self._last_reason or reason
        if failures <= _LOGGED_IN_FULL or str(failures).rstrip("0") == "1":
            log.warning("%s: %s: %s; retrying in %.3f s (failure %d)", self.name,
                        self.address, reason, backoff_ns / 1e9, failures)
