# Mirrors include/lockstep/runtime/host_probe.hpp.
from libc.stdint cimport int64_t, uint32_t, uint64_t

from lockstep.includes.base.latency_histogram cimport CLatencyHistogram
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.socket cimport CSysError


cdef extern from "lockstep/runtime/host_probe.hpp" namespace "lockstep::live" nogil:
    cdef cppclass CProbeOptions "lockstep::live::ProbeOptions":
        int cpu
        int peer_cpu
        int64_t stall_ns
        int64_t stall_threshold_ns
        int64_t feed_ns
        int64_t interval_ns
        uint32_t datagram_bytes
        uint32_t order_bytes

    const int64_t* kStallBoundsNs
    size_t kStallBounds

    cdef cppclass CProbeResult "lockstep::live::ProbeResult":
        int64_t spun_ns
        int64_t lost_ns
        uint64_t* stalls_at_least
        CLatencyHistogram stalls
        uint64_t datagrams_sent, datagrams_received, user_stamped
        uint64_t orders_sent, order_bytes_received
        CLatencyHistogram feed_lag, tick_to_trade, send_time

    CStatus run_host_probe(const CProbeOptions& o, CProbeResult& out, CSysError& error) except +
