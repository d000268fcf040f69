"""SoupBinTCP 4.1 packets and the stream framer (include/lockstep/codecs/soupbintcp.hpp).

    data = encode(LoginRequest(username="ALICE", password="secret", session="", sequence=1))
    framer = Framer()
    for packet in framer.feed(chunk_from_tcp):   # whole packets, however TCP cut the stream
        message = decode(packet)
    if framer.error: ...                          # a ProtocolError: drop the connection

A packet is a 2-byte length (of what follows), a type byte and the payload. Login fields are
ASCII: username, password and session left-justified and space-padded, sequence numbers as
decimal digits right-justified and space-padded. A session of "" (all spaces) asks for the
session currently active; sequence 0 asks to start from the newest message.
"""
from __future__ import annotations

import dataclasses

from lockstep._bindings import protocols as _codec
from lockstep.enums import LoginRejectReason, SoupPacketType, WireProblem
from lockstep.errors import ProtocolError
from lockstep.protocols.fields import text_to_wire

#: Far above OUCH 4.2's longest message (80 bytes) and the short texts of debug packets.
DEFAULT_MAX_PACKET_LENGTH = 2048
_frozen = dataclasses.dataclass(frozen=True)


@_frozen
class LoginRequest:
    username: str
    password: str
    session: str  # "" for the session currently active
    sequence: int  # the next sequence number wanted; 0 to start from the newest


@_frozen
class LoginAccepted:
    session: str
    sequence: int  # the sequence number of the next sequenced packet


@_frozen
class LoginRejected:
    reason: LoginRejectReason


@_frozen
class SequencedData:
    payload: bytes


@_frozen
class UnsequencedData:
    payload: bytes


@_frozen
class Debug:
    text: bytes


@_frozen
class ServerHeartbeat:
    pass


@_frozen
class ClientHeartbeat:
    pass


@_frozen
class EndOfSession:
    pass


@_frozen
class LogoutRequest:
    pass


SoupPacket = (LoginRequest | LoginAccepted | LoginRejected | SequencedData | UnsequencedData
              | Debug | ServerHeartbeat | ClientHeartbeat | EndOfSession | LogoutRequest)

#: The packet class of each type, and the type of each class.
CLASSES: dict[SoupPacketType, type] = {
    SoupPacketType.LOGIN_REQUEST: LoginRequest, SoupPacketType.LOGIN_ACCEPTED: LoginAccepted,
    SoupPacketType.LOGIN_REJECTED: LoginRejected, SoupPacketType.SEQUENCED_DATA: SequencedData,
    SoupPacketType.UNSEQUENCED_DATA: UnsequencedData, SoupPacketType.DEBUG: Debug,
    SoupPacketType.SERVER_HEARTBEAT: ServerHeartbeat,
    SoupPacketType.CLIENT_HEARTBEAT: ClientHeartbeat, SoupPacketType.END_OF_SESSION: EndOfSession,
    SoupPacketType.LOGOUT_REQUEST: LogoutRequest,
}
TYPES: dict[type, SoupPacketType] = {cls: t for t, cls in CLASSES.items()}

# The packets whose payload is their one bytes field.
_RAW = {SequencedData: "payload", UnsequencedData: "payload", Debug: "text"}


def packet_type(packet: SoupPacket) -> SoupPacketType:
    try:
        return TYPES[type(packet)]
    except KeyError:
        raise TypeError(f"not a SoupBinTCP packet: {type(packet).__name__}") from None


def encode(packet: SoupPacket) -> bytes:
    """The packet's bytes, length prefix included."""
    kind = packet_type(packet)
    if isinstance(packet, LoginRequest):
        return _codec.soup_encode_login_request(
            text_to_wire(packet.username, "username"), text_to_wire(packet.password, "password"),
            text_to_wire(packet.session, "session"), packet.sequence)
    if isinstance(packet, LoginAccepted):
        return _codec.soup_encode_login_accepted(text_to_wire(packet.session, "session"),
                                                 packet.sequence)
    if isinstance(packet, LoginRejected):
        return _codec.soup_encode_login_rejected(LoginRejectReason(packet.reason))
    field = _RAW.get(type(packet))
    return _codec.soup_encode(kind, getattr(packet, field) if field else b"")


def _login_text(raw: bytes) -> str:
    # Peers pad either side (the specification's own wording differs by field): spaces are
    # padding wherever they are.
    return raw.decode("latin-1").strip(" ")


def decode(data: bytes) -> SoupPacket:
    """One whole packet (length prefix included); ProtocolError if the bytes are not one."""
    type_byte, payload, fields = _codec.soup_decode(data)
    kind = SoupPacketType(type_byte)
    if kind is SoupPacketType.LOGIN_REQUEST:
        username, password, session, sequence = fields
        return LoginRequest(_login_text(username), _login_text(password), _login_text(session),
                            sequence)
    if kind is SoupPacketType.LOGIN_ACCEPTED:
        return LoginAccepted(_login_text(fields[0]), fields[1])
    if kind is SoupPacketType.LOGIN_REJECTED:
        return LoginRejected(LoginRejectReason(fields[0]))
    cls = CLASSES[kind]
    return cls(payload) if cls in _RAW else cls()


class Framer:
    """Whole packets out of a TCP byte stream cut anywhere, each at most `max_packet_length`
    bytes after its length prefix. A length prefix of 0 or above the maximum cannot be resynced
    past: `error` holds a ProtocolError (offset: of that prefix in the stream) and no packet comes
    after it."""

    def __init__(self, max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH) -> None:
        if not 1 <= max_packet_length <= 0xFFFF:
            raise ValueError(f"max_packet_length must be 1 to 65535, not {max_packet_length}")
        self._core = _codec.SoupFramer(max_packet_length)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The packets (length prefix included) this chunk completes."""
        return self._core.feed(chunk)

    @property
    def error(self) -> ProtocolError | None:
        found = self._core.problem
        if found is None:
            return None
        return ProtocolError(WireProblem(found[0]), found[1], "SoupBinTCP stream")

    @property
    def offset(self) -> int:
        """The stream offset of the next packet."""
        return self._core.offset

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held for the next chunk."""
        return self._core.buffered


__all__ = [
    "CLASSES", "DEFAULT_MAX_PACKET_LENGTH", "TYPES", "ClientHeartbeat", "Debug", "EndOfSession",
    "Framer", "LoginAccepted", "LoginRejected", "LoginRequest", "LogoutRequest",
    "SequencedData", "ServerHeartbeat", "SoupPacket", "UnsequencedData", "decode", "encode",
    "packet_type",
]
