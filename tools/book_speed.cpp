// Events per second of L2Book and L3Book on synthetic streams, one core, no Python.
//
//   g++ -O3 -std=c++20 -Iinclude tools/book_speed.cpp -o /tmp/book_speed && /tmp/book_speed
//
// Streams are generated up front (untimed) and then applied in a tight loop, best of a few passes.
// L2: the mid is a random walk with rare 10% jumps (far beyond the default window, forcing the
// window to re-centre); updates cluster near the touch with occasional far levels; levels the
// mid runs through are deleted, as a venue would. L3: adds near the touch, cancels of random
// resting orders, executions mostly at the front of the best level, modifies that shrink
// (keeping priority), grow or reprice, a little garbage (unknown ids, duplicate adds).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "lockstep/core/l2_book.hpp"
#include "lockstep/core/l3_book.hpp"

using namespace lockstep;

namespace {

struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return next() % n; }
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    // Distance from the touch: exponential with mean `mean` ticks, but 1% anywhere in 5000.
    int64_t near(double mean) {
        if (below(100) == 0) return static_cast<int64_t>(below(5000));
        return static_cast<int64_t>(-std::log(1.0 - unit()) * mean);
    }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct L2Stream {
    std::vector<uint8_t> side;
    std::vector<int64_t> price, qty;
    void push(Side s, int64_t p, int64_t q) {
        side.push_back(static_cast<uint8_t>(s));
        price.push_back(p);
        qty.push_back(q);
    }
    size_t size() const { return side.size(); }
};

L2Stream make_l2_stream(size_t n, uint64_t seed) {
    L2Stream st;
    st.side.reserve(n + n / 8);
    st.price.reserve(n + n / 8);
    st.qty.reserve(n + n / 8);
    Rng rng{seed};
    L2Book model;  // what the venue's book looks like, to delete levels the mid runs through
    int64_t mid = 10'000'000;
    auto emit = [&](Side s, int64_t p, int64_t q) {
        st.push(s, p, q);
        model.set(s, p, q);
    };
    while (st.size() < n) {
        if (rng.below(2'000'000) == 0) {
            mid += (rng.below(2) ? 1 : -1) * mid / 10;  // a 10% move
        } else if (rng.below(16) == 0) {
            mid += rng.below(2) ? 1 : -1;
        }
        while (!model.empty(Side::Bid) && model.best_price(Side::Bid) >= mid) {
            emit(Side::Bid, model.best_price(Side::Bid), 0);
        }
        while (!model.empty(Side::Ask) && model.best_price(Side::Ask) <= mid) {
            emit(Side::Ask, model.best_price(Side::Ask), 0);
        }
        const Side s = rng.below(2) ? Side::Bid : Side::Ask;
        const int64_t d = rng.near(8.0);
        const int64_t p = s == Side::Bid ? mid - 1 - d : mid + 1 + d;
        const int64_t q = rng.below(10) < 3 ? 0 : 1 + static_cast<int64_t>(rng.below(1000));
        emit(s, p, q);
    }
    return st;
}

enum Op : uint8_t { Add, Modify, Remove, Execute };

struct L3Stream {
    std::vector<uint8_t> op, side;
    std::vector<uint64_t> id;
    std::vector<int64_t> price, qty;
    void push(Op o, uint64_t i, Side s, int64_t p, int64_t q) {
        op.push_back(o);
        side.push_back(static_cast<uint8_t>(s));
        id.push_back(i);
        price.push_back(p);
        qty.push_back(q);
    }
    size_t size() const { return op.size(); }
};

L3Stream make_l3_stream(size_t n, size_t resting_target, uint64_t seed) {
    L3Stream st;
    Rng rng{seed};
    L3Book model(L2Book::kDefaultWindowTicks, resting_target * 2);
    std::vector<uint64_t> live;                        // resting ids, for picking at random
    std::unordered_map<uint64_t, size_t> live_index;   // id -> position in `live`
    auto forget = [&](uint64_t id) {
        const size_t at = live_index[id];
        live[at] = live.back();
        live_index[live[at]] = at;
        live.pop_back();
        live_index.erase(id);
    };
    uint64_t next_id = 1;
    int64_t mid = 10'000'000;
    while (st.size() < n) {
        if (st.size() == n / 2) mid += mid / 10;  // one 10% move
        if (rng.below(64) == 0) mid += rng.below(2) ? 1 : -1;
        const uint64_t roll = rng.below(1000);
        const bool want_add = live.empty() || roll < (live.size() < resting_target ? 500u : 300u);
        if (roll < 3) {  // garbage: unknown id, duplicate add
            st.push(Remove, next_id + 1'000'000'000, Side::Bid, 0, 0);
            if (!live.empty()) st.push(Add, live[rng.below(live.size())], Side::Ask, mid + 1, 1);
            continue;
        }
        if (want_add) {
            const Side s = rng.below(2) ? Side::Bid : Side::Ask;
            const int64_t d = rng.near(10.0);
            const int64_t p = s == Side::Bid ? mid - 1 - d : mid + 1 + d;
            const int64_t q = 1 + static_cast<int64_t>(rng.below(100));
            const uint64_t id = next_id++;
            st.push(Add, id, s, p, q);
            model.add(id, s, p, q);
            live_index[id] = live.size();
            live.push_back(id);
            continue;
        }
        const uint64_t kind = rng.below(100);
        uint64_t id = live[rng.below(live.size())];
        Side s = Side::Bid;
        int64_t p = 0, q = 0;
        model.order(id, &s, &p, &q);
        if (kind < 65) {
            st.push(Remove, id, s, 0, 0);
            model.remove(id);
            forget(id);
        } else if (kind < 85) {
            // Mostly a fill at the front of the touch.
            if (rng.below(4) != 0) {
                const Side touch = rng.below(2) ? Side::Bid : Side::Ask;
                if (!model.empty(touch)) {
                    model.for_each_order(touch, [&](uint64_t oid, int64_t, int64_t) {
                        id = oid;
                        return false;
                    });
                    model.order(id, &s, &p, &q);
                }
            }
            const int64_t fill = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(q) + 10));
            st.push(Execute, id, s, 0, fill);
            model.execute(id, fill);
            if (fill >= q) forget(id);
        } else {
            const uint64_t how = rng.below(10);
            int64_t np = p, nq = q;
            if (how < 6) {
                const uint64_t cut = q > 1 ? 1 + rng.below(static_cast<uint64_t>(q - 1)) : 0;
                nq = q - static_cast<int64_t>(cut);
            } else if (how < 8) {
                nq = q + 1 + static_cast<int64_t>(rng.below(50));
            } else {
                np = p + (rng.below(2) ? 1 : -1) * (1 + static_cast<int64_t>(rng.below(5)));
            }
            st.push(Modify, id, s, np, nq);
            model.modify(id, np, nq);
        }
    }
    return st;
}

void bench_flat_array(const L2Stream& st) {
    // The floor: one store into a plain per-side array indexed by price, no best tracking.
    const auto [lo_it, hi_it] = std::minmax_element(st.price.begin(), st.price.end());
    const int64_t lo = *lo_it, span = *hi_it - lo + 1;
    std::vector<int64_t> ladder[2] = {std::vector<int64_t>(span), std::vector<int64_t>(span)};
    double best = 1e30;
    int64_t sink = 0;
    for (int pass = 0; pass < 3; ++pass) {
        std::fill(ladder[0].begin(), ladder[0].end(), 0);
        std::fill(ladder[1].begin(), ladder[1].end(), 0);
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < st.size(); ++i) {
            ladder[st.side[i] - 1][st.price[i] - lo] = st.qty[i];
        }
        best = std::min(best, seconds_since(t0));
        sink += ladder[0][st.price[0] - lo];
    }
    std::printf("flat array  %10zu events  %7.1f M events/s   (sink %lld)\n", st.size(),
                st.size() / best / 1e6, static_cast<long long>(sink));
}

void bench_l2(const L2Stream& st, size_t window) {
    L2Book book(window);
    double best = 1e30;
    size_t unknown = 0, levels = 0;
    for (int pass = 0; pass < 3; ++pass) {
        book.clear();
        unknown = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < st.size(); ++i) {
            unknown += book.set(static_cast<Side>(st.side[i]), st.price[i], st.qty[i]) ==
                       L2Result::UnknownLevel;
        }
        best = std::min(best, seconds_since(t0));
        levels = book.level_count(Side::Bid) + book.level_count(Side::Ask);
    }
    // Untimed: how long the touch spends outside the dense window (after the 10% jumps).
    book.clear();
    size_t outside = 0;
    for (size_t i = 0; i < st.size(); ++i) {
        book.set(static_cast<Side>(st.side[i]), st.price[i], st.qty[i]);
        outside += (!book.empty(Side::Bid) && !book.touch_in_window(Side::Bid)) ||
                   (!book.empty(Side::Ask) && !book.touch_in_window(Side::Ask));
    }
    std::printf("L2Book w=%-6zu %8zu events  %7.1f M events/s   (unknown-level deletes %zu, "
                "levels at end %zu, events with a touch outside the window %zu)\n",
                window, st.size(), st.size() / best / 1e6, unknown, levels, outside);
}

void bench_l3(const L3Stream& st, size_t resting_target) {
    L3Book book;
    double best = 1e30;
    size_t rejected = 0, orders = 0;
    for (int pass = 0; pass < 3; ++pass) {
        book.clear();
        rejected = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < st.size(); ++i) {
            L3Result r;
            switch (st.op[i]) {
                case Add:
                    r = book.add(st.id[i], static_cast<Side>(st.side[i]), st.price[i], st.qty[i]);
                    break;
                case Modify: r = book.modify(st.id[i], st.price[i], st.qty[i]); break;
                case Remove: r = book.remove(st.id[i]); break;
                default: r = book.execute(st.id[i], st.qty[i]); break;
            }
            rejected += r != L3Result::Ok;
        }
        best = std::min(best, seconds_since(t0));
        orders = book.order_count();
    }
    std::printf("L3Book ~%-6zu %8zu events  %7.1f M events/s   (rejected %zu, resting at end %zu, "
                "levels %zu)\n",
                resting_target, st.size(), st.size() / best / 1e6, rejected, orders,
                book.level_count(Side::Bid) + book.level_count(Side::Ask));
}

}  // namespace

int main(int argc, char** argv) {
    const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10'000'000;
    const L2Stream l2 = make_l2_stream(n, 42);
    bench_flat_array(l2);
    for (size_t window : {size_t{4096}, size_t{65536}}) bench_l2(l2, window);
    for (size_t resting : {size_t{2'000}, size_t{20'000}, size_t{200'000}}) {
        const L3Stream l3 = make_l3_stream(n, resting, 7);
        bench_l3(l3, resting);
    }
    return 0;
}
