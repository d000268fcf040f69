# The one bridge from the Python config mirrors to the core's C++ config structs, read by
# attribute: lockstep.core.risk.RiskConfig / RiskLimits / OrderRules, lockstep.core.queue.QueueConfig,
# lockstep.venue.matching.LatencyConfig / SimulatedVenueConfig (which have already checked every
# field; the conversions here still refuse a value its C++ field cannot hold).
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.core.queue cimport CQueueConfig
from lockstep.includes.core.risk cimport CRiskConfig, CRiskLimits, CTradingMode
from lockstep.includes.venue.matching cimport CQueueModel
from lockstep.includes.venue.venue cimport CSimulatedVenueConfig
from lockstep.includes.venue.venue_models cimport CLatencyConfig, CLatencyKind


cdef inline void fill_risk_config(CRiskConfig* out, object cfg) except *:
    out.max_open_orders_total = <uint32_t>PyNumber_Index(cfg.max_open_orders_total)
    out.rate_per_second = <uint32_t>PyNumber_Index(cfg.rate_per_second)
    out.burst = <uint32_t>PyNumber_Index(cfg.burst)
    out.mode = <CTradingMode><uint8_t>PyNumber_Index(cfg.mode)
    out.kill_switch = bool(cfg.kill_switch)


cdef inline void fill_risk_limits(CRiskLimits* out, object limits) except *:
    out.max_order_qty = <int64_t>PyNumber_Index(limits.max_order_qty)
    out.max_order_notional = <int64_t>PyNumber_Index(limits.max_order_notional)
    out.max_position = <int64_t>PyNumber_Index(limits.max_position)
    out.max_open_orders = <uint32_t>PyNumber_Index(limits.max_open_orders)
    out.price_band_bps = <uint32_t>PyNumber_Index(limits.price_band_bps)


cdef inline void fill_order_rules(COrderRules* out, object rules) except *:
    out.price_tick = <int64_t>PyNumber_Index(rules.price_tick)
    out.qty_lot = <int64_t>PyNumber_Index(rules.qty_lot)
    out.min_qty = <int64_t>PyNumber_Index(rules.min_qty)
    out.min_notional = <int64_t>PyNumber_Index(rules.min_notional)


cdef inline void fill_queue_config(CQueueConfig* out, object cfg) except *:
    out.rate_per_second = <int64_t>PyNumber_Index(cfg.rate_per_second)
    out.burst = <int64_t>PyNumber_Index(cfg.burst)
    out.max_in_flight_per_instrument = <uint32_t>PyNumber_Index(cfg.max_in_flight_per_instrument)
    out.capacity = <uint32_t>PyNumber_Index(cfg.capacity)
    out.instruments = <uint32_t>PyNumber_Index(cfg.instruments)


cdef inline void fill_latency_config(CLatencyConfig* out, object cfg) except *:
    out.kind = <CLatencyKind><uint8_t>PyNumber_Index(cfg.kind)
    out.entry_ns = <int64_t>PyNumber_Index(cfg.entry_ns)
    out.response_ns = <int64_t>PyNumber_Index(cfg.response_ns)
    out.sigma = <double>cfg.sigma
    out.feed_multiplier = <double>cfg.feed_multiplier
    out.seed = <uint64_t>PyNumber_Index(cfg.seed)


cdef inline void fill_venue_config(CSimulatedVenueConfig* out, object cfg) except *:
    out.queue_model = <CQueueModel><uint8_t>PyNumber_Index(cfg.queue_model)
    out.queue_power = <double>cfg.queue_power
    out.fees.maker_ppm = <int64_t>PyNumber_Index(cfg.maker_ppm)
    out.fees.taker_ppm = <int64_t>PyNumber_Index(cfg.taker_ppm)
    fill_latency_config(&out.latency, cfg.latency)
