// Order-by-order (L3) book: resting orders by id, FIFO priority within each price level.
//
// Aggregated levels (best, top-N, counts) are an L2Book kept in step with every change, so every
// level query costs what it costs on an L2 book. Underneath, each level's orders form an
// intrusive doubly-linked FIFO over a pool of order records with a free list; order id -> slot
// and (side, price) -> level go through flat hash maps, which are only ever looked up (never
// iterated), so nothing observable depends on hashing.
//
// Memory grows with the number of resting orders and levels (amortized vector/table growth) and
// is reused after that: no event allocates in steady state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/core/l2_book.hpp"

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
        orders_.reserve(expected_orders);
    }

    // Hints that an event about `order_id` comes soon (`add`: a new order at `price` on `side`,
    // Side::None if not known yet), in two stages: the table slots it will look up start
    // loading, then (`near`: the slots there by now) the order's record, or for an add its
    // level's. No effect on the book.
    void prefetch(bool add, Side side, int64_t price, uint64_t order_id, bool near) const noexcept {
        if (add) {
            const unsigned s = static_cast<unsigned>(side) - 1u;  // unknown: no level to ask for
            if (!near) {
                order_slot_.prefetch(order_id);
                if (s <= 1u) level_slot_[s].prefetch(price);
                return;
            }
            if (s > 1u) return;
            const uint32_t level = level_slot_[s].find(price);
            if (level != FlatHashMap<int64_t>::kMissing) __builtin_prefetch(&level_pool_[level]);
            return;
        }
        if (!near) return order_slot_.prefetch(order_id);
        const uint32_t o = order_slot_.find(order_id);
        if (o != FlatHashMap<uint64_t>::kMissing) __builtin_prefetch(&orders_[o]);
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
        if (__builtin_add_overflow(level_pool_[level].qty, qty, &total)) [[unlikely]] {
            // Only a level that already held orders can overflow, so no level to give back.
            *cell = 0;
            order_slot_.erase(order_id);
            return L3Result::BadQty;
        }
        const uint32_t o = allocate_order();
        *cell = o;
        orders_[o].id = order_id;
        orders_[o].qty = qty;
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
        const auto cell = order_slot_.locate(order_id);
        const uint32_t o = cell.value;
        if (o == FlatHashMap<uint64_t>::kMissing) return L3Result::UnknownOrder;
        if (qty == 0) {
            order_slot_.erase_at(cell);
            detach(o);
            release_order(o);
            return L3Result::Ok;
        }
        const uint32_t level = orders_[o].level;
        const int64_t old_qty = orders_[o].qty;
        if (level_pool_[level].price == price) {
            int64_t total;
            const int64_t others = level_pool_[level].qty - old_qty;
            if (__builtin_add_overflow(others, qty, &total)) [[unlikely]] {
                return L3Result::BadQty;
            }
            if (qty > old_qty && orders_[o].next != kNil) {
                unlink(level, o);
                append(level, o);
            }
            orders_[o].qty = qty;
            set_level_qty(level, total);
            return L3Result::Ok;
        }
        const unsigned s = level_pool_[level].side;
        const uint32_t target = acquire_level(s, price);
        int64_t total;
        if (__builtin_add_overflow(level_pool_[target].qty, qty, &total)) [[unlikely]] {
            return L3Result::BadQty;  // the target level held orders, so it stays as it was
        }
        detach(o);
        orders_[o].qty = qty;
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
        const auto cell = order_slot_.locate(order_id);
        const uint32_t o = cell.value;
        if (o == FlatHashMap<uint64_t>::kMissing) return L3Result::UnknownOrder;
        if (qty >= orders_[o].qty) {
            order_slot_.erase_at(cell);
            detach(o);
            release_order(o);
            return L3Result::Ok;
        }
        const uint32_t level = orders_[o].level;
        orders_[o].qty -= qty;
        set_level_qty(level, level_pool_[level].qty - qty);
        return L3Result::Ok;
    }

    // Keeps every allocation for reuse. O(table capacity + window).
    void clear() noexcept {
        order_slot_.clear();
        level_slot_[0].clear();
        level_slot_[1].clear();
        orders_.clear();
        free_order_ = kNil;
        level_pool_.clear();
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
            for (uint32_t o = level_pool_[level].head; o != kNil; o = orders_[o].next) {
                if (!detail::visit_continue(f, orders_[o].id, price, orders_[o].qty)) return false;
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
        const uint32_t level = orders_[o].level;
        *side = static_cast<Side>(level_pool_[level].side + 1u);
        *price = level_pool_[level].price;
        *qty = orders_[o].qty;
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
                if (level == FlatHashMap<int64_t>::kMissing || level_pool_[level].price != price ||
                    level_pool_[level].side != s || level_pool_[level].head == kNil) {
                    return ok = false;
                }
                int64_t sum = 0;
                uint32_t prev = kNil;
                for (uint32_t o = level_pool_[level].head; o != kNil;
                     prev = o, o = orders_[o].next) {
                    if (orders_[o].prev != prev || orders_[o].level != level ||
                        orders_[o].qty <= 0 || order_slot_.find(orders_[o].id) != o) {
                        return ok = false;
                    }
                    sum += orders_[o].qty;
                    ++orders;
                }
                if (prev != level_pool_[level].tail || sum != total) return ok = false;
                return true;
            });
        }
        return ok && orders == order_slot_.size();
    }

private:
    static constexpr uint32_t kNil = UINT32_MAX;

    [[gnu::always_inline]] uint32_t allocate_order() noexcept {
        if (free_order_ != kNil) {
            const uint32_t o = free_order_;
            free_order_ = orders_[o].next;
            return o;
        }
        const uint32_t o = static_cast<uint32_t>(orders_.size());
        orders_.push_back(Order{0, 0, kNil, kNil, kNil});
        return o;
    }

    [[gnu::always_inline]] void release_order(uint32_t o) noexcept {
        orders_[o].next = free_order_;
        free_order_ = o;
    }

    // The level of (side, price), created empty if absent.
    [[gnu::always_inline]] uint32_t acquire_level(unsigned s, int64_t price) noexcept {
        bool inserted;
        uint32_t* cell = level_slot_[s].find_or_insert(price, &inserted);
        if (!inserted) [[likely]] return *cell;
        return *cell = new_level(s, price);
    }

    // Out of line: most events meet an existing level.
    [[gnu::noinline]] uint32_t new_level(unsigned s, int64_t price) noexcept {
        uint32_t level;
        if (free_level_ != kNil) {
            level = free_level_;
            free_level_ = level_pool_[level].head;
        } else {
            level = static_cast<uint32_t>(level_pool_.size());
            level_pool_.push_back(Level{0, 0, kNil, kNil, 0});
        }
        level_pool_[level].head = kNil;
        level_pool_[level].tail = kNil;
        level_pool_[level].qty = 0;
        level_pool_[level].price = price;
        level_pool_[level].side = static_cast<uint8_t>(s);
        return level;
    }

    [[gnu::always_inline]] void append(uint32_t level, uint32_t o) noexcept {
        const uint32_t tail = level_pool_[level].tail;
        orders_[o].prev = tail;
        orders_[o].next = kNil;
        orders_[o].level = level;
        if (tail != kNil) {
            orders_[tail].next = o;
        } else {
            level_pool_[level].head = o;
        }
        level_pool_[level].tail = o;
    }

    [[gnu::always_inline]] void unlink(uint32_t level, uint32_t o) noexcept {
        const uint32_t prev = orders_[o].prev, next = orders_[o].next;
        if (prev != kNil) {
            orders_[prev].next = next;
        } else {
            level_pool_[level].head = next;
        }
        if (next != kNil) {
            orders_[next].prev = prev;
        } else {
            level_pool_[level].tail = prev;
        }
    }

    // Takes the order out of its level, giving the level back once it is empty.
    [[gnu::always_inline]] void detach(uint32_t o) noexcept {
        const uint32_t level = orders_[o].level;
        unlink(level, o);
        if (level_pool_[level].head != kNil) [[likely]] {
            // The level keeps other orders and its quantity, so it is already in the L2 view.
            const int64_t total = level_pool_[level].qty - orders_[o].qty;
            level_pool_[level].qty = total;
            levels_.replace_checked(level_pool_[level].side, level_pool_[level].price, total);
            return;
        }
        retire_level(level);
    }

    // Out of line: the level's removal from the L2 view and the price map is the bulky part of
    // detach, and keeping it apart lets the common path inline into every caller.
    [[gnu::noinline]] void retire_level(uint32_t level) noexcept {
        const unsigned s = level_pool_[level].side;
        levels_.set_checked(s, level_pool_[level].price, 0);
        level_slot_[s].erase(level_pool_[level].price);
        level_pool_[level].qty = 0;
        level_pool_[level].head = free_level_;
        free_level_ = level;
    }

    // Publishes a level's new total (> 0) to the aggregated book.
    [[gnu::always_inline]] void set_level_qty(uint32_t level, int64_t total) noexcept {
        // Only a level just acquired has no quantity.
        const bool fresh = level_pool_[level].qty == 0;
        level_pool_[level].qty = total;
        if (fresh) [[unlikely]] {
            levels_.set_checked(level_pool_[level].side, level_pool_[level].price, total);
        } else {
            levels_.replace_checked(level_pool_[level].side, level_pool_[level].price, total);
        }
    }

    // Order and level slots are records, not parallel arrays: an event touches most fields of
    // the orders and levels it meets, and one cache line each then suffices (32-byte aligned, so
    // no record straddles two lines).
    struct alignas(32) Order {
        uint64_t id;
        int64_t qty;
        uint32_t prev;
        uint32_t next;   // on a free slot: the free list
        uint32_t level;
    };
    struct alignas(32) Level {
        int64_t qty;
        int64_t price;
        uint32_t head;   // on a free slot: the free list
        uint32_t tail;
        uint8_t side;    // 0 bid, 1 ask
    };

    std::vector<Order> orders_;
    uint32_t free_order_ = kNil;
    std::vector<Level> level_pool_;
    uint32_t free_level_ = kNil;

    FlatHashMap<uint64_t> order_slot_;      // order id -> order slot
    FlatHashMap<int64_t> level_slot_[2];    // per side: price -> level slot
    L2Book levels_;                         // aggregated quantities, best, top-N
};

}  // namespace lockstep
