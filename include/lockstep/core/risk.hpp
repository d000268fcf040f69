// Risk: judges each Intent, allowed or denied, with one reason code. It never changes an Intent.
//
// docs/risk.md is the normative description (reason table, check order); keep it and
// src/lockstep/reference/risk.py in step with this file.
//
// Determinism: the only clock is the ts_recv the caller passes in (the event that caused the
// step), so a replayed journal reproduces every decision. Nothing here reads a wall clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/core/order_rules.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep {

// Values are reported and journaled: never renumber, only add. Numbered in check order (the
// first failing check is the reason, so a lower value was checked earlier), except the
// order-entry rules added later (22-25), checked right after NonPositivePrice (docs/risk.md).
enum class RiskReason : uint8_t {
    Allowed = 0,
    UnknownIntentKind = 1,   // kind is not one of IntentKind
    UnknownInstrument = 2,   // no limits were configured for the instrument
    KillSwitch = 3,          // kill switch on: only cancels pass
    Halted = 4,              // trading mode halted: only cancels pass
    BadSide = 5,             // submit/replace side is neither bid nor ask
    BadTimeInForce = 6,      // tif is not one of TimeInForce
    NonPositiveQty = 7,      // submit/replace qty <= 0
    NonPositivePrice = 8,    // limit/replace price <= 0
    ReduceOnly = 9,          // reduce-only mode and the order could grow |position|
    MaxOrderQty = 10,        // qty > max_order_qty
    NoMid = 11,              // a mid is needed (price band, market order notional), none known
    MaxOrderNotional = 12,   // price (mid for market orders) x qty > max_order_notional
    PriceBand = 13,          // limit price further than price_band_bps from the mid
    MaxPosition = 14,        // projected position beyond max_position and further from flat
    MaxOpenOrders = 15,      // instrument already has max_open_orders open (submits only)
    MaxOpenOrdersTotal = 16, // max_open_orders_total open over all instruments (submits only)
    RateLimit = 17,          // token bucket empty at ts_recv
    Custom = 18,             // a custom rule (Python layer) denied; never produced by check()
    // Decided by the engine before Risk, because they need Execution State or the queue:
    UnknownOrder = 19,       // cancel/replace of an order that is neither live nor pending
    DuplicateOrderId = 20,   // submit with a client order id already live or pending
    QueueFull = 21,          // allowed, but the intent queue had no room
    // The venue's order-entry rules (OrderRules), checked after NonPositivePrice:
    OffTick = 22,            // a priced order's price is not a multiple of the tick size
    OffLot = 23,             // qty is not a multiple of the lot size
    BelowMinQty = 24,        // qty below the minimum quantity
    BelowMinNotional = 25,   // price (mid for market orders) x qty below the minimum notional
    // Decided by the engine after Risk allowed it (live only):
    OrderEntryDown = 26,     // a submit/replace while the venue's order-entry session is down
};

constexpr size_t kRiskReasonCount = 27;

inline const char* risk_reason_name(RiskReason r) noexcept {
    switch (r) {
        case RiskReason::Allowed: return "allowed";
        case RiskReason::UnknownIntentKind: return "unknown_intent_kind";
        case RiskReason::UnknownInstrument: return "unknown_instrument";
        case RiskReason::KillSwitch: return "kill_switch";
        case RiskReason::Halted: return "halted";
        case RiskReason::BadSide: return "bad_side";
        case RiskReason::BadTimeInForce: return "bad_time_in_force";
        case RiskReason::NonPositiveQty: return "non_positive_qty";
        case RiskReason::NonPositivePrice: return "non_positive_price";
        case RiskReason::ReduceOnly: return "reduce_only";
        case RiskReason::MaxOrderQty: return "max_order_qty";
        case RiskReason::NoMid: return "no_mid";
        case RiskReason::MaxOrderNotional: return "max_order_notional";
        case RiskReason::PriceBand: return "price_band";
        case RiskReason::MaxPosition: return "max_position";
        case RiskReason::MaxOpenOrders: return "max_open_orders";
        case RiskReason::MaxOpenOrdersTotal: return "max_open_orders_total";
        case RiskReason::RateLimit: return "rate_limit";
        case RiskReason::Custom: return "custom";
        case RiskReason::UnknownOrder: return "unknown_order";
        case RiskReason::DuplicateOrderId: return "duplicate_order_id";
        case RiskReason::QueueFull: return "queue_full";
        case RiskReason::OffTick: return "off_tick";
        case RiskReason::OffLot: return "off_lot";
        case RiskReason::BelowMinQty: return "below_min_qty";
        case RiskReason::BelowMinNotional: return "below_min_notional";
        case RiskReason::OrderEntryDown: return "order_entry_down";
    }
    return "unknown_reason";
}

enum class TradingMode : uint8_t {
    Active = 0,
    ReduceOnly = 1,  // only orders that cannot grow |position|; cancels always pass
    Halted = 2,      // only cancels
};

// Per-instrument limits. 0 means "no limit" for every field: a limit of zero quantity would deny
// every order, which reduce-only mode or the kill switch already say more clearly.
struct RiskLimits {
    int64_t max_order_qty = 0;       // lots
    int64_t max_order_notional = 0;  // price ticks x lots, the same fixed-point units as the intent
    int64_t max_position = 0;        // lots, absolute
    uint32_t max_open_orders = 0;
    uint32_t price_band_bps = 0;     // limit price within mid +- mid * bps / 10000
};

// Global settings. mode and kill_switch are Control State: set_mode()/set_kill_switch() change
// them between steps without touching the rate bucket.
struct RiskConfig {
    uint32_t max_open_orders_total = 0;  // 0: no limit
    uint32_t rate_per_second = 0;        // tokens per second of ts_recv; 0: no rate limit
    uint32_t burst = 0;                  // bucket capacity; must be >= 1 when rate_per_second > 0
    TradingMode mode = TradingMode::Active;
    bool kill_switch = false;
};

// What Risk reads of State for the intent's instrument; the caller fills it each check, so Risk
// holds no copy of State that could drift from it.
struct RiskView {
    int64_t position = 0;         // signed lots, long > 0
    uint32_t open_orders = 0;     // open orders on this instrument
    int64_t open_buy_qty = 0;     // remaining lots of open buys on this instrument
    int64_t open_sell_qty = 0;    // remaining lots of open sells on this instrument
    bool mid_known = false;
    int64_t mid = 0;              // ticks; only read when mid_known (a mid <= 0 counts as unknown)
    uint32_t open_orders_total = 0;  // open orders over every instrument
};

class RiskEngine {
public:
    // Ids are dense instrument-table indices; a cap keeps a corrupt id from allocating gigabytes.
    static constexpr uint32_t kMaxInstruments = 1u << 20;
    static constexpr int64_t kNsPerSecond = 1'000'000'000;

    RiskEngine() = default;

    // Configuration: may allocate, not for the hot path. Resets the rate bucket to full.
    Status set_config(const RiskConfig& c) noexcept {
        if (c.rate_per_second > 0 && c.burst == 0) return Status::InvalidArgument;
        if (static_cast<uint8_t>(c.mode) > static_cast<uint8_t>(TradingMode::Halted))
            return Status::InvalidArgument;
        config_ = c;
        bucket_started_ = false;
        tokens_ = capacity();
        last_ts_ = 0;
        return Status::Ok;
    }

    Status set_limits(uint32_t instrument, const RiskLimits& l) noexcept {
        if (instrument >= kMaxInstruments) return Status::UnknownInstrument;
        if (l.max_order_qty < 0 || l.max_order_notional < 0 || l.max_position < 0)
            return Status::InvalidArgument;
        try {
            if (instrument >= slots_.size()) slots_.resize(size_t{instrument} + 1);
        } catch (...) {
            return Status::InvalidArgument;
        }
        slots_[instrument].known = true;
        slots_[instrument].limits = l;
        return Status::Ok;
    }

    // The venue's order-entry rules of an instrument, in data units (all zero: none).
    Status set_order_rules(uint32_t instrument, const OrderRules& r) noexcept {
        if (instrument >= kMaxInstruments) return Status::UnknownInstrument;
        if (!r.valid()) return Status::InvalidArgument;
        try {
            if (instrument >= slots_.size()) slots_.resize(size_t{instrument} + 1);
        } catch (...) {
            return Status::InvalidArgument;
        }
        slots_[instrument].rules = r;
        return Status::Ok;
    }

    void set_mode(TradingMode m) noexcept { config_.mode = m; }
    void set_kill_switch(bool on) noexcept { config_.kill_switch = on; }
    TradingMode mode() const noexcept { return config_.mode; }
    bool kill_switch() const noexcept { return config_.kill_switch; }
    const RiskConfig& config() const noexcept { return config_; }
    bool known(uint32_t instrument) const noexcept {
        return instrument < slots_.size() && slots_[instrument].known;
    }

    // Reduce-only's rule: a submit or replace may grow |position| unless it is on the side
    // opposite the position and, with the open orders on that side (counted as if they all fill:
    // Risk cannot know which will) and `also_open` more, goes no further than flat. A flip
    // through zero would open a new position.
    static bool could_grow_position(const Intent& in, const RiskView& v,
                                    __int128 also_open = 0) noexcept {
        const bool buy = in.side == Side::Bid;
        const __int128 pos = v.position;
        const __int128 delta =
            (buy ? v.open_buy_qty : v.open_sell_qty) + __int128{in.qty} + also_open;
        const bool opposite = buy ? pos < 0 : pos > 0;
        return !opposite || delta > abs128(pos);
    }

    // The verdict without side effects: no token taken, nothing counted. The Python layer uses it
    // to run custom rules before committing, so a custom denial does not spend a token.
    RiskReason evaluate(const Intent& in, const RiskView& v, int64_t ts_recv) const noexcept {
        const uint8_t kind = static_cast<uint8_t>(in.kind);
        if (kind < static_cast<uint8_t>(IntentKind::SubmitLimit) ||
            kind > static_cast<uint8_t>(IntentKind::Replace))
            return RiskReason::UnknownIntentKind;
        if (!known(in.instrument)) return RiskReason::UnknownInstrument;
        // Cancels only ever take risk off, so no control state or limit may block them.
        if (in.kind == IntentKind::Cancel) return RiskReason::Allowed;
        if (config_.kill_switch) return RiskReason::KillSwitch;
        if (config_.mode == TradingMode::Halted) return RiskReason::Halted;
        if (in.side != Side::Bid && in.side != Side::Ask) return RiskReason::BadSide;
        if (static_cast<uint8_t>(in.tif) > static_cast<uint8_t>(TimeInForce::PostOnly))
            return RiskReason::BadTimeInForce;
        if (in.qty <= 0) return RiskReason::NonPositiveQty;
        const bool priced = in.kind != IntentKind::SubmitMarket;
        if (priced && in.price <= 0) return RiskReason::NonPositivePrice;

        const RiskLimits& l = slots_[in.instrument].limits;
        const bool mid_ok = v.mid_known && v.mid > 0;
        const OrderRules& rules = slots_[in.instrument].rules;
        if (rules.any()) [[unlikely]] {
            // A market order's notional is judged at the mid, as for max_order_notional.
            if (!priced && rules.min_notional > 0 && !mid_ok) return RiskReason::NoMid;
            switch (check_order_rules(rules, priced, priced ? in.price : v.mid, in.qty, true)) {
                case OrderRuleBreach::None: break;
                case OrderRuleBreach::OffTick: return RiskReason::OffTick;
                case OrderRuleBreach::OffLot: return RiskReason::OffLot;
                case OrderRuleBreach::BelowMinQty: return RiskReason::BelowMinQty;
                case OrderRuleBreach::BelowMinNotional: return RiskReason::BelowMinNotional;
            }
        }
        const bool buy = in.side == Side::Bid;
        const __int128 pos = v.position;
        const __int128 delta = (buy ? v.open_buy_qty : v.open_sell_qty) + __int128{in.qty};
        const __int128 projected = buy ? pos + delta : pos - delta;

        if (config_.mode == TradingMode::ReduceOnly && could_grow_position(in, v))
            return RiskReason::ReduceOnly;
        if (l.max_order_qty > 0 && in.qty > l.max_order_qty) return RiskReason::MaxOrderQty;

        const bool needs_mid =
            l.price_band_bps > 0 || (!priced && l.max_order_notional > 0);
        if (needs_mid && !mid_ok) return RiskReason::NoMid;
        if (l.max_order_notional > 0) {
            const __int128 px = priced ? in.price : v.mid;
            if (px * in.qty > l.max_order_notional) return RiskReason::MaxOrderNotional;
        }
        if (priced && l.price_band_bps > 0) {
            const __int128 dist = abs128(static_cast<__int128>(in.price) - v.mid);
            if (dist * 10000 > static_cast<__int128>(v.mid) * l.price_band_bps)
                return RiskReason::PriceBand;
        }
        if (l.max_position > 0) {
            // An order that moves toward flat is never blocked by the position limit, even when
            // the position already exceeds it (the limit may have been lowered).
            const __int128 after = abs128(projected);
            if (after > l.max_position && after > abs128(pos)) return RiskReason::MaxPosition;
        }
        if (in.kind != IntentKind::Replace) {
            if (l.max_open_orders > 0 && v.open_orders >= l.max_open_orders)
                return RiskReason::MaxOpenOrders;
            if (config_.max_open_orders_total > 0 &&
                v.open_orders_total >= config_.max_open_orders_total)
                return RiskReason::MaxOpenOrdersTotal;
        }
        if (config_.rate_per_second > 0 && tokens_at(ts_recv) < kNsPerSecond)
            return RiskReason::RateLimit;
        return RiskReason::Allowed;
    }

    // Applies a verdict: counts it, and an allowed submit/replace takes one token. Only allowed
    // submits/replaces take tokens: denied work and cancels never reach the venue.
    void record(const Intent& in, RiskReason r, int64_t ts_recv) noexcept {
        const size_t ri = static_cast<size_t>(r);
        if (ri >= kRiskReasonCount) return;
        ++total_[ri];
        if (known(in.instrument)) ++slots_[in.instrument].counts[ri];
        if (r == RiskReason::Allowed && in.kind != IntentKind::Cancel &&
            config_.rate_per_second > 0) {
            tokens_ = tokens_at(ts_recv) - kNsPerSecond;
            advance(ts_recv);
        }
    }

    // The hot entry point: evaluate, then record. Allocation-free.
    RiskReason check(const Intent& in, const RiskView& v, int64_t ts_recv) noexcept {
        const RiskReason r = evaluate(in, v, ts_recv);
        record(in, r, ts_recv);
        return r;
    }

    // Verdicts per reason (index = RiskReason value, Allowed counts allowed intents).
    uint64_t count(RiskReason r) const noexcept {
        const size_t ri = static_cast<size_t>(r);
        return ri < kRiskReasonCount ? total_[ri] : 0;
    }
    // Per instrument; intents for unknown instruments are only in the totals.
    uint64_t count(uint32_t instrument, RiskReason r) const noexcept {
        const size_t ri = static_cast<size_t>(r);
        return ri < kRiskReasonCount && known(instrument) ? slots_[instrument].counts[ri] : 0;
    }
    void reset_counts() noexcept {
        for (auto& c : total_) c = 0;
        for (auto& s : slots_)
            for (auto& c : s.counts) c = 0;
    }

    // Whole tokens available at ts_recv (for reports and tests).
    uint64_t tokens(int64_t ts_recv) const noexcept {
        if (config_.rate_per_second == 0) return 0;
        return static_cast<uint64_t>(tokens_at(ts_recv) / kNsPerSecond);
    }

private:
    struct Slot {
        bool known = false;
        RiskLimits limits{};
        OrderRules rules{};
        uint64_t counts[kRiskReasonCount] = {};
    };

    static __int128 abs128(__int128 x) noexcept { return x < 0 ? -x : x; }

    // Tokens are kept in token-nanoseconds (1 token = 1e9 units) so refill is exact integer
    // arithmetic: floats would make the verdict depend on how often the bucket was refilled.
    int64_t capacity() const noexcept {
        return static_cast<int64_t>(config_.burst) * kNsPerSecond;  // <= 4.3e18, fits
    }
    int64_t tokens_at(int64_t ts) const noexcept {
        if (!bucket_started_ || ts <= last_ts_) return tokens_;  // time never runs backwards here
        const __int128 elapsed = static_cast<__int128>(ts) - last_ts_;
        const __int128 t = tokens_ + elapsed * config_.rate_per_second;
        return t >= capacity() ? capacity() : static_cast<int64_t>(t);
    }
    void advance(int64_t ts) noexcept {
        if (!bucket_started_ || ts > last_ts_) last_ts_ = ts;
        bucket_started_ = true;
    }

    RiskConfig config_{};
    std::vector<Slot> slots_;
    uint64_t total_[kRiskReasonCount] = {};
    int64_t tokens_ = 0;
    int64_t last_ts_ = 0;
    bool bucket_started_ = false;
};

}  // namespace lockstep
