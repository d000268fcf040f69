"""A MoldUDP64 session as a receiver sees it (include/lockstep/session/mold_receiver.hpp).

    receiver = MoldReceiver(MoldReceiverConfig())
    for sequence, message, stamp in receiver.receive(datagram, stamp_ns): ...
    request = receiver.take_request(now_ns)      # a RetransmissionRequest when one is due
    if request: retransmit_socket.send_to(moldudp64.encode_request(request), server)
    receiver.poll(now_ns)                        # time passing without datagrams
    for notice in receiver.notices(): ...        # gaps, abandoned ranges, session changes, ...

No socket and no clock: time is only the stamps and `now_ns` values the caller passes (receive
stamps from lockstep.net.UdpSocket). Messages come out exactly once and in sequence order;
datagrams ahead of a gap are held (bounded) until it is filled by a retransmission, or
abandoned after `give_up_ns` without progress (a GAP_ABANDONED notice with the range: mark the
book invalid). `receive_batch` runs a whole UdpSocket batch without the GIL and writes the
[u16 length][message] stream the ITCH decoder reads. docs/protocols.md says what it decides
where the specification is open.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lockstep._bindings import sessions as _core
from lockstep.checks import i64, u64
from lockstep.enums import MoldNoticeKind, WireProblem
from lockstep.errors import ProtocolError
from lockstep.protocols.fields import forwarded, text_from_wire, text_to_wire
from lockstep.protocols.moldudp64 import RetransmissionRequest, decode_request

#: The field's limit: a request count of 0xFFFF would read as end of session.
MAX_REQUEST_COUNT = 0xFFFE


@dataclasses.dataclass(frozen=True)
class MoldReceiverConfig:
    """How a receiver follows a session. `session` "" follows the first session seen (and the
    next one when it changes); a name ignores every other. `first_sequence` 0 starts at the
    first datagram seen instead of requesting everything from 1."""

    session: str = ""
    first_sequence: int = 1
    heartbeat_timeout_ns: int = 3_000_000_000
    request_interval_ns: int = 250_000_000
    give_up_ns: int = 2_000_000_000
    max_request_count: int = MAX_REQUEST_COUNT
    hold_packets: int = 1024
    hold_slot_bytes: int = 2048
    max_sequence_jump: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("heartbeat_timeout_ns", "request_interval_ns", "give_up_ns"):
            if not 0 < getattr(self, name) < 1 << 63:
                raise ValueError(f"MoldReceiverConfig.{name} must be a positive number of ns, "
                                 f"not {getattr(self, name)}")
        if not 1 <= self.max_request_count <= MAX_REQUEST_COUNT:
            raise ValueError(f"MoldReceiverConfig.max_request_count must be 1 to "
                             f"{MAX_REQUEST_COUNT}, not {self.max_request_count}")
        if not 20 <= self.hold_slot_bytes <= 0xFFFF:
            raise ValueError(f"MoldReceiverConfig.hold_slot_bytes must be 20 to 65535, not "
                             f"{self.hold_slot_bytes}")
        for name, bits in (("hold_packets", 32), ("first_sequence", 64),
                           ("max_sequence_jump", 64)):
            if not 0 <= getattr(self, name) < 1 << bits:
                raise ValueError(f"MoldReceiverConfig.{name} out of range: {getattr(self, name)}")
        if len(text_to_wire(self.session, "MoldReceiverConfig.session")) > 10:
            raise ValueError(f"MoldReceiverConfig.session {self.session!r} is longer than 10")


@dataclasses.dataclass(frozen=True)
class MoldNotice:
    kind: MoldNoticeKind
    first: int
    count: int
    stamp_ns: int


Message = tuple[int, bytes, int]  # (sequence, message, receive stamp of its datagram)


class MoldReceiver:
    """One MoldUDP64 session seen by a receiver; see the module docstring."""

    def __init__(self, config: MoldReceiverConfig | None = None) -> None:
        c = config or MoldReceiverConfig()
        self.config = c
        self._core = _core.MoldReceiver(
            text_to_wire(c.session, "session"), c.first_sequence, c.heartbeat_timeout_ns,
            c.request_interval_ns, c.give_up_ns, c.max_request_count, c.hold_packets,
            c.hold_slot_bytes, c.max_sequence_jump)
        self.problem: ProtocolError | None = None

    def receive(self, datagram: bytes, stamp_ns: int) -> list[Message]:
        """The messages this datagram releases, in sequence order. A datagram shorter than a
        header or with damaged blocks is counted and its problem kept in `problem` (whole blocks
        before the damage still count); it never raises."""
        messages, problem, offset = self._core.receive(datagram, stamp_ns)
        self.problem = ProtocolError(WireProblem(problem), offset, "MoldUDP64 packet") \
            if problem else None
        return messages

    def receive_batch(self, data: np.ndarray, lengths: np.ndarray, stamps: np.ndarray,
                      count: int, out: np.ndarray, sequences: np.ndarray,
                      out_stamps: np.ndarray, *, skip_empty: bool = True) -> tuple[int, int]:
        """Datagrams 0..count-1 of a UdpSocket batch (its `data`, `length`, `stamp_ns`) in one
        call without the GIL: the released messages go to `out` as the [u16 length][message]
        stream the ITCH decoder reads, with their sequences and stamps in the two arrays.
        (bytes, messages) written. `out` must hold the batch's bytes plus `held_bytes`;
        ValueError otherwise. Empty messages are left out when `skip_empty` (ITCH has none)."""
        written, messages, _ = self._core.receive_batch(data, lengths, stamps, count, out,
                                                        sequences, out_stamps, skip_empty)
        return written, messages

    def poll(self, now_ns: int) -> list[Message]:
        """Time passing: gives up on a hole without progress for give_up_ns (the messages held
        behind it are released and returned) and notices a heartbeat timeout."""
        return self._core.poll(now_ns)

    def rewind(self, sequence: int, stamp_ns: int) -> bool:
        """Delivery goes back to `sequence`, below the next expected one (a book snapshot taken
        before it replaced what the messages since built): they are a hole like any other,
        requested again. False, and nothing changes, when `sequence` is not below the next
        expected one or no sequence is known yet."""
        return self._core.rewind(u64("sequence", sequence), i64("stamp_ns", stamp_ns))

    def take_request(self, now_ns: int) -> RetransmissionRequest | None:
        """The retransmission request due now (send it to the re-request server), or None."""
        raw = self._core.take_request(now_ns)
        return None if raw is None else decode_request(raw)

    def notices(self) -> list[MoldNotice]:
        """What was decided since the last call, oldest first (drain it after each batch)."""
        return [MoldNotice(MoldNoticeKind(k), first, count, stamp)
                for k, first, count, stamp in self._core.notices()]

    def native(self) -> Any:
        """The C++ receiver (a capsule), for a C++ loop that drives it (lockstep.live.node);
        valid while this object lives."""
        return self._core.native()

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._core.counters)

    @property
    def session(self) -> str | None:
        """The session followed, None before the first datagram of one."""
        raw = self._core.session
        return None if raw is None else text_from_wire(raw)

    expected = forwarded("expected", "The sequence number of the next message to deliver.")
    highest = forwarded("highest", "One past the highest sequence number any datagram announced.")
    gap_open = forwarded("gap_open", "Messages are missing before the highest announced.")
    ended = forwarded("ended", "An end of session was received.")
    timed_out = forwarded("timed_out", "No datagram for heartbeat_timeout_ns (until the next).")
    held = forwarded("held", "Datagrams held ahead of a gap.")
    held_bytes = forwarded("held_bytes", "Their bytes: what a poll or a batch may release.")


__all__ = ["MAX_REQUEST_COUNT", "Message", "MoldNotice", "MoldReceiver", "MoldReceiverConfig"]
