# Mirrors include/lockstep/venue/venue.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CEventKind, CSide
from lockstep.includes.core.intents cimport CIntent
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.venue.matching cimport CQueueModel
from lockstep.includes.core.replay cimport CReplayer
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.venue.venue_models cimport CFeeModel, CLatencyConfig


cdef extern from "lockstep/venue/venue.hpp" namespace "lockstep" nogil:
    cdef cppclass CVenueResponse "lockstep::VenueResponse":
        int64_t ts_event
        int64_t ts_recv
        uint64_t seq
        uint64_t order_id
        int64_t price
        int64_t qty
        int64_t fee
        uint32_t instrument
        CEventKind kind
        CSide side
        uint8_t flags
        uint8_t reason

    cdef cppclass CResponseQueue "lockstep::ResponseQueue":
        bint empty() noexcept
        size_t size() noexcept
        int64_t next_ts() noexcept

    cdef cppclass CVenueAdapter "lockstep::VenueAdapter":
        void send(const CIntent& i, int64_t ts, int64_t feed_latency_ns) noexcept

    cdef cppclass CSimulatedVenueConfig "lockstep::SimulatedVenueConfig":
        CQueueModel queue_model
        double queue_power
        CFeeModel fees
        CLatencyConfig latency

    cdef cppclass CVenueCounters "lockstep::VenueCounters":
        uint64_t messages
        uint64_t accepted
        uint64_t rejected
        uint64_t fills
        uint64_t canceled
        uint64_t expired
        uint64_t replaced
        uint64_t cancel_rejected
        uint64_t replace_rejected

    cdef cppclass CSimulatedVenue "lockstep::SimulatedVenue"(CVenueAdapter):
        CStatus configure(const CSimulatedVenueConfig& c, const CReplayer& market,
                          CResponseQueue* out) noexcept
        CStatus set_order_rules(uint32_t inst, const COrderRules& r) noexcept
        int64_t next_arrival() noexcept
        bint watching(uint32_t inst) noexcept
        const CVenueCounters& counters() noexcept
        size_t in_transit() noexcept
        size_t resting(uint32_t inst) noexcept
