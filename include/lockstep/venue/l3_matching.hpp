// Matching core of the Simulated Venue on L3 (order-by-order) data: our orders against a replayed
// L3 book, one instrument, strict price-time priority.
//
// docs/venue.md states exactly what can fill an order, when, and what this model cannot know;
// src/lockstep/reference/matching.py holds the pure-Python twin. Keep the three in step.
//
// In short: submit()/replace() take the visible levels as the L2 matcher does. A resting order
// joins the back of its level: the market orders ahead of it are exactly those resting at its
// price and side at that moment, recorded by id. Only their executes, deletes and size-reducing
// modifies move us up; everything added or re-queued later is behind us. An execute of an order
// behind us at our price, or of an order at a worse price on our side, means the aggressor would
// have met us first: that fills us (maker).
//
// "Ahead of us" is a per-order vector of (market id, qty) sorted by id: an L3 event costs a
// binary search per resting order of ours, however long the level. The vectors keep their
// capacity across orders (a spare pool), so steady state is allocation-free.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/core/l3_book.hpp"
#include "lockstep/venue/matching.hpp"

namespace lockstep {

class L3Matcher : public OrderEntry<L3Matcher, L3Book> {
public:
    L3Matcher() = default;

    // Not for the hot path: later calls never allocate below these counts (`ahead` = market
    // orders ahead of one of ours).
    void reserve(size_t resting, size_t events, size_t ahead = 0) {
        orders_.reserve(resting);
        events_.reserve(events);
        spare_.reserve(resting);
        while (spare_.size() < resting) {
            spare_.emplace_back();
            spare_.back().reserve(ahead);
        }
    }

    // Called BEFORE `book_before` applies the L3 event (kind, side, order_id, price, qty). Events
    // the book would refuse (unknown order, bad qty) change nothing here either.
    //   L3Add: behind us. (An id still recorded ahead of us can only come back after a
    //     BookClear, as a snapshot re-adds it: it stays ahead with its new qty if it is at our
    //     side and price, else it is dropped.)
    //   L3Delete: an order ahead of us leaves: queue-ahead drops by its qty.
    //   L3Modify: ahead of us and same price with qty not grown (and > 0): keeps its place,
    //     queue-ahead drops by the reduction; otherwise it leaves the queue ahead of us.
    //   L3Execute of e = min(qty, order's qty): ahead of us -> queue-ahead drops by e; at our
    //     price but behind us -> we fill min(remaining, e less what our earlier orders at that
    //     price took from it); at a worse price on our side -> our whole remainder fills.
    //   BookClear: nothing; we keep our recorded queue (never advanced by a gap in the feed).
    void on_l3(EventKind kind, Side side, uint64_t order_id, int64_t price, int64_t qty,
               const L3Book& book_before) {
        if (orders_.empty()) return;
        switch (kind) {
            case EventKind::L3Add:
                if (qty > 0) on_add(side, order_id, price, qty);
                return;
            case EventKind::L3Delete:
                if (book_before.order(order_id, &side, &price, &qty)) drop_ahead(order_id);
                return;
            case EventKind::L3Modify:
                on_modify(order_id, price, qty, book_before);
                return;
            case EventKind::L3Execute:
                on_execute(order_id, qty, book_before);
                return;
            default:
                return;
        }
    }

    // A trade print. The L3 executes already say exactly who traded at a price; a print adds
    // information only when it goes strictly through our price (liquidity we cannot see, e.g.
    // hidden, traded past us): our whole remainder fills. At our price, or with an unknown
    // aggressor, nothing happens.
    void on_trade(int64_t price, int64_t qty, Side aggressor) {
        if (qty <= 0 || (aggressor != Side::Bid && aggressor != Side::Ask)) return;
        const Side ours = detail::opposite(aggressor);
        for (size_t r = 0; r < orders_.size(); ++r) {
            RestingOrder& o = orders_[r].order;
            if (o.side != ours) continue;
            if (ours == Side::Bid ? price < o.price : price > o.price) {
                emit(MatchEventKind::Fill, MatchReject::None, true, o.side, o.client_order_id,
                     o.price, o.qty);
                o.qty = 0;
            }
        }
        compact();
    }

    // How many market orders are recorded ahead of order `client_order_id` (0 if not resting).
    size_t ahead_count(uint64_t client_order_id) const noexcept {
        const size_t i = find(client_order_id);
        return i == kNone ? 0 : orders_[i].ahead.size();
    }

private:
    friend class OrderEntry<L3Matcher, L3Book>;

    struct Ahead {
        uint64_t id;
        int64_t qty;
    };

    struct Slot {
        RestingOrder order;           // queue_ahead = sum of ahead[].qty
        std::vector<Ahead> ahead;     // market orders ahead of us, sorted by id
    };

    static Ahead* locate(std::vector<Ahead>& v, uint64_t id) noexcept {
        const auto it = std::lower_bound(v.begin(), v.end(), id,
                                         [](const Ahead& a, uint64_t x) { return a.id < x; });
        return it != v.end() && it->id == id ? &*it : nullptr;
    }

    static void remove(Slot& s, Ahead* a) noexcept {
        s.order.queue_ahead -= a->qty;
        // Erasing from a vector of trivially copyable records only shifts: no allocation.
        s.ahead.erase(s.ahead.begin() + (a - s.ahead.data()));
    }

    void drop_ahead(uint64_t id) noexcept {
        for (Slot& s : orders_) {
            if (Ahead* a = locate(s.ahead, id)) remove(s, a);
        }
    }

    void on_add(Side side, uint64_t id, int64_t price, int64_t qty) noexcept {
        for (Slot& s : orders_) {
            Ahead* a = locate(s.ahead, id);
            if (a == nullptr) continue;
            if (side == s.order.side && price == s.order.price) {
                s.order.queue_ahead += qty - a->qty;
                a->qty = qty;
            } else {
                remove(s, a);
            }
        }
    }

    void on_modify(uint64_t id, int64_t price, int64_t qty, const L3Book& book) noexcept {
        Side bs;
        int64_t bp, bq;
        if (qty < 0 || !price_in_range(price) || !book.order(id, &bs, &bp, &bq)) return;
        const bool keeps = price == bp && qty > 0 && qty <= bq;
        for (Slot& s : orders_) {
            Ahead* a = locate(s.ahead, id);
            if (a == nullptr) continue;
            if (keeps) {
                s.order.queue_ahead -= a->qty - qty;
                a->qty = qty;
            } else {
                remove(s, a);
            }
        }
    }

    void on_execute(uint64_t id, int64_t qty, const L3Book& book) {
        Side bs;
        int64_t bp, bq;
        if (qty <= 0 || !book.order(id, &bs, &bp, &bq)) return;
        const int64_t e = qty < bq ? qty : bq;
        int64_t used = 0;  // of e, already given to our orders at bp that it was behind
        for (Slot& s : orders_) {
            RestingOrder& o = s.order;
            if (o.side != bs) continue;
            int64_t fill = 0;
            if (bs == Side::Bid ? bp < o.price : bp > o.price) {
                fill = o.qty;
            } else if (bp == o.price) {
                if (Ahead* a = locate(s.ahead, id)) {
                    if (e >= a->qty) {
                        remove(s, a);
                    } else {
                        a->qty -= e;
                        o.queue_ahead -= e;
                    }
                } else {
                    const int64_t avail = e - used;
                    fill = avail < o.qty ? avail : o.qty;
                    used += fill;
                }
            }
            if (fill > 0) {
                emit(MatchEventKind::Fill, MatchReject::None, true, o.side, o.client_order_id,
                     o.price, fill);
                o.qty -= fill;
            }
        }
        compact();
    }

    // Joins the back of (side, price): every market order resting there now is ahead of us.
    void rest(uint64_t id, Side side, TimeInForce tif, int64_t price, int64_t qty,
              const L3Book& book) {
        std::vector<Ahead> ahead;
        if (!spare_.empty()) {
            ahead = std::move(spare_.back());
            spare_.pop_back();
            ahead.clear();
        }
        int64_t total = 0;
        const bool buy = side == Side::Bid;
        book.for_each_order(side, [&](uint64_t oid, int64_t p, int64_t q) {
            if (p == price) {
                ahead.push_back(Ahead{oid, q});
                total += q;
                return true;
            }
            return buy ? p > price : p < price;  // best to worst: stop past our price
        });
        std::sort(ahead.begin(), ahead.end(),
                  [](const Ahead& a, const Ahead& b) { return a.id < b.id; });
        orders_.push_back(Slot{RestingOrder{id, side, price, qty, total, tif}, std::move(ahead)});
    }

    // Keeps the slot's vector capacity for the next order.
    void erase(size_t i) {
        spare_.push_back(std::move(orders_[i].ahead));
        orders_.erase(orders_.begin() + static_cast<std::ptrdiff_t>(i));
    }

    // Drops filled orders, keeping insertion order.
    void compact() {
        size_t w = 0;
        for (size_t r = 0; r < orders_.size(); ++r) {
            if (orders_[r].order.qty > 0) {
                if (w != r) orders_[w] = std::move(orders_[r]);
                ++w;
            } else {
                spare_.push_back(std::move(orders_[r].ahead));
            }
        }
        orders_.resize(w);
    }

    std::vector<Slot> orders_;
    std::vector<std::vector<Ahead>> spare_;
};

}  // namespace lockstep
