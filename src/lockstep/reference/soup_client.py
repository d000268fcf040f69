"""Reference SoupBinTCP client session: lockstep.protocols.soup_client's API and decisions, in
plain Python over the reference codec and framer."""
from __future__ import annotations

from lockstep.enums import LoginRejectReason, SoupClientState, SoupNoticeKind, SoupPacketType
from lockstep.enums import Status
from lockstep.errors import ProtocolError, check_status
from lockstep.protocols import soup_client as api
from lockstep.protocols import soupbintcp as packets
from lockstep.reference import soupbintcp as codec

_NOTICE_CAPACITY = 64
_RUNNING = (SoupClientState.LOGGING_IN, SoupClientState.LOGGED_IN)
_COUNTERS = ("connections", "bytes_in", "packets_in", "sequenced", "unsequenced", "duplicates",
             "heartbeats_in", "heartbeats_out", "debug", "logins", "rejects", "sequence_gaps",
             "messages_lost", "protocol_errors", "timeouts", "messages_out", "ignored_bytes",
             "notices_lost")


class SoupClient:
    def __init__(self, config: api.SoupClientConfig) -> None:
        self.config = config
        self._session = config.session
        self._next = config.first_sequence
        self._stream_next = 1
        self._asked = 1
        self._state = SoupClientState.DISCONNECTED
        self._reject = LoginRejectReason.NOT_AUTHORIZED
        self._framer = codec.Framer(config.max_packet_length)
        self._last_received = 0
        self._last_sent = 0
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._notices: list[api.SoupNotice] = []

    def __repr__(self) -> str:
        return (f"SoupClient(username={self.config.username!r}, state={self.state.label}, "
                f"next_sequence={self.next_sequence})")

    def connected(self, now_ns: int) -> bytes:
        login = codec.encode(packets.LoginRequest(self.config.username, self.config.password,
                                                  self._session, self._next))
        self._framer = codec.Framer(self.config.max_packet_length)
        self._state = SoupClientState.LOGGING_IN
        self._asked = self._next
        self._last_received = self._last_sent = now_ns
        self._counters["connections"] += 1
        return login

    def receive(self, chunk: bytes, now_ns: int) -> list[api.Payload]:
        out: list[api.Payload] = []
        if self._state not in _RUNNING:
            self._counters["ignored_bytes"] += len(chunk)
            return out
        self._counters["bytes_in"] += len(chunk)
        if chunk:
            self._last_received = now_ns
        offset = self._framer.offset
        for packet in self._framer.feed(bytes(chunk)):
            if self._state not in _RUNNING:
                break
            self._packet(packet, offset, now_ns, out)
            offset += len(packet)
        error = self._framer.error
        if self._state in _RUNNING and error is not None:
            self._fail(SoupNoticeKind.PROTOCOL_ERROR, error.offset, error.problem, now_ns)
        return out

    def poll(self, now_ns: int) -> bytes:
        if self._state not in _RUNNING:
            return b""
        if now_ns - self._last_received >= self.config.server_timeout_ns:
            self._counters["timeouts"] += 1
            self._fail(SoupNoticeKind.SERVER_TIMEOUT, 0, now_ns - self._last_received, now_ns)
            return b""
        if (self._state is not SoupClientState.LOGGED_IN
                or now_ns - self._last_sent < self.config.heartbeat_interval_ns):
            return b""
        self._last_sent = now_ns
        self._counters["heartbeats_out"] += 1
        return codec.encode(packets.ClientHeartbeat())

    def send_data(self, payload: bytes, now_ns: int) -> bytes:
        if self._state is not SoupClientState.LOGGED_IN or len(payload) > 0xFFFE:
            check_status(Status.INVALID_ARGUMENT, f"Unsequenced Data of {len(payload)} bytes in "
                                                  f"state {self._state.label}")
        self._last_sent = now_ns
        self._counters["messages_out"] += 1
        return codec.encode(packets.UnsequencedData(bytes(payload)))

    def logout(self, now_ns: int) -> bytes:
        self._last_sent = now_ns
        self._state = SoupClientState.LOGGED_OUT
        return codec.encode(packets.LogoutRequest())

    def disconnected(self) -> None:
        self._state = SoupClientState.DISCONNECTED

    def notices(self) -> list[api.SoupNotice]:
        out, self._notices = self._notices, []
        return out

    state = property(lambda self: self._state)
    next_sequence = property(lambda self: self._next)
    session = property(lambda self: self._session)
    counters = property(lambda self: dict(self._counters))
    heartbeat_due_ns = property(
        lambda self: self._last_sent + self.config.heartbeat_interval_ns)
    timeout_due_ns = property(lambda self: self._last_received + self.config.server_timeout_ns)

    @property
    def reject_reason(self) -> LoginRejectReason | None:
        return self._reject if self._state is SoupClientState.REJECTED else None

    # ---------------------------------------------------------------- decisions

    def _notice(self, kind: SoupNoticeKind, first: int, count: int, now: int) -> None:
        if len(self._notices) == _NOTICE_CAPACITY:
            self._counters["notices_lost"] += 1
            return
        self._notices.append(api.SoupNotice(kind, first, count, now))

    def _fail(self, kind: SoupNoticeKind, first: int, count: int, now: int) -> None:
        if kind is not SoupNoticeKind.SERVER_TIMEOUT:
            self._counters["protocol_errors"] += 1
        self._state = SoupClientState.FAILED
        self._notice(kind, first, count, now)

    def _packet(self, data: bytes, offset: int, now: int, out: list) -> None:
        self._counters["packets_in"] += 1
        try:
            packet = codec.decode(data)
        except ProtocolError as e:
            self._fail(SoupNoticeKind.PROTOCOL_ERROR, offset + e.offset, e.problem, now)
            return
        kind = packets.packet_type(packet)
        logged_in = self._state is SoupClientState.LOGGED_IN
        if kind is SoupPacketType.DEBUG:
            self._counters["debug"] += 1
            return
        if kind is SoupPacketType.SERVER_HEARTBEAT:
            self._counters["heartbeats_in"] += 1
            return
        if kind is SoupPacketType.END_OF_SESSION:
            self._state = SoupClientState.ENDED
            self._notice(SoupNoticeKind.END_OF_SESSION, self._next, 0, now)
            return
        if kind is SoupPacketType.LOGIN_ACCEPTED and not logged_in:
            self._accepted(packet, now)
            return
        if kind is SoupPacketType.LOGIN_REJECTED and not logged_in:
            self._counters["rejects"] += 1
            self._reject = packet.reason
            self._state = SoupClientState.REJECTED
            self._notice(SoupNoticeKind.LOGIN_REJECTED, 0, int(packet.reason), now)
            return
        if kind is SoupPacketType.SEQUENCED_DATA and logged_in:
            if self._stream_next < self._next:
                self._counters["duplicates"] += 1
            else:
                out.append((self._stream_next, packet.payload, now))
                self._counters["sequenced"] += 1
                self._next = self._stream_next + 1
            self._stream_next += 1
            return
        if kind is SoupPacketType.UNSEQUENCED_DATA and logged_in:
            out.append((0, packet.payload, now))
            self._counters["unsequenced"] += 1
            return
        self._fail(SoupNoticeKind.UNEXPECTED_PACKET, offset + 2, int(kind), now)

    def _accepted(self, accepted: packets.LoginAccepted, now: int) -> None:
        self._counters["logins"] += 1
        self._session = accepted.session
        self._stream_next = accepted.sequence
        if self._asked == 0 or self._next == 0:
            self._next = accepted.sequence
        elif accepted.sequence > self._next:
            self._counters["sequence_gaps"] += 1
            self._counters["messages_lost"] += accepted.sequence - self._next
            self._notice(SoupNoticeKind.SEQUENCE_GAP, self._next, accepted.sequence - self._next,
                         now)
            self._next = accepted.sequence
        self._state = SoupClientState.LOGGED_IN
        self._notice(SoupNoticeKind.LOGIN_ACCEPTED, accepted.sequence, 0, now)
