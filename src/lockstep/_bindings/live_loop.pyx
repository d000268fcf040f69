# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of include/lockstep/runtime/live_loop.hpp, runtime/journal.hpp,
runtime/host_probe.hpp and base/latency_histogram.hpp: the live node's C++ loop, the journal's
writer, the host probe, the histogram.

The public API is lockstep.live.node and lockstep.live.journal. The loop drives C++ objects that
other bindings own (the UDP sockets, the MoldUDP64 receiver, the LiveCore): they hand them over
as capsules (`native()`), and the loop keeps their Python owners alive. run() releases the GIL; a
Python strategy's hooks take it back when they are called.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.vector cimport vector

from lockstep.includes.base.latency_histogram cimport CLatencyHistogram
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.data.capture cimport CCaptureOptions, CFsyncPolicy
from lockstep.includes.net.address cimport CEndpoint, parse_endpoint
from lockstep.includes.net.socket cimport CSysError
from lockstep.includes.net.udp cimport CUdpSocket
from lockstep.includes.runtime.engine cimport CPnlSample
from lockstep.includes.runtime.host_probe cimport (
    CProbeOptions, CProbeResult, kStallBounds, kStallBoundsNs, run_host_probe,
)
from lockstep.includes.runtime.journal cimport CJournal, CJournalStream
from lockstep.includes.runtime.live cimport CLiveCore
from lockstep.includes.runtime.live_loop cimport (
    CLiveLoop, CLoopCounters, CLoopExit, CLoopOptions,
)
from lockstep.includes.session.mold_receiver cimport CMoldNotice, CMoldReceiver
from lockstep.includes.session.soup_client cimport CSoupClient

from lockstep.errors import check_status

# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "LoopExit": {
        "Turns": <int>CLoopExit.Turns, "Time": <int>CLoopExit.Time,
        "OrderEntry": <int>CLoopExit.OrderEntry, "Control": <int>CLoopExit.Control,
        "Notice": <int>CLoopExit.Notice, "Unsent": <int>CLoopExit.Unsent,
        "Failed": <int>CLoopExit.Failed, "JournalFailed": <int>CLoopExit.JournalFailed,
        "SocketError": <int>CLoopExit.SocketError,
    },
}
#: The journal's stream ids in C++ (lockstep.live.journal.STREAMS must list them in this order).
JOURNAL_STREAMS = {
    "itch": <int>CJournalStream.Itch, "ouch": <int>CJournalStream.Ouch,
    "tick": <int>CJournalStream.Tick, "gap": <int>CJournalStream.Gap,
    "finish": <int>CJournalStream.Finish, "control": <int>CJournalStream.Control,
    "dispatch": <int>CJournalStream.Dispatch, "decision": <int>CJournalStream.Decision,
    "execution": <int>CJournalStream.Execution, "failure": <int>CJournalStream.Failure,
    "end": <int>CJournalStream.End, "snapshot": <int>CJournalStream.Snapshot,
    "snapshot_part": <int>CJournalStream.SnapshotPart,
}
#: Bytes of one PnL sample as take_outputs() gives them (lockstep._bindings.engine.PNL_SAMPLE).
SAMPLE_BYTES = sizeof(CPnlSample)

cdef uint8_t _EMPTY[1]


cdef void* _native(obj, const char* name) except NULL:
    return PyCapsule_GetPointer(obj.native(), name)


cdef bytes _bytes(const vector[uint8_t]& v):
    return (<const char*>v.data())[:v.size()] if v.size() else b""


cdef class Journal:
    """lockstep::live::Journal: frames through a ring to a writer thread, never dropped."""
    cdef CJournal _j
    cdef bint _open

    def __init__(self, str directory, str prefix, uint64_t first_sequence, bytes metadata,
                 uint64_t max_bytes, bint fsync_each_frame, int64_t fsync_interval_ns,
                 size_t ring_bytes):
        cdef CCaptureOptions o
        o.directory = directory.encode()
        o.prefix = prefix.encode()
        o.first_sequence = first_sequence
        o.metadata = metadata
        o.max_bytes = max_bytes
        o.window_ns = 0
        o.fsync = CFsyncPolicy.Frame if fsync_each_frame else CFsyncPolicy.Interval
        o.fsync_interval_ns = fsync_interval_ns
        o.ring_bytes = ring_bytes
        o.history_stream = 0
        if self._j.open(o) != CStatus.Ok:
            raise ValueError("journal writer options out of range (ring_bytes a power of two "
                             ">= 4096, max_bytes >= 1, fsync interval > 0)")
        self._open = True

    def append(self, int64_t receive_ns, uint32_t stream_id, const uint8_t[::1] payload,
               const uint8_t[::1] body=None):
        """One frame, its payload `payload` then `body` (as the loop appends an ITCH input: its
        sequence number, then its blocks); False when the writer has failed (failure() says
        why)."""
        cdef size_t n = payload.shape[0] if payload is not None else 0
        cdef const uint8_t* p = &payload[0] if n else _EMPTY
        cdef size_t m = body.shape[0] if body is not None else 0
        cdef const uint8_t* b = &body[0] if m else _EMPTY
        cdef bint ok
        with nogil:
            ok = self._j.append(receive_ns, <CJournalStream>stream_id, p, <uint32_t>n, b,
                                <uint32_t>m)
        return ok

    def wait_written(self):
        with nogil:
            self._j.wait_written()

    def close(self):
        """Writes what is left, closes the file (fsync) and stops the thread."""
        if self._open:
            self._open = False
            with nogil:
                self._j.close()

    def failure(self):
        """None, or (what, errno, path) once the writer has stopped on an error."""
        if not self._j.failed():
            return None
        return (self._j.writer().error_what().decode(), self._j.writer().error_errno(),
                self._j.writer().error_path().decode(errors="replace"))

    @property
    def frames(self):
        return self._j.writer().producer_stats(0).frames.load()


cdef class LatencyHistogram:
    """lockstep::LatencyHistogram."""
    cdef CLatencyHistogram _h

    def add(self, const int64_t[::1] values):
        cdef size_t i
        for i in range(<size_t>values.shape[0]):
            self._h.add(values[i])

    def quantile(self, double q):
        if not 0 < q <= 1:
            raise ValueError(f"quantile {q} is not in (0, 1]")
        return self._h.quantile(q)

    @property
    def count(self):
        return self._h.count()

    @property
    def max(self):
        return self._h.max()


cdef dict _summary(const CLatencyHistogram& h):
    return {"count": h.count(), "p50_ns": h.quantile(0.5), "p99_ns": h.quantile(0.99),
            "p99_9_ns": h.quantile(0.999), "max_ns": h.max()}


def host_probe(*, int cpu, int peer_cpu, int64_t stall_ns, int64_t stall_threshold_ns,
               int64_t feed_ns, int64_t interval_ns, uint32_t datagram_bytes,
               uint32_t order_bytes):
    """lockstep::live::run_host_probe: {"stalls": {...}, "feed": {...}} (the public API is
    lockstep.live.probe)."""
    cdef CProbeOptions o
    o.cpu, o.peer_cpu = cpu, peer_cpu
    o.stall_ns, o.stall_threshold_ns = stall_ns, stall_threshold_ns
    o.feed_ns, o.interval_ns = feed_ns, interval_ns
    o.datagram_bytes, o.order_bytes = datagram_bytes, order_bytes
    cdef CProbeResult* r = new CProbeResult()
    cdef CSysError error
    cdef CStatus status
    try:
        with nogil:
            status = run_host_probe(o, r[0], error)
        check_status(<int>status, "host probe", detail=(<bytes>error.call).decode(), errno=error.err)
        return {
            "stalls": {"spun_ns": r.spun_ns, "lost_ns": r.lost_ns,
                       "at_least": {int(kStallBoundsNs[i]): r.stalls_at_least[i]
                                    for i in range(kStallBounds)},
                       **_summary(r.stalls)},
            "feed": {"datagrams_sent": r.datagrams_sent,
                     "datagrams_received": r.datagrams_received,
                     "user_stamped": r.user_stamped, "orders_sent": r.orders_sent,
                     "order_bytes_received": r.order_bytes_received,
                     "feed_lag": _summary(r.feed_lag), "tick_to_trade": _summary(r.tick_to_trade),
                     "send": _summary(r.send_time)},
        }
    finally:
        del r


cdef class LiveLoop:
    """lockstep::live::LiveLoop over the given core, receiver, sockets and journal."""
    cdef CLiveLoop* _loop
    cdef object _owners  # the Python objects whose C++ parts the loop uses

    def __init__(self, core, receiver, feed, retransmit, Journal journal, str retransmit_server,
                 *, int64_t tick_ns, int wait_ms, bint busy_poll, uint32_t batch,
                 size_t slot_bytes, size_t held_bytes, uint32_t idle_every=64):
        cdef CLiveCore* c = <CLiveCore*>_native(core, b"lockstep::live::LiveCore")
        cdef CMoldReceiver* r = <CMoldReceiver*>_native(receiver, b"lockstep::session::MoldReceiver")
        cdef CUdpSocket* f = <CUdpSocket*>_native(feed, b"lockstep::net::UdpSocket")
        cdef CUdpSocket* t = <CUdpSocket*>_native(retransmit, b"lockstep::net::UdpSocket")
        cdef bytes raw = retransmit_server.encode("utf-8", "replace")
        cdef CEndpoint server
        cdef const char* reason = b""
        check_status(<int>parse_endpoint(raw, len(raw), server, reason), repr(retransmit_server),
                     detail=reason.decode())
        self._owners = (core, receiver, feed, retransmit, journal)
        self._loop = new CLiveLoop(c[0], r[0], f[0], t[0], journal._j)
        cdef CLoopOptions o
        o.tick_ns = tick_ns
        o.wait_ms = wait_ms
        o.idle_every = idle_every
        check_status(<int>self._loop.open(o, busy_poll, batch, slot_bytes, held_bytes),
                     "live loop", detail="batch, slot bytes, tick and idle_every must be positive")
        self._loop.set_retransmit_server(server)

    def __dealloc__(self):
        del self._loop

    def set_order_entry(self, int fd, uint64_t connection, bint direct):
        """The order-entry descriptor to watch (-1: none), its connection number, and whether
        the loop may write to it (the client logged in, nothing of its own waiting)."""
        check_status(<int>self._loop.set_order_entry(fd, connection, direct), "order-entry socket",
                     detail="epoll_ctl")

    def set_order_session(self, soup):
        """The order-entry client's SoupBinTCP session (lockstep.protocols.soup_client), whose
        connection the loop reads itself while it is logged in; kept alive with the loop."""
        cdef CSoupClient* s = <CSoupClient*>_native(soup, b"lockstep::session::SoupClient")
        self._owners = self._owners + (soup,)
        self._loop.set_order_session(s)

    def set_control(self, int fd):
        check_status(<int>self._loop.set_control(fd), "control socket", detail="epoll_ctl")

    def run(self, int64_t budget_ns, uint32_t max_turns):
        """Turns until a reason to return (a lockstep.enums.LoopExit value)."""
        cdef CLoopExit why
        with nogil:
            why = self._loop.run(budget_ns, max_turns)
        return <int>why

    def take_outputs(self):
        """(decisions, executions, samples) since the last take, then cleared: the records of the
        inputs applied, decisions and execution records packed as journaled, PnL samples as
        SAMPLE_BYTES rows (lockstep._bindings.engine.PNL_SAMPLE)."""
        cdef const vector[CPnlSample]* s = &self._loop.samples()
        samples = (<const char*>s.data())[:s.size() * sizeof(CPnlSample)] if s.size() else b""
        out = (_bytes(self._loop.decisions()), _bytes(self._loop.executions()), samples)
        self._loop.clear_outputs()
        return out

    def take_unsent(self):
        """(SoupBinTCP-framed bytes to send first, [u16 length][OUCH message] stream), cleared."""
        out = (_bytes(self._loop.unsent_framed()), _bytes(self._loop.unsent()))
        self._loop.clear_unsent()
        return out

    def take_notices(self):
        """The receiver's notices since the last take: (kind, first, count, stamp) tuples."""
        cdef size_t i
        cdef const CMoldNotice* n
        out = []
        for i in range(self._loop.notice_count()):
            n = &self._loop.notice(i)
            out.append((<int>n.kind, n.first, n.count, n.stamp_ns))
        self._loop.clear_notices()
        return out

    @property
    def failure(self):
        """The RunStatus value of the input that failed (0: none has)."""
        return <int>self._loop.failure()

    @property
    def last_input(self):
        return self._loop.last_input()

    def note_input(self, int64_t stamp):
        self._loop.note_input(stamp)

    @property
    def counters(self):
        cdef CLoopCounters c = self._loop.counters()
        return c

    @property
    def tick_to_trade(self):
        """{count, p50_ns, p99_ns, p99_9_ns, max_ns} of the tick-to-trade histogram."""
        return _summary(self._loop.tick_to_trade())

    @property
    def read_to_trade(self):
        """{count, p50_ns, p99_ns, p99_9_ns, max_ns} of the loop's part of tick-to-trade: from
        the read that took the datagram to the send."""
        return _summary(self._loop.read_to_trade())

    @property
    def feed_lag(self):
        """{count, p50_ns, p99_ns, p99_9_ns, max_ns} of how long datagrams waited in the feed
        sockets before the loop read them."""
        return _summary(self._loop.feed_lag())

    @property
    def turn_time(self):
        """{count, p50_ns, p99_ns, p99_9_ns, max_ns} of how long each turn of the loop took (a
        look at the sockets, what it read processed): a stalled thread shows here."""
        return _summary(self._loop.turn_time())

    @property
    def away_time(self):
        """{count, p50_ns, p99_ns, p99_9_ns, max_ns} of how long each return lasted, from run()
        returning to the next run(): the feed was not read meanwhile. count: the returns."""
        return _summary(self._loop.away_time())

    @property
    def journal_waits(self):
        """How many times an append waited for room in the journal's ring."""
        return self._loop.journal_waits()

    def socket_error(self):
        """(call, errno) of the feed socket failure a SocketError return reported."""
        e = self._loop.socket_error()
        return (e.call.decode() if e.call else "", e.err)
