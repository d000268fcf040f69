// Price-level (L2) order book: per side, price -> aggregated quantity.
//
// Each side keeps the levels near the touch in a dense window of `window_ticks` consecutive
// prices: a quantity array indexed by price modulo the window (a ring, so moving the window never
// moves the levels that stay in it) plus a two-level occupancy bitmap, so the next level behind a
// removed best is found with a couple of count-leading-zeros. Levels outside the window live in
// two sorted vectors: `beyond` (better than the window: the touch ran away from it) and `deep`
// (worse: the far book). Both keep the end nearest the window at the back, so levels that drift
// across the window edge are pushed and popped without shifting the rest; an update out there
// costs a binary search plus, to insert or delete, a shift of the levels between it and the back.
//
// The window follows the touch lazily. An update outside the window that a window centred on the
// best would hold adds to a debt; once the debt covers the cost of moving the window (its bitmap
// words, its levels and the overflow levels that would move), the window is re-centred on the
// best. A move never costs more than the updates that paid for it, so it adds amortized O(1) per
// event and no sequence of events can force a move per event. Updates to far levels never move it.
//
// Inside, both sides are stored with "higher key is better": a bid's key is its price, an ask's
// key is ~price (order-reversing, and unlike negation defined for every int64).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "lockstep/core/events.hpp"

namespace lockstep {

// Values are stable: callers switch on them and they cross into Python by value.
enum class L2Result : uint8_t {
    Ok = 0,            // level inserted or its quantity replaced
    Removed = 1,       // qty 0 removed an existing level
    UnknownLevel = 2,  // qty 0 for a level that is not in the book: nothing changed
    BadQty = 3,        // negative quantity: nothing changed
    BadPrice = 4,      // price outside [kMinPrice, kMaxPrice]: nothing changed
    BadSide = 5,       // side neither Bid nor Ask: nothing changed
};

// Prices are fixed-point ticks. Anything beyond +-2^62 ticks is corrupt input, never a price;
// rejecting it keeps every key difference inside int64.
constexpr int64_t kMinPrice = -(int64_t{1} << 62);
constexpr int64_t kMaxPrice = (int64_t{1} << 62) - 1;

constexpr bool price_in_range(int64_t price) noexcept {
    return static_cast<uint64_t>(price) - static_cast<uint64_t>(kMinPrice) <=
           static_cast<uint64_t>(kMaxPrice - kMinPrice);
}

namespace detail {

// Zero-filled array from calloc: a wide window commits memory only for the pages actually used.
template <class T>
class ZeroedArray {
    static_assert(std::is_trivial_v<T>);

public:
    ZeroedArray() = default;
    explicit ZeroedArray(size_t n) : data_(static_cast<T*>(std::calloc(n, sizeof(T)))) {
        if (data_ == nullptr && n != 0) throw std::bad_alloc();
    }
    ~ZeroedArray() { std::free(data_); }
    ZeroedArray(ZeroedArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)) {}
    ZeroedArray& operator=(ZeroedArray&& o) noexcept {
        std::swap(data_, o.data_);
        return *this;
    }
    T& operator[](size_t i) noexcept { return data_[i]; }
    const T& operator[](size_t i) const noexcept { return data_[i]; }

private:
    T* data_ = nullptr;
};

// Calls f and reports whether to go on: visitors may return void (visit all) or bool (false
// stops early).
template <class F, class... Args>
inline bool visit_continue(F& f, Args... args) {
    if constexpr (std::is_same_v<std::invoke_result_t<F&, Args...>, bool>) {
        return f(args...);
    } else {
        f(args...);
        return true;
    }
}

// One side of an L2 book in key space (higher key = better level).
class PriceLadder {
public:
    struct Level {
        int64_t key;
        int64_t qty;
    };

    explicit PriceLadder(size_t window_ticks)
        : window_(window_ticks),
          mask_(window_ticks - 1),
          words_count_(window_ticks / 64),
          summary_count_((window_ticks / 64 + 63) / 64),
          qty_(window_ticks),
          words_(window_ticks / 64),
          summary_((window_ticks / 64 + 63) / 64) {}

    L2Result set(int64_t key, int64_t qty) noexcept {
        // Unsigned: keys below base_ wrap to huge offsets, so one compare tests both edges.
        if (static_cast<uint64_t>(key) - static_cast<uint64_t>(base_) < window_) [[likely]] {
            return set_in_window(key, qty);
        }
        return set_outside(key, qty);
    }

    // New quantity (> 0) for a level known to be present: no presence bookkeeping to do. The L3
    // book knows this for most of its updates.
    void replace(int64_t key, int64_t qty) noexcept {
        if (static_cast<uint64_t>(key) - static_cast<uint64_t>(base_) < window_) [[likely]] {
            qty_[slot_of(key)] = qty;
            return;
        }
        set_outside(key, qty);
    }

    void clear() noexcept {
        for (size_t w = 0; w < words_count_; ++w) {
            for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
                qty_[w * 64 + static_cast<size_t>(std::countr_zero(bits))] = 0;
            }
            words_[w] = 0;
        }
        for (size_t s = 0; s < summary_count_; ++s) summary_[s] = 0;
        window_count_ = 0;
        beyond_.clear();
        deep_.clear();
        debt_ = 0;
    }

    bool empty() const noexcept { return window_count_ == 0 && beyond_.empty() && deep_.empty(); }
    size_t level_count() const noexcept { return window_count_ + beyond_.size() + deep_.size(); }

    // Valid only when !empty().
    int64_t best_key() const noexcept {
        if (!beyond_.empty()) [[unlikely]] return beyond_.front().key;
        if (window_count_ != 0) [[likely]] return window_best_;
        return deep_.back().key;
    }
    int64_t best_qty() const noexcept {
        if (!beyond_.empty()) [[unlikely]] return beyond_.front().qty;
        if (window_count_ != 0) [[likely]] return qty_[slot_of(window_best_)];
        return deep_.back().qty;
    }

    // Quantity at `key`, 0 if no level. Inside the window a direct index; outside, a binary search
    // of the overflow on that side.
    int64_t qty_at(int64_t key) const noexcept {
        if (static_cast<uint64_t>(key) - static_cast<uint64_t>(base_) < window_) [[likely]] {
            return qty_[slot_of(key)];
        }
        if (key > base_) {
            const auto it = std::partition_point(beyond_.begin(), beyond_.end(),
                                                 [&](const Level& l) { return l.key > key; });
            return it != beyond_.end() && it->key == key ? it->qty : 0;
        }
        const auto it = std::partition_point(deep_.begin(), deep_.end(),
                                             [&](const Level& l) { return l.key < key; });
        return it != deep_.end() && it->key == key ? it->qty : 0;
    }

    // Whether the best level sits in the dense window (it should, but for a while after the
    // touch runs away); diagnostics and tests.
    bool touch_in_window() const noexcept { return beyond_.empty() && window_count_ != 0; }
    // The best key when touch_in_window().
    int64_t window_best_key() const noexcept { return window_best_; }

    // Best to worst; f(key, qty) -> void or bool (false stops).
    template <class F>
    void for_each(F& f) const {
        for (const Level& l : beyond_) {
            if (!visit_continue(f, l.key, l.qty)) return;
        }
        if (window_count_ != 0) {
            int64_t key = window_best_;
            do {
                if (!visit_continue(f, key, qty_[slot_of(key)])) return;
            } while (highest_key_below(key, &key));
        }
        for (auto it = deep_.rbegin(); it != deep_.rend(); ++it) {
            if (!visit_continue(f, it->key, it->qty)) return;
        }
    }

    // Consistency of every redundant structure; for tests, O(window + levels).
    bool invariants_hold() const noexcept {
        size_t counted = 0;
        bool have_best = false;
        int64_t best = 0;
        for (size_t slot = 0; slot < window_; ++slot) {
            const bool bit = (words_[slot >> 6] >> (slot & 63)) & 1;
            if (bit != (qty_[slot] != 0)) return false;
            if (qty_[slot] < 0) return false;
            if (!bit) continue;
            ++counted;
            const int64_t key = key_of_slot(slot);
            if (!have_best || key > best) best = key;
            have_best = true;
        }
        for (size_t w = 0; w < words_count_; ++w) {
            const bool sbit = (summary_[w >> 6] >> (w & 63)) & 1;
            if (sbit != (words_[w] != 0)) return false;
        }
        if (counted != window_count_) return false;
        if (have_best && best != window_best_) return false;
        for (size_t i = 0; i < beyond_.size(); ++i) {
            if (beyond_[i].qty <= 0 || beyond_[i].key < base_ + static_cast<int64_t>(window_)) {
                return false;
            }
            if (i > 0 && beyond_[i - 1].key <= beyond_[i].key) return false;
        }
        for (size_t i = 0; i < deep_.size(); ++i) {
            if (deep_[i].qty <= 0 || deep_[i].key >= base_) return false;
            if (i > 0 && deep_[i - 1].key >= deep_[i].key) return false;
        }
        return true;
    }

private:
    size_t slot_of(int64_t key) const noexcept { return static_cast<size_t>(key) & mask_; }

    // The key a window slot stands for: the ring starts at base_'s slot.
    int64_t key_of_slot(size_t slot) const noexcept {
        return base_ + static_cast<int64_t>((slot - slot_of(base_)) & mask_);
    }

    void mark(size_t slot) noexcept {
        words_[slot >> 6] |= uint64_t{1} << (slot & 63);
        summary_[slot >> 12] |= uint64_t{1} << ((slot >> 6) & 63);
    }

    void unmark(size_t slot) noexcept {
        const uint64_t left = words_[slot >> 6] &= ~(uint64_t{1} << (slot & 63));
        if (left == 0) summary_[slot >> 12] &= ~(uint64_t{1} << ((slot >> 6) & 63));
    }

    // Branch-free apart from the rare cases (empty window, best level removed, a bitmap word
    // turning empty or non-empty): whether an update inserts, replaces, removes or misses is
    // data-dependent and would mispredict often.
    L2Result set_in_window(int64_t key, int64_t qty) noexcept {
        const size_t slot = slot_of(key);
        int64_t& level = qty_[slot];
        const bool was = level != 0;
        const bool now = qty != 0;
        level = qty;
        uint64_t& word = words_[slot >> 6];
        const uint64_t bit = uint64_t{1} << (slot & 63);
        const uint64_t old_word = word;
        const uint64_t new_word = (old_word & ~bit) | (-static_cast<uint64_t>(now) & bit);
        word = new_word;
        // Levels cluster around the touch, so a word rarely changes emptiness: the summary is
        // read and written only then, and the branch predicts well.
        if ((old_word == 0) != (new_word == 0)) [[unlikely]] {
            summary_[slot >> 12] ^= uint64_t{1} << ((slot >> 6) & 63);
        }
        const size_t count_before = window_count_;
        window_count_ = count_before + now - was;
        if (count_before == 0) [[unlikely]] {
            // A ring slot depends only on the key, so an empty window moves for free.
            if (now && beyond_.empty() && deep_.empty()) place_window(key);
            window_best_ = key;
        }
        // Masks rather than conditionals: the compiler turns `now && key > best` into branches.
        int64_t best = window_best_;
        const uint64_t raise = -static_cast<uint64_t>(now & (key > best));
        best ^= static_cast<int64_t>(static_cast<uint64_t>(best ^ key) & raise);
        window_best_ = best;
        const uint64_t best_removed = static_cast<uint64_t>(key ^ best) | now;
        if (best_removed == 0 && window_count_ != 0) [[unlikely]] {
            highest_key_below(key, &window_best_);
        }
        // Ok (0) if a level is set, else Removed (1) or UnknownLevel (2) as it was present or
        // not: arithmetic, so callers that only test "rejected" get no table load in between.
        return static_cast<L2Result>(static_cast<unsigned>(!now) << static_cast<unsigned>(!was));
    }

    // Highest set bit in [lo, hi) of a bitmap, or -1; `hint` (optional) is a summary bitmap of
    // `bits`' words, used to skip runs of empty words.
    static ptrdiff_t highest_bit(const uint64_t* bits, const uint64_t* hint, size_t lo,
                                 size_t hi) noexcept {
        if (lo >= hi) return -1;
        const size_t lo_word = lo >> 6;
        size_t w = (hi - 1) >> 6;
        uint64_t word = bits[w] & (~uint64_t{0} >> (63 - ((hi - 1) & 63)));
        if (w == lo_word) word &= ~uint64_t{0} << (lo & 63);
        while (word == 0) {
            if (w == lo_word) return -1;
            if (hint != nullptr && w - 1 > lo_word) {
                // Words strictly between lo_word and w, found through the summary.
                const ptrdiff_t found = highest_bit(hint, nullptr, lo_word + 1, w);
                w = found >= 0 ? static_cast<size_t>(found) : lo_word;
            } else {
                --w;
            }
            word = bits[w];
            if (w == lo_word) word &= ~uint64_t{0} << (lo & 63);
        }
        return static_cast<ptrdiff_t>(w * 64 + 63 - static_cast<size_t>(std::countl_zero(word)));
    }

    // The best window level strictly below `key` (key may be base_ + window_, meaning "the best
    // of the whole window"). The logical range [base_, key) maps to at most two ring ranges.
    bool highest_key_below(int64_t key, int64_t* found) const noexcept {
        const size_t offset =
            static_cast<size_t>(static_cast<uint64_t>(key) - static_cast<uint64_t>(base_));
        const size_t start = slot_of(base_);
        const size_t end = start + offset;
        ptrdiff_t slot;
        if (end <= window_) {
            slot = highest_bit(&words_[0], &summary_[0], start, end);
        } else {
            slot = highest_bit(&words_[0], &summary_[0], 0, end - window_);
            if (slot < 0) slot = highest_bit(&words_[0], &summary_[0], start, window_);
        }
        if (slot < 0) return false;
        *found = key_of_slot(static_cast<size_t>(slot));
        return true;
    }

    // Visits the occupied slots of logical offsets [from, to) of the window in ascending (or
    // descending) key order, f(slot); used only when moving the window.
    template <bool Ascending, class F>
    void visit_offsets(size_t from, size_t to, F&& f) {
        if (from >= to) return;
        const size_t first = (slot_of(base_) + from) & mask_;
        const size_t count = to - from;
        if (first + count <= window_) {
            visit_slots<Ascending>(first, first + count, f);
        } else if (Ascending) {
            visit_slots<Ascending>(first, window_, f);
            visit_slots<Ascending>(0, first + count - window_, f);
        } else {
            visit_slots<Ascending>(0, first + count - window_, f);
            visit_slots<Ascending>(first, window_, f);
        }
    }

    template <bool Ascending, class F>
    void visit_slots(size_t lo, size_t hi, F& f) {
        if (lo >= hi) return;
        const size_t lo_word = lo >> 6, hi_word = (hi - 1) >> 6;
        for (size_t i = 0; i <= hi_word - lo_word; ++i) {
            const size_t w = Ascending ? lo_word + i : hi_word - i;
            uint64_t word = words_[w];
            if (w == lo_word) word &= ~uint64_t{0} << (lo & 63);
            if (w == hi_word) word &= ~uint64_t{0} >> (63 - ((hi - 1) & 63));
            while (word != 0) {
                if (Ascending) {
                    f(w * 64 + static_cast<size_t>(std::countr_zero(word)));
                    word &= word - 1;
                } else {
                    const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(word));
                    f(w * 64 + top);
                    word &= ~(uint64_t{1} << top);
                }
            }
        }
    }

    // Outside the window: the sorted overflow vectors, plus the re-centring policy.
    [[gnu::noinline]] L2Result set_outside(int64_t key, int64_t qty) noexcept {
        if (empty()) {
            if (qty == 0) return L2Result::UnknownLevel;
            place_window(key);
            return set_in_window(key, qty);
        }
        // Would a window centred on the best hold this level? Then the window is in the wrong
        // place; updates to far levels say nothing about where it should be.
        const bool near_touch = distance(key, best_key()) < window_ / 2;
        size_t shifted = 0;
        const L2Result r = key > base_ ? set_overflow<true>(beyond_, key, qty, &shifted)
                                       : set_overflow<false>(deep_, key, qty, &shifted);
        if (near_touch && !empty()) {
            // The memmove work counts too, so a touch that runs away through a deep overflow
            // brings the window back sooner.
            debt_ += 1 + shifted / 16;
            // Cheap lower bound of the cost of moving first; the exact count only then.
            if (debt_ >= words_count_ + window_count_) {
                const int64_t center = best_key();
                if (debt_ >= words_count_ + window_count_ + overflow_moved_by(center)) {
                    recenter(center);
                }
            }
        }
        return r;
    }

    // How many overflow levels a window centred on `center` would move (into the window, or
    // across it to the other overflow): the part of the re-centring cost not bounded by the
    // window itself. Two binary searches.
    size_t overflow_moved_by(int64_t center) const noexcept {
        const int64_t new_base = center - static_cast<int64_t>(window_ / 2);
        if (new_base > base_) {
            const int64_t new_end = new_base + static_cast<int64_t>(window_);
            const auto first_moved = std::partition_point(
                beyond_.begin(), beyond_.end(), [&](const Level& l) { return l.key >= new_end; });
            return static_cast<size_t>(beyond_.end() - first_moved);
        }
        const auto first_moved = std::partition_point(
            deep_.begin(), deep_.end(), [&](const Level& l) { return l.key < new_base; });
        return static_cast<size_t>(deep_.end() - first_moved);
    }

    void place_window(int64_t center) noexcept {
        base_ = center - static_cast<int64_t>(window_ / 2);
        debt_ = 0;
    }

    static uint64_t distance(int64_t a, int64_t b) noexcept {
        return a > b ? static_cast<uint64_t>(a) - static_cast<uint64_t>(b)
                     : static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
    }

    // `beyond_` is sorted descending, `deep_` ascending: either way the back is nearest the window.
    template <bool Descending>
    static L2Result set_overflow(std::vector<Level>& levels, int64_t key, int64_t qty,
                                 size_t* shifted) noexcept {
        size_t lo = 0, hi = levels.size();
        while (lo < hi) {
            const size_t mid = (lo + hi) / 2;
            if (Descending ? levels[mid].key > key : levels[mid].key < key) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        const bool found = lo < levels.size() && levels[lo].key == key;
        if (qty == 0) {
            if (!found) return L2Result::UnknownLevel;
            *shifted = levels.size() - lo - 1;
            levels.erase(levels.begin() + static_cast<ptrdiff_t>(lo));
            return L2Result::Removed;
        }
        if (found) {
            levels[lo].qty = qty;
            return L2Result::Ok;
        }
        *shifted = levels.size() - lo;
        // Amortized growth with the number of levels: the vector never shrinks.
        levels.insert(levels.begin() + static_cast<ptrdiff_t>(lo), Level{key, qty});
        return L2Result::Ok;
    }

    // Moves the window to start at center - window/2. Only levels that change home move: those
    // leaving the window go to the back of the overflow on their side, in key order; overflow
    // levels now inside come in from the back of theirs.
    void recenter(int64_t center) noexcept {
        const int64_t new_base = center - static_cast<int64_t>(window_ / 2);
        debt_ = 0;
        if (new_base == base_) return;
        const int64_t new_end = new_base + static_cast<int64_t>(window_);
        // The shift may exceed int64 (keys span 2^63): measure it unsigned.
        const uint64_t shift = distance(new_base, base_);
        const size_t leaving = shift < window_ ? static_cast<size_t>(shift) : window_;
        if (new_base > base_) {
            visit_offsets<true>(0, leaving, [&](size_t slot) { evict(slot, deep_); });
            while (!beyond_.empty() && beyond_.back().key < new_base) {
                deep_.push_back(beyond_.back());
                beyond_.pop_back();
            }
            base_ = new_base;
            while (!beyond_.empty() && beyond_.back().key < new_end) {
                admit(beyond_.back());
                beyond_.pop_back();
            }
        } else {
            visit_offsets<false>(window_ - leaving, window_,
                                 [&](size_t slot) { evict(slot, beyond_); });
            while (!deep_.empty() && deep_.back().key >= new_end) {
                beyond_.push_back(deep_.back());
                deep_.pop_back();
            }
            base_ = new_base;
            while (!deep_.empty() && deep_.back().key >= new_base) {
                admit(deep_.back());
                deep_.pop_back();
            }
        }
        if (window_count_ != 0) highest_key_below(new_end, &window_best_);
    }

    void evict(size_t slot, std::vector<Level>& to) noexcept {
        to.push_back(Level{key_of_slot(slot), qty_[slot]});
        qty_[slot] = 0;
        unmark(slot);
        --window_count_;
    }

    void admit(const Level& level) noexcept {
        const size_t slot = slot_of(level.key);
        qty_[slot] = level.qty;
        mark(slot);
        ++window_count_;
    }

    size_t window_;
    size_t mask_;
    size_t words_count_;
    size_t summary_count_;
    int64_t base_ = 0;          // key at logical offset 0 of the window
    int64_t window_best_ = 0;   // best key in the window; valid while window_count_ != 0
    size_t window_count_ = 0;
    size_t debt_ = 0;           // overflow work near the touch since the window last moved
    ZeroedArray<int64_t> qty_;     // by slot = key mod window; 0 = no level
    ZeroedArray<uint64_t> words_;  // bit per slot: level present
    ZeroedArray<uint64_t> summary_;  // bit per word of words_: word non-zero
    std::vector<Level> beyond_;  // keys >= base_ + window_, descending
    std::vector<Level> deep_;    // keys < base_, ascending
};

inline size_t checked_window(size_t window_ticks) {
    if (window_ticks == 0 || window_ticks > (size_t{1} << 30)) {
        throw std::invalid_argument("L2 book window must be 1..2^30 ticks");
    }
    size_t w = 64;
    while (w < window_ticks) w *= 2;
    return w;
}

}  // namespace detail

class L3Book;

class L2Book {
public:
    static constexpr size_t kDefaultWindowTicks = 65536;

    // `window_ticks` is rounded up to a power of two (at least 64). Each side allocates 8 bytes
    // per tick of window, committed lazily by the OS as prices are touched.
    explicit L2Book(size_t window_ticks = kDefaultWindowTicks)
        : sides_{detail::PriceLadder(detail::checked_window(window_ticks)),
                 detail::PriceLadder(detail::checked_window(window_ticks))},
          window_ticks_(detail::checked_window(window_ticks)) {}

    // Sets the absolute quantity of a level; qty 0 removes it.
    L2Result set(Side side, int64_t price, int64_t qty) noexcept {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        if (s > 1u) [[unlikely]] return L2Result::BadSide;
        if (qty < 0) [[unlikely]] return L2Result::BadQty;
        if (!price_in_range(price)) [[unlikely]] return L2Result::BadPrice;
        return sides_[s].set(to_key(s, price), qty);
    }

    void clear() noexcept {
        sides_[0].clear();
        sides_[1].clear();
    }

    // An invalid side reads as an empty one.
    bool empty(Side side) const noexcept {
        const detail::PriceLadder* l = ladder(side);
        return l == nullptr || l->empty();
    }
    // best_price/best_qty are meaningful only if !empty(side); they return 0 otherwise.
    int64_t best_price(Side side) const noexcept {
        if (empty(side)) return 0;
        const unsigned s = static_cast<unsigned>(side) - 1u;
        return from_key(s, sides_[s].best_key());
    }
    int64_t best_qty(Side side) const noexcept {
        if (empty(side)) return 0;
        return ladder(side)->best_qty();
    }
    size_t level_count(Side side) const noexcept {
        const detail::PriceLadder* l = ladder(side);
        return l == nullptr ? 0 : l->level_count();
    }

    // Quantity of the level at `price`, 0 if there is none (or side/price are invalid).
    int64_t qty_at(Side side, int64_t price) const noexcept {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        if (s > 1u || !price_in_range(price)) [[unlikely]] return 0;
        return sides_[s].qty_at(to_key(s, price));
    }

    // Writes up to n levels, best first; returns how many were written.
    size_t top(Side side, size_t n, int64_t* prices, int64_t* qtys) const noexcept {
        size_t written = 0;
        if (n == 0) return 0;
        for_each_level(side, [&](int64_t price, int64_t qty) {
            prices[written] = price;
            qtys[written] = qty;
            return ++written < n;
        });
        return written;
    }

    // Best to worst, f(price, qty). f may return bool: false stops the walk.
    template <class F>
    void for_each_level(Side side, F&& f) const {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        if (s > 1u) return;
        auto by_price = [&](int64_t key, int64_t qty) {
            return detail::visit_continue(f, from_key(s, key), qty);
        };
        sides_[s].for_each(by_price);
    }

    // Both sides present and the best bid at or above the best ask.
    bool crossed() const noexcept {
        const detail::PriceLadder& bids = sides_[0];
        const detail::PriceLadder& asks = sides_[1];
        // Checked once per venue message: the usual case (both touches in their windows) reads
        // only the two window bests.
        if (bids.touch_in_window() && asks.touch_in_window()) [[likely]] {
            return bids.window_best_key() >= from_key(1, asks.window_best_key());
        }
        return !bids.empty() && !asks.empty() && bids.best_key() >= from_key(1, asks.best_key());
    }

    size_t window_ticks() const noexcept { return window_ticks_; }

    // Whether the side's best level is held in the dense window rather than in the overflow:
    // true except for a bounded while after the touch runs away. For diagnostics and tests.
    bool touch_in_window(Side side) const noexcept {
        const detail::PriceLadder* l = ladder(side);
        return l != nullptr && l->touch_in_window();
    }

    // Checks every redundant internal structure; for tests. O(window + levels).
    bool invariants_hold() const noexcept {
        return sides_[0].invariants_hold() && sides_[1].invariants_hold();
    }

private:
    friend class L3Book;

    // For callers that validated side (0 bid, 1 ask), price and qty already.
    L2Result set_checked(unsigned s, int64_t price, int64_t qty) noexcept {
        return sides_[s].set(to_key(s, price), qty);
    }
    void replace_checked(unsigned s, int64_t price, int64_t qty) noexcept {
        sides_[s].replace(to_key(s, price), qty);
    }

    // Bids keep their price as key, asks its bitwise complement, so "better" is "higher" on both.
    static int64_t to_key(unsigned s, int64_t price) noexcept {
        return price ^ -static_cast<int64_t>(s);
    }
    static int64_t from_key(unsigned s, int64_t key) noexcept { return to_key(s, key); }

    const detail::PriceLadder* ladder(Side side) const noexcept {
        const unsigned s = static_cast<unsigned>(side) - 1u;
        return s > 1u ? nullptr : &sides_[s];
    }

    detail::PriceLadder sides_[2];
    size_t window_ticks_;
};

}  // namespace lockstep
