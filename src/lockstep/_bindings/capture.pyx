# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of include/lockstep/data/capture.hpp: the recorder's rings and writer thread.

The public API is lockstep.data.recorder.capture; this module moves options, payloads and datagram
batches across the boundary and releases the GIL while it pushes and while the writer stops.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.capture cimport (
    CCaptureOptions, CCaptureWriter, CFsyncPolicy, CProducerStats, CWriterStats, realtime_ns,
)

ENUMERATORS = {
    "FsyncPolicy": {
        "Rotation": <int>CFsyncPolicy.Rotation, "Interval": <int>CFsyncPolicy.Interval,
        "Frame": <int>CFsyncPolicy.Frame,
    },
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
                "ring_used": self._w.ring_used(producer)}

    @property
    def ring_capacity(self):
        return self._w.ring_capacity()
