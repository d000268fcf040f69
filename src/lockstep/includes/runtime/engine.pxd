# Mirrors include/lockstep/runtime/engine.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.string cimport string
from libcpp.vector cimport vector

from lockstep.includes.core.events cimport CEventColumns, CEventKind, CSide, CTradingPhase
from lockstep.includes.core.execution cimport COrderStatus, CExecutionState, CPositionView, CWide
from lockstep.includes.core.intents cimport CIntent, CTimeInForce
from lockstep.includes.core.queue cimport CIntentQueue, CQueueConfig
from lockstep.includes.core.replay cimport CBookType, CReplayer
from lockstep.includes.core.risk cimport CRiskEngine, CRiskReason, CRiskView
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.venue.venue cimport CSimulatedVenue, CSimulatedVenueConfig


cdef extern from "lockstep/runtime/engine.hpp" namespace "lockstep" nogil:
    const uint8_t kSubscribeBook "lockstep::subscribe::kBook"
    const uint8_t kSubscribeTouch "lockstep::subscribe::kTouch"
    const uint8_t kSubscribeTrades "lockstep::subscribe::kTrades"

    cdef cppclass COrderUpdate "lockstep::OrderUpdate":
        int64_t ts_event
        int64_t ts_recv
        uint64_t order_id
        int64_t price
        int64_t qty
        int64_t fee
        int64_t filled_qty
        int64_t leaves_qty
        uint32_t instrument
        CEventKind kind
        CSide side
        COrderStatus status
        uint8_t reason
        bint maker

    cdef cppclass CStrategyHooks "lockstep::StrategyHooks":
        void* self
        int (*on_start)(void* self, CEngine& ctx) noexcept
        int (*on_book)(void* self, CEngine& ctx, uint32_t instrument) noexcept
        int (*on_trade)(void* self, CEngine& ctx, uint32_t instrument, int64_t price,
                        int64_t qty, CSide aggressor) noexcept
        int (*on_order)(void* self, CEngine& ctx, const COrderUpdate& update) noexcept
        int (*on_timer)(void* self, CEngine& ctx, uint64_t timer_id) noexcept
        int (*on_stop)(void* self, CEngine& ctx) noexcept

    cdef cppclass CRiskHook "lockstep::RiskHook":
        void* self
        int (*check)(void* self, const CIntent& intent, const CRiskView& view) noexcept

    cdef cppclass CExecRecord "lockstep::ExecRecord":
        int64_t ts_event
        int64_t ts_recv
        uint64_t order_id
        int64_t price
        int64_t qty
        int64_t fee
        uint32_t instrument
        uint8_t kind
        uint8_t side
        uint8_t flags
        uint8_t reason

    cdef cppclass CDenialRecord "lockstep::DenialRecord":
        int64_t ts_recv
        CIntent intent
        CRiskReason reason

    cdef cppclass CPnlSample "lockstep::PnlSample":
        int64_t ts_recv
        uint32_t instrument
        int64_t position
        int64_t mid
        bint mid_known
        double realized
        double unrealized
        double fees

    cdef enum class CRunStatus "lockstep::RunStatus"(uint8_t):
        Ok, StrategyFailed, RiskHookFailed, Livelock

    cdef cppclass CEngineCounters "lockstep::EngineCounters":
        uint64_t events
        uint64_t strategy_calls
        uint64_t intents
        uint64_t denied
        uint64_t orders
        uint64_t cancels
        uint64_t replaces
        uint64_t responses
        uint64_t fills
        uint64_t state_errors
        uint64_t timers

    cdef cppclass CEngine "lockstep::Engine":
        CEngine(const vector[CBookType]& book_types) except +
        # configuration
        CRiskEngine& risk() noexcept
        CStatus configure_queue(const CQueueConfig& c) noexcept
        CStatus configure_venue(const CSimulatedVenueConfig& c) noexcept
        CStatus set_venue_order_rules(uint32_t inst, const COrderRules& r) noexcept
        void set_sample_interval(int64_t interval_ns) noexcept
        void set_strategy(const CStrategyHooks& h) noexcept
        void set_risk_hook(const CRiskHook& h) noexcept
        void track(uint32_t instrument) except +
        void set_record_decisions(bint on) noexcept
        # running
        CRunStatus run(const CEventColumns& ev) noexcept
        CRunStatus finish() noexcept
        CRunStatus advance_to(int64_t ts) noexcept
        CRunStatus feed_gap(int64_t ts, uint64_t expected) noexcept
        CRunStatus failed() noexcept
        uint64_t failed_position() noexcept
        int64_t failed_ts() noexcept
        # the strategy's context
        int64_t now() noexcept
        uint32_t instrument_count() noexcept
        void set_subscriptions(uint32_t instrument, uint8_t mask) noexcept
        uint8_t subscriptions(uint32_t instrument) noexcept
        bint touch(uint32_t inst, int64_t* bid_px, int64_t* bid_qty, int64_t* ask_px,
                   int64_t* ask_qty) noexcept
        size_t depth(uint32_t inst, CSide side, size_t n, int64_t* prices, int64_t* qtys) noexcept
        bint mid(uint32_t inst, int64_t* out) noexcept
        bint book_valid(uint32_t inst) noexcept
        CTradingPhase trading_phase(uint32_t inst) noexcept
        int64_t position(uint32_t inst) noexcept
        CPositionView position_view(uint32_t inst) noexcept
        CWide unrealized(uint32_t inst) noexcept
        uint32_t open_orders(uint32_t inst) noexcept
        const CExecutionState& execution() noexcept
        CRiskReason last_denial() noexcept
        uint64_t submit_limit(uint32_t inst, CSide side, int64_t price, int64_t qty,
                              CTimeInForce tif, uint64_t client_order_id) noexcept
        uint64_t submit_market(uint32_t inst, CSide side, int64_t qty,
                               uint64_t client_order_id) noexcept
        bint cancel(uint64_t order_id) noexcept
        bint replace(uint64_t order_id, int64_t price, int64_t qty) noexcept
        void set_timer(int64_t ts, uint64_t timer_id) noexcept
        # records
        const vector[CExecRecord]& exec_records() noexcept
        const vector[CDenialRecord]& denials() noexcept
        const vector[CPnlSample]& samples() noexcept
        const vector[CDenialRecord]& decisions() noexcept
        void clear_records() noexcept
        const CReplayer& market() noexcept
        const CIntentQueue& queue() noexcept
        const CSimulatedVenue& venue() noexcept
        const CEngineCounters& counters() noexcept
        size_t responses_in_flight() noexcept
        string serialize_state() except +
