"""The client side of a SoupBinTCP 4.1 session (include/lockstep/session/soup_client.hpp).

    client = SoupClient(SoupClientConfig("ALICE", "secret"))
    conn.write(client.connected(now_ns))               # the Login Request, on a new connection
    for sequence, payload, _ in client.receive(chunk, now_ns): ...   # sequence 0: unsequenced
    conn.write(client.send_data(ouch_bytes, now_ns))   # Unsequenced Data
    conn.write(client.poll(now_ns))                     # a heartbeat when due (b"" otherwise)
    client.disconnected()                               # connection gone; connected() resumes

No socket and no clock: bytes and the caller's `now_ns` in, payloads and bytes to send out.
`state` says what to do with the connection (REJECTED, ENDED, LOGGED_OUT, FAILED: close it);
`notices()` says why. A login after a drop asks for `next_sequence`, the number after the last
sequenced message delivered, so the server replays exactly what was missed; anything delivered
before is dropped as a duplicate. The password is never shown (repr, errors, notices).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from lockstep._bindings import sessions as _core
from lockstep.enums import LoginRejectReason, SoupClientState, SoupNoticeKind
from lockstep.errors import check_status
from lockstep.protocols.fields import forwarded, text_from_wire, text_to_wire
from lockstep.protocols.soupbintcp import DEFAULT_MAX_PACKET_LENGTH

#: The specification's figures: a heartbeat after 1 s without sending, the peer given up after
#: 15 s without receiving.
HEARTBEAT_INTERVAL_NS = 1_000_000_000
SERVER_TIMEOUT_NS = 15_000_000_000


def _login_field(value: str, width: int, what: str) -> bytes:
    raw = text_to_wire(value, f"SoupClientConfig.{what}")
    if len(raw) > width or raw != raw.strip(b" "):
        # The value itself stays out of the message: it may be the password.
        raise ValueError(f"SoupClientConfig.{what} must be at most {width} characters without "
                         "surrounding spaces")
    return raw


@dataclasses.dataclass(frozen=True)
class SoupClientConfig:
    """A login and the session's timings. `session` "" asks for the session currently active;
    `first_sequence` is what the first login asks for (0: from the newest message)."""

    username: str
    password: str = dataclasses.field(repr=False)
    session: str = ""
    first_sequence: int = 1
    heartbeat_interval_ns: int = HEARTBEAT_INTERVAL_NS
    server_timeout_ns: int = SERVER_TIMEOUT_NS
    max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH

    def __post_init__(self) -> None:
        _login_field(self.username, 6, "username")
        _login_field(self.password, 10, "password")
        _login_field(self.session, 10, "session")
        for name in ("heartbeat_interval_ns", "server_timeout_ns"):
            if not 0 < getattr(self, name) < 1 << 63:
                raise ValueError(f"SoupClientConfig.{name} must be a positive number of ns, "
                                 f"not {getattr(self, name)}")
        if not 31 <= self.max_packet_length <= 0xFFFF:
            raise ValueError("SoupClientConfig.max_packet_length must be 31 to 65535, not "
                             f"{self.max_packet_length}")
        if not 0 <= self.first_sequence < 1 << 64:
            raise ValueError(f"SoupClientConfig.first_sequence out of range: "
                             f"{self.first_sequence}")


@dataclasses.dataclass(frozen=True)
class SoupNotice:
    kind: SoupNoticeKind
    first: int
    count: int
    now_ns: int


Payload = tuple[int, bytes, int]  # (sequence, 0 for unsequenced; payload; now_ns received)


class SoupClient:
    """One SoupBinTCP client session; see the module docstring."""

    def __init__(self, config: SoupClientConfig) -> None:
        self.config = config
        c = config
        self._core = _core.SoupClient(
            _login_field(c.username, 6, "username"), _login_field(c.password, 10, "password"),
            _login_field(c.session, 10, "session"), c.first_sequence, c.heartbeat_interval_ns,
            c.server_timeout_ns, c.max_packet_length)

    def __repr__(self) -> str:
        return (f"SoupClient(username={self.config.username!r}, state={self.state.label}, "
                f"next_sequence={self.next_sequence})")

    def native(self) -> Any:
        """The C++ session (a capsule), for a C++ loop that reads its connection while it is
        logged in (lockstep.live.node); valid while this object lives."""
        return self._core.native()

    def connected(self, now_ns: int) -> bytes:
        """A new connection is up: the Login Request to send on it."""
        return self._core.connected(now_ns)

    def receive(self, chunk: bytes, now_ns: int) -> list[Payload]:
        """The payloads this chunk completes, in order. Bad bytes never raise: they fail the
        session (`state` FAILED, a PROTOCOL_ERROR or UNEXPECTED_PACKET notice with the stream
        offset); drop the connection then."""
        payloads, _ = self._core.receive(chunk, now_ns)
        return payloads

    def poll(self, now_ns: int) -> bytes:
        """A Client Heartbeat when one is due, else b""; a server silent for server_timeout_ns
        fails the session (a SERVER_TIMEOUT notice)."""
        return self._core.poll(now_ns)

    def send_data(self, payload: bytes, now_ns: int) -> bytes:
        """The Unsequenced Data packet carrying `payload`; InvalidArgumentError unless logged
        in."""
        status, packet = self._core.send_data(payload, now_ns)
        check_status(status, f"Unsequenced Data of {len(payload)} bytes in state "
                             f"{self.state.label}")
        return packet

    def logout(self, now_ns: int) -> bytes:
        """The Logout Request; the session is over on this connection."""
        return self._core.logout(now_ns)

    def disconnected(self) -> None:
        """The connection is gone: the next connected() logs in from next_sequence."""
        self._core.disconnected()

    def notices(self) -> list[SoupNotice]:
        return [SoupNotice(SoupNoticeKind(k), first, count, now)
                for k, first, count, now in self._core.notices()]

    @property
    def state(self) -> SoupClientState:
        return SoupClientState(self._core.state)

    @property
    def session(self) -> str:
        """The session the last login was accepted into (the configured one before that)."""
        return text_from_wire(self._core.session)

    @property
    def reject_reason(self) -> LoginRejectReason | None:
        """Why the login was rejected (state REJECTED), else None."""
        if self.state is not SoupClientState.REJECTED:
            return None
        return LoginRejectReason(self._core.reject_reason)

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._core.counters)

    next_sequence = forwarded("next_sequence", "The number after the last sequenced message "
                                               "delivered: what the next login asks for.")
    heartbeat_due_ns = forwarded("heartbeat_due_ns", "When poll() will next have a heartbeat to "
                                                     "send, if nothing is sent before.")
    timeout_due_ns = forwarded("timeout_due_ns", "When a silent server will be given up.")


__all__ = ["HEARTBEAT_INTERVAL_NS", "SERVER_TIMEOUT_NS", "Payload", "SoupClient",
           "SoupClientConfig", "SoupNotice"]
