# Mirrors include/lockstep/core/queue.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool as cbool

from lockstep.includes.core.intents cimport CIntent
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/core/queue.hpp" namespace "lockstep" nogil:
    cdef cppclass CQueueConfig "lockstep::QueueConfig":
        int64_t rate_per_second
        int64_t burst
        uint32_t max_in_flight_per_instrument
        uint32_t capacity
        uint32_t instruments

    cdef enum class CQueueResult "lockstep::QueueResult"(uint8_t):
        Queued, CanceledBeforeDispatch, Full, BadInstrument

    cdef cppclass CQueueCounters "lockstep::QueueCounters":
        uint64_t pushed
        uint64_t dispatched
        uint64_t canceled_before_dispatch
        uint64_t replaces_dropped
        uint64_t rejected_full
        uint64_t rejected_bad_instrument
        uint64_t deferred_by_rate
        uint64_t deferred_by_in_flight

    const int64_t kQueueMaxBurst "lockstep::IntentQueue::kMaxBurst"
    const int64_t kQueueMaxRate "lockstep::IntentQueue::kMaxRate"
    const uint32_t kQueueMaxCapacity "lockstep::IntentQueue::kMaxCapacity"
    const uint32_t kQueueMaxInstruments "lockstep::IntentQueue::kMaxInstruments"

    ctypedef cbool (*CTake "lockstep::IntentQueue::Take")(void* context, const CIntent& intent) noexcept

    cdef cppclass CIntentQueue "lockstep::IntentQueue":
        CIntentQueue() except +
        # configuration
        CStatus configure(const CQueueConfig& c) noexcept
        const CQueueConfig& config() noexcept
        # hot
        CQueueResult push(const CIntent& i, int64_t ts) noexcept
        size_t dispatch(int64_t ts, CIntent* out, size_t max_out) noexcept
        size_t withdraw(CIntent* out, size_t max_out) noexcept
        size_t withdraw_if(CTake take, void* context, CIntent* out, size_t max_out) noexcept
        void on_response(uint32_t instrument) noexcept
        # reports
        size_t pending() noexcept
        bint pending_submit(uint64_t id, CIntent* out) noexcept
        uint32_t in_flight(uint32_t instrument) noexcept
        const CQueueCounters& counters() noexcept
        int64_t tokens(int64_t ts) noexcept
