// Matching core of the Simulated Venue on L2 data: our orders against a replayed market, one
// instrument, with a choice of queue-position model (Conservative, hftbacktest's "risk-averse";
// or Probabilistic, its power-law ProbQueueModel).
//
// docs/venue.md states exactly what can fill an order, when, and what each model cannot know;
// src/lockstep/reference/matching.py is the pure-Python twin. Keep the three in step.
//
// In short: submit() and a priority-losing replace() take the visible opposite levels at once
// (PostOnly: rejected if it would cross); a resting order fills only from trade prints (the
// excess over its queue-ahead at its price, or all of it on a print through its price). L2 level
// updates never fill; they only move queue-ahead, as the queue model says.
//
// Output goes to an event buffer the caller drains. Storage grows only when the resting orders or
// events per drain exceed anything seen before: allocation-free per call in steady state.
// Deterministic: no clocks, no hashing, orders visited in insertion order, the probabilistic
// model's share computed by the same IEEE operations as the reference. Client order ids are found
// by linear scan: fine for the handful of orders a strategy keeps per instrument.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/core/l2_book.hpp"
#include "lockstep/core/order_rules.hpp"
#include "lockstep/core/l3_book.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep {

// Values are reported to strategies: never renumber, only add.
enum class MatchEventKind : uint8_t {
    Fill = 1,             // price, qty, maker
    Canceled = 2,         // qty = the quantity that was canceled (IOC remainder or cancel())
    Rejected = 3,         // submit refused; qty = the order's qty; reason says why
    CancelRejected = 4,   // cancel() of an order that is not resting; reason = UnknownOrder
    Replaced = 5,         // replace() accepted: price = new price, qty = new remaining
    ReplaceRejected = 6,  // replace() refused (order unchanged); price/qty as asked; reason
};

enum class MatchReject : uint8_t {
    None = 0,
    PostOnlyWouldCross = 1,
    BadQty = 2,          // qty <= 0
    BadPrice = 3,        // outside [kMinPrice, kMaxPrice]
    BadSide = 4,
    BadTif = 5,
    DuplicateOrder = 6,  // client_order_id is already resting
    UnknownOrder = 7,    // cancel()/replace() target is not resting
    BookUnavailable = 8, // the simulated venue's book is invalid (after a feed GAP, until a
                         // snapshot): nothing to match against, so new orders and replaces wait
    NotTrading = 9,      // the instrument is not in continuous trading (pre-open, auction,
                         // halted, closed): the simulated venue runs no auction, so new orders
                         // and replaces wait for the open
    // The simulated venue's order-entry rules (core/order_rules.hpp), for submits and replaces:
    OffTick = 10,           // price not a multiple of the tick size
    OffLot = 11,            // qty not a multiple of the lot size
    BelowMinQty = 12,       // qty below the minimum quantity
    BelowMinNotional = 13,  // price (mid for market orders) x qty below the minimum notional
};

// The reject a venue gives an order that breaks its order-entry rules (None: it breaks none);
// arguments as check_order_rules takes them. The simulated venue and the loopback venue both ask.
inline MatchReject order_rules_reject(const OrderRules& r, bool priced, int64_t price, int64_t qty,
                                      bool notional_price_known) noexcept {
    switch (check_order_rules(r, priced, price, qty, notional_price_known)) {
        case OrderRuleBreach::None: break;
        case OrderRuleBreach::OffTick: return MatchReject::OffTick;
        case OrderRuleBreach::OffLot: return MatchReject::OffLot;
        case OrderRuleBreach::BelowMinQty: return MatchReject::BelowMinQty;
        case OrderRuleBreach::BelowMinNotional: return MatchReject::BelowMinNotional;
    }
    return MatchReject::None;
}

enum class SubmitOutcome : uint8_t {
    Rested = 0,    // some (possibly all) of the order rests; filled_qty may be > 0
    Filled = 1,    // fully filled at submission
    Canceled = 2,  // IOC: the remainder (possibly all of it) was canceled
    Rejected = 3,
};

enum class QueueModel : uint8_t {
    Conservative = 0,   // level decreases are assumed behind us
    Probabilistic = 1,  // level decreases are shared between ahead and behind (power law)
};

struct MatchEvent {
    MatchEventKind kind{};
    MatchReject reason = MatchReject::None;
    bool maker = false;
    Side side = Side::None;  // the order's side (None when the order is unknown or its side bad)
    uint64_t client_order_id = 0;
    int64_t price = 0;
    int64_t qty = 0;
};

struct MatchResult {
    SubmitOutcome outcome = SubmitOutcome::Rejected;
    MatchReject reason = MatchReject::None;
    int64_t filled_qty = 0;
    int64_t resting_qty = 0;
};

struct RestingOrder {
    uint64_t client_order_id = 0;
    Side side = Side::None;
    int64_t price = 0;
    int64_t qty = 0;          // remaining
    int64_t queue_ahead = 0;  // visible quantity still ahead of us at our price
    TimeInForce tif = TimeInForce::GTC;  // GTC or PostOnly: an IOC never rests
};

namespace detail {

inline bool crosses(bool buy, int64_t limit, int64_t level) noexcept {
    return buy ? level <= limit : level >= limit;
}

inline Side known_side(Side s) noexcept {
    return s == Side::Bid || s == Side::Ask ? s : Side::None;
}

inline Side opposite(Side s) noexcept { return s == Side::Bid ? Side::Ask : Side::Bid; }

// Field checks of a new order, in the order the reasons are reported; duplicates and crossing are
// the caller's.
inline MatchReject check_order(Side side, TimeInForce tif, int64_t price, int64_t qty) noexcept {
    if (side != Side::Bid && side != Side::Ask) return MatchReject::BadSide;
    if (tif != TimeInForce::GTC && tif != TimeInForce::IOC && tif != TimeInForce::PostOnly) {
        return MatchReject::BadTif;
    }
    if (qty <= 0) return MatchReject::BadQty;
    if (!price_in_range(price)) return MatchReject::BadPrice;
    return MatchReject::None;
}

// The aggregated levels a matcher takes from and checks crossing against.
inline const L2Book& levels_of(const L2Book& book) noexcept { return book; }
inline const L2Book& levels_of(const L3Book& book) noexcept { return book.levels(); }

inline bool would_cross(const L2Book& book, Side side, int64_t price) noexcept {
    const Side opp = opposite(side);
    return !book.empty(opp) && crosses(side == Side::Bid, price, book.best_price(opp));
}

// Takes the visible opposite levels up to `price`, best first; emit(level_price, qty) per fill.
// Returns what is left of `qty`.
template <class Emit>
int64_t take(const L2Book& book, Side side, int64_t price, int64_t qty, Emit&& emit) {
    const bool buy = side == Side::Bid;
    int64_t left = qty;
    book.for_each_level(opposite(side), [&](int64_t p, int64_t q) {
        if (!crosses(buy, price, p)) return false;
        const int64_t t = q < left ? q : left;
        if (t > 0) {
            emit(p, t);
            left -= t;
        }
        return left > 0;
    });
    return left;
}

// The part of a level decrease `d` taken from the `ahead` quantity when `behind` sits behind us:
// floor(d * f(ahead) / (f(ahead) + f(behind))), f(x) = x^power, capped at ahead. The ratio is
// formed from the smaller over the larger quantity so that x^power cannot overflow; the
// reference repeats these exact double operations, so both round the same way.
inline int64_t ahead_share(int64_t d, int64_t ahead, int64_t behind, double power) noexcept {
    if (d <= 0 || ahead <= 0) return 0;
    int64_t r = d;
    if (behind > 0) {
        const double a = static_cast<double>(ahead), b = static_cast<double>(behind);
        double p;
        if (ahead >= behind) {
            p = 1.0 / (1.0 + std::pow(b / a, power));
        } else {
            const double t = std::pow(a / b, power);
            p = t / (1.0 + t);
        }
        const double x = std::floor(static_cast<double>(d) * p);
        r = !(x > 0.0) ? 0 : (x >= static_cast<double>(d) ? d : static_cast<int64_t>(x));
    }
    return r < ahead ? r : ahead;
}

inline int64_t saturating_add(int64_t a, int64_t b) noexcept {
    int64_t s;
    return __builtin_add_overflow(a, b, &s) ? INT64_MAX : s;
}

}  // namespace detail

// The order-entry half both matchers share: submit, cancel and replace against the visible
// levels, the event buffer and the resting-order queries. A matcher (Derived) keeps its resting
// orders in `orders_` (Slots with an `.order`), and supplies rest() (join a level: the queue
// model's start) and erase(i), plus the market-side rules (on_trade, on_level / on_l3).
template <class Derived, class Book>
class OrderEntry {
public:
    MatchResult submit(uint64_t client_order_id, Side side, TimeInForce tif, int64_t price,
                       int64_t qty, const Book& book) {
        MatchReject bad = detail::check_order(side, tif, price, qty);
        if (bad == MatchReject::None && find(client_order_id) != kNone) {
            bad = MatchReject::DuplicateOrder;
        }
        if (bad == MatchReject::None && tif == TimeInForce::PostOnly &&
            detail::would_cross(detail::levels_of(book), side, price)) {
            bad = MatchReject::PostOnlyWouldCross;
        }
        if (bad != MatchReject::None) {
            emit(MatchEventKind::Rejected, bad, false, detail::known_side(side), client_order_id,
                 price, qty);
            return MatchResult{SubmitOutcome::Rejected, bad, 0, 0};
        }
        int64_t left = qty;
        if (tif != TimeInForce::PostOnly) left = take(client_order_id, side, price, qty, book);
        const int64_t filled = qty - left;
        if (left == 0) return MatchResult{SubmitOutcome::Filled, MatchReject::None, filled, 0};
        if (tif == TimeInForce::IOC) {
            emit(MatchEventKind::Canceled, MatchReject::None, false, side, client_order_id, price,
                 left);
            return MatchResult{SubmitOutcome::Canceled, MatchReject::None, filled, 0};
        }
        self().rest(client_order_id, side, tif, price, left, book);
        return MatchResult{SubmitOutcome::Rested, MatchReject::None, filled, left};
    }

    // Submit from an Intent: SubmitLimit as above; SubmitMarket as an IOC at the widest valid
    // price (its price and tif are ignored). Any other kind is Rejected with BadTif.
    MatchResult submit(const Intent& in, const Book& book) {
        if (in.kind == IntentKind::SubmitMarket) {
            const int64_t p = in.side == Side::Bid ? kMaxPrice : kMinPrice;
            return submit(in.client_order_id, in.side, TimeInForce::IOC, p, in.qty, book);
        }
        if (in.kind != IntentKind::SubmitLimit) {
            emit(MatchEventKind::Rejected, MatchReject::BadTif, false, detail::known_side(in.side),
                 in.client_order_id, in.price, in.qty);
            return MatchResult{SubmitOutcome::Rejected, MatchReject::BadTif, 0, 0};
        }
        return submit(in.client_order_id, in.side, in.tif, in.price, in.qty, book);
    }

    // Removes a resting order (Canceled event with its remaining qty) and returns true; otherwise
    // emits CancelRejected/UnknownOrder and returns false.
    bool cancel(uint64_t client_order_id) {
        const size_t i = find(client_order_id);
        if (i == kNone) {
            emit(MatchEventKind::CancelRejected, MatchReject::UnknownOrder, false, Side::None,
                 client_order_id, 0, 0);
            return false;
        }
        const RestingOrder o = self().orders_[i].order;
        self().erase(i);
        emit(MatchEventKind::Canceled, MatchReject::None, false, o.side, o.client_order_id,
             o.price, o.qty);
        return true;
    }

    // The resting order now wants `new_price` / `new_remaining_qty` (docs/venue.md, "replace").
    // Rejections (order unchanged): UnknownOrder, BadQty, BadPrice, PostOnlyWouldCross. Otherwise a
    // Replaced event first, then: same price and qty not increased keeps the queue position;
    // anything else re-enters like a submit (a GTC that crosses takes, PostOnly never takes) and
    // the remainder rests at the back (rest(): the queue model's start, and last in insertion
    // order).
    MatchResult replace(uint64_t client_order_id, int64_t new_price, int64_t new_remaining_qty,
                        const Book& book) {
        auto& orders = self().orders_;
        const size_t i = find(client_order_id);
        MatchReject bad = MatchReject::None;
        bool keep = false;
        Side side = Side::None;
        if (i == kNone) {
            bad = MatchReject::UnknownOrder;
        } else {
            const RestingOrder& o = orders[i].order;
            side = o.side;
            keep = new_price == o.price && new_remaining_qty <= o.qty;
            if (new_remaining_qty <= 0) bad = MatchReject::BadQty;
            else if (!price_in_range(new_price)) bad = MatchReject::BadPrice;
            else if (!keep && o.tif == TimeInForce::PostOnly &&
                     detail::would_cross(detail::levels_of(book), side, new_price)) {
                bad = MatchReject::PostOnlyWouldCross;
            }
        }
        if (bad != MatchReject::None) {
            emit(MatchEventKind::ReplaceRejected, bad, false, side, client_order_id, new_price,
                 new_remaining_qty);
            return MatchResult{SubmitOutcome::Rejected, bad, 0, 0};
        }
        emit(MatchEventKind::Replaced, MatchReject::None, false, side, client_order_id, new_price,
             new_remaining_qty);
        if (keep) {
            orders[i].order.qty = new_remaining_qty;
            return MatchResult{SubmitOutcome::Rested, MatchReject::None, 0, new_remaining_qty};
        }
        const TimeInForce tif = orders[i].order.tif;
        self().erase(i);
        int64_t left = new_remaining_qty;
        if (tif != TimeInForce::PostOnly) {
            left = take(client_order_id, side, new_price, new_remaining_qty, book);
        }
        const int64_t filled = new_remaining_qty - left;
        if (left == 0) return MatchResult{SubmitOutcome::Filled, MatchReject::None, filled, 0};
        self().rest(client_order_id, side, tif, new_price, left, book);
        return MatchResult{SubmitOutcome::Rested, MatchReject::None, filled, left};
    }

    // Output buffer, oldest first; the caller reads then clears it.
    const std::vector<MatchEvent>& events() const noexcept { return events_; }
    void clear_events() noexcept { events_.clear(); }

    // Resting orders in insertion order (a priority-losing replace moves an order to the end).
    bool has_resting() const noexcept { return !self().orders_.empty(); }
    size_t resting() const noexcept { return self().orders_.size(); }
    const RestingOrder& resting_at(size_t i) const noexcept { return self().orders_[i].order; }
    const RestingOrder* find_order(uint64_t client_order_id) const noexcept {
        const size_t i = find(client_order_id);
        return i == kNone ? nullptr : &self().orders_[i].order;
    }

protected:
    static constexpr size_t kNone = SIZE_MAX;

    // Takes the visible opposite levels (taker fills, at each level's price).
    int64_t take(uint64_t id, Side side, int64_t price, int64_t qty, const Book& book) {
        return detail::take(detail::levels_of(book), side, price, qty, [&](int64_t p, int64_t q) {
            emit(MatchEventKind::Fill, MatchReject::None, false, side, id, p, q);
        });
    }

    // A linear scan: a strategy keeps a handful of orders per instrument, not thousands.
    size_t find(uint64_t id) const noexcept {
        const auto& orders = self().orders_;
        for (size_t i = 0; i < orders.size(); ++i) {
            if (orders[i].order.client_order_id == id) return i;
        }
        return kNone;
    }

    void emit(MatchEventKind k, MatchReject r, bool maker, Side side, uint64_t id, int64_t price,
              int64_t qty) {
        events_.push_back(MatchEvent{k, r, maker, side, id, price, qty});
    }

    std::vector<MatchEvent> events_;

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

class L2Matcher : public OrderEntry<L2Matcher, L2Book> {
public:
    L2Matcher() = default;

    // Not for the hot path: sizes storage so later calls never allocate below these counts.
    void reserve(size_t resting, size_t events) {
        orders_.reserve(resting);
        events_.reserve(events);
    }

    // Default Conservative. `power` (Probabilistic only) is n in f(x) = x^n; finite and >= 0,
    // else InvalidArgument and nothing changes.
    Status set_queue_model(QueueModel m, double power = 2.0) noexcept {
        if ((m != QueueModel::Conservative && m != QueueModel::Probabilistic) ||
            !std::isfinite(power) || power < 0.0) {
            return Status::InvalidArgument;
        }
        model_ = m;
        power_ = power;
        return Status::Ok;
    }
    QueueModel queue_model() const noexcept { return model_; }
    double queue_power() const noexcept { return power_; }

    // A market trade print; `aggressor` is the taker's side. qty <= 0 is ignored.
    void on_trade(int64_t price, int64_t qty, Side aggressor) {
        if (qty <= 0 || (aggressor != Side::Bid && aggressor != Side::Ask)) return;
        const Side ours = detail::opposite(aggressor);
        int64_t used = 0;  // excess of this trade already given to our orders at `price`
        size_t w = 0;
        for (size_t r = 0; r < orders_.size(); ++r) {
            Slot s = orders_[r];
            RestingOrder& o = s.order;
            if (o.side == ours) {
                const bool through = ours == Side::Bid ? price < o.price : price > o.price;
                int64_t fill = 0;
                if (through) {
                    fill = o.qty;
                } else if (price == o.price) {
                    // Excess over queue-ahead, less what earlier orders of ours took from it.
                    const int64_t excess = qty - o.queue_ahead - used;
                    fill = excess <= 0 ? 0 : (excess < o.qty ? excess : o.qty);
                    used += fill;
                    o.queue_ahead = o.queue_ahead > qty ? o.queue_ahead - qty : 0;
                    // The level update that follows will show this trade as a decrease.
                    s.traded = detail::saturating_add(s.traded, qty);
                }
                if (fill > 0) {
                    emit(MatchEventKind::Fill, MatchReject::None, true, o.side,
                         o.client_order_id, o.price, fill);
                    o.qty -= fill;
                }
            }
            if (o.qty > 0) orders_[w++] = s;  // compact in place: insertion order is kept
        }
        orders_.resize(w);
    }

    // Called BEFORE the book applies an L2 update of (side, price) from old_qty (= the book's
    // qty_at) to new_qty. Never fills. Both models cap queue-ahead at new_qty. Probabilistic also
    // moves a decrease not explained by trades at this price since the last update of the level
    // partly ahead of us (ahead_share). Increases are joiners behind us.
    void on_level(Side side, int64_t price, int64_t old_qty, int64_t new_qty) noexcept {
        if (new_qty < 0) return;
        for (Slot& s : orders_) {
            RestingOrder& o = s.order;
            if (o.side != side || o.price != price) continue;
            const int64_t traded = s.traded;
            s.traded = 0;
            if (model_ == QueueModel::Probabilistic && old_qty > 0) {
                // old_qty > 0 and traded >= 0: no overflow.
                const int64_t base = old_qty - traded;
                if (base > new_qty) {
                    const int64_t behind = base > o.queue_ahead ? base - o.queue_ahead : 0;
                    o.queue_ahead -=
                        detail::ahead_share(base - new_qty, o.queue_ahead, behind, power_);
                }
            }
            if (o.queue_ahead > new_qty) o.queue_ahead = new_qty;
        }
    }

private:
    friend class OrderEntry<L2Matcher, L2Book>;

    struct Slot {
        RestingOrder order;
        int64_t traded = 0;  // trade quantity at our price since the last update of our level
    };

    void rest(uint64_t id, Side side, TimeInForce tif, int64_t price, int64_t qty,
              const L2Book& book) {
        orders_.push_back(Slot{RestingOrder{id, side, price, qty, book.qty_at(side, price), tif}});
    }

    void erase(size_t i) { orders_.erase(orders_.begin() + static_cast<std::ptrdiff_t>(i)); }

    std::vector<Slot> orders_;
    QueueModel model_ = QueueModel::Conservative;
    double power_ = 2.0;
};

}  // namespace lockstep
