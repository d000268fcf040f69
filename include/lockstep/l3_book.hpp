// Order-by-order (L3) book: resting orders by id, FIFO priority within each price level.
//
// Aggregated levels (best, top-N, counts) are an L2Book kept in step with every change, so every
// level query costs what it costs on an L2 book. Underneath, each level's orders form an
// intrusive doubly-linked FIFO over a pool of order slots held as parallel arrays with a free
// list; order id -> slot and (side, price) -> level go through flat hash maps, which are only
// ever looked up (never iterated), so nothing observable depends on hashing.
//
// Memory grows with the number of resting orders and levels (amortized vector/table growth) and
// is reused after that: no event allocates in steady state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/events.hpp"
#include "lockstep/flat_hash_map.hpp"
#include "lockstep/l2_book.hpp"

namespace lockstep {

// Values are stable: callers switch on them and they cross into Python by value.
enum class L3Result : uint8_t {
    Ok = 0,
    UnknownOrder = 1,    // no resting order has this id: nothing changed
    DuplicateOrder = 2,  // add of an id already resting: nothing changed
    BadQty = 3,          // qty <= 0 where a size is required, qty < 0 on modify, or the level's
                         // total would overflow int64: nothing changed
    BadPrice = 4,        // price outside [kMinPrice, kMaxPrice]: nothing changed
    BadSide = 5,         // add with a side neither Bid nor Ask: nothing changed
};

class L3Book {
public:
    // `expected_orders` pre-sizes the pools and tables so a book of that size never allocates.
    explicit L3Book(size_t window_ticks = L2Book::kDefaultWindowTicks, size_t expected_orders = 0)
        : order_slot_(expected_orders),
          level_slot_{FlatHashMap<int64_t>(expected_orders / 4),
                      FlatHashMap<int64_t>(expected_orders / 4)},
          levels_(window_ticks) {
        order_id_.reserve(expected_orders);
        order_qty_.reserve(expected_orders);
        order_prev_.reserve(expected_orders);
        order_next_.reserve(expected_orders);
        order_level_.reserve(expected_orders);
    }

    // A new order joins the back of its level.
    L3Result add(uint64_t order_id, Side side, int64_t price, int64_t qty) noexcept {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        if (s > 1u) [[unlikely]] return L3Result::BadSide;
        if (!price_in_range(price)) [[unlikely]] return L3Result::BadPrice;
        if (qty <= 0) [[unlikely]] return L3Result::BadQty;
        bool inserted;
        uint32_t* cell = order_slot_.find_or_insert(order_id, &inserted);
        if (!inserted) return L3Result::DuplicateOrder;
        const uint32_t level = acquire_level(s, price);
        int64_t total;
        if (__builtin_add_overflow(level_qty_[level], qty, &total)) [[unlikely]] {
            // Only a level that already held orders can overflow, so no level to give back.
            *cell = 0;
            order_slot_.erase(order_id);
            return L3Result::BadQty;
        }
        const uint32_t o = allocate_order();
        *cell = o;
        order_id_[o] = order_id;
        order_qty_[o] = qty;
        append(level, o);
        set_level_qty(level, total);
        return L3Result::Ok;
    }

    // The order now rests at `price` with `qty`. It keeps its place only if the price is unchanged
    // and the quantity did not grow; otherwise it goes to the back of its (new) level. qty 0
    // removes the order (Ok). The side never changes.
    L3Result modify(uint64_t order_id, int64_t price, int64_t qty) noexcept {
        if (!price_in_range(price)) [[unlikely]] return L3Result::BadPrice;
        if (qty < 0) [[unlikely]] return L3Result::BadQty;
        const uint32_t o = order_slot_.find(order_id);
        if (o == FlatHashMap<uint64_t>::kMissing) return L3Result::UnknownOrder;
        if (qty == 0) {
            order_slot_.erase(order_id);
            detach(o);
            release_order(o);
            return L3Result::Ok;
        }
        const uint32_t level = order_level_[o];
        const int64_t old_qty = order_qty_[o];
        if (level_price_[level] == price) {
            int64_t total;
            if (__builtin_add_overflow(level_qty_[level] - old_qty, qty, &total)) [[unlikely]] {
                return L3Result::BadQty;
            }
            if (qty > old_qty && order_next_[o] != kNil) {
                unlink(level, o);
                append(level, o);
            }
            order_qty_[o] = qty;
            set_level_qty(level, total);
            return L3Result::Ok;
        }
        const unsigned s = level_side_[level];
        const uint32_t target = acquire_level(s, price);
        int64_t total;
        if (__builtin_add_overflow(level_qty_[target], qty, &total)) [[unlikely]] {
            return L3Result::BadQty;  // the target level held orders, so it stays as it was
        }
        detach(o);
        order_qty_[o] = qty;
        append(target, o);
        set_level_qty(target, total);
        return L3Result::Ok;
    }

    L3Result remove(uint64_t order_id) noexcept {
        const uint32_t o = order_slot_.erase(order_id);
        if (o == FlatHashMap<uint64_t>::kMissing) return L3Result::UnknownOrder;
        detach(o);
        release_order(o);
        return L3Result::Ok;
    }

    // `qty` of the order traded: it shrinks in place (keeping priority) or, at zero, leaves.
    // Executing more than rests is taken as a full fill: the order leaves and the result is Ok
    // (venues report fills the feed may have partially missed; the book must not keep a ghost).
    L3Result execute(uint64_t order_id, int64_t qty) noexcept {
        if (qty <= 0) [[unlikely]] return L3Result::BadQty;
        const uint32_t o = order_slot_.find(order_id);
        if (o == FlatHashMap<uint64_t>::kMissing) return L3Result::UnknownOrder;
        if (qty >= order_qty_[o]) {
            order_slot_.erase(order_id);
            detach(o);
            release_order(o);
            return L3Result::Ok;
        }
        const uint32_t level = order_level_[o];
        order_qty_[o] -= qty;
        set_level_qty(level, level_qty_[level] - qty);
        return L3Result::Ok;
    }

    // Keeps every allocation for reuse. O(table capacity + window).
    void clear() noexcept {
        order_slot_.clear();
        level_slot_[0].clear();
        level_slot_[1].clear();
        order_id_.clear();
        order_qty_.clear();
        order_prev_.clear();
        order_next_.clear();
        order_level_.clear();
        free_order_ = kNil;
        level_head_.clear();
        level_tail_.clear();
        level_qty_.clear();
        level_price_.clear();
        level_side_.clear();
        free_level_ = kNil;
        levels_.clear();
    }

    // Aggregated levels, as on an L2 book.
    bool empty(Side side) const noexcept { return levels_.empty(side); }
    int64_t best_price(Side side) const noexcept { return levels_.best_price(side); }
    int64_t best_qty(Side side) const noexcept { return levels_.best_qty(side); }
    size_t level_count(Side side) const noexcept { return levels_.level_count(side); }
    size_t top(Side side, size_t n, int64_t* prices, int64_t* qtys) const noexcept {
        return levels_.top(side, n, prices, qtys);
    }
    template <class F>
    void for_each_level(Side side, F&& f) const {
        levels_.for_each_level(side, f);
    }
    bool crossed() const noexcept { return levels_.crossed(); }
    const L2Book& levels() const noexcept { return levels_; }

    size_t order_count() const noexcept { return order_slot_.size(); }

    // Best price first, FIFO within a level: f(order_id, price, qty). f may return bool: false
    // stops the walk.
    template <class F>
    void for_each_order(Side side, F&& f) const {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        if (s > 1u) return;
        levels_.for_each_level(side, [&](int64_t price, int64_t) {
            const uint32_t level = level_slot_[s].find(price);
            for (uint32_t o = level_head_[level]; o != kNil; o = order_next_[o]) {
                if (!detail::visit_continue(f, order_id_[o], price, order_qty_[o])) return false;
            }
            return true;
        });
    }

    // The first n orders in for_each_order order; returns how many were written.
    size_t top_orders(Side side, size_t n, uint64_t* ids, int64_t* prices,
                      int64_t* qtys) const noexcept {
        size_t written = 0;
        if (n == 0) return 0;
        for_each_order(side, [&](uint64_t id, int64_t price, int64_t qty) {
            ids[written] = id;
            prices[written] = price;
            qtys[written] = qty;
            return ++written < n;
        });
        return written;
    }

    // Where order `id` rests; false (outputs untouched) if it does not.
    bool order(uint64_t id, Side* side, int64_t* price, int64_t* qty) const noexcept {
        const uint32_t o = order_slot_.find(id);
        if (o == FlatHashMap<uint64_t>::kMissing) return false;
        const uint32_t level = order_level_[o];
        *side = static_cast<Side>(level_side_[level] + 1u);
        *price = level_price_[level];
        *qty = order_qty_[o];
        return true;
    }

    size_t window_ticks() const noexcept { return levels_.window_ticks(); }

    // Cross-checks the hash maps, FIFO links, level totals and the L2 view; for tests.
    // O(window + orders).
    bool invariants_hold() const noexcept {
        if (!levels_.invariants_hold()) return false;
        size_t orders = 0;
        bool ok = true;
        for (unsigned s = 0; s < 2 && ok; ++s) {
            const Side side = static_cast<Side>(s + 1u);
            if (level_slot_[s].size() != levels_.level_count(side)) return false;
            levels_.for_each_level(side, [&](int64_t price, int64_t total) {
                const uint32_t level = level_slot_[s].find(price);
                if (level == FlatHashMap<int64_t>::kMissing || level_price_[level] != price ||
                    level_side_[level] != s || level_head_[level] == kNil) {
                    return ok = false;
                }
                int64_t sum = 0;
                uint32_t prev = kNil;
                for (uint32_t o = level_head_[level]; o != kNil; prev = o, o = order_next_[o]) {
                    if (order_prev_[o] != prev || order_level_[o] != level || order_qty_[o] <= 0 ||
                        order_slot_.find(order_id_[o]) != o) {
                        return ok = false;
                    }
                    sum += order_qty_[o];
                    ++orders;
                }
                if (prev != level_tail_[level] || sum != total) return ok = false;
                return true;
            });
        }
        return ok && orders == order_slot_.size();
    }

private:
    static constexpr uint32_t kNil = UINT32_MAX;

    uint32_t allocate_order() noexcept {
        if (free_order_ != kNil) {
            const uint32_t o = free_order_;
            free_order_ = order_next_[o];
            return o;
        }
        const uint32_t o = static_cast<uint32_t>(order_id_.size());
        order_id_.push_back(0);
        order_qty_.push_back(0);
        order_prev_.push_back(kNil);
        order_next_.push_back(kNil);
        order_level_.push_back(kNil);
        return o;
    }

    void release_order(uint32_t o) noexcept {
        order_next_[o] = free_order_;
        free_order_ = o;
    }

    // The level of (side, price), created empty if absent.
    uint32_t acquire_level(unsigned s, int64_t price) noexcept {
        bool inserted;
        uint32_t* cell = level_slot_[s].find_or_insert(price, &inserted);
        if (!inserted) return *cell;
        uint32_t level;
        if (free_level_ != kNil) {
            level = free_level_;
            free_level_ = level_head_[level];
        } else {
            level = static_cast<uint32_t>(level_head_.size());
            level_head_.push_back(kNil);
            level_tail_.push_back(kNil);
            level_qty_.push_back(0);
            level_price_.push_back(0);
            level_side_.push_back(0);
        }
        *cell = level;
        level_head_[level] = kNil;
        level_tail_[level] = kNil;
        level_qty_[level] = 0;
        level_price_[level] = price;
        level_side_[level] = static_cast<uint8_t>(s);
        return level;
    }

    void append(uint32_t level, uint32_t o) noexcept {
        const uint32_t tail = level_tail_[level];
        order_prev_[o] = tail;
        order_next_[o] = kNil;
        order_level_[o] = level;
        if (tail != kNil) {
            order_next_[tail] = o;
        } else {
            level_head_[level] = o;
        }
        level_tail_[level] = o;
    }

    void unlink(uint32_t level, uint32_t o) noexcept {
        const uint32_t prev = order_prev_[o], next = order_next_[o];
        if (prev != kNil) {
            order_next_[prev] = next;
        } else {
            level_head_[level] = next;
        }
        if (next != kNil) {
            order_prev_[next] = prev;
        } else {
            level_tail_[level] = prev;
        }
    }

    // Takes the order out of its level, giving the level back once it is empty.
    void detach(uint32_t o) noexcept {
        const uint32_t level = order_level_[o];
        unlink(level, o);
        if (level_head_[level] != kNil) {
            set_level_qty(level, level_qty_[level] - order_qty_[o]);
            return;
        }
        const unsigned s = level_side_[level];
        levels_.set_checked(s, level_price_[level], 0);
        level_slot_[s].erase(level_price_[level]);
        level_qty_[level] = 0;
        level_head_[level] = free_level_;
        free_level_ = level;
    }

    // Publishes a level's new total (> 0) to the aggregated book.
    void set_level_qty(uint32_t level, int64_t total) noexcept {
        const bool fresh = level_qty_[level] == 0;  // only a level just acquired has no quantity
        level_qty_[level] = total;
        if (fresh) [[unlikely]] {
            levels_.set_checked(level_side_[level], level_price_[level], total);
        } else {
            levels_.replace_checked(level_side_[level], level_price_[level], total);
        }
    }

    // Order slots, parallel arrays; a free slot's order_next_ links the free list.
    std::vector<uint64_t> order_id_;
    std::vector<int64_t> order_qty_;
    std::vector<uint32_t> order_prev_;
    std::vector<uint32_t> order_next_;
    std::vector<uint32_t> order_level_;
    uint32_t free_order_ = kNil;

    // Level slots, parallel arrays; a free slot's level_head_ links the free list.
    std::vector<uint32_t> level_head_;
    std::vector<uint32_t> level_tail_;
    std::vector<int64_t> level_qty_;
    std::vector<int64_t> level_price_;
    std::vector<uint8_t> level_side_;  // 0 bid, 1 ask
    uint32_t free_level_ = kNil;

    FlatHashMap<uint64_t> order_slot_;      // order id -> order slot
    FlatHashMap<int64_t> level_slot_[2];    // per side: price -> level slot
    L2Book levels_;                         // aggregated quantities, best, top-N
};

}  // namespace lockstep
