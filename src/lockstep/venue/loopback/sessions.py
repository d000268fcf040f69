"""SoupBinTCP 4.1 server sessions for the loopback venue: logins, sequenced streams kept per
account for replay, heartbeats, timeouts, and dropping peers that break the protocol.

    server = SoupServer("tcp://127.0.0.1:0", [Account("ALICE", "secret")], on_data)
    server.address                      # the bound address, a real port where 0 was asked
    server.send("ALICE", payload)       # one sequenced message, kept for replay
    server.poll(0.01)                   # one non-blocking step (registers in any selector)
    server.end_session()                # End of Session to everyone, then close()

`on_data(username, payload)` is called with each Unsequenced Data payload of a logged-in
client; raising ProtocolError there (a payload the application cannot read) disconnects that
client with the problem and its stream offset in the log. The server is single-threaded and
never blocks: one `poll(timeout)` waits on its epoll set at most `timeout` seconds, accepts,
reads, answers, flushes and runs the timers. `fileno()` is that epoll set's descriptor, so an
outer loop can wait on it with everything else and call `poll(0)` when it is readable.

What the server decides where SoupBinTCP 4.1 leaves room (docs/protocols.md, "SoupBinTCP
sessions"): every account has one logical session (one sequenced stream), named `session`; a
login must name it or leave it blank, and only one connection per account may be logged in.
A requested sequence number of 0 (or past the end) starts at the next message; 1..n replays
from there. Each stream keeps its newest `history` messages: a login asking for an older one is
refused with session-not-available rather than silently given a gap.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

from lockstep.enums import LoginRejectReason, SoupPacketType
from lockstep.errors import PeerClosedError, ProtocolError, SocketError
from lockstep.net import HANGUP, READABLE, WRITABLE, EventLoop, TcpConnection, TcpListener
from lockstep.protocols import soupbintcp as soup

log = logging.getLogger("lockstep.venue.loopback")

#: The specification's figures: a heartbeat after 1 s without sending, a peer given up after
#: 15 s without receiving.
HEARTBEAT_INTERVAL_S = 1.0
CLIENT_TIMEOUT_S = 15.0
#: Sequenced messages kept per account for replay (OUCH outbound messages are at most 80 bytes:
#: about 8 MB per account at the limit).
DEFAULT_HISTORY = 100_000
DEFAULT_SESSION = "LOOPBACK"
_READ_CHUNK = 1 << 16
_LISTENER_TOKEN = 0


@dataclasses.dataclass(frozen=True)
class Account:
    """A login the server accepts (config `venue.users`). The password never appears in a repr
    or a log line."""

    username: str
    password: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        for name, value, width in (("username", self.username, 6),
                                   ("password", self.password, 10)):
            if not isinstance(value, str) or not value or len(value) > width \
                    or value != value.strip(" "):
                raise ValueError(f"account {name} must be 1 to {width} characters without "
                                 f"surrounding spaces (SoupBinTCP's field width)")


class SequencedStream:
    """One account's sequenced messages, numbered from 1; keeps the newest `limit`."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"history must keep at least 1 message, not {limit}")
        self._kept: collections.deque[bytes] = collections.deque(maxlen=limit)
        self.next_sequence = 1

    def append(self, payload: bytes) -> int:
        """Keeps `payload`; its sequence number."""
        self._kept.append(payload)
        self.next_sequence += 1
        return self.next_sequence - 1

    @property
    def first_kept(self) -> int:
        """The oldest sequence number still held (next_sequence when none is)."""
        return self.next_sequence - len(self._kept)

    def since(self, sequence: int) -> list[bytes]:
        """The kept messages from `sequence` on (first_kept <= sequence <= next_sequence)."""
        skip = sequence - self.first_kept
        return [m for i, m in enumerate(self._kept) if i >= skip]


@dataclasses.dataclass
class _Client:
    conn: TcpConnection
    peer: str
    framer: soup.Framer
    last_received: float
    last_sent: float
    username: str | None = None
    writable_interest: bool = False


class SoupServer:
    """SoupBinTCP server on one listening socket; see the module docstring."""

    def __init__(self, address: str, accounts: Iterable[Account],
                 on_data: Callable[[str, bytes], None], *, session: str = DEFAULT_SESSION,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
                 client_timeout: float = CLIENT_TIMEOUT_S, history: int = DEFAULT_HISTORY,
                 write_capacity: int = 1 << 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = {a.username: a for a in accounts}
        if not 0 < len(session) <= 10 or session != session.strip(" "):
            raise ValueError(f"session name must be 1 to 10 characters, not {session!r}")
        if heartbeat_interval <= 0 or client_timeout <= 0:
            raise ValueError("heartbeat_interval and client_timeout must be positive seconds")
        self.session = session
        self._on_data = on_data
        self._heartbeat = heartbeat_interval
        self._timeout = client_timeout
        self._clock = clock
        self._streams = {name: SequencedStream(history) for name in self._accounts}
        self._listener = TcpListener(address, write_capacity=write_capacity)
        self._loop = EventLoop(256)
        self._loop.add(self._listener.fileno(), READABLE, _LISTENER_TOKEN)
        self._clients: dict[int, _Client] = {}
        self._logged_in: dict[str, int] = {}  # username -> token of its connection
        self._next_token = _LISTENER_TOKEN + 1
        self._buffer = bytearray(_READ_CHUNK)
        self.counts = collections.Counter(
            {k: 0 for k in ("connections", "logins", "login_rejects", "logouts", "disconnects",
                            "protocol_errors", "timeouts", "messages_in", "messages_out",
                            "replayed", "heartbeats")})

    # ---------------------------------------------------------------- the face a run loop uses

    @property
    def address(self) -> str:
        return self._listener.address

    def fileno(self) -> int:
        return self._loop.fileno()

    def poll(self, timeout: float = 0.0) -> None:
        """One step: waits up to `timeout` seconds for readiness, serves what is ready, sends
        heartbeats and drops timed-out peers."""
        for token, ready in self._loop.wait(max(0, int(timeout * 1000))):
            if token == _LISTENER_TOKEN:
                self._accept()
                continue
            client = self._clients.get(token)
            if client is None:
                continue
            if ready & (READABLE | HANGUP):
                self._read(token, client)
            if token in self._clients and ready & WRITABLE:
                self._flush(token, client)
        self._timers()

    def send(self, username: str, payload: bytes) -> int:
        """Appends `payload` to the account's sequenced stream and sends it if the account is
        logged in; its sequence number."""
        sequence = self._streams[username].append(payload)
        self.counts["messages_out"] += 1
        token = self._logged_in.get(username)
        if token is not None:
            self._write(token, soup.encode(soup.SequencedData(payload)))
        return sequence

    def next_sequence(self, username: str) -> int:
        return self._streams[username].next_sequence

    @property
    def usernames(self) -> list[str]:
        return list(self._accounts)

    @property
    def logged_in(self) -> list[str]:
        return sorted(self._logged_in)

    def end_session(self) -> None:
        """End of Session to every logged-in client, then close()."""
        for token in [self._logged_in[u] for u in sorted(self._logged_in)]:
            self._write(token, soup.encode(soup.EndOfSession()))
        self.close()

    def close(self) -> None:
        for token in list(self._clients):
            self._drop(token, None)
        self._listener.close()

    # ---------------------------------------------------------------- connections

    def _accept(self) -> None:
        for _ in range(64):  # bounded per step: the next poll takes the rest
            conn = self._listener.accept()
            if conn is None:
                return
            token = self._next_token
            self._next_token += 1
            now = self._clock()
            self._clients[token] = _Client(conn, conn.peer, soup.Framer(), now, now)
            self._loop.add(conn.fileno(), READABLE, token)
            self.counts["connections"] += 1

    def _drop(self, token: int, reason: str | None) -> None:
        client = self._clients.pop(token)
        if client.username is not None and self._logged_in.get(client.username) == token:
            del self._logged_in[client.username]
        if client.conn.pending:
            try:
                client.conn.flush()
            except SocketError:
                pass
        self._loop.remove(client.conn.fileno())
        client.conn.close()
        self.counts["disconnects"] += 1
        if reason is not None:
            log.warning("SoupBinTCP peer %s (%s): %s; disconnected", client.peer,
                        client.username or "not logged in", reason)

    def _write(self, token: int, data: bytes) -> None:
        client = self._clients[token]
        taken = self._sending(token, client.conn.write, data)
        if taken is None:
            return
        if not taken:
            self._drop(token, f"write buffer full ({client.conn.write_capacity} bytes): the "
                              "peer does not read")
            return
        client.last_sent = self._clock()
        if client.conn.pending and not client.writable_interest:
            self._loop.modify(client.conn.fileno(), READABLE | WRITABLE, token)
            client.writable_interest = True

    def _sending(self, token: int, send, *args):
        """`send(*args)` on the client's connection; None (the client dropped) if it failed."""
        try:
            return send(*args)
        except PeerClosedError:
            self._drop(token, None)
        except SocketError as exc:
            self._drop(token, f"write failed: {exc}")
        return None

    def _flush(self, token: int, client: _Client) -> None:
        done = self._sending(token, client.conn.flush)
        if done and client.writable_interest:
            self._loop.modify(client.conn.fileno(), READABLE, token)
            client.writable_interest = False

    def _read(self, token: int, client: _Client) -> None:
        for _ in range(16):  # bounded per step, so one busy peer cannot starve the others
            try:
                n = client.conn.read_into(self._buffer)
            except PeerClosedError:
                self._drop(token, None)
                return
            except SocketError as exc:
                self._drop(token, f"read failed: {exc}")
                return
            if n == 0:
                return
            client.last_received = self._clock()
            start = client.framer.offset
            packets = client.framer.feed(memoryview(self._buffer)[:n])
            for packet in packets:
                if not self._packet(token, client, start, packet):
                    return
                start += len(packet)
            if client.framer.error is not None:
                self._protocol_error(token, client.framer.error)
                return

    def _protocol_error(self, token: int, error: ProtocolError) -> None:
        self.counts["protocol_errors"] += 1
        self._drop(token, f"{error.reason} at stream offset {error.offset}")

    def _violation(self, token: int, offset: int, what: str) -> bool:
        self.counts["protocol_errors"] += 1
        self._drop(token, f"{what} at stream offset {offset}")
        return False

    # ---------------------------------------------------------------- packets

    def _packet(self, token: int, client: _Client, offset: int, packet: bytes) -> bool:
        """Serves one packet at stream `offset`; False when the client was dropped."""
        try:
            message = soup.decode(packet)
        except ProtocolError as exc:
            self._protocol_error(token, ProtocolError(exc.problem, offset + exc.offset,
                                                      "SoupBinTCP stream"))
            return False
        kind = soup.packet_type(message)
        if client.username is None:
            if kind is not SoupPacketType.LOGIN_REQUEST:
                return self._violation(token, offset, f"{kind.label} before login")
            return self._login(token, client, message)
        if isinstance(message, soup.UnsequencedData):
            self.counts["messages_in"] += 1
            try:
                self._on_data(client.username, message.payload)
            except ProtocolError as exc:  # header (2 bytes length, 1 type) before the payload
                self._protocol_error(token, ProtocolError(exc.problem, offset + 3 + exc.offset,
                                                          exc.reason.rsplit(": ", 1)[0]))
                return False
            return token in self._clients
        if kind is SoupPacketType.CLIENT_HEARTBEAT or kind is SoupPacketType.DEBUG:
            return True
        if kind is SoupPacketType.LOGOUT_REQUEST:
            self.counts["logouts"] += 1
            self._drop(token, None)
            return False
        return self._violation(token, offset, f"{kind.label} from a client")

    def _login(self, token: int, client: _Client, request: soup.LoginRequest) -> bool:
        account = self._accounts.get(request.username)
        stream = self._streams.get(request.username)
        if account is None or stream is None or request.password != account.password:
            return self._reject(token, LoginRejectReason.NOT_AUTHORIZED,
                                f"login as {request.username!r} not authorized")
        why = None
        if request.session not in ("", self.session):
            why = f"session {request.session!r} does not exist (this is {self.session!r})"
        elif request.username in self._logged_in:
            why = f"{request.username!r} is already logged in on another connection"
        elif 0 < request.sequence < stream.first_kept:
            why = (f"sequence {request.sequence} is older than the history kept "
                   f"(from {stream.first_kept})")
        if why is not None:
            return self._reject(token, LoginRejectReason.SESSION_NOT_AVAILABLE, why)
        start = request.sequence if 0 < request.sequence <= stream.next_sequence \
            else stream.next_sequence
        client.username = request.username
        self._logged_in[request.username] = token
        self.counts["logins"] += 1
        self._write(token, soup.encode(soup.LoginAccepted(self.session, start)))
        return self._replay(token, stream, start)

    def _replay(self, token: int, stream: SequencedStream, start: int) -> bool:
        """Sends a client just logged in its stream from `start`; False when it was dropped."""
        for payload in stream.since(start):
            if token not in self._clients:
                return False
            self._write(token, soup.encode(soup.SequencedData(payload)))
            self.counts["replayed"] += 1
        return token in self._clients

    def _reject(self, token: int, reason: LoginRejectReason, why: str) -> bool:
        self.counts["login_rejects"] += 1
        self._write(token, soup.encode(soup.LoginRejected(reason)))
        if token in self._clients:
            self._drop(token, f"login rejected ({reason.label}): {why}")
        return False

    # ---------------------------------------------------------------- timers

    def _timers(self) -> None:
        now = self._clock()
        for token, client in list(self._clients.items()):
            if now - client.last_received >= self._timeout:
                self.counts["timeouts"] += 1
                self._drop(token, f"nothing received for {now - client.last_received:.1f} s "
                                  f"(timeout {self._timeout:g} s)")
            elif client.username is not None and now - client.last_sent >= self._heartbeat:
                self.counts["heartbeats"] += 1
                self._write(token, soup.encode(soup.ServerHeartbeat()))


# Bytes handed to a client's write buffer per write by a PumpedSoupServer: whole packets, up to
# this much.
_WRITE_BYTES = 256 << 10
# How often a PumpedSoupServer's tick() wants to run while nothing is waiting: heartbeats,
# timeouts, closing.
_TIMER_S = 0.1


def whole_packets(data: bytes, offsets, k: int, max_bytes: int) -> tuple[bytes, int]:
    """Packets k.. of `data` (packet i spans offsets[i]..offsets[i + 1]; k is not the last
    offset), at most `max_bytes` of them unless packet k alone is larger: their bytes and the
    index after the last one."""
    begin = int(offsets[k])
    end = max(bisect.bisect_right(offsets, begin + max_bytes) - 1, k + 1)
    return data[begin:int(offsets[end])], end


class PumpedSoupServer(SoupServer):
    """A SoupServer that sends each logged-in client a stream of packets as fast as it reads
    (`_pump`: whole packets while its write buffer has room; the server's poll flushes the buffer
    when the socket is writable), and the run loop's face: every turn polls, then pumps each
    client still being sent to (`_pumping`)."""

    def _pumping(self) -> Iterable[int]:
        raise NotImplementedError

    def _pump(self, token: int) -> None:
        raise NotImplementedError

    def _room(self, token: int) -> int:
        """Bytes the client's next write may take: 0 while its write buffer has less than a
        quarter of a write's room (a write then is not worth a syscall)."""
        conn = self._clients[token].conn
        room = conn.write_capacity - conn.pending
        return 0 if room < _WRITE_BYTES // 4 else min(room, _WRITE_BYTES)

    def on_readable(self) -> None:
        self.poll(0)
        self._pump_all()

    def tick(self) -> float | None:
        self.poll(0)
        self._pump_all()
        return _TIMER_S

    def _pump_all(self) -> None:
        for token in list(self._pumping()):
            self._pump(token)


__all__ = ["CLIENT_TIMEOUT_S", "DEFAULT_HISTORY", "DEFAULT_SESSION", "HEARTBEAT_INTERVAL_S",
           "Account", "PumpedSoupServer", "SequencedStream", "SoupServer", "whole_packets"]
