"""Reference MoldUDP64 receiver: lockstep.protocols.mold_receiver's API and decisions, in plain
Python over the reference codec (the same hold slots, in the same order, so that even forged
datagrams give the same deliveries)."""
from __future__ import annotations

import dataclasses

import numpy as np

from lockstep.enums import MoldNoticeKind, WireProblem
from lockstep.errors import ProtocolError
from lockstep.protocols import mold_receiver as api
from lockstep.protocols.fields import text_to_wire
from lockstep.protocols.moldudp64 import (
    END_OF_SESSION_COUNT,
    HEARTBEAT_COUNT,
    RetransmissionRequest,
)
from lockstep.reference.moldudp64 import _walk

_NOTICE_CAPACITY = 256
_COUNTERS = ("packets", "messages", "heartbeats", "end_of_session", "short_packets",
             "damaged_packets", "other_session", "implausible", "duplicate_packets",
             "duplicate_messages", "held_packets", "hold_refused", "held_discarded", "gaps",
             "gaps_recovered", "gaps_abandoned", "messages_abandoned", "requests",
             "messages_requested", "session_changes", "heartbeat_timeouts", "notices_lost")
_U64 = (1 << 64) - 1


@dataclasses.dataclass
class _Held:
    start: int
    whole: int
    datagram: bytes
    stamp: int


class MoldReceiver:
    def __init__(self, config: api.MoldReceiverConfig | None = None) -> None:
        self.config = c = config or api.MoldReceiverConfig()
        self._named = bool(text_to_wire(c.session, "session").strip(b" "))
        self._session: bytes = text_to_wire(c.session, "session").ljust(10, b" ")
        self._previous: bytes | None = None
        self._have_session = False
        self._slots: list[_Held | None] = [None] * c.hold_packets
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._notices: list[api.MoldNotice] = []
        self._started = False
        self._timed_out = False
        self._last_packet = 0
        self._hole_since = 0
        self._last_request = 0
        self._requested_end = 0
        self.problem: ProtocolError | None = None
        self._reset_sequence()

    # ---------------------------------------------------------------- the API

    def receive(self, datagram: bytes, stamp_ns: int) -> list[api.Message]:
        out: list[api.Message] = []
        self._count("packets")
        data = bytes(datagram)
        try:
            session, sequence, count, blocks, problem, offset = _walk(data)
        except ProtocolError as e:
            self._count("short_packets")
            self.problem = e
            return out
        self.problem = None
        if problem is not WireProblem.NONE:
            self._count("damaged_packets")
            self.problem = ProtocolError(problem, offset, "MoldUDP64 packet")
        raw_session = data[:10]
        if self._follows(raw_session, problem is WireProblem.NONE, stamp_ns):
            self._alive(stamp_ns)
            self._sequence_packet(data, sequence, count, len(blocks), stamp_ns, out)
            self._advance(stamp_ns, out)
        return out

    def receive_batch(self, data, lengths, stamps, count, out, sequences, out_stamps, *,
                      skip_empty=True) -> tuple[int, int]:
        need = self.held_bytes + sum(int(n) for n in lengths[:count])
        if len(out) < need or min(len(sequences), len(out_stamps)) < need // 2:
            raise ValueError(f"output buffers too small: {need} bytes, {need // 2} messages "
                             "needed")
        pos = written = 0
        for i in range(count):
            for sequence, message, stamp in self.receive(bytes(data[i, :lengths[i]]),
                                                         int(stamps[i])):
                if skip_empty and not message:
                    continue
                block = len(message).to_bytes(2, "big") + message
                out[pos:pos + len(block)] = np.frombuffer(block, np.uint8)
                pos += len(block)
                sequences[written] = sequence
                out_stamps[written] = stamp
                written += 1
        return pos, written

    def poll(self, now_ns: int) -> list[api.Message]:
        out: list[api.Message] = []
        if not self._started:
            self._started = True
            self._last_packet = now_ns
        self._advance(now_ns, out)
        return out

    def take_request(self, now_ns: int) -> RetransmissionRequest | None:
        if not self._gap_open or not self._have_session:
            return None
        end = self._hole_end()
        if end <= self._expected:
            return None
        due = (not self._requested or now_ns - self._last_request >= self.config.request_interval_ns
               or self._expected >= self._requested_end)
        if not due:
            return None
        count = min(end - self._expected, self.config.max_request_count)
        self._requested = True
        self._last_request = now_ns
        self._requested_end = self._expected + count
        self._count("requests")
        self._count("messages_requested", count)
        return RetransmissionRequest(self._session.decode("latin-1").rstrip(" "), self._expected,
                                     count)

    def notices(self) -> list[api.MoldNotice]:
        out, self._notices = self._notices, []
        return out

    counters = property(lambda self: dict(self._counters))
    expected = property(lambda self: self._expected)
    highest = property(lambda self: self._highest)
    gap_open = property(lambda self: self._gap_open)
    ended = property(lambda self: self._ended)
    timed_out = property(lambda self: self._timed_out)
    held = property(lambda self: sum(s is not None for s in self._slots))
    held_bytes = property(lambda self: sum(len(s.datagram) for s in self._slots if s is not None))

    @property
    def session(self) -> str | None:
        return self._session.decode("latin-1").rstrip(" ") if self._have_session else None

    # ---------------------------------------------------------------- decisions

    def _count(self, name: str, n: int = 1) -> None:
        self._counters[name] += n

    def _notice(self, kind: MoldNoticeKind, first: int, count: int, stamp: int) -> None:
        if len(self._notices) == _NOTICE_CAPACITY:
            self._count("notices_lost")
            return
        self._notices.append(api.MoldNotice(kind, first, count, stamp))

    def _reset_sequence(self) -> None:
        self._expected = self.config.first_sequence
        self._known = self.config.first_sequence != 0
        self._highest = self._expected
        self._gap_open = False
        self._gap_abandoned = False
        self._requested = False
        self._ended = False
        self._slots = [None] * len(self._slots)

    def _follows(self, session: bytes, whole: bool, stamp: int) -> bool:
        same = session == self._session
        if not self._have_session and (same if self._named else whole):
            self._session = session
            self._have_session = True
            self._notice(MoldNoticeKind.SESSION_STARTED, self._expected, 0, stamp)
            return True
        if same:
            return True
        if self._named or session == self._previous or not whole:
            self._count("other_session")
            return False
        if self._gap_open and self._hole_end() > self._expected:
            self._abandon(stamp)
        self._count("held_discarded", self.held)
        self._previous = self._session
        self._session = session
        self._count("session_changes")
        self._reset_sequence()
        self._notice(MoldNoticeKind.SESSION_CHANGED, self._expected, 0, stamp)
        return True

    def _alive(self, stamp: int) -> None:
        if not self._started or stamp > self._last_packet:
            self._last_packet = stamp
        self._started = True
        if self._timed_out:
            self._timed_out = False
            self._notice(MoldNoticeKind.FEED_RESUMED, self._expected, 0, stamp)

    def _sequence_packet(self, data: bytes, sequence: int, count: int, whole: int, stamp: int,
                         out: list) -> None:
        header_only = count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT)
        announced = 0 if header_only else count
        if sequence > _U64 - announced - 1 or (
                self._known and sequence > self._expected
                and sequence - self._expected > self.config.max_sequence_jump):
            self._count("implausible")
            return
        if not self._known:
            self._known = True
            self._expected = self._highest = sequence
        if header_only:
            if count == HEARTBEAT_COUNT:
                self._count("heartbeats")
            else:
                self._count("end_of_session")
                if not self._ended:
                    self._notice(MoldNoticeKind.END_OF_SESSION, sequence, 0, stamp)
                self._ended = True
            self._announce(sequence, stamp)
            return
        if whole == 0 or sequence > self._expected:
            self._announce(sequence + announced, stamp)
            if whole:
                self._hold(data, sequence, whole, stamp)
            return
        if sequence + whole <= self._expected:
            self._count("duplicate_packets")
            self._count("duplicate_messages", whole)
            self._announce(sequence + announced, stamp)
            return
        self._deliver(data, stamp, out)
        self._announce(sequence + announced, stamp)
        self._drain(out)
        self._settle(stamp)

    def rewind(self, sequence: int, stamp_ns: int) -> bool:
        if not self._known or not self._have_session or sequence == 0 or sequence >= self._expected:
            return False
        self._expected = sequence
        self._requested = False
        self._hole_since = stamp_ns
        if not self._gap_open:
            self._gap_open = True
            self._count("gaps")
            self._notice(MoldNoticeKind.GAP_DETECTED, sequence, self._highest - sequence, stamp_ns)
        self._gap_abandoned = False
        return True

    def _announce(self, end: int, stamp: int) -> None:
        self._highest = max(self._highest, end)
        if not self._gap_open and self._expected < self._highest:
            self._gap_open = True
            self._gap_abandoned = False
            self._requested = False
            self._hole_since = stamp
            self._count("gaps")
            self._notice(MoldNoticeKind.GAP_DETECTED, self._expected,
                         self._highest - self._expected, stamp)

    def _settle(self, stamp: int) -> None:
        if not self._gap_open or self._expected < self._highest:
            return
        self._gap_open = False
        if not self._gap_abandoned:
            self._count("gaps_recovered")
            self._notice(MoldNoticeKind.GAP_RECOVERED, self._expected, 0, stamp)

    def _deliver(self, data: bytes, stamp: int, out: list) -> None:
        _, sequence, _, blocks, _, _ = _walk(data)
        before = self._expected
        for i, (_, message) in enumerate(blocks):
            if sequence + i < self._expected:
                self._count("duplicate_messages")
                continue
            out.append((sequence + i, message, stamp))
            self._count("messages")
            self._expected = sequence + i + 1
        if self._gap_open and self._expected > before:
            self._hole_since = stamp

    def _hold(self, data: bytes, start: int, whole: int, stamp: int) -> None:
        free = None
        for i, s in enumerate(self._slots):
            if s is not None and s.start == start and s.whole >= whole:
                self._count("duplicate_packets")
                self._count("duplicate_messages", whole)
                return
            if s is None and free is None:
                free = i
        if free is None or len(data) > self.config.hold_slot_bytes:
            self._count("hold_refused")
            return
        self._slots[free] = _Held(start, whole, data, stamp)
        self._count("held_packets")

    def _drain(self, out: list) -> None:
        moved = True
        while moved and self.held:
            moved = False
            for i, s in enumerate(self._slots):
                if s is None or s.start > self._expected:
                    continue
                if s.start + s.whole > self._expected:
                    self._deliver(s.datagram, s.stamp, out)
                else:
                    self._count("duplicate_packets")
                    self._count("duplicate_messages", s.whole)
                self._slots[i] = None
                moved = True

    def _hole_end(self) -> int:
        starts = [s.start for s in self._slots
                  if s is not None and self._expected < s.start < self._highest]
        return min(starts, default=self._highest)

    def _abandon(self, stamp: int) -> None:
        end = self._hole_end()
        self._count("gaps_abandoned")
        self._count("messages_abandoned", end - self._expected)
        self._notice(MoldNoticeKind.GAP_ABANDONED, self._expected, end - self._expected, stamp)
        self._gap_abandoned = True
        self._expected = end
        self._requested = False
        self._hole_since = stamp

    def _advance(self, now: int, out: list) -> None:
        if self._gap_open and now - self._hole_since >= self.config.give_up_ns:
            self._abandon(now)
            self._drain(out)
            self._settle(now)
        if (self._started and not self._ended and not self._timed_out
                and now - self._last_packet >= self.config.heartbeat_timeout_ns):
            self._timed_out = True
            self._count("heartbeat_timeouts")
            self._notice(MoldNoticeKind.HEARTBEAT_TIMEOUT, self._expected,
                         now - self._last_packet, now)
