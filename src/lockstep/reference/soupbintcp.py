"""Reference SoupBinTCP 4.1 codec: lockstep.protocols.soupbintcp's API and results, with struct
and a bytearray for the framer."""
from __future__ import annotations

import struct

from lockstep.enums import LoginRejectReason, SoupPacketType, Status, WireProblem
from lockstep.errors import ProtocolError, check_status
from lockstep.protocols import soupbintcp as api
from lockstep.protocols.fields import text_to_wire

# Payload length by type; None: any length.
_PAYLOAD = {SoupPacketType.LOGIN_REQUEST: 46, SoupPacketType.LOGIN_ACCEPTED: 30,
            SoupPacketType.LOGIN_REJECTED: 1, SoupPacketType.SERVER_HEARTBEAT: 0,
            SoupPacketType.CLIENT_HEARTBEAT: 0, SoupPacketType.END_OF_SESSION: 0,
            SoupPacketType.LOGOUT_REQUEST: 0, SoupPacketType.SEQUENCED_DATA: None,
            SoupPacketType.UNSEQUENCED_DATA: None, SoupPacketType.DEBUG: None}
_WHAT = "SoupBinTCP packet"


def _alpha(value: str, width: int, what: str) -> bytes:
    raw = text_to_wire(value, what)
    if len(raw) > width:
        raise ValueError(f"{what}: {len(raw)} bytes do not fit {width}")
    return raw.ljust(width, b" ")


def _number(value: int) -> bytes:
    if not 0 <= value < 1 << 64:
        raise OverflowError(f"sequence {value} does not fit 8 unsigned bytes")
    return str(value).rjust(20).encode("ascii")


def _packet(kind: SoupPacketType, payload: bytes) -> bytes:
    if len(payload) > 0xFFFE:
        check_status(Status.INVALID_ARGUMENT, f"SoupBinTCP packet of {len(payload)} bytes")
    return struct.pack(">HB", len(payload) + 1, kind) + payload


def encode(packet: api.SoupPacket) -> bytes:
    kind = api.packet_type(packet)
    if isinstance(packet, api.LoginRequest):
        return _packet(kind, _alpha(packet.username, 6, "username")
                       + _alpha(packet.password, 10, "password")
                       + _alpha(packet.session, 10, "session") + _number(packet.sequence))
    if isinstance(packet, api.LoginAccepted):
        return _packet(kind, _alpha(packet.session, 10, "session") + _number(packet.sequence))
    if isinstance(packet, api.LoginRejected):
        return _packet(kind, bytes([LoginRejectReason(packet.reason)]))
    if isinstance(packet, (api.SequencedData, api.UnsequencedData)):
        return _packet(kind, bytes(packet.payload))
    if isinstance(packet, api.Debug):
        return _packet(kind, bytes(packet.text))
    return _packet(kind, b"")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip(" ")


def _parse_number(raw: bytes, offset: int) -> int:
    digits = raw.strip(b" ")
    if not digits or not digits.isdigit() or int(digits) >= 1 << 64:
        raise ProtocolError(WireProblem.BAD_FIELD, offset, _WHAT)
    return int(digits)


def decode(data: bytes) -> api.SoupPacket:
    data = bytes(data)
    if len(data) < 3:
        raise ProtocolError(WireProblem.TRUNCATED, len(data), _WHAT)
    (length,) = struct.unpack_from(">H", data)
    if length + 2 != len(data):
        raise ProtocolError(WireProblem.BAD_LENGTH, 0, _WHAT)
    try:
        kind = SoupPacketType(data[2])
    except ValueError:
        raise ProtocolError(WireProblem.UNKNOWN_TYPE, 2, _WHAT) from None
    payload = data[3:]
    want = _PAYLOAD[kind]
    if want is not None and want != len(payload):
        raise ProtocolError(WireProblem.BAD_LENGTH, 0, _WHAT)
    if kind is SoupPacketType.LOGIN_REQUEST:
        return api.LoginRequest(_text(payload[:6]), _text(payload[6:16]), _text(payload[16:26]),
                                _parse_number(payload[26:], 29))
    if kind is SoupPacketType.LOGIN_ACCEPTED:
        return api.LoginAccepted(_text(payload[:10]), _parse_number(payload[10:], 13))
    if kind is SoupPacketType.LOGIN_REJECTED:
        try:
            return api.LoginRejected(LoginRejectReason(payload[0]))
        except ValueError:
            raise ProtocolError(WireProblem.BAD_FIELD, 3, _WHAT) from None
    cls = api.CLASSES[kind]
    if cls in (api.SequencedData, api.UnsequencedData, api.Debug):
        return cls(payload)
    return cls()


class Framer:
    def __init__(self, max_packet_length: int = api.DEFAULT_MAX_PACKET_LENGTH) -> None:
        if not 1 <= max_packet_length <= 0xFFFF:
            raise ValueError(f"max_packet_length must be 1 to 65535, not {max_packet_length}")
        self._max = max_packet_length
        self._buffer = bytearray()
        self._offset = 0
        self.error: ProtocolError | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        self._buffer += chunk
        out = []
        while len(self._buffer) >= 2:
            (n,) = struct.unpack_from(">H", self._buffer)
            if n == 0 or n > self._max:
                problem = WireProblem.BAD_LENGTH if n == 0 else WireProblem.OVERSIZED
                self.error = ProtocolError(problem, self._offset, "SoupBinTCP stream")
                break
            if len(self._buffer) < 2 + n:
                break
            out.append(bytes(self._buffer[:2 + n]))
            del self._buffer[:2 + n]
            self._offset += 2 + n
        return out

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def buffered(self) -> int:
        return 0 if self.error is not None else len(self._buffer)
