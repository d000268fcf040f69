# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::itch::ItchDecoder (include/lockstep/codecs/itch.hpp).

The public API is lockstep.data.importers.itch. This module owns the arrays of the chunk being filled
(numpy, written directly by the C++ decoder), releases the GIL while decoding, and hands the chunk
over on take().
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

import sys

import numpy as np

from lockstep.includes.core.events cimport CEventColumns
from lockstep.includes.base.status cimport CStatus

from lockstep.errors import DecodeError
from lockstep.events import COLUMNS


cdef extern from "lockstep/codecs/itch.hpp" namespace "lockstep::itch" nogil:
    cdef cppclass CSink "lockstep::itch::Sink":
        CEventColumns ev
        int64_t* event_record
        int32_t* rec_file
        int64_t* rec_offset
        int64_t* rec_length
        uint8_t* rec_problem
        size_t rec_size
        size_t rec_capacity

    cdef cppclass CProblemNote "lockstep::itch::ProblemNote":
        uint64_t record
        uint32_t file
        uint64_t offset
        uint8_t rule
        uint8_t type
        uint32_t prefix
        uint32_t expected
        uint8_t field

    cdef cppclass CCounts "lockstep::itch::Counts":
        uint64_t records
        uint64_t bytes
        uint64_t messages[256]
        uint64_t zero_prefix
        uint64_t problems[12]
        uint64_t events[66]
        uint64_t unknown_ref[256]
        uint64_t duplicate_add
        uint64_t overfill
        uint64_t cross_no_volume
        uint64_t placeholder_instruments
        uint64_t directory_conflicts
        uint64_t live_orders_max

    cdef cppclass CErrorInfo "lockstep::itch::ErrorInfo":
        CStatus status
        uint32_t file
        uint64_t offset
        char message[256]

    cdef cppclass CItchDecoder "lockstep::itch::ItchDecoder":
        CItchDecoder(size_t expected_orders) except +
        void begin_file(uint32_t file_index, int64_t day_start_ns)
        CStatus feed(const uint8_t* data, size_t n, bint eof, CSink& out, size_t* consumed)
        CStatus cut(CSink& out)
        const CErrorInfo& error()
        const CCounts& counts()
        const vector[CProblemNote]& notes()
        uint64_t records()
        size_t live_orders()
        size_t instrument_count()
        const char* instrument_symbol(size_t i)
        uint16_t instrument_locate(size_t i)

    uint32_t c_message_length "lockstep::itch::message_length"(uint8_t type_byte)


def message_length(int type_byte):
    """The fixed length of an ITCH 5.0 message type (type byte included), 0 if unknown."""
    return c_message_length(<uint8_t>(type_byte & 0xFF))


cdef list _holders(list arrays):
    # Every object whose refcount says whether a consumer still holds part of a chunk set.
    cdef list out = [arrays[0]]
    out.extend(arrays[0].values())
    out.extend(arrays[1:])
    return out


cdef list _refcounts(list arrays):
    return [sys.getrefcount(x) for x in _holders(arrays)]


cdef class ItchDecoder:
    """One decoder for one stream of files, filling one chunk's arrays at a time.

    A chunk's arrays go to the consumer, who may keep them. Fresh arrays cost page faults (as much
    as the decoding itself), so sets whose every array the consumer has let go of (refcounts back
    to what they were at creation) are refilled instead.
    """
    cdef unique_ptr[CItchDecoder] core
    cdef CSink sink
    cdef size_t capacity
    cdef list cur  # [cols dict, event_record, rec_file, rec_offset, rec_length, rec_problem]
    cdef list cur_baseline
    cdef list spare  # [(set, baseline refcounts)] handed out earlier
    cdef uint64_t chunk_first

    def __cinit__(self, size_t capacity, size_t expected_orders=1 << 12):
        if capacity < 4:
            raise ValueError("chunk capacity must be at least 4")
        self.core.reset(new CItchDecoder(expected_orders))
        self.capacity = capacity
        self.chunk_first = 0
        self.spare = []
        self._open()

    cdef list _new_set(self):
        cdef size_t cap = self.capacity
        arrays = [{name: np.empty(cap, dtype=dtype) for name, dtype in COLUMNS},
                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int32),
                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
                  np.empty(cap, dtype=np.uint8)]
        # Taken while only this list holds the set: a set reads as free again exactly when the
        # consumer has dropped everything it was given.
        self.cur_baseline = _refcounts(arrays)
        return arrays

    cdef _open(self):
        cdef size_t cap = self.capacity
        chosen = None
        for i, (arrays, baseline) in enumerate(self.spare):
            if _refcounts(arrays) == baseline:
                chosen = arrays
                self.cur_baseline = baseline
                del self.spare[i]
                break
        if chosen is None:
            chosen = self._new_set()
        self.cur = chosen
        cols = chosen[0]
        cdef int64_t[::1] ts_event = cols["ts_event"]
        cdef int64_t[::1] ts_recv = cols["ts_recv"]
        cdef uint64_t[::1] seq = cols["seq"]
        cdef uint32_t[::1] instrument = cols["instrument"]
        cdef uint8_t[::1] kind = cols["kind"]
        cdef uint8_t[::1] side = cols["side"]
        cdef uint8_t[::1] flags = cols["flags"]
        cdef int64_t[::1] price = cols["price"]
        cdef int64_t[::1] qty = cols["qty"]
        cdef uint64_t[::1] order_id = cols["order_id"]
        cdef int64_t[::1] event_record = chosen[1]
        cdef int32_t[::1] rec_file = chosen[2]
        cdef int64_t[::1] rec_offset = chosen[3]
        cdef int64_t[::1] rec_length = chosen[4]
        cdef uint8_t[::1] rec_problem = chosen[5]
        self.sink.ev.ts_event = &ts_event[0]
        self.sink.ev.ts_recv = &ts_recv[0]
        self.sink.ev.seq = &seq[0]
        self.sink.ev.instrument = &instrument[0]
        self.sink.ev.kind = &kind[0]
        self.sink.ev.side = &side[0]
        self.sink.ev.flags = &flags[0]
        self.sink.ev.price = &price[0]
        self.sink.ev.qty = &qty[0]
        self.sink.ev.order_id = &order_id[0]
        self.sink.ev.size = 0
        self.sink.ev.capacity = cap
        self.sink.event_record = &event_record[0]
        self.sink.rec_file = &rec_file[0]
        self.sink.rec_offset = &rec_offset[0]
        self.sink.rec_length = &rec_length[0]
        self.sink.rec_problem = &rec_problem[0]
        self.sink.rec_size = 0
        self.sink.rec_capacity = cap

    def begin_file(self, uint32_t file_index, int64_t day_start_ns):
        self.core.get().begin_file(file_index, day_start_ns)

    def feed(self, const unsigned char[::1] data, bint eof):
        """Decodes records of `data` into the open chunk: (consumed, status)."""
        cdef size_t consumed = 0
        cdef size_t n = data.shape[0]
        cdef const uint8_t* p = <const uint8_t*>&data[0] if n else <const uint8_t*>NULL
        cdef CStatus st
        with nogil:
            st = self.core.get().feed(p, n, eof, self.sink, &consumed)
        return consumed, <int>st

    def cut(self):
        """The file's compressed stream is cut after a whole message: an empty truncated record
        where it ends; status OUTPUT_FULL (take the chunk, call again) or OK."""
        return <int>self.core.get().cut(self.sink)

    @property
    def chunk_records(self):
        return self.sink.rec_size

    def take(self):
        """The open chunk as a tuple (first_record, n_records, n_events, cols, event_record,
        rec_file, rec_offset, rec_length, rec_problem), or None if it holds no record; a new
        chunk is opened."""
        if self.sink.rec_size == 0:
            return None
        cdef list arrays = self.cur
        out = (self.chunk_first, self.sink.rec_size, self.sink.ev.size, *arrays)
        self.chunk_first += self.sink.rec_size
        if len(self.spare) >= 4:
            del self.spare[0]  # held by the consumer for long: stop tracking it
        self.spare.append((arrays, self.cur_baseline))
        self.cur = None
        self._open()
        return out

    def exception(self, names):
        cdef const CErrorInfo* e = &self.core.get().error()
        cdef const char* message = &e.message[0]
        cdef Py_ssize_t f = e.file
        name = names[f] if f < len(names) else None
        return DecodeError(message.decode("utf-8", "replace") or "decode error",
                           path=name, offset=e.offset)

    def notes(self):
        """Problem records kept for reasons: list of dicts (the first few of each rule)."""
        cdef const vector[CProblemNote]* v = &self.core.get().notes()
        cdef size_t i
        cdef const CProblemNote* n
        out = []
        for i in range(v.size()):
            n = &v[0][i]
            out.append({"record": n.record, "file": n.file, "offset": n.offset, "rule": n.rule,
                        "type": n.type, "prefix": n.prefix, "expected": n.expected,
                        "field": n.field})
        return out

    def instruments(self):
        """[(symbol or '' for a locate never named by a directory, locate)] in index order."""
        cdef CItchDecoder* d = self.core.get()
        cdef size_t i
        out = []
        for i in range(d.instrument_count()):
            out.append((d.instrument_symbol(i).decode("ascii", "replace"), d.instrument_locate(i)))
        return out

    def counts(self):
        cdef const CCounts* c = &self.core.get().counts()
        cdef int i
        messages = {}
        unknown = {}
        for i in range(256):
            if c.messages[i]:
                messages[chr(i)] = c.messages[i]
            if c.unknown_ref[i]:
                unknown[chr(i)] = c.unknown_ref[i]
        return {
            "records": c.records,
            "bytes": c.bytes,
            "messages": messages,
            "zero_prefix": c.zero_prefix,
            "problems": [c.problems[i] for i in range(12)],
            "events": [c.events[i] for i in range(66)],
            "unknown_order_ref": unknown,
            "duplicate_add": c.duplicate_add,
            "overfill": c.overfill,
            "cross_no_volume": c.cross_no_volume,
            "placeholder_instruments": c.placeholder_instruments,
            "directory_conflicts": c.directory_conflicts,
            "live_orders_max": c.live_orders_max,
            "live_orders_end": self.core.get().live_orders(),
        }
