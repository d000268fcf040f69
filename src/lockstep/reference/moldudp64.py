"""Reference MoldUDP64 codec: lockstep.protocols.moldudp64's API and results, with struct."""
from __future__ import annotations

import struct
from collections.abc import Sequence

from lockstep.enums import Status, WireProblem
from lockstep.errors import ProtocolError, check_status
from lockstep.protocols import moldudp64 as api
from lockstep.protocols.fields import text_from_wire, text_to_wire

_HEADER = struct.Struct(">10sQH")


def _header(session: str, sequence: int, count: int) -> bytes:
    raw = text_to_wire(session, "session")
    if len(raw) > api.SESSION_LENGTH:
        raise ValueError(f"session: {len(raw)} bytes do not fit 10")
    if not 0 <= sequence < 1 << 64:
        raise OverflowError(f"sequence {sequence} does not fit 8 unsigned bytes")
    return _HEADER.pack(raw.ljust(api.SESSION_LENGTH, b" "), sequence, count)


def encode_packet(session: str, sequence: int, messages: Sequence[bytes],
                  capacity: int) -> tuple[bytes, int]:
    if capacity < api.HEADER_LENGTH:
        check_status(Status.INVALID_ARGUMENT, f"MoldUDP64 packet of capacity {capacity}")
    blocks = b""
    taken = 0
    for message in messages:
        if len(message) > 0xFFFF:
            check_status(Status.INVALID_ARGUMENT, f"MoldUDP64 message of {len(message)} bytes")
        block = struct.pack(">H", len(message)) + bytes(message)
        if api.HEADER_LENGTH + len(blocks) + len(block) > capacity or taken == 0xFFFE:
            break
        blocks += block
        taken += 1
    return _header(session, sequence, taken) + blocks, taken


def encode_heartbeat(session: str, next_sequence: int) -> bytes:
    return _header(session, next_sequence, api.HEARTBEAT_COUNT)


def encode_end_of_session(session: str, next_sequence: int) -> bytes:
    return _header(session, next_sequence, api.END_OF_SESSION_COUNT)


def encode_request(request: api.RetransmissionRequest) -> bytes:
    return _header(request.session, request.sequence, request.count)


def _walk(data: bytes) -> tuple[str, int, int, list[tuple[int, bytes]], WireProblem, int]:
    """(session, sequence, count, [(offset, message)] of the whole blocks, problem, offset)."""
    if len(data) < api.HEADER_LENGTH:
        raise ProtocolError(WireProblem.TRUNCATED, len(data), "MoldUDP64 packet")
    session, sequence, count = _HEADER.unpack_from(data)
    blocks: list[tuple[int, bytes]] = []
    pos = api.HEADER_LENGTH
    for _ in range(0 if count == api.END_OF_SESSION_COUNT else count):
        if len(data) - pos < 2:
            return text_from_wire(session), sequence, count, blocks, WireProblem.TRUNCATED, pos
        (n,) = struct.unpack_from(">H", data, pos)
        if len(data) - pos - 2 < n:
            return text_from_wire(session), sequence, count, blocks, WireProblem.OVERSIZED, pos
        blocks.append((pos, data[pos + 2:pos + 2 + n]))
        pos += 2 + n
    if pos != len(data):
        return text_from_wire(session), sequence, count, blocks, WireProblem.TRAILING_BYTES, pos
    return text_from_wire(session), sequence, count, blocks, WireProblem.NONE, 0


def read_packet(data: bytes) -> api.MoldPacket:
    session, sequence, count, blocks, problem, offset = _walk(bytes(data))
    return api.MoldPacket(session, sequence, count, tuple(m for _, m in blocks), problem, offset)


def decode_request(data: bytes) -> api.RetransmissionRequest:
    data = bytes(data)
    what = "MoldUDP64 retransmission request"
    if len(data) < 20:
        raise ProtocolError(WireProblem.TRUNCATED, len(data), what)
    if len(data) > 20:
        raise ProtocolError(WireProblem.TRAILING_BYTES, 20, what)
    session, sequence, count = _HEADER.unpack(data)
    if count in (0, api.END_OF_SESSION_COUNT):
        raise ProtocolError(WireProblem.BAD_FIELD, 18, what)
    return api.RetransmissionRequest(text_from_wire(session), sequence, count)


def gather_blocks(data: bytes, lengths: Sequence[int]) -> api.Gathered:
    data = bytes(data)
    stream = bytearray()
    messages = 0
    problems = []
    pos = 0
    for length in lengths:
        if length < 0 or length > len(data) - pos:
            raise ValueError(f"length {length} runs past the data")
        datagram = data[pos:pos + length]
        pos += length
        try:
            *_, blocks, problem, offset = _walk(datagram)
        except ProtocolError as e:
            problems.append((e.problem, e.offset))
            continue
        for at, message in blocks:
            if message:
                stream += datagram[at:at + 2 + len(message)]
                messages += 1
        problems.append((problem, offset))
    return api.Gathered(bytes(stream), messages, tuple(problems))
