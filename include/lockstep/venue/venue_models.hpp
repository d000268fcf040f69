// Fee and latency models of the Simulated Venue (docs/venue.md).
//
// Both are pure functions of their configuration and, for latency, of the seed and the order of
// calls: the venue calls entry()/response() in dispatch order, so a run replays exactly.
// src/lockstep/reference/venue_models.py is the pure-Python twin and must give identical integers.
#pragma once

#include <cmath>
#include <cstdint>

#include "lockstep/base/status.hpp"

namespace lockstep {

// fee = price x qty x ppm, in ticks x lots x 1e-6 (quote units are the caller's business).
// Positive is paid, negative is a rebate. price x qty always fits __int128 (< 2^126); the product
// with ppm saturates at the __int128 range, which no real ppm (|ppm| < 2^126 / |price x qty|)
// reaches.
struct FeeModel {
    int64_t maker_ppm = 0;
    int64_t taker_ppm = 0;

    __int128 fee(int64_t price, int64_t qty, bool maker) const noexcept {
        const __int128 notional = static_cast<__int128>(price) * qty;
        __int128 out;
        if (__builtin_mul_overflow(notional, static_cast<__int128>(maker ? maker_ppm : taker_ppm),
                                   &out)) [[unlikely]] {
            const __int128 max = static_cast<__int128>(~static_cast<unsigned __int128>(0) >> 1);
            const bool negative = (notional < 0) != ((maker ? maker_ppm : taker_ppm) < 0);
            return negative ? -max - 1 : max;
        }
        return out;
    }

    // fee() as a VenueResponse carries it: saturated to int64.
    int64_t fee64(int64_t price, int64_t qty, bool maker) const noexcept {
        const __int128 v = fee(price, qty, maker);
        if (v > INT64_MAX) return INT64_MAX;
        if (v < INT64_MIN) return INT64_MIN;
        return static_cast<int64_t>(v);
    }
};

// Values are part of the config surface: never renumber, only add.
enum class LatencyKind : uint8_t {
    Constant = 0,   // entry_ns / response_ns
    LogNormal = 1,  // median entry_ns / response_ns, times exp(sigma * N(0,1)) per draw
    Feed = 2,       // max(0, round(feed_latency * feed_multiplier)) + entry_ns / response_ns
};

struct LatencyConfig {
    LatencyKind kind = LatencyKind::Constant;
    int64_t entry_ns = 0;     // strategy -> venue
    int64_t response_ns = 0;  // venue -> strategy
    double sigma = 0.0;       // LogNormal: log-space standard deviation
    double feed_multiplier = 1.0;  // Feed
    uint64_t seed = 0;             // LogNormal draws
};

class LatencyModel {
public:
    // Latencies never exceed this (about 146 years): sums of a few stay inside int64.
    static constexpr int64_t kMaxLatencyNs = int64_t{1} << 62;

    // InvalidArgument (nothing changes) for an unknown kind, negative or oversized constants, or a
    // sigma / multiplier that is negative or not finite. Restarts the draw sequence from `seed`.
    Status configure(const LatencyConfig& c) noexcept {
        if (c.kind != LatencyKind::Constant && c.kind != LatencyKind::LogNormal &&
            c.kind != LatencyKind::Feed) {
            return Status::InvalidArgument;
        }
        if (c.entry_ns < 0 || c.response_ns < 0 || c.entry_ns > kMaxLatencyNs ||
            c.response_ns > kMaxLatencyNs || !std::isfinite(c.sigma) || c.sigma < 0.0 ||
            !std::isfinite(c.feed_multiplier) || c.feed_multiplier < 0.0) {
            return Status::InvalidArgument;
        }
        config_ = c;
        state_ = c.seed;
        return Status::Ok;
    }
    const LatencyConfig& config() const noexcept { return config_; }

    // `feed_latency_ns`: ts_recv - ts_event of the latest market event on the order's instrument
    // (negative in real data when clocks disagree: read as 0).
    int64_t entry(int64_t feed_latency_ns) noexcept { return draw(config_.entry_ns, feed_latency_ns); }
    int64_t response(int64_t feed_latency_ns) noexcept {
        return draw(config_.response_ns, feed_latency_ns);
    }

    // splitmix64: the raw generator, exposed so the reference can be held to it.
    uint64_t next_u64() noexcept {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    // One standard normal per call from two generator outputs (Box-Muller, cosine branch only:
    // each draw is then a function of exactly two outputs, whatever came before).
    double next_normal() noexcept {
        const double u1 = static_cast<double>((next_u64() >> 11) + 1) * 0x1.0p-53;  // (0, 1]
        const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;        // [0, 1)
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

private:
    // Rounds half to even (the default rounding mode, as Python's round()) and clamps to
    // [0, kMaxLatencyNs]; NaN cannot arise from validated inputs but reads as 0.
    static int64_t to_ns(double x) noexcept {
        if (!(x > 0.0)) return 0;
        if (x >= static_cast<double>(kMaxLatencyNs)) return kMaxLatencyNs;
        return static_cast<int64_t>(std::nearbyint(x));
    }

    int64_t draw(int64_t base, int64_t feed_latency_ns) noexcept {
        switch (config_.kind) {
            case LatencyKind::LogNormal:
                return to_ns(static_cast<double>(base) * std::exp(config_.sigma * next_normal()));
            case LatencyKind::Feed: {
                const int64_t f = feed_latency_ns > 0 ? feed_latency_ns : 0;
                const int64_t extra = to_ns(static_cast<double>(f) * config_.feed_multiplier);
                return extra > kMaxLatencyNs - base ? kMaxLatencyNs : base + extra;
            }
            default:
                return base;
        }
    }

    LatencyConfig config_{};
    uint64_t state_ = 0;
};

}  // namespace lockstep
