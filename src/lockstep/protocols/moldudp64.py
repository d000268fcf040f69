"""MoldUDP64 packets (include/lockstep/codecs/moldudp64.hpp).

    packet, taken = encode_packet("SESSION001", 1, messages, capacity=1400)
    read_packet(packet)   # -> MoldPacket(session, sequence, count, messages, problem, ...)

A packet is a 20-byte header (session 10, sequence 8, count 2) and `count` message blocks (a
2-byte length and the message); block i has sequence + i. Count 0 is a heartbeat, 0xFFFF the end
of the session; a retransmission request has the header's layout (session, first sequence,
count). `gather_blocks` turns datagrams into the [u16 length][message] stream the ITCH decoder
reads (lockstep.data.importers.itch), which is how ITCH over MoldUDP64 is decoded.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lockstep._bindings import protocols as _codec
from lockstep.enums import WireProblem
from lockstep.protocols.fields import text_from_wire, text_to_wire

HEADER_LENGTH = 20
SESSION_LENGTH = 10
HEARTBEAT_COUNT = 0
END_OF_SESSION_COUNT = 0xFFFF


@dataclasses.dataclass(frozen=True)
class MoldPacket:
    """A datagram read: its header, the whole blocks before any damage, and the damage
    (`problem` NONE when the datagram is exactly its header and `count` blocks)."""

    session: str
    sequence: int
    count: int
    messages: tuple[bytes, ...]
    problem: WireProblem = WireProblem.NONE
    problem_offset: int = 0

    @property
    def heartbeat(self) -> bool:
        return self.count == HEARTBEAT_COUNT

    @property
    def end_of_session(self) -> bool:
        return self.count == END_OF_SESSION_COUNT


@dataclasses.dataclass(frozen=True)
class RetransmissionRequest:
    session: str
    sequence: int  # the first sequence number wanted
    count: int  # how many messages, 1 to 65534


@dataclasses.dataclass(frozen=True)
class Gathered:
    """gather_blocks' result: the [u16 length][message] stream of the whole blocks, how many
    messages it holds, and per datagram the problem and its offset (NONE, 0 when whole)."""

    stream: bytes
    messages: int
    problems: tuple[tuple[WireProblem, int], ...]


def _session(session: str) -> bytes:
    return text_to_wire(session, "session")


def encode_packet(session: str, sequence: int, messages: Sequence[bytes],
                  capacity: int) -> tuple[bytes, int]:
    """A packet of the first messages that fit `capacity` bytes: (packet, how many it took)."""
    return _codec.mold_encode_packet(_session(session), sequence, list(messages), capacity)


def encode_heartbeat(session: str, next_sequence: int) -> bytes:
    return _codec.mold_encode_header_only(_session(session), next_sequence, HEARTBEAT_COUNT)


def encode_end_of_session(session: str, next_sequence: int) -> bytes:
    return _codec.mold_encode_header_only(_session(session), next_sequence, END_OF_SESSION_COUNT)


def encode_request(request: RetransmissionRequest) -> bytes:
    return _codec.mold_encode_header_only(_session(request.session), request.sequence,
                                          request.count)


def read_packet(data: bytes) -> MoldPacket:
    """The packet in one datagram; ProtocolError (TRUNCATED) if it is shorter than a header."""
    session, sequence, count, messages, problem, offset = _codec.mold_decode_packet(data)
    return MoldPacket(text_from_wire(session), sequence, count, tuple(messages),
                      WireProblem(problem), offset)


def decode_request(data: bytes) -> RetransmissionRequest:
    """A retransmission request: exactly 20 bytes asking for 1 to 65534 messages."""
    session, sequence, count = _codec.mold_decode_request(data)
    return RetransmissionRequest(text_from_wire(session), sequence, count)


def gather_blocks(data: bytes, lengths: Sequence[int]) -> Gathered:
    """The whole blocks of the datagrams in `data` (back to back, of `lengths` bytes each) as
    one [u16 length][message] stream; empty blocks are left out."""
    lengths_array = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(data), dtype=np.uint8)
    problem = np.zeros(len(lengths_array), dtype=np.uint8)
    offset = np.zeros(len(lengths_array), dtype=np.int64)
    written, messages = _codec.mold_gather(data, lengths_array, out, problem, offset)
    return Gathered(out[:written].tobytes(), messages,
                    tuple((WireProblem(p), int(o)) for p, o in zip(problem, offset)))


__all__ = [
    "END_OF_SESSION_COUNT", "HEADER_LENGTH", "HEARTBEAT_COUNT", "SESSION_LENGTH", "Gathered",
    "MoldPacket", "RetransmissionRequest", "decode_request", "encode_end_of_session",
    "encode_heartbeat", "encode_packet", "encode_request", "gather_blocks", "read_packet",
]
