# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of include/lockstep/data/capture.hpp (the recorder's rings and writer thread) and
data/mold_capture.hpp (a MoldUDP64 receive batch through the session layer's receiver into a ring).

The public API is lockstep.data.recorder.capture and lockstep.data.recorder.moldudp64; this module
moves options, payloads and datagram batches across the boundary and releases the GIL while it
pushes and while the writer stops.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from lockstep.includes.base.clock cimport realtime_ns
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.capture cimport (
    CCaptureOptions, CCaptureWriter, CFsyncPolicy, CProducerStats, CWriterStats,
)
from lockstep.includes.data.mold_capture cimport CMoldCapture, CMoldVerdict
from lockstep.includes.session.mold_receiver cimport CMoldNotice, CMoldReceiver, CMoldReceiverConfig

ENUMERATORS = {
    "FsyncPolicy": {
        "Rotation": <int>CFsyncPolicy.Rotation, "Interval": <int>CFsyncPolicy.Interval,
        "Frame": <int>CFsyncPolicy.Frame,
    },
    "MoldVerdict": dict(
        Recorded=<int>CMoldVerdict.Recorded, Malformed=<int>CMoldVerdict.Malformed,
        WrongSource=<int>CMoldVerdict.WrongSource, WrongSession=<int>CMoldVerdict.WrongSession,
        Implausible=<int>CMoldVerdict.Implausible, Dropped=<int>CMoldVerdict.Dropped),
}

cdef uint8_t _EMPTY[1]


def clock_ns():
    """CLOCK_REALTIME in ns: the receive stamp of what has no kernel stamp."""
    return realtime_ns()


cdef class CaptureWriter:
    cdef CCaptureWriter _w
    cdef uint32_t _producers

    def __init__(self, str directory, str prefix, uint64_t first_sequence, bytes metadata,
                 uint64_t max_bytes, int64_t window_ns, int fsync, int64_t fsync_interval_ns,
                 size_t ring_bytes, uint32_t producers, uint32_t history_stream):
        if fsync not in ENUMERATORS["FsyncPolicy"].values():
            raise ValueError(f"unknown fsync policy {fsync}")
        cdef CCaptureOptions o
        o.directory = directory.encode()
        o.prefix = prefix.encode()
        o.first_sequence = first_sequence
        o.metadata = metadata
        o.max_bytes = max_bytes
        o.window_ns = window_ns
        o.fsync = <CFsyncPolicy>fsync
        o.fsync_interval_ns = fsync_interval_ns
        o.ring_bytes = ring_bytes
        o.producers = producers
        o.history_stream = history_stream
        if self._w.configure(o) != CStatus.Ok:
            raise ValueError("capture writer options out of range (ring_bytes a power of two "
                             ">= 4096, producers >= 1, max_bytes >= 1, intervals > 0)")
        self._producers = producers

    def start(self):
        self._w.start()

    def stop(self):
        with nogil:
            self._w.stop()

    cdef inline void _check_producer(self, uint32_t p) except *:
        if p >= self._producers:
            raise ValueError(f"producer {p} out of range ({self._producers})")

    def push(self, uint32_t producer, int64_t receive_ns, uint32_t stream_id, const uint8_t[::1] payload):
        """One frame into producer's ring; False when it was dropped (full ring, failed writer)."""
        self._check_producer(producer)
        cdef size_t n = payload.shape[0]
        cdef const uint8_t* p = &payload[0] if n else _EMPTY
        cdef bint ok
        with nogil:
            ok = self._w.push(producer, receive_ns, stream_id, p, <uint32_t>n)
        return ok

    def push_slots(self, uint32_t producer, uint32_t stream_id, const uint8_t[:, ::1] data,
                   const uint32_t[::1] length, const int64_t[::1] stamp_ns, const uint8_t[::1] keep,
                   size_t n):
        """Rows 0..n of a receive batch (keep None: all, else rows where keep != 0); how many
        were dropped."""
        self._check_producer(producer)
        if n > <size_t>data.shape[0] or n > <size_t>length.shape[0] or n > <size_t>stamp_ns.shape[0] \
                or (keep is not None and n > <size_t>keep.shape[0]):
            raise ValueError("n is past the batch arrays")
        if n == 0:
            return 0
        cdef const uint8_t* k = &keep[0] if keep is not None else NULL
        cdef size_t dropped
        with nogil:
            dropped = self._w.push_slots(producer, stream_id, &data[0, 0], data.shape[1], &length[0],
                                         &stamp_ns[0], k, n)
        return dropped

    def failure(self):
        """None, or (what, errno, path) once the writer has stopped on an error."""
        if not self._w.failed():
            return None
        return (self._w.error_what().decode(), self._w.error_errno(),
                self._w.error_path().decode(errors="replace"))

    def stats(self):
        cdef const CWriterStats* s = &self._w.stats()
        return {"frames": s.frames.load(), "bytes": s.bytes.load(), "files": s.files.load(),
                "last_sequence": s.last_sequence.load(), "writes": s.writes.load(),
                "write_ns": s.write_ns.load(), "write_ns_max": s.write_ns_max.load(),
                "fsyncs": s.fsyncs.load()}

    def producer_stats(self, uint32_t producer):
        self._check_producer(producer)
        cdef const CProducerStats* s = &self._w.producer_stats(producer)
        return {"frames": s.frames.load(), "bytes": s.bytes.load(), "dropped": s.dropped.load(),
                "dropped_bytes": s.dropped_bytes.load(), "drop_records": s.drop_records.load(),
                "waits": s.waits.load(),
                "ring_used": self._w.ring_used(producer)}

    @property
    def ring_capacity(self):
        return self._w.ring_capacity()


cdef class MoldCapture:
    """lockstep::capture::MoldCapture: a MoldUDP64 feed's receiver and what it recorded."""
    cdef CMoldCapture core

    def __cinit__(self, bytes session, tuple receiver_config):
        """receiver_config: (first_sequence, heartbeat_timeout_ns, request_interval_ns,
        give_up_ns, max_request_count, hold_packets, hold_slot_bytes, max_sequence_jump)."""
        cdef CMoldReceiverConfig c
        if len(session) != 10:
            raise ValueError("session: expected 10 bytes")
        memcpy(c.session, <const char*>session, 10)
        (c.first_sequence, c.heartbeat_timeout_ns, c.request_interval_ns, c.give_up_ns,
         c.max_request_count, c.hold_packets, c.hold_slot_bytes, c.max_sequence_jump) = receiver_config
        if self.core.init(c) != CStatus.Ok:
            raise ValueError(f"MoldUDP64 receiver config out of range: {receiver_config}")

    def on_batch(self, CaptureWriter writer, uint32_t producer, uint32_t stream_id,
                 const uint8_t[:, ::1] data, const uint32_t[::1] length, const int64_t[::1] stamp_ns,
                 const uint8_t[::1] flags, uint8_t cut_flags, const uint32_t[::1] peer_ip,
                 const uint16_t[::1] peer_port, size_t n, bint replies, uint32_t want_ip,
                 uint16_t want_port, uint8_t[::1] verdict):
        """Datagrams 0..n-1 of a UdpSocket batch, without the GIL; verdict[i] says what became
        of each (lockstep.enums.MoldVerdict). How many were not recorded."""
        writer._check_producer(producer)
        if n > <size_t>min(data.shape[0], length.shape[0], stamp_ns.shape[0], flags.shape[0],
                           peer_ip.shape[0], peer_port.shape[0], verdict.shape[0]):
            raise ValueError("n is past the batch arrays")
        if n == 0:
            return 0
        cdef size_t i, refused = 0
        with nogil:
            self.core.on_batch(&data[0, 0], data.shape[1], &length[0], &stamp_ns[0], &flags[0],
                               cut_flags, &peer_ip[0], &peer_port[0], n, replies, want_ip,
                               want_port, writer._w, producer, stream_id, &verdict[0])
            for i in range(n):
                refused += verdict[i] != <uint8_t>CMoldVerdict.Recorded
        return refused

    def poll(self, int64_t now_ns):
        self.core.poll(now_ns)

    def take_request(self, int64_t now_ns):
        """The 20-byte retransmission request due now, or None."""
        cdef uint8_t out[20]
        cdef size_t n = self.core.receiver().take_request(now_ns, out, 20)
        return out[:n] if n else None

    def notices(self):
        """(kind, first, count, stamp_ns) of what the receiver decided since the last call."""
        cdef CMoldNotice notice
        out = []
        while self.core.receiver().next_notice(notice):
            out.append((<int>notice.kind, notice.first, notice.count, notice.stamp_ns))
        return out

    @property
    def counters(self):
        """What was recorded and refused (MoldCaptureCounters)."""
        return self.core.counters()

    @property
    def receiver_counters(self):
        return self.core.receiver().counters()

    @property
    def state(self):
        """(expected, highest, gap_open, ended)."""
        cdef CMoldReceiver* r = &self.core.receiver()
        return r.expected(), r.highest(), r.gap_open(), r.ended()

    @property
    def session(self):
        """The session followed (10 bytes, padded), or None before the first."""
        cdef CMoldReceiver* r = &self.core.receiver()
        return r.session()[:10] if r.has_session() else None
