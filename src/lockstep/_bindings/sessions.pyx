# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of the protocol session layer (include/lockstep/session/: mold_receiver.hpp,
soup_client.hpp, sink.hpp).

The public API is lockstep.protocols.mold_receiver and lockstep.protocols.soup_client. Messages
cross as (sequence, bytes, stamp) tuples, or, for a batch of datagrams, as the
[u16 length][message] stream the ITCH decoder reads with sequences and stamps in numpy arrays
(no Python object per message). Notices cross as (kind, first, count, stamp) tuples.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.pycapsule cimport PyCapsule_New
from cpython.pycapsule cimport PyCapsule_New
from libcpp.vector cimport vector

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.session.mold_receiver cimport (
    CMoldNotice, CMoldNoticeKind, CMoldReceiver, CMoldReceiverConfig,
)
from lockstep.includes.session.sink cimport CStreamSink
from lockstep.includes.session.soup_client cimport (
    CSoupClient, CSoupClientConfig, CSoupClientState, CSoupNotice, CSoupNoticeKind,
)

from lockstep.errors import check_status

ENUMERATORS = {
    "MoldNoticeKind": dict(
        SessionStarted=<int>CMoldNoticeKind.SessionStarted,
        SessionChanged=<int>CMoldNoticeKind.SessionChanged,
        GapDetected=<int>CMoldNoticeKind.GapDetected, GapRecovered=<int>CMoldNoticeKind.GapRecovered,
        GapAbandoned=<int>CMoldNoticeKind.GapAbandoned, EndOfSession=<int>CMoldNoticeKind.EndOfSession,
        HeartbeatTimeout=<int>CMoldNoticeKind.HeartbeatTimeout,
        FeedResumed=<int>CMoldNoticeKind.FeedResumed),
    "SoupClientState": dict(
        Disconnected=<int>CSoupClientState.Disconnected, LoggingIn=<int>CSoupClientState.LoggingIn,
        LoggedIn=<int>CSoupClientState.LoggedIn, Rejected=<int>CSoupClientState.Rejected,
        Ended=<int>CSoupClientState.Ended, LoggedOut=<int>CSoupClientState.LoggedOut,
        Failed=<int>CSoupClientState.Failed),
    "SoupNoticeKind": dict(
        LoginAccepted=<int>CSoupNoticeKind.LoginAccepted,
        LoginRejected=<int>CSoupNoticeKind.LoginRejected,
        SequenceGap=<int>CSoupNoticeKind.SequenceGap, EndOfSession=<int>CSoupNoticeKind.EndOfSession,
        ServerTimeout=<int>CSoupNoticeKind.ServerTimeout,
        ProtocolError=<int>CSoupNoticeKind.ProtocolError,
        UnexpectedPacket=<int>CSoupNoticeKind.UnexpectedPacket),
}

cdef uint8_t _EMPTY[1]


cdef inline const uint8_t* _ptr(const unsigned char[::1] data):
    return &data[0] if data.shape[0] else _EMPTY


cdef bytes _field(object value, size_t width, str what):
    if not isinstance(value, bytes) or len(value) > width:
        raise ValueError(f"{what}: expected at most {width} bytes")
    return value + b" " * (width - len(value))


cdef class _Collected:
    """A StreamSink over buffers of a given size, read back as (sequence, bytes, stamp) tuples."""
    cdef vector[uint8_t] stream
    cdef vector[uint64_t] sequences
    cdef vector[int64_t] stamps
    cdef CStreamSink sink

    cdef void reset(self, size_t capacity) noexcept:
        self.stream.resize(capacity + 2)
        self.sequences.resize(capacity // 2 + 1)
        self.stamps.resize(capacity // 2 + 1)
        self.sink.size = 0
        self.sink.messages = 0
        self.sink.overflow = 0
        self.sink.empty_skipped = 0
        self.sink.skip_empty = False
        self.sink.out = self.stream.data()
        self.sink.capacity = self.stream.size()
        self.sink.sequences = self.sequences.data()
        self.sink.stamps = self.stamps.data()
        self.sink.max_messages = self.sequences.size()

    cdef list messages(self):
        if self.sink.overflow:
            raise AssertionError("session sink sized too small")
        out = []
        cdef size_t i, pos = 0, n
        for i in range(self.sink.messages):
            n = (<size_t>self.stream[pos] << 8) | self.stream[pos + 1]
            out.append((self.sequences[i], bytes(self.stream.data()[pos + 2:pos + 2 + n]),
                        self.stamps[i]))
            pos += 2 + n
        return out


cdef CStreamSink _batch_sink(unsigned char[::1] out, uint64_t[::1] sequences,
                             int64_t[::1] stamps, bint skip_empty):
    cdef CStreamSink sink
    sink.size = 0
    sink.messages = 0
    sink.overflow = 0
    sink.empty_skipped = 0
    sink.out = &out[0] if out.shape[0] else NULL
    sink.capacity = out.shape[0]
    sink.sequences = &sequences[0] if sequences.shape[0] else NULL
    sink.stamps = &stamps[0] if stamps.shape[0] else NULL
    sink.max_messages = min(sequences.shape[0], stamps.shape[0])
    sink.skip_empty = skip_empty
    return sink


# --------------------------------------------------------------------------------------------
# MoldUDP64 receiver


cdef class MoldReceiver:
    """lockstep::session::MoldReceiver."""
    cdef CMoldReceiver core
    cdef _Collected collected

    def __cinit__(self, bytes session, uint64_t first_sequence, int64_t heartbeat_timeout_ns,
                  int64_t request_interval_ns, int64_t give_up_ns, uint16_t max_request_count,
                  uint32_t hold_packets, uint32_t hold_slot_bytes, uint64_t max_sequence_jump):
        cdef CMoldReceiverConfig c
        cdef bytes padded = _field(session, 10, "session")
        memcpy(c.session, <const char*>padded, 10)
        c.first_sequence = first_sequence
        c.heartbeat_timeout_ns = heartbeat_timeout_ns
        c.request_interval_ns = request_interval_ns
        c.give_up_ns = give_up_ns
        c.max_request_count = max_request_count
        c.hold_packets = hold_packets
        c.hold_slot_bytes = hold_slot_bytes
        c.max_sequence_jump = max_sequence_jump
        check_status(<int>self.core.init(c), "MoldUDP64 receiver config")
        self.collected = _Collected()

    def receive(self, const unsigned char[::1] datagram, int64_t stamp_ns):
        """(messages released as (sequence, bytes, stamp), problem, offset): problem 0 when the
        datagram was whole."""
        self.collected.reset(datagram.shape[0] + self.core.held_bytes())
        cdef CStatus st = self.core.on_packet(_ptr(datagram), datagram.shape[0], stamp_ns,
                                              self.collected.sink)
        problem = 0 if st == CStatus.Ok else <int>self.core.error().problem
        offset = 0 if st == CStatus.Ok else self.core.error().offset
        return self.collected.messages(), problem, offset

    def poll(self, int64_t now_ns):
        self.collected.reset(self.core.held_bytes())
        self.core.poll(now_ns, self.collected.sink)
        return self.collected.messages()

    def receive_batch(self, const unsigned char[:, ::1] data, const uint32_t[::1] lengths,
                      const int64_t[::1] stamps, size_t count, unsigned char[::1] out,
                      uint64_t[::1] sequences, int64_t[::1] out_stamps, bint skip_empty):
        """Datagrams 0..count-1 (rows of `data`, lengths[i] bytes, received at stamps[i]) without
        the GIL: (bytes written to out, messages, damaged datagrams)."""
        if count > <size_t>data.shape[0] or count > <size_t>lengths.shape[0] \
                or count > <size_t>stamps.shape[0]:
            raise ValueError(f"count {count} is more than the batch holds")
        cdef size_t i, need = self.core.held_bytes(), damaged = 0
        for i in range(count):
            if lengths[i] > <size_t>data.shape[1]:
                raise ValueError(f"datagram {i}: length {lengths[i]} is longer than its row")
            need += lengths[i]
        if <size_t>out.shape[0] < need or <size_t>min(sequences.shape[0], out_stamps.shape[0]) \
                < need // 2:
            raise ValueError(f"output buffers too small: {need} bytes, {need // 2} messages "
                             "needed")
        cdef CStreamSink sink = _batch_sink(out, sequences, out_stamps, skip_empty)
        with nogil:
            for i in range(count):
                if self.core.on_packet(&data[i, 0] if lengths[i] else _EMPTY, lengths[i],
                                       stamps[i], sink) != CStatus.Ok:
                    damaged += 1
        return sink.size, sink.messages, damaged

    def rewind(self, uint64_t sequence, int64_t stamp):
        return self.core.rewind(sequence, stamp)

    def take_request(self, int64_t now_ns):
        """The 20-byte retransmission request due now, or None."""
        cdef uint8_t out[20]
        cdef size_t n = self.core.take_request(now_ns, out, 20)
        return out[:n] if n else None

    def notices(self):
        cdef CMoldNotice n
        out = []
        while self.core.next_notice(n):
            out.append((<int>n.kind, n.first, n.count, n.stamp_ns))
        return out

    @property
    def counters(self):
        return self.core.counters()

    def native(self):
        """The C++ receiver in a capsule, for a C++ loop that drives it
        (lockstep._bindings.live_loop); valid while this object lives."""
        return PyCapsule_New(<void*>&self.core, b"lockstep::session::MoldReceiver", NULL)

    @property
    def expected(self):
        return self.core.expected()

    @property
    def highest(self):
        return self.core.highest()

    @property
    def gap_open(self):
        return self.core.gap_open()

    @property
    def ended(self):
        return self.core.ended()

    @property
    def timed_out(self):
        return self.core.timed_out()

    @property
    def session(self):
        """The session followed (10 bytes, padded), or None before the first."""
        return self.core.session()[:10] if self.core.has_session() else None

    @property
    def held(self):
        return self.core.held()

    @property
    def held_bytes(self):
        return self.core.held_bytes()


# --------------------------------------------------------------------------------------------
# SoupBinTCP client


cdef class SoupClient:
    """lockstep::session::SoupClient. The password is written into the core's config and never
    read back."""
    cdef CSoupClient core
    cdef _Collected collected
    cdef uint16_t max_packet_length

    def __cinit__(self, bytes username, bytes password, bytes session, uint64_t first_sequence,
                  int64_t heartbeat_interval_ns, int64_t server_timeout_ns,
                  uint16_t max_packet_length):
        cdef CSoupClientConfig c
        cdef bytes u = _field(username, 6, "username")
        cdef bytes w = _field(password, 10, "password")
        cdef bytes s = _field(session, 10, "session")
        memcpy(c.username, <const char*>u, 6)
        memcpy(c.password, <const char*>w, 10)
        memcpy(c.session, <const char*>s, 10)
        c.first_sequence = first_sequence
        c.heartbeat_interval_ns = heartbeat_interval_ns
        c.server_timeout_ns = server_timeout_ns
        c.max_packet_length = max_packet_length
        check_status(<int>self.core.init(c), "SoupBinTCP client config")
        self.max_packet_length = max_packet_length
        self.collected = _Collected()

    def connected(self, int64_t now_ns):
        cdef uint8_t out[64]
        cdef size_t written = 0
        check_status(<int>self.core.connected(now_ns, out, 64, &written), "login request")
        return out[:written]

    def receive(self, const unsigned char[::1] chunk, int64_t now_ns):
        """(payloads as (sequence or 0, bytes, stamp), failed: bool)."""
        self.collected.reset(chunk.shape[0] + self.max_packet_length + 2)
        cdef CStatus st = self.core.on_bytes(_ptr(chunk), chunk.shape[0], now_ns,
                                             self.collected.sink)
        return self.collected.messages(), st != CStatus.Ok

    def poll(self, int64_t now_ns):
        cdef uint8_t out[8]
        cdef size_t n = self.core.poll(now_ns, out, 8)
        return out[:n]

    def send_data(self, const unsigned char[::1] payload, int64_t now_ns):
        cdef size_t n = payload.shape[0]
        cdef bytearray out = bytearray(n + 3)
        cdef size_t written = 0
        cdef CStatus st = self.core.send_data(_ptr(payload), n, now_ns, out, n + 3, &written)
        return (<int>st, bytes(out[:written]))

    def logout(self, int64_t now_ns):
        cdef uint8_t out[8]
        cdef size_t written = 0
        check_status(<int>self.core.logout(now_ns, out, 8, &written), "logout request")
        return out[:written]

    def disconnected(self):
        self.core.disconnected()

    def notices(self):
        cdef CSoupNotice n
        out = []
        while self.core.next_notice(n):
            out.append((<int>n.kind, n.first, n.count, n.now_ns))
        return out

    def native(self):
        """The C++ session in a capsule, for a C++ loop that reads its connection
        (lockstep._bindings.live_loop); valid while this object lives."""
        return PyCapsule_New(<void*>&self.core, b"lockstep::session::SoupClient", NULL)

    @property
    def state(self):
        return <int>self.core.state()

    @property
    def next_sequence(self):
        return self.core.next_sequence()

    @property
    def session(self):
        return self.core.session()[:10]

    @property
    def reject_reason(self):
        return <int>self.core.reject_reason()

    @property
    def counters(self):
        return self.core.counters()

    @property
    def heartbeat_due_ns(self):
        return self.core.heartbeat_due_ns()

    @property
    def timeout_due_ns(self):
        return self.core.timeout_due_ns()
