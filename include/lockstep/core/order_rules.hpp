// A venue's order-entry rules for one instrument (tick size, lot size, minimum quantity, minimum
// notional), in the units of the data: Risk denies an intent that breaks one, and the Simulated
// Venue rejects such an order even when Risk lets it through (a venue enforces its own rules).
//
// These are not the data increments. The data increments (docs/encoding.md) are the grid the
// price and qty columns are stored in, fine enough for every value the venue publishes; the
// order-entry rules are what the venue accepts from us, usually coarser: Binance spot BTCUSDT
// publishes depth quantities in 0.000001 steps while orders step by 0.00001. Intents carry
// prices and quantities in data units, so each rule is expressed here as a number of data units
// (the Python layer converts a rule given in real units exactly; docs/encoding.md).
#pragma once

#include <cstdint>

namespace lockstep {

// 0 means "no rule" for every field: an instrument whose rules are unknown is not checked.
struct OrderRules {
    int64_t price_tick = 0;    // a priced order's price is a multiple of this many price units
    int64_t qty_lot = 0;       // an order's qty is a multiple of this many size units
    int64_t min_qty = 0;       // an order's qty is at least this many size units
    int64_t min_notional = 0;  // price x qty (price units x size units) is at least this

    bool any() const noexcept {
        return price_tick != 0 || qty_lot != 0 || min_qty != 0 || min_notional != 0;
    }
    bool valid() const noexcept {
        return price_tick >= 0 && qty_lot >= 0 && min_qty >= 0 && min_notional >= 0;
    }
};

// Which rule an order breaks, in the order they are checked.
enum class OrderRuleBreach : uint8_t { None = 0, OffTick, OffLot, BelowMinQty, BelowMinNotional };

// `price` is the order's price (priced orders) or the price its notional is judged at (market
// orders: the caller's reference, e.g. the mid); `notional_price_known` false skips the notional
// rule (a market order with no reference price). qty > 0 and, when priced, price > 0 (checked
// before these rules).
inline OrderRuleBreach check_order_rules(const OrderRules& r, bool priced, int64_t price,
                                         int64_t qty, bool notional_price_known) noexcept {
    if (priced && r.price_tick > 1 && price % r.price_tick != 0) return OrderRuleBreach::OffTick;
    if (r.qty_lot > 1 && qty % r.qty_lot != 0) return OrderRuleBreach::OffLot;
    if (qty < r.min_qty) return OrderRuleBreach::BelowMinQty;
    if (r.min_notional > 0 && notional_price_known &&
        static_cast<__int128>(price) * qty < r.min_notional)
        return OrderRuleBreach::BelowMinNotional;
    return OrderRuleBreach::None;
}

}  // namespace lockstep
