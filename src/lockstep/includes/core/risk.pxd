# Mirrors include/lockstep/core/risk.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.intents cimport CIntent
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/core/risk.hpp" namespace "lockstep" nogil:
    cdef enum class CRiskReason "lockstep::RiskReason"(uint8_t):
        Allowed, UnknownIntentKind, UnknownInstrument, KillSwitch, Halted, BadSide, BadTimeInForce,
        NonPositiveQty, NonPositivePrice, ReduceOnly, MaxOrderQty, NoMid, MaxOrderNotional,
        PriceBand, MaxPosition, MaxOpenOrders, MaxOpenOrdersTotal, RateLimit, Custom, UnknownOrder,
        DuplicateOrderId, QueueFull, OffTick, OffLot, BelowMinQty, BelowMinNotional

    const size_t kRiskReasonCount "lockstep::kRiskReasonCount"
    const char* risk_reason_name(CRiskReason r) noexcept
    const uint32_t kMaxRiskInstruments "lockstep::RiskEngine::kMaxInstruments"

    cdef enum class CTradingMode "lockstep::TradingMode"(uint8_t):
        Active, ReduceOnly, Halted

    cdef cppclass CRiskLimits "lockstep::RiskLimits":
        int64_t max_order_qty
        int64_t max_order_notional
        int64_t max_position
        uint32_t max_open_orders
        uint32_t price_band_bps

    cdef cppclass CRiskConfig "lockstep::RiskConfig":
        uint32_t max_open_orders_total
        uint32_t rate_per_second
        uint32_t burst
        CTradingMode mode
        bint kill_switch

    cdef cppclass CRiskView "lockstep::RiskView":
        int64_t position
        uint32_t open_orders
        int64_t open_buy_qty
        int64_t open_sell_qty
        bint mid_known
        int64_t mid
        uint32_t open_orders_total

    cdef cppclass CRiskEngine "lockstep::RiskEngine":
        CRiskEngine() except +
        # configuration
        CStatus set_config(const CRiskConfig& c) noexcept
        CStatus set_limits(uint32_t instrument, const CRiskLimits& l) noexcept
        CStatus set_order_rules(uint32_t instrument, const COrderRules& r) noexcept
        void set_mode(CTradingMode m) noexcept
        void set_kill_switch(bint on) noexcept
        CTradingMode mode() noexcept
        bint kill_switch() noexcept
        const CRiskConfig& config() noexcept
        bint known(uint32_t instrument) noexcept
        # hot
        CRiskReason evaluate(const CIntent& i, const CRiskView& v, int64_t ts_recv) noexcept
        void record(const CIntent& i, CRiskReason r, int64_t ts_recv) noexcept
        CRiskReason check(const CIntent& i, const CRiskView& v, int64_t ts_recv) noexcept
        # reports
        uint64_t count(CRiskReason r) noexcept
        uint64_t count(uint32_t instrument, CRiskReason r) noexcept
        void reset_counts() noexcept
        uint64_t tokens(int64_t ts_recv) noexcept
