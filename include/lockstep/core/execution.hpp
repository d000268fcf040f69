// Execution State: our own orders and positions, the part of State that venue responses advance.
//
// An Order exists from the moment Queue Processing dispatches it (submit(), status Submitted),
// never from the venue's acknowledgement: work still in the queue is not an Order, and an order
// the venue never answers is still ours (docs/architecture.md, "The processing chain").
//
// src/lockstep/reference/execution.py is a pure-Python twin with the same results; keep the two in
// step.
//
// Determinism: orders live in slots in dispatch order and every enumeration goes by slot; the
// client_order_id -> slot hash map is only ever looked up, never iterated.
//
// Units: prices are int64 ticks, quantities int64 lots. Money (cost, realized and unrealized PnL)
// is in ticks x lots, kept in __int128 so no product of two int64 can overflow. Fees are in
// whatever fixed-point unit the caller feeds (signed: positive is paid, a maker rebate is
// negative) and are never mixed into realized PnL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/core/risk.hpp"

namespace lockstep {

// Values are journaled and reported: never renumber, only add.
enum class OrderStatus : uint8_t {
    Submitted = 1,        // dispatched to the venue, no response yet
    Accepted = 2,         // acknowledged, resting
    PartiallyFilled = 3,
    Filled = 4,           // terminal
    Canceled = 5,         // terminal
    Rejected = 6,         // terminal
    Expired = 7,          // terminal (e.g. the unfilled rest of an IOC)
};

inline constexpr bool is_terminal(OrderStatus s) noexcept {
    return s == OrderStatus::Filled || s == OrderStatus::Canceled ||
           s == OrderStatus::Rejected || s == OrderStatus::Expired;
}

// Every operation answers with one of these; anything but Ok leaves State untouched, so a bad or
// out-of-order venue message is reported rather than half-applied.
enum class ExecResult : uint8_t {
    Ok = 0,
    UnknownOrder = 1,       // no order with that client_order_id
    DuplicateOrder = 2,     // submit() of a client_order_id that already exists
    InvalidTransition = 3,  // the event is not valid in the order's current status
    Overfill = 4,           // the fill would take filled_qty above qty
    BadQty = 5,             // qty <= 0 (submit, fill) or a replace qty not above filled_qty
    BadIntent = 6,          // submit() of a non-submit kind, side not bid/ask, or instrument id
                            // beyond kMaxInstruments
};

// A signed 128-bit value split for bindings that have no __int128 (Cython): value = hi * 2^64 + lo.
struct Wide {
    int64_t hi = 0;
    uint64_t lo = 0;
};

inline Wide to_wide(__int128 v) noexcept {
    return Wide{static_cast<int64_t>(v >> 64), static_cast<uint64_t>(v)};
}

// The nearest double. Not hi x 2^64 + lo in doubles: a small negative value has hi = -1 and lo
// near 2^64, and that sum cancels its low bits away (-30 came out as 0).
inline double to_double(Wide w) noexcept {
    return static_cast<double>((static_cast<__int128>(w.hi) << 64) | static_cast<__int128>(w.lo));
}

// One instrument's position. `cost` is the exact sum of price x lots of the open lots (a short's
// cost is what it was sold for), so the average entry price is cost / |position| with no rounding
// stored anywhere.
struct PositionView {
    int64_t position = 0;  // signed lots, long > 0
    Wide cost;             // ticks x lots, >= 0 for positive prices; 0 when flat
    Wide realized;         // ticks x lots, fees excluded
    Wide fees;             // sum of fill fees, signed
};

class ExecutionState {
public:
    // Instrument ids are dense instrument-table indices; a cap keeps a corrupt id from
    // allocating gigabytes (same bound as Risk).
    static constexpr uint32_t kMaxInstruments = RiskEngine::kMaxInstruments;
    static constexpr uint32_t kNoSlot = FlatHashMap<uint64_t>::kMissing;

    ExecutionState() = default;

    // Makes room for `orders` orders and instruments [0, instruments) without further allocation.
    // Allocates; call it up front, not on the hot path.
    void reserve(size_t orders, uint32_t instruments = 0) {
        id_.reserve(orders);
        instrument_.reserve(orders);
        side_.reserve(orders);
        tif_.reserve(orders);
        price_.reserve(orders);
        qty_.reserve(orders);
        filled_.reserve(orders);
        status_.reserve(orders);
        ts_submitted_.reserve(orders);
        ts_last_.reserve(orders);
        index_.reserve(orders);
        if (instruments > kMaxInstruments) instruments = kMaxInstruments;
        if (instruments > inst_.size()) inst_.resize(instruments);
    }

    // ---- transitions (hot path) ---------------------------------------------------------------
    // Order arrays grow amortized (doubling), so steady state is allocation-free. The first order
    // on a new instrument id may grow the instrument table. Out of memory aborts: these are
    // noexcept, like FlatHashMap::find_or_insert.

    // Queue Processing dispatched `in` (SubmitLimit or SubmitMarket) at ts: the Order is born.
    ExecResult submit(const Intent& in, int64_t ts) noexcept {
        if (in.kind != IntentKind::SubmitLimit && in.kind != IntentKind::SubmitMarket)
            return ExecResult::BadIntent;
        if (in.side != Side::Bid && in.side != Side::Ask) return ExecResult::BadIntent;
        if (in.instrument >= kMaxInstruments) return ExecResult::BadIntent;
        if (in.qty <= 0) return ExecResult::BadQty;
        bool inserted;
        uint32_t* cell = index_.find_or_insert(in.client_order_id, &inserted);
        if (!inserted) return ExecResult::DuplicateOrder;
        const uint32_t slot = static_cast<uint32_t>(id_.size());
        *cell = slot;
        if (in.instrument >= inst_.size()) inst_.resize(size_t{in.instrument} + 1);
        id_.push_back(in.client_order_id);
        instrument_.push_back(in.instrument);
        side_.push_back(in.side);
        tif_.push_back(in.tif);
        price_.push_back(in.price);
        qty_.push_back(in.qty);
        filled_.push_back(0);
        status_.push_back(OrderStatus::Submitted);
        ts_submitted_.push_back(ts);
        ts_last_.push_back(ts);
        Inst& p = inst_[in.instrument];
        ++p.open_orders;
        ++open_total_;
        (in.side == Side::Bid ? p.open_buy : p.open_sell) += in.qty;
        return ExecResult::Ok;
    }

    // The venue acknowledged. A fill may overtake the ack (the venue matched before its ack
    // reached us), so an ack on a PartiallyFilled order is accepted and changes only ts_last; a
    // second ack, or one after the order ended, is an InvalidTransition.
    ExecResult on_accepted(uint64_t id, int64_t ts) noexcept {
        const uint32_t s = index_.find(id);
        if (s == kNoSlot) return ExecResult::UnknownOrder;
        if (status_[s] == OrderStatus::Submitted) {
            status_[s] = OrderStatus::Accepted;
        } else if (status_[s] != OrderStatus::PartiallyFilled) {
            return ExecResult::InvalidTransition;
        }
        ts_last_[s] = ts;
        return ExecResult::Ok;
    }

    // The venue refused the new order: only a Submitted order can be rejected (a refused cancel
    // or replace request is not an order status change).
    ExecResult on_rejected(uint64_t id, int64_t ts) noexcept {
        const uint32_t s = index_.find(id);
        if (s == kNoSlot) return ExecResult::UnknownOrder;
        if (status_[s] != OrderStatus::Submitted) return ExecResult::InvalidTransition;
        finish(s, OrderStatus::Rejected, ts);
        return ExecResult::Ok;
    }

    ExecResult on_canceled(uint64_t id, int64_t ts) noexcept {
        return end_live(id, OrderStatus::Canceled, ts);
    }

    ExecResult on_expired(uint64_t id, int64_t ts) noexcept {
        return end_live(id, OrderStatus::Expired, ts);
    }

    // A fill of `qty` lots at `price`. Allowed on Submitted as well as Accepted/PartiallyFilled:
    // the venue may fill before its ack arrives. Completing the order makes it Filled, otherwise
    // PartiallyFilled. `maker` is accepted for the event's completeness; fees already carry its
    // economic effect (a rebate is a negative fee).
    ExecResult on_fill(uint64_t id, int64_t price, int64_t qty, int64_t fee, bool maker,
                       int64_t ts) noexcept {
        (void)maker;
        const uint32_t s = index_.find(id);
        if (s == kNoSlot) return ExecResult::UnknownOrder;
        if (is_terminal(status_[s])) return ExecResult::InvalidTransition;
        if (qty <= 0) return ExecResult::BadQty;
        if (qty > qty_[s] - filled_[s]) return ExecResult::Overfill;
        filled_[s] += qty;
        Inst& p = inst_[instrument_[s]];
        const bool buy = side_[s] == Side::Bid;
        (buy ? p.open_buy : p.open_sell) -= qty;
        p.fees += fee;
        apply_fill(p, buy, price, qty);
        ts_last_[s] = ts;
        if (filled_[s] == qty_[s]) {
            status_[s] = OrderStatus::Filled;
            --p.open_orders;
            --open_total_;
        } else {
            status_[s] = OrderStatus::PartiallyFilled;
        }
        return ExecResult::Ok;
    }

    // The venue broke one of our fills (`side`, `price`, `qty`, `fee` as it was filled): the trade
    // never happened. Booked as the opposite trade at the same price with the fee given back, so
    // the position, the cash and the total PnL are what they would be without it; the split
    // between realized and unrealized follows average cost from here. The order keeps its filled
    // qty (a broken trade does not give shares back to the order), so it needs no order at all:
    // the order may have ended and been compacted away long before.
    ExecResult on_trade_broken(uint32_t instrument, Side side, int64_t price, int64_t qty,
                               int64_t fee) noexcept {
        const ExecResult r = check_correction(instrument, side, qty);
        if (r != ExecResult::Ok) return r;
        Inst& p = inst_[instrument];
        p.fees -= fee;
        apply_fill(p, side != Side::Bid, price, qty);
        return ExecResult::Ok;
    }

    // The venue corrected the price of one of our fills from `old_price` to `new_price`: booked as
    // the opposite trade at the old price and the trade again at the new one (position unchanged,
    // cash moved by qty x the difference); `fee_change` is what the fee moved by with the price.
    ExecResult on_trade_corrected(uint32_t instrument, Side side, int64_t old_price,
                                  int64_t new_price, int64_t qty, int64_t fee_change) noexcept {
        const ExecResult r = check_correction(instrument, side, qty);
        if (r != ExecResult::Ok) return r;
        Inst& p = inst_[instrument];
        const bool buy = side == Side::Bid;
        p.fees += fee_change;
        apply_fill(p, !buy, old_price, qty);
        apply_fill(p, buy, new_price, qty);
        return ExecResult::Ok;
    }

    // The venue confirmed a replace: the order now rests at new_price for a total of new_qty lots
    // (filled lots included, as in FIX OrderQty), keeping its status. new_qty must leave something
    // open, i.e. exceed filled_qty; a replace that would end the order is reported as BadQty.
    // Allowed on any live order, Submitted included: the ack may still be in flight.
    ExecResult on_replaced(uint64_t id, int64_t new_price, int64_t new_qty, int64_t ts) noexcept {
        const uint32_t s = index_.find(id);
        if (s == kNoSlot) return ExecResult::UnknownOrder;
        if (is_terminal(status_[s])) return ExecResult::InvalidTransition;
        if (new_qty <= filled_[s]) return ExecResult::BadQty;
        Inst& p = inst_[instrument_[s]];
        (side_[s] == Side::Bid ? p.open_buy : p.open_sell) += new_qty - qty_[s];
        price_[s] = new_price;
        qty_[s] = new_qty;
        ts_last_[s] = ts;
        return ExecResult::Ok;
    }

    // Drops terminal orders, keeping live ones in dispatch order. Slots are renumbered and
    // terminal ids are forgotten (slot() and the duplicate check no longer see them), so callers
    // that need history keep it elsewhere (the engine's records). Positions are untouched. O(n).
    void compact() noexcept {
        size_t w = 0;
        for (size_t r = 0; r < id_.size(); ++r) {
            if (is_terminal(status_[r])) continue;
            id_[w] = id_[r];
            instrument_[w] = instrument_[r];
            side_[w] = side_[r];
            tif_[w] = tif_[r];
            price_[w] = price_[r];
            qty_[w] = qty_[r];
            filled_[w] = filled_[r];
            status_[w] = status_[r];
            ts_submitted_[w] = ts_submitted_[r];
            ts_last_[w] = ts_last_[r];
            ++w;
        }
        id_.resize(w);
        instrument_.resize(w);
        side_.resize(w);
        tif_.resize(w);
        price_.resize(w);
        qty_.resize(w);
        filled_.resize(w);
        status_.resize(w);
        ts_submitted_.resize(w);
        ts_last_.resize(w);
        index_.clear();
        for (size_t s = 0; s < w; ++s) index_.insert(id_[s], static_cast<uint32_t>(s));
    }

    // ---- orders --------------------------------------------------------------------------------

    size_t order_count() const noexcept { return id_.size(); }
    // Slot of an order (dispatch order), kNoSlot if unknown.
    uint32_t slot(uint64_t id) const noexcept { return index_.find(id); }
    // Column accessors by slot; slot < order_count().
    uint64_t client_order_id(uint32_t s) const noexcept { return id_[s]; }
    uint32_t instrument(uint32_t s) const noexcept { return instrument_[s]; }
    Side side(uint32_t s) const noexcept { return side_[s]; }
    TimeInForce tif(uint32_t s) const noexcept { return tif_[s]; }
    int64_t price(uint32_t s) const noexcept { return price_[s]; }
    int64_t qty(uint32_t s) const noexcept { return qty_[s]; }
    int64_t filled_qty(uint32_t s) const noexcept { return filled_[s]; }
    OrderStatus status(uint32_t s) const noexcept { return status_[s]; }
    int64_t ts_submitted(uint32_t s) const noexcept { return ts_submitted_[s]; }
    int64_t ts_last(uint32_t s) const noexcept { return ts_last_[s]; }

    // ---- positions and aggregates --------------------------------------------------------------

    PositionView position(uint32_t instrument) const noexcept {
        PositionView v;
        if (instrument >= inst_.size()) return v;
        const Inst& p = inst_[instrument];
        v.position = p.position;
        v.cost = to_wide(p.cost);
        v.realized = to_wide(p.realized);
        v.fees = to_wide(p.fees);
        return v;
    }

    // Exact PnL of the open position if it were closed at `mark`: for a long mark x pos - cost,
    // for a short cost - mark x |pos|. Fees excluded.
    __int128 unrealized(uint32_t instrument, int64_t mark) const noexcept {
        if (instrument >= inst_.size()) return 0;
        const Inst& p = inst_[instrument];
        const __int128 value = static_cast<__int128>(mark) * p.position;  // signed
        return p.position >= 0 ? value - p.cost : value + p.cost;
    }
    Wide unrealized_wide(uint32_t instrument, int64_t mark) const noexcept {
        return to_wide(unrealized(instrument, mark));
    }

    uint32_t open_orders(uint32_t instrument) const noexcept {
        return instrument < inst_.size() ? inst_[instrument].open_orders : 0;
    }
    int64_t open_buy_qty(uint32_t instrument) const noexcept {
        return instrument < inst_.size() ? inst_[instrument].open_buy : 0;
    }
    int64_t open_sell_qty(uint32_t instrument) const noexcept {
        return instrument < inst_.size() ? inst_[instrument].open_sell : 0;
    }
    uint32_t open_orders_total() const noexcept { return open_total_; }

    // How much of the level `price` on `side` is ours: the unfilled rest of our orders the venue
    // has acknowledged there (Accepted, PartiallyFilled; a Submitted order is not on the venue's
    // book yet). A live feed shows our orders among everyone's, so a strategy subtracts this to
    // see the others' liquidity. A scan of the orders held: a query, not a per-event path.
    int64_t own_qty_at(uint32_t instrument, Side side, int64_t price) const noexcept {
        int64_t own = 0;
        for (size_t s = 0; s < id_.size(); ++s) {
            const OrderStatus st = status_[s];
            if ((st == OrderStatus::Accepted || st == OrderStatus::PartiallyFilled) &&
                instrument_[s] == instrument && side_[s] == side && price_[s] == price) {
                own += qty_[s] - filled_[s];
            }
        }
        return own;
    }

    // What Risk reads of State for `instrument`: filled fresh per check so Risk never holds a copy
    // that could drift.
    void fill_risk_view(uint32_t instrument, bool mid_known, int64_t mid,
                        RiskView* out) const noexcept {
        out->position = instrument < inst_.size() ? inst_[instrument].position : 0;
        out->open_orders = open_orders(instrument);
        out->open_buy_qty = open_buy_qty(instrument);
        out->open_sell_qty = open_sell_qty(instrument);
        out->mid_known = mid_known;
        out->mid = mid_known ? mid : 0;
        out->open_orders_total = open_total_;
    }

private:
    struct Inst {
        int64_t position = 0;
        __int128 cost = 0;
        __int128 realized = 0;
        __int128 fees = 0;
        uint32_t open_orders = 0;
        int64_t open_buy = 0;   // remaining lots of live buys
        int64_t open_sell = 0;  // remaining lots of live sells
    };

    ExecResult end_live(uint64_t id, OrderStatus to, int64_t ts) noexcept {
        const uint32_t s = index_.find(id);
        if (s == kNoSlot) return ExecResult::UnknownOrder;
        if (is_terminal(status_[s])) return ExecResult::InvalidTransition;
        finish(s, to, ts);
        return ExecResult::Ok;
    }

    // A live order ends without filling the rest: its remaining lots leave the open aggregates.
    // What a broken or corrected fill is checked for; Ok: its instrument's position exists.
    ExecResult check_correction(uint32_t instrument, Side side, int64_t qty) noexcept {
        if (instrument >= kMaxInstruments || (side != Side::Bid && side != Side::Ask))
            return ExecResult::BadIntent;
        if (qty <= 0) return ExecResult::BadQty;
        if (instrument >= inst_.size()) inst_.resize(size_t{instrument} + 1);
        return ExecResult::Ok;
    }

    void finish(uint32_t s, OrderStatus to, int64_t ts) noexcept {
        Inst& p = inst_[instrument_[s]];
        (side_[s] == Side::Bid ? p.open_buy : p.open_sell) -= qty_[s] - filled_[s];
        --p.open_orders;
        --open_total_;
        status_[s] = to;
        ts_last_[s] = ts;
    }

    // Average-cost accounting. Adding to a position adds price x qty to cost. Reducing it releases
    // the closed lots' share of cost, cost x closed / |position|, truncated toward zero; the
    // rounding residue stays in the cost of the lots still open, so once the position is flat
    // again the realized PnL equals the exact sum of its cash flows. A fill through zero realizes
    // the whole old position and opens the rest at the fill price.
    static void apply_fill(Inst& p, bool buy, int64_t price, int64_t qty) noexcept {
        const __int128 px = price;
        const bool adds = p.position == 0 || (p.position > 0) == buy;
        if (adds) {
            p.position += buy ? qty : -qty;
            p.cost += px * qty;
            return;
        }
        const int64_t held = p.position > 0 ? p.position : -p.position;
        const int64_t closed = qty < held ? qty : held;
        const __int128 released = closed == held ? p.cost : p.cost * closed / held;
        const __int128 proceeds = px * closed;
        // Long: sold closed lots for proceeds. Short: bought them back for proceeds.
        p.realized += p.position > 0 ? proceeds - released : released - proceeds;
        p.cost -= released;
        p.position += buy ? closed : -closed;
        const int64_t rest = qty - closed;
        if (rest > 0) {
            p.position += buy ? rest : -rest;
            p.cost = px * rest;
        }
    }

    // Order columns, one entry per slot, in dispatch order.
    std::vector<uint64_t> id_;
    std::vector<uint32_t> instrument_;
    std::vector<Side> side_;
    std::vector<TimeInForce> tif_;
    std::vector<int64_t> price_;
    std::vector<int64_t> qty_;
    std::vector<int64_t> filled_;
    std::vector<OrderStatus> status_;
    std::vector<int64_t> ts_submitted_;
    std::vector<int64_t> ts_last_;

    FlatHashMap<uint64_t> index_;  // client_order_id -> slot; lookups only
    std::vector<Inst> inst_;       // by instrument id
    uint32_t open_total_ = 0;
};

}  // namespace lockstep
