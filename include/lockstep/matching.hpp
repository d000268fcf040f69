// Matching core of the Simulated Venue on L2 data: our orders against a replayed market, one
// instrument, with the CONSERVATIVE queue-position model (hftbacktest's "risk-averse" model).
//
// src/lockstep/reference/matching.py is the pure-Python twin; keep the rules below and it in step.
//
// What can fill an order, and when:
//   * At submit(), against the replayed book passed in (the market book at ts_event):
//       - PostOnly: rejected (PostOnlyWouldCross) if it would cross: a buy at price >= best ask,
//         a sell at price <= best bid. Otherwise it rests; it never takes.
//       - IOC and GTC: take liquidity at once (taker fills, maker = false) from the visible
//         opposite levels, best first, each at that level's price, while the level price is at or
//         better than our limit and quantity remains. An IOC remainder is canceled (a Canceled
//         event carries the canceled quantity); a GTC remainder rests at its limit price.
//       - A resting order's queue-ahead is the visible quantity at its price on its side in that
//         book (0 if the level is empty).
//   * on_trade(price, qty, aggressor): only trades whose aggressor is on the side opposite to a
//     resting order touch it (a sell aggressor for our buys, a buy aggressor for our sells);
//     trades with an unknown aggressor (Side::None) fill nothing. Orders are visited in insertion
//     order.
//       - Trade AT our price: the traded quantity first consumes our queue-ahead; only the excess
//         fills us (maker = true, at our price). The excess of one trade is shared among our
//         orders at that price in insertion order, so one trade never fills more of our orders
//         in total than its own quantity. Queue-ahead of every order at that price drops by the
//         trade quantity (floored at 0).
//       - Trade THROUGH our price (a sell aggressor trading below our buy price, a buy aggressor
//         above our sell price): our level was emptied, so the whole remainder fills (maker =
//         true, at our price), whatever the trade quantity.
//   * on_level(side, price, qty): an L2 level update NEVER advances our queue (a decrease could be
//     cancellations behind us; that is the point of the conservative model) and never fills. It
//     only caps queue-ahead at the visible quantity when that drops below it. Increases are
//     joiners behind us and change nothing.
//   * Nothing else fills: a book that moves through our resting price without a trade print does
//     not fill us; only a trade does.
//
// What the model cannot know:
//   * Our orders do not move the replayed book. Liquidity we took at submit() is still in the
//     book the caller replays, so a second aggressive order can take it again; our resting orders
//     are not in the book, so they do not change later queue-ahead, best prices or post-only
//     checks.
//   * Hidden / iceberg liquidity, and trades against it, are invisible except as prints.
//   * The queue behind us and the exact position of cancellations: a level decrease is assumed to
//     be behind us (hence conservative fills that arrive late or never).
//   * Latency is the caller's business: pass the book and events at the time the venue would see
//     them.
//
// Output: every fill, cancel and reject is appended to an event buffer that the caller drains
// (events(), clear_events()). Storage grows only when the number of resting orders or the events
// per drain exceed anything seen before: allocation-free per call in steady state (reserve() to
// size it up front). Deterministic: no clocks, no hashing; resting orders are kept and visited in
// insertion order. Client order ids are looked up by linear scan: fine for the handful of orders a
// strategy keeps per instrument, not for thousands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/events.hpp"
#include "lockstep/intents.hpp"
#include "lockstep/l2_book.hpp"

namespace lockstep {

// Values are reported to strategies: never renumber, only add.
enum class MatchEventKind : uint8_t {
    Fill = 1,            // price, qty, maker
    Canceled = 2,        // qty = the quantity that was canceled (IOC remainder or cancel())
    Rejected = 3,        // submit refused; qty = the order's qty; reason says why
    CancelRejected = 4,  // cancel() of an order that is not resting; reason = UnknownOrder
};

enum class MatchReject : uint8_t {
    None = 0,
    PostOnlyWouldCross = 1,
    BadQty = 2,          // qty <= 0
    BadPrice = 3,        // outside [kMinPrice, kMaxPrice]
    BadSide = 4,
    BadTif = 5,
    DuplicateOrder = 6,  // client_order_id is already resting
    UnknownOrder = 7,    // cancel() target is not resting
};

enum class SubmitOutcome : uint8_t {
    Rested = 0,    // some (possibly all) of the order rests; filled_qty may be > 0
    Filled = 1,    // fully filled at submission
    Canceled = 2,  // IOC: the remainder (possibly all of it) was canceled
    Rejected = 3,
};

struct MatchEvent {
    MatchEventKind kind{};
    MatchReject reason = MatchReject::None;
    bool maker = false;
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
};

class L2Matcher {
public:
    L2Matcher() = default;

    // Not for the hot path: sizes storage so later calls never allocate below these counts.
    void reserve(size_t resting, size_t events) {
        orders_.reserve(resting);
        events_.reserve(events);
    }

    MatchResult submit(uint64_t client_order_id, Side side, TimeInForce tif, int64_t price,
                       int64_t qty, const L2Book& book) {
        MatchReject bad = MatchReject::None;
        if (side != Side::Bid && side != Side::Ask) bad = MatchReject::BadSide;
        else if (tif != TimeInForce::GTC && tif != TimeInForce::IOC &&
                 tif != TimeInForce::PostOnly) bad = MatchReject::BadTif;
        else if (qty <= 0) bad = MatchReject::BadQty;
        else if (!price_in_range(price)) bad = MatchReject::BadPrice;
        else if (find(client_order_id) != kNone) bad = MatchReject::DuplicateOrder;
        const bool buy = side == Side::Bid;
        const Side opp = buy ? Side::Ask : Side::Bid;
        if (bad == MatchReject::None && tif == TimeInForce::PostOnly && !book.empty(opp) &&
            crosses(buy, price, book.best_price(opp))) {
            bad = MatchReject::PostOnlyWouldCross;
        }
        if (bad != MatchReject::None) {
            emit(MatchEventKind::Rejected, bad, false, client_order_id, price, qty);
            return MatchResult{SubmitOutcome::Rejected, bad, 0, 0};
        }
        int64_t left = qty;
        if (tif != TimeInForce::PostOnly) {
            book.for_each_level(opp, [&](int64_t p, int64_t q) {
                if (!crosses(buy, price, p)) return false;
                const int64_t take = q < left ? q : left;
                if (take > 0) {
                    emit(MatchEventKind::Fill, MatchReject::None, false, client_order_id, p, take);
                    left -= take;
                }
                return left > 0;
            });
        }
        const int64_t filled = qty - left;
        if (left == 0) return MatchResult{SubmitOutcome::Filled, MatchReject::None, filled, 0};
        if (tif == TimeInForce::IOC) {
            emit(MatchEventKind::Canceled, MatchReject::None, false, client_order_id, price, left);
            return MatchResult{SubmitOutcome::Canceled, MatchReject::None, filled, 0};
        }
        int64_t ahead = 0;
        book.for_each_level(side, [&](int64_t p, int64_t q) {
            if (p == price) ahead = q;
            return buy ? p > price : p < price;  // walk best to worst until at or past our price
        });
        orders_.push_back(RestingOrder{client_order_id, side, price, left, ahead});
        return MatchResult{SubmitOutcome::Rested, MatchReject::None, filled, left};
    }

    // Submit from an Intent: SubmitLimit as above; SubmitMarket as an IOC at the widest valid
    // price (its price and tif are ignored). Any other kind is Rejected with BadTif.
    MatchResult submit(const Intent& in, const L2Book& book) {
        if (in.kind == IntentKind::SubmitMarket) {
            const int64_t p = in.side == Side::Bid ? kMaxPrice : kMinPrice;
            return submit(in.client_order_id, in.side, TimeInForce::IOC, p, in.qty, book);
        }
        if (in.kind != IntentKind::SubmitLimit) {
            emit(MatchEventKind::Rejected, MatchReject::BadTif, false, in.client_order_id,
                 in.price, in.qty);
            return MatchResult{SubmitOutcome::Rejected, MatchReject::BadTif, 0, 0};
        }
        return submit(in.client_order_id, in.side, in.tif, in.price, in.qty, book);
    }

    // Removes a resting order (Canceled event with its remaining qty) and returns true; otherwise
    // emits CancelRejected/UnknownOrder and returns false.
    bool cancel(uint64_t client_order_id) {
        const size_t i = find(client_order_id);
        if (i == kNone) {
            emit(MatchEventKind::CancelRejected, MatchReject::UnknownOrder, false, client_order_id,
                 0, 0);
            return false;
        }
        const RestingOrder o = orders_[i];
        orders_.erase(orders_.begin() + static_cast<std::ptrdiff_t>(i));
        emit(MatchEventKind::Canceled, MatchReject::None, false, o.client_order_id, o.price, o.qty);
        return true;
    }

    // A market trade print; `aggressor` is the taker's side. qty <= 0 is ignored.
    void on_trade(int64_t price, int64_t qty, Side aggressor) {
        if (qty <= 0 || (aggressor != Side::Bid && aggressor != Side::Ask)) return;
        const Side ours = aggressor == Side::Ask ? Side::Bid : Side::Ask;
        int64_t used = 0;  // excess of this trade already given to our orders at `price`
        size_t w = 0;
        for (size_t r = 0; r < orders_.size(); ++r) {
            RestingOrder o = orders_[r];
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
                }
                if (fill > 0) {
                    emit(MatchEventKind::Fill, MatchReject::None, true, o.client_order_id,
                         o.price, fill);
                    o.qty -= fill;
                }
            }
            if (o.qty > 0) orders_[w++] = o;  // compact in place: insertion order is kept
        }
        orders_.resize(w);
    }

    // An L2 level now holds `qty` (absolute; 0 = removed): caps queue-ahead, never advances it.
    void on_level(Side side, int64_t price, int64_t qty) noexcept {
        if (qty < 0) return;
        for (RestingOrder& o : orders_) {
            if (o.side == side && o.price == price && o.queue_ahead > qty) o.queue_ahead = qty;
        }
    }

    // Output buffer, oldest first; the caller reads then clears it.
    const std::vector<MatchEvent>& events() const noexcept { return events_; }
    void clear_events() noexcept { events_.clear(); }

    // Resting orders in insertion order.
    size_t resting() const noexcept { return orders_.size(); }
    const RestingOrder& resting_at(size_t i) const noexcept { return orders_[i]; }
    const RestingOrder* find_order(uint64_t client_order_id) const noexcept {
        const size_t i = find(client_order_id);
        return i == kNone ? nullptr : &orders_[i];
    }

private:
    static constexpr size_t kNone = SIZE_MAX;

    static bool crosses(bool buy, int64_t limit, int64_t level) noexcept {
        return buy ? level <= limit : level >= limit;
    }

    size_t find(uint64_t id) const noexcept {
        for (size_t i = 0; i < orders_.size(); ++i) {
            if (orders_[i].client_order_id == id) return i;
        }
        return kNone;
    }

    void emit(MatchEventKind k, MatchReject r, bool maker, uint64_t id, int64_t price,
              int64_t qty) {
        events_.push_back(MatchEvent{k, r, maker, id, price, qty});
    }

    std::vector<RestingOrder> orders_;
    std::vector<MatchEvent> events_;
};

}  // namespace lockstep
