// A seeded, deterministic synthetic market: canonical events of realistic shape, any length.
//
// Each instrument is an independent market driven by a hidden fair price (a random walk with
// drift regimes and rare jumps). The generator keeps its own book of that market (a ring of
// quantities indexed by price, plus FIFO order queues in L3 mode) and only ever emits events that
// are valid against it: absolute L2 quantities, deletes of existing levels, references to live
// orders, trades no larger than the touch. Noise actions (quantity changes, cancels, trades,
// levels inside the spread) keep the book busy; "pressure" actions move the touch toward the fair
// price, so the book walks across thousands of ticks with the price.
//
// Output depends only on (seed, options, event count): all randomness is splitmix64 turned into
// values by fixed integer formulas (no std distributions, whose output is implementation-defined,
// and no floating point), and the batch boundaries of the caller's generate() calls do not change a
// single byte. Producing N events gives the first N events of any longer run, except that the N-th
// carries kLast.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep {

enum class SynthBook : uint8_t {
    L2 = 0,  // price levels (L2Set)
    L3 = 1,  // order by order (L3Add/Modify/Delete/Execute)
};

struct SynthConfig {
    uint64_t seed = 1;
    // Total events; the final venue message is cut to fit (its last event keeps kLast).
    uint64_t events = std::numeric_limits<uint64_t>::max();
    uint32_t instruments = 1;
    uint32_t depth = 400;     // levels kept per side, within a few percent
    uint32_t max_burst = 16;  // actions per venue message are 1..max_burst
    SynthBook book = SynthBook::L2;
    int64_t start_ts = 1704153600000000000;  // 2024-01-02T00:00:00Z in ns
};

namespace synth_detail {

// One RNG stream per instrument, so instrument k's market does not depend on how many others run.
// splitmix64 over a counter: good enough statistically (it passes BigCrush), and its only serial
// dependency is one add, so successive draws overlap in the pipeline (xoshiro256** measured ~10%
// slower here, its four-word state chaining every draw through memory).
class Rng {
public:
    void seed(uint64_t seed) noexcept { x_ = splitmix64(seed); }
    static uint64_t splitmix64(uint64_t& x) noexcept {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t next() noexcept { return splitmix64(x_); }
    // [0, n) by multiply-shift of the high word: a fixed formula, so every platform agrees (the
    // bias of at most n/2^32 does not matter here).
    uint32_t below(uint32_t n) noexcept { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
    bool chance(uint32_t per65536) noexcept { return (next() & 0xffff) < per65536; }

private:
    uint64_t x_ = 0;
};

// Random bits of one draw, handed out a few at a time: most decisions need far fewer than 64.
struct Bits {
    uint64_t x;
    uint64_t take(int n) noexcept {
        const uint64_t v = x & ((uint64_t(1) << n) - 1);
        x >>= n;
        return v;
    }
    // [0, n) from `bits` bits by multiply-shift; n < 2^(64 - bits).
    uint64_t below(uint64_t n, int bits) noexcept { return (take(bits) * n) >> bits; }
};

// Most orders one L3 level holds; bounds the events one action can emit.
constexpr uint32_t kMaxOrdersPerLevel = 24;
// Events one action may emit at most: a trade through a full L3 level (Trade + one execute per
// order), a full-level delete, or a maintenance action, plus a margin.
constexpr size_t kWorstAction = 2 * kMaxOrdersPerLevel + 8;

// One instrument's market: fair price, clock and the book, which is the truth every event is
// generated against.
class Market {
public:
    // Allocates everything the market will ever need; nothing is allocated per event.
    void init(const SynthConfig& cfg, uint32_t index) {
        index_ = index;
        l3_ = cfg.book == SynthBook::L3;
        max_burst_ = std::max<uint32_t>(cfg.max_burst, 1);
        const uint32_t depth = cfg.depth;
        depth_lo_ = depth - depth / 16 - 1;
        depth_hi_ = depth + depth / 16 + 1;
        // A side may span this many ticks before its deepest level is dropped: ~1.25 ticks per
        // level at rest, so the limit is only reached while the book is moving.
        extent_max_ = 2 * int64_t(depth) + 64;
        // Every live price lies within [bid tail, ask tail], which stays shorter than the ring,
        // so price & mask_ never aliases two live levels.
        uint64_t w = 1;
        while (w < uint64_t(2 * extent_max_ + kSpreadMax + 256)) w <<= 1;
        mask_ = int64_t(w - 1);
        ring_span_ = int64_t(w) - 8;
        qty_.assign(w, 0);

        uint64_t s = cfg.seed ^ (0xa0761d6478bd642full * (uint64_t(index) + 1));
        rng_.seed(Rng::splitmix64(s));
        ts_event_ = cfg.start_ts;
        ts_recv_ = cfg.start_ts;
        seq_ = 0;
        regime_ = kNormal;
        started_ = false;

        // 200.00 .. 500.00 in 0.01 ticks, so the walk's several percent are thousands of ticks.
        const int64_t mid = 20000 + rng_.below(30000);
        fair_ = mid << kFairShift;
        drift_ = 0;
        drift_left_ = 0;

        if (l3_) {
            levels_.assign(w, L3Level{});
            // Room for ~10 orders per level on average (the market settles near 5); when it runs
            // low, adds turn into growing modifies instead.
            const size_t pool = 2 * (size_t(depth_hi_) + 8) * 10 + 1024;
            pool_.assign(pool, Order{});
            for (size_t i = 0; i < pool; ++i) pool_[i].next = i + 1 < pool ? uint32_t(i + 1) : kNil;
            free_ = 0;
            free_count_ = uint32_t(pool);
            next_order_id_ = (uint64_t(index) << 40) + 1;  // unique across instruments too
        }

        // Initial book around the fair price: mostly adjacent ticks, some gaps.
        best_[kBid] = mid - 1 - rng_.below(2);
        best_[kAsk] = mid + 1 + rng_.below(2);
        for (int s2 = 0; s2 < 2; ++s2) {
            const int64_t dir = s2 == kBid ? -1 : 1;
            int64_t p = best_[s2];
            count_[s2] = 0;
            tail_[s2] = p;
            for (uint32_t i = 0; i < depth; ++i) {
                book_place(s2, p, level_size(i));
                if (l3_) seed_orders(s2, p, q(p), false);  // the snapshot will list them
                p += dir * tail_gap();
            }
        }
        advance_header();
    }

    int64_t next_recv() const noexcept { return hdr_recv_; }

    // Messages go to the bound columns; binding copies the view once for a run of messages, so
    // its pointers stay in registers rather than being reloaded through a reference per event.
    void bind(const EventColumns& out) noexcept { out_ = out; }
    size_t bound_size() const noexcept { return out_.size; }
    void unbind(EventColumns& out) const noexcept { out.size = out_.size; }

    // Appends the next venue message to the bound columns (which have room for
    // max_message_events()) and advances the clock; returns the event count.
    size_t message() noexcept {
        const size_t first = out_.size;
        if (!started_) {
            started_ = true;
            snapshot();
        } else {
            const size_t target = first + evolve();
            // Every action emits at least one event, so this ends.
            while (out_.size < target) action();
        }
        out_.flags[out_.size - 1] |= flags::kLast;
        advance_header();
        return out_.size - first;
    }

    // Most events one message can hold: the snapshot (the clear plus every initial level or
    // order), or max_burst - 1 events followed by one last action.
    static size_t max_message_events(const SynthConfig& cfg) noexcept {
        return std::max(1 + 2 * size_t(cfg.depth) * (cfg.book == SynthBook::L3 ? kInitOrders : 1),
                        size_t(cfg.max_burst) + kWorstAction);
    }

private:
    static constexpr int kBid = 0, kAsk = 1;
    static constexpr int kFairShift = 16;  // the fair price is fixed point: ticks << 16
    static constexpr int64_t kSpreadMax = 128;  // a touch removal never leaves a wider spread
    static constexpr uint32_t kNil = 0xffffffffu;
    static constexpr uint32_t kInitOrders = 4;
    enum Regime : uint8_t { kQuiet, kNormal, kBusy };

    struct Order {
        uint64_t id = 0;
        int64_t qty = 0;
        uint32_t prev = kNil, next = kNil;
    };
    struct L3Level {
        uint32_t head = kNil, tail = kNil, n = 0;
    };

    static int64_t dir(int s) noexcept { return 2 * int64_t(s) - 1; }  // away from the touch
    // c ? a : b without a branch: the conditions on the hot path are coin flips, which a branch
    // predictor gets wrong half the time.
    static int64_t pick(bool c, int64_t a, int64_t b) noexcept { return b ^ ((a ^ b) & -int64_t(c)); }
    static uint8_t side_code(int s) noexcept {
        return static_cast<uint8_t>(s == kBid ? Side::Bid : Side::Ask);
    }
    int64_t& q(int64_t price) noexcept { return qty_[size_t(price & mask_)]; }
    int64_t extent(int s) const noexcept { return (tail_[s] - best_[s]) * dir(s); }
    int64_t spread() const noexcept { return best_[kAsk] - best_[kBid]; }

    // Events go straight into the output columns: no staging copy on the hot path.
    void emit(EventKind kind, uint8_t side, int64_t price, int64_t qty, uint64_t oid,
              uint8_t fl = 0) noexcept {
        out_.push(hdr_event_, hdr_recv_, seq_, index_, kind, static_cast<Side>(side), fl, price,
                  qty, oid);
    }

    // ---- clock ----------------------------------------------------------------------------

    // Approximately exponential gap: geometric whole part plus a uniform fraction, in units of
    // mean * ln 2.
    int64_t gap(int64_t mean) noexcept {
        const uint64_t r = rng_.next();
        const int64_t g = std::min(std::countl_zero(r | 1), 40);
        const int64_t units = (g << 16) | int64_t(r & 0xffff);
        return 1 + (((mean * 45426) >> 16) * units >> 16);
    }

    void advance_header() noexcept {
        Bits b{rng_.next()};
        if (seq_ != 0) {
            // Quiet, normal and busy periods; a Markov switch per message.
            const uint64_t r = b.take(16);
            switch (regime_) {
                case kQuiet: if (r < 650) regime_ = kNormal; break;
                case kNormal: if (r < 130) regime_ = kBusy; else if (r < 195) regime_ = kQuiet; break;
                case kBusy: if (r < 330) regime_ = kNormal; break;
            }
            static constexpr int64_t kMeanGap[3] = {8'000'000, 400'000, 15'000};
            ts_event_ += gap(kMeanGap[regime_]);
        }
        // Feed latency: tens of microseconds, a rare spike; the link is FIFO, so arrivals never
        // overtake each other (queueing, not a correction: kBadTsRecv stays clear).
        int64_t latency = 15'000 + int64_t(b.below(40'000, 16));
        if (b.take(16) < 32) latency += int64_t(b.below(2'000'000, 24));
        hdr_event_ = ts_event_;
        hdr_recv_ = std::max(ts_event_ + latency, ts_recv_);
        ts_recv_ = hdr_recv_;
        ++seq_;
    }

    // ---- the hidden fair price ------------------------------------------------------------

    // Moves the fair price one message on; returns the message's burst size (events to emit at
    // least), larger in busy periods.
    size_t evolve() noexcept {
        static constexpr int64_t kStep[3] = {1 << 15, 1 << 16, 3 << 15};  // ticks << 16
        const uint64_t r = rng_.next();
        const int64_t step = kStep[regime_];
        fair_ += int64_t(((r >> 32) * uint64_t(2 * step + 1)) >> 32) - step + drift_;
        if (drift_left_-- <= 0) {
            // Drift regimes: up to +-1 tick per 256 messages, redrawn every ~65k messages.
            drift_left_ = 1 + rng_.below(1u << 17);
            drift_ = int64_t(rng_.below(513)) - 256;
        }
        if ((r & 0xffff) < 2) {  // a jump of 10..100 ticks, about once per 33k messages
            const int64_t j = int64_t(10 + rng_.below(91)) << kFairShift;
            fair_ += rng_.chance(1u << 15) ? j : -j;
        }
        // Keep prices positive whatever the walk does.
        const int64_t floor = int64_t(2000) << kFairShift;
        if (fair_ < floor) {
            fair_ = 2 * floor - fair_;
            if (drift_ < 0) drift_ = -drift_;
        }
        const uint64_t rb = (r >> 16) & 0xffff;
        if (regime_ == kBusy) return 1 + ((rb * max_burst_) >> 16);
        // Geometric(1/2) from the zeros of 16 bits (rb | 1 has at most 15 leading ones).
        const uint32_t g = uint32_t(std::countl_zero(uint16_t(rb | 1)));
        return 1 + std::min<uint32_t>(regime_ == kQuiet ? g / 2 : g, max_burst_ - 1);
    }

    // ---- quantities -----------------------------------------------------------------------

    // Resting size `d` levels from the touch: larger further out, random, sometimes a wall.
    static int64_t level_size(uint64_t d, Bits& b) noexcept {
        const int64_t base = 200 + 16 * int64_t(std::min<uint64_t>(d, 4096));
        const int64_t qv = base * int64_t(32 + b.below(96, 8)) / 64;  // 0.5x .. 2x
        return b.take(6) == 0 ? 6 * qv : qv;                           // a wall, 1 in 64
    }
    int64_t level_size(uint64_t d) noexcept {
        Bits b{rng_.next()};
        return level_size(d, b);
    }
    int64_t trade_size() noexcept {
        const uint64_t r = rng_.next();
        return int64_t(1 + (r & 0x7f)) << std::min(std::countl_zero(r | 0xff), 5);
    }
    int64_t tail_gap() noexcept {
        const uint32_t r = rng_.below(100);
        return r < 80 ? 1 : r < 95 ? 2 : 3;
    }
    // Distance from the touch of a level to act on: mostly near the touch, anywhere sometimes.
    int64_t pick_distance(int s, Bits& b) noexcept {
        const int64_t ext = extent(s);
        const int64_t span = pick(b.take(8) < 150 && ext > 10, 10, ext);
        return int64_t(b.below(uint64_t(span + 1), 20));
    }
    int64_t pick_distance(int s) noexcept {
        Bits b{rng_.next()};
        return pick_distance(s, b);
    }

    // ---- the book (level quantities; both modes) ------------------------------------------

    // Next level from `p` in direction `step`; the caller knows one exists on that side.
    int64_t scan(int64_t p, int64_t step) noexcept {
        do p += step; while (q(p) == 0);
        return p;
    }
    void book_place(int s, int64_t p, int64_t qv) noexcept {
        q(p) = qv;
        ++count_[s];
        if ((p - best_[s]) * dir(s) < 0) best_[s] = p;
        if ((p - tail_[s]) * dir(s) > 0) tail_[s] = p;
    }
    // The level at `p` is gone; count_[s] >= 2 so the side keeps a level.
    void book_drop(int s, int64_t p) noexcept {
        q(p) = 0;
        --count_[s];
        if (p == best_[s]) best_[s] = scan(p, dir(s));
        else if (p == tail_[s]) tail_[s] = scan(p, -dir(s));
    }
    // Removing the touch of side s keeps the spread within kSpreadMax and the side non-trivial.
    bool touch_removable(int s) noexcept {
        if (count_[s] <= 2) return false;
        const int64_t nb = scan(best_[s], dir(s));
        const int64_t other = best_[1 - s];
        return (s == kBid ? other - nb : nb - other) <= kSpreadMax;
    }

    // ---- L3 order queues --------------------------------------------------------------------

    L3Level& lv(int64_t p) noexcept { return levels_[size_t(p & mask_)]; }
    uint32_t alloc_order(int64_t qv) noexcept {
        const uint32_t i = free_;
        free_ = pool_[i].next;
        --free_count_;
        pool_[i].id = next_order_id_++;
        pool_[i].qty = qv;
        return i;
    }
    void free_order(uint32_t i) noexcept {
        pool_[i].next = free_;
        free_ = i;
        ++free_count_;
    }
    void link_back(L3Level& l, uint32_t i) noexcept {
        pool_[i].prev = l.tail;
        pool_[i].next = kNil;
        if (l.tail != kNil) pool_[l.tail].next = i; else l.head = i;
        l.tail = i;
        ++l.n;
    }
    void unlink(L3Level& l, uint32_t i) noexcept {
        const uint32_t pv = pool_[i].prev, nx = pool_[i].next;
        if (pv != kNil) pool_[pv].next = nx; else l.head = nx;
        if (nx != kNil) pool_[nx].prev = pv; else l.tail = pv;
        --l.n;
    }
    uint32_t random_order(const L3Level& l) noexcept {
        uint32_t i = l.head;
        for (uint32_t k = rng_.below(l.n); k > 0; --k) i = pool_[i].next;
        return i;
    }
    bool pool_ok() const noexcept { return free_count_ > kMaxOrdersPerLevel; }
    // Splits a new level's quantity into 1..kInitOrders orders.
    void seed_orders(int s, int64_t p, int64_t total, bool announce) noexcept {
        uint32_t k = 1 + rng_.below(kInitOrders);
        if (int64_t(k) > total) k = uint32_t(total);
        L3Level& l = lv(p);
        int64_t rem = total;
        for (uint32_t i = 0; i < k; ++i) {
            const int64_t left = int64_t(k - i - 1);
            const int64_t part = left == 0 ? rem : 1 + rng_.below(uint32_t(std::min<int64_t>(rem - left, 1 << 30))) / 2;
            rem -= part;
            const uint32_t o = alloc_order(part);
            link_back(l, o);
            if (announce) emit(EventKind::L3Add, side_code(s), p, part, pool_[o].id);
        }
    }

    // ---- primitives: one book change, expressed in the configured mode ----------------------

    void new_level(int s, int64_t p, int64_t qv) noexcept {
        book_place(s, p, qv);
        if (l3_) seed_orders(s, p, qv, true);
        else emit(EventKind::L2Set, side_code(s), p, qv, 0);
    }
    void grow(int s, int64_t p, int64_t amount) noexcept {
        q(p) += amount;
        if (!l3_) {
            emit(EventKind::L2Set, side_code(s), p, q(p), 0);
            return;
        }
        L3Level& l = lv(p);
        if (l.n < kMaxOrdersPerLevel && pool_ok() && !rng_.chance(6554)) {
            const uint32_t o = alloc_order(amount);
            link_back(l, o);
            emit(EventKind::L3Add, side_code(s), p, amount, pool_[o].id);
        } else {
            // An order grows: it loses its priority, as the venue would re-queue it.
            const uint32_t o = random_order(l);
            pool_[o].qty += amount;
            unlink(l, o);
            link_back(l, o);
            emit(EventKind::L3Modify, side_code(s), p, pool_[o].qty, pool_[o].id);
        }
    }
    // amount < q(p): the level stays.
    void shrink(int s, int64_t p, int64_t amount) noexcept {
        if (!l3_) {
            q(p) -= amount;
            emit(EventKind::L2Set, side_code(s), p, q(p), 0);
            return;
        }
        L3Level& l = lv(p);
        const uint32_t o = random_order(l);
        Order& ord = pool_[o];
        if (ord.qty > amount) {
            ord.qty -= amount;
            q(p) -= amount;
            emit(EventKind::L3Modify, side_code(s), p, ord.qty, ord.id);
        } else {
            // Cancelling the whole order removes at most `amount` < q(p): the level stays.
            q(p) -= ord.qty;
            emit(EventKind::L3Delete, side_code(s), p, ord.qty, ord.id);
            unlink(l, o);
            free_order(o);
        }
    }
    void remove_level(int s, int64_t p) noexcept {
        if (l3_) {
            L3Level& l = lv(p);
            while (l.head != kNil) {
                const uint32_t o = l.head;
                emit(EventKind::L3Delete, side_code(s), p, pool_[o].qty, pool_[o].id);
                unlink(l, o);
                free_order(o);
            }
        } else {
            emit(EventKind::L2Set, side_code(s), p, 0, 0);
        }
        book_drop(s, p);
    }
    // An aggressor takes `amount` <= q(touch) from the touch of resting side s; the level update
    // follows the print in the same message.
    void trade(int s, int64_t amount) noexcept {
        const int64_t p = best_[s];
        emit(EventKind::Trade, side_code(1 - s), p, amount, 0);
        if (l3_) {
            L3Level& l = lv(p);
            int64_t rem = amount;
            while (rem > 0) {
                const uint32_t o = l.head;  // time priority: the front order fills first
                const int64_t f = std::min(rem, pool_[o].qty);
                emit(EventKind::L3Execute, side_code(s), p, f, pool_[o].id);
                pool_[o].qty -= f;
                rem -= f;
                if (pool_[o].qty == 0) {
                    unlink(l, o);
                    free_order(o);
                }
            }
            q(p) -= amount;
            if (q(p) == 0) book_drop(s, p);
        } else if (amount == q(p)) {
            emit(EventKind::L2Set, side_code(s), p, 0, 0);
            book_drop(s, p);
        } else {
            q(p) -= amount;
            emit(EventKind::L2Set, side_code(s), p, q(p), 0);
        }
    }

    // ---- actions ----------------------------------------------------------------------------

    void snapshot() noexcept {
        emit(EventKind::BookClear, static_cast<uint8_t>(Side::None), 0, 0, 0, flags::kSnapshot);
        for (int s = 0; s < 2; ++s) {
            for (int64_t p = best_[s];; p += dir(s)) {
                if (q(p) != 0) {
                    if (l3_) {
                        for (uint32_t o = lv(p).head; o != kNil; o = pool_[o].next)
                            emit(EventKind::L3Add, side_code(s), p, pool_[o].qty, pool_[o].id,
                                 flags::kSnapshot);
                    } else {
                        emit(EventKind::L2Set, side_code(s), p, q(p), 0, flags::kSnapshot);
                    }
                }
                if (p == tail_[s]) break;
            }
        }
    }

    void action() noexcept {
        if (needs_maintenance() && maintain()) return;
        Bits b{rng_.next()};
        // Pressure: the further the book's mid is from the fair price, the likelier a move.
        const int64_t diff2 = 2 * (fair_ >> kFairShift) - (best_[kBid] + best_[kAsk]);
        const int64_t mag = diff2 < 0 ? -diff2 : diff2;
        if (mag > 2 && int64_t(b.take(4)) < std::min<int64_t>(mag, 16)) {
            if (move(diff2 > 0 ? 1 : -1)) return;
        }
        // Liquidity providers close a wide spread quickly, from the side the fair price favours.
        const int64_t sp = spread();
        if (sp > 1 && int64_t(b.take(4)) < std::min<int64_t>(sp - 1, 12) && (!l3_ || pool_ok())) {
            const int s = diff2 > 0 ? kBid : diff2 < 0 ? kAsk : int(b.take(1));
            return improve(s, sp);
        }
        noise(b);
    }
    // A new level inside the spread on side s, at most a couple of ticks ahead of its touch.
    void improve(int s, int64_t sp) noexcept {
        const int64_t p = best_[s] - dir(s) * (1 + rng_.below(uint32_t(std::min<int64_t>(sp - 1, 2))));
        new_level(s, p, level_size(0) / 2 + 1);
    }
    bool needs_maintenance() const noexcept {
        return (count_[kBid] - depth_lo_) > (depth_hi_ - depth_lo_) ||
               (count_[kAsk] - depth_lo_) > (depth_hi_ - depth_lo_) ||
               extent(kBid) > extent_max_ || extent(kAsk) > extent_max_;
    }

    // Keeps each side between depth_lo_ and depth_hi_ levels and within extent_max_ ticks, as a
    // depth-limited venue feed does: levels leave and join at the far end.
    bool maintain() noexcept {
        for (int s = 0; s < 2; ++s) {
            if (count_[s] > depth_hi_ || extent(s) > extent_max_) {
                remove_level(s, tail_[s]);
                return true;
            }
        }
        for (int s = 0; s < 2; ++s) {
            if (count_[s] < depth_lo_ && rng_.chance(1u << 15)) {
                const int64_t p = tail_[s] + dir(s) * tail_gap();
                const int64_t span = s == kBid ? tail_[kAsk] - p : p - tail_[kBid];
                if (span < ring_span_ && extent(s) + 3 <= extent_max_ && (!l3_ || pool_ok())) {
                    new_level(s, p, level_size(count_[s]));
                    return true;
                }
            }
        }
        return false;
    }

    // Moves the book one step toward the fair price: up (+1) improves the bid inside the spread or
    // takes out the ask touch; down mirrors it.
    bool move(int up) noexcept {
        const int forward = up > 0 ? kBid : kAsk;  // the side that steps forward
        const int yield = 1 - forward;             // the side that steps back
        const int64_t sp = spread();
        if (sp > 1 && (rng_.chance(1u << 15) || !touch_removable(yield))) {
            if (l3_ && !pool_ok()) return false;
            improve(forward, sp);
            return true;
        }
        if (!touch_removable(yield)) return false;
        if (rng_.chance(49152)) trade(yield, q(best_[yield]));
        else remove_level(yield, best_[yield]);
        return true;
    }

    void noise(Bits& b) noexcept {
        const uint64_t pick = b.take(7);  // out of 128
        const int s = int(b.take(1));
        if (pick < 16) noise_trade(s);
        else if (pick < 26) noise_remove(s);
        else if (pick < 34 && spread() > 1 && (!l3_ || pool_ok())) improve(s, spread());
        else if (l3_ && pick < 44) reprice(s);
        else level_update(s, b);
    }

    void noise_trade(int s) noexcept {
        const int64_t touch = q(best_[s]);
        int64_t amount = trade_size();
        if (amount >= touch) {
            if (touch_removable(s)) amount = touch;
            else if (touch > 1) amount = touch - 1;
            else return level_update(s);
        }
        trade(s, amount);
    }

    void noise_remove(int s) noexcept {
        const int64_t d = rng_.below(uint32_t(std::min<int64_t>(extent(s), 8) + 1));
        const int64_t p = best_[s] + dir(s) * d;
        if (q(p) == 0 || count_[s] <= 2 || (d == 0 && !touch_removable(s)))
            return level_update(s);
        remove_level(s, p);
    }

    // Always emits: a change of an existing level, or a new level in a gap of the side.
    void level_update(int s, Bits& b) noexcept {
        const int64_t d = pick_distance(s, b);  // 28 of the bits left
        const int64_t p = best_[s] + dir(s) * d;
        int64_t& slot = q(p);
        const int64_t cur = slot;
        if (!l3_) {
            // The hottest path, kept free of unpredictable branches: grow, shrink or fill a gap
            // are all one L2Set of the level's new absolute quantity.
            Bits c{rng_.next()};
            const int64_t size = level_size(uint64_t(d), c);
            const bool up = (cur <= 1) | bool(c.take(1));
            const int64_t cut = 1 + int64_t(c.below(uint64_t(cur / 2), 24));
            const int64_t nq = pick(cur == 0, size, pick(up, cur + size / 4 + 1, cur - cut));
            slot = nq;
            count_[s] += cur == 0;  // a gap between the touch and the tail: best/tail stay
            emit(EventKind::L2Set, side_code(s), p, nq, 0);
            return;
        }
        if (cur == 0) {
            if (!l3_ || pool_ok()) return new_level(s, p, level_size(uint32_t(d)));
            return shrink_or_grow(s, best_[s], 0);
        }
        shrink_or_grow(s, p, uint32_t(d));
    }
    void level_update(int s) noexcept {
        Bits b{rng_.next()};
        level_update(s, b);
    }
    void shrink_or_grow(int s, int64_t p, uint32_t d) noexcept {
        const int64_t cur = q(p);
        if (cur > 1 && rng_.chance(1u << 15)) {
            shrink(s, p, 1 + rng_.below(uint32_t(std::min<int64_t>(cur / 2, 1 << 30))));
        } else {
            grow(s, p, level_size(d) / 4 + 1);
        }
    }

    // L3 only: an order moves to another price on its side (joins the back there); the source
    // level keeps at least one order so levels change only through the primitives above.
    void reprice(int s) noexcept {
        const int64_t from = best_[s] + dir(s) * pick_distance(s);
        if (q(from) == 0 || lv(from).n < 2) return level_update(s);
        int64_t to;
        const int64_t sp = spread();
        if (sp > 1 && rng_.chance(1u << 14)) {
            to = best_[s] - dir(s) * (1 + rng_.below(uint32_t(std::min<int64_t>(sp - 1, 3))));
        } else {
            to = best_[s] + dir(s) * rng_.below(uint32_t(std::min<int64_t>(extent(s), 10) + 1));
        }
        if (to == from || (q(to) != 0 && lv(to).n >= kMaxOrdersPerLevel)) return level_update(s);
        L3Level& src = lv(from);
        const uint32_t o = random_order(src);
        unlink(src, o);
        q(from) -= pool_[o].qty;
        if (q(to) == 0) book_place(s, to, pool_[o].qty);
        else q(to) += pool_[o].qty;
        link_back(lv(to), o);
        emit(EventKind::L3Modify, side_code(s), to, pool_[o].qty, pool_[o].id);
    }

    // State.
    Rng rng_;
    uint32_t index_ = 0;
    bool l3_ = false;
    bool started_ = false;
    uint32_t max_burst_ = 16;
    uint32_t depth_lo_ = 0, depth_hi_ = 0;
    int64_t extent_max_ = 0, ring_span_ = 0, mask_ = 0;
    int64_t fair_ = 0, drift_ = 0, drift_left_ = 0;
    Regime regime_ = kNormal;
    int64_t ts_event_ = 0, ts_recv_ = 0, hdr_event_ = 0, hdr_recv_ = 0;
    uint64_t seq_ = 0;
    int64_t best_[2] = {0, 0}, tail_[2] = {0, 0};
    uint32_t count_[2] = {0, 0};
    std::vector<int64_t> qty_;
    std::vector<L3Level> levels_;
    std::vector<Order> pool_;
    uint32_t free_ = kNil, free_count_ = 0;
    uint64_t next_order_id_ = 1;
    EventColumns out_{};  // the message's destination, a copy so its pointers stay in registers
};

}  // namespace synth_detail

// Streams the synthetic events of `instruments` independent markets, merged in Processing Order
// (ts_recv, then instrument index). Call generate() until it returns 0.
class SyntheticMarket {
public:
    // Allocates all state; may throw std::bad_alloc.
    Status configure(const SynthConfig& cfg) {
        markets_.clear();
        heap_.clear();
        stage_.clear();
        stage_pos_ = stage_len_ = 0;
        staged_total_ = produced_ = 0;
        if (cfg.instruments == 0 || cfg.depth < 4 || cfg.depth > (1u << 16) || cfg.max_burst == 0 ||
            cfg.max_burst > 4096)
            return Status::InvalidArgument;
        cfg_ = cfg;
        markets_.resize(cfg.instruments);
        for (uint32_t i = 0; i < cfg.instruments; ++i) markets_[i].init(cfg, i);
        heap_.resize(cfg.instruments);
        for (uint32_t i = 0; i < cfg.instruments; ++i) heap_[i] = i;
        for (size_t i = heap_.size() / 2; i-- > 0;) sift_down(i);
        max_message_ = synth_detail::Market::max_message_events(cfg);
        stage_.reserve(max_message_);
        stage_.clear();
        return Status::Ok;
    }

    // Appends up to min(max_events, out.capacity - out.size) events to `out`; returns how many.
    // Returns 0 once the configured total is reached (or before configure()).
    size_t generate(EventColumns& out, size_t max_events) noexcept {
        if (out.size > out.capacity) return 0;
        const size_t start = out.size;
        const size_t end = start + std::min(max_events, out.capacity - start);
        while (out.size < end) {
            EventColumns& st = stage_.columns();
            if (stage_pos_ < st.size) {
                drain(out, std::min(st.size - stage_pos_, end - out.size));
                continue;
            }
            if (markets_.empty() || staged_total_ >= cfg_.events) break;
            const uint64_t left = cfg_.events - staged_total_;
            if (end - out.size >= max_message_ && left >= max_message_) {
                // Room for any message: build in place, for as long as one market stays next.
                const uint32_t id = heap_[0];
                synth_detail::Market& m = markets_[id];
                m.bind(out);
                do {
                    staged_total_ += m.message();
                    sift_down(0);
                } while (heap_[0] == id && end - m.bound_size() >= max_message_ &&
                         cfg_.events - staged_total_ >= max_message_);
                m.unbind(out);
                continue;
            }
            // Near the end of the columns or of the run: build aside, hand out what fits.
            stage_.clear();
            stage_pos_ = stage_len_ = 0;
            size_t n = next_message(st);
            if (n > left) {
                // The run ends inside this message: cut it, and its new last event closes it.
                n = size_t(left);
                st.size = n;
                st.flags[n - 1] |= flags::kLast;
            }
            stage_len_ = n;
            staged_total_ += n;
        }
        produced_ += out.size - start;
        return out.size - start;
    }

    uint64_t produced() const noexcept { return produced_; }
    bool done() const noexcept {
        return markets_.empty() ||
               (stage_pos_ >= stage_len_ && staged_total_ >= cfg_.events);
    }
    const SynthConfig& config() const noexcept { return cfg_; }

private:
    size_t next_message(EventColumns& out) noexcept {
        synth_detail::Market& m = markets_[heap_[0]];
        m.bind(out);
        const size_t n = m.message();
        m.unbind(out);
        sift_down(0);
        return n;
    }

    void drain(EventColumns& out, size_t n) noexcept {
        const EventColumns& st = stage_.columns();
        const size_t i = stage_pos_, o = out.size;
        std::copy_n(st.ts_event + i, n, out.ts_event + o);
        std::copy_n(st.ts_recv + i, n, out.ts_recv + o);
        std::copy_n(st.seq + i, n, out.seq + o);
        std::copy_n(st.instrument + i, n, out.instrument + o);
        std::copy_n(st.kind + i, n, out.kind + o);
        std::copy_n(st.side + i, n, out.side + o);
        std::copy_n(st.flags + i, n, out.flags + o);
        std::copy_n(st.price + i, n, out.price + o);
        std::copy_n(st.qty + i, n, out.qty + o);
        std::copy_n(st.order_id + i, n, out.order_id + o);
        stage_pos_ += n;
        out.size += n;
    }

    bool before(uint32_t a, uint32_t b) const noexcept {
        const int64_t ra = markets_[a].next_recv(), rb = markets_[b].next_recv();
        return ra < rb || (ra == rb && a < b);
    }
    void sift_down(size_t i) noexcept {
        const size_t n = heap_.size();
        for (;;) {
            const size_t l = 2 * i + 1, r = l + 1;
            size_t m = i;
            if (l < n && before(heap_[l], heap_[m])) m = l;
            if (r < n && before(heap_[r], heap_[m])) m = r;
            if (m == i) return;
            std::swap(heap_[i], heap_[m]);
            i = m;
        }
    }

    SynthConfig cfg_{};
    std::vector<synth_detail::Market> markets_;
    std::vector<uint32_t> heap_;  // min-heap of instruments by (next ts_recv, index)
    EventBuffer stage_;           // a message that did not fit where it was due
    size_t stage_pos_ = 0, stage_len_ = 0;
    size_t max_message_ = 0;
    uint64_t staged_total_ = 0, produced_ = 0;
};

}  // namespace lockstep
