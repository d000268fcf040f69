// A fixed latency histogram: counts in log-linear buckets (exact below 64 ns, then 32 buckets
// per power of two, so a bucket spans at most 1/32 of its values: ~3 %), the exact maximum and
// count. Adding is a few instructions and never allocates, so a hot loop can time every event.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep {

class LatencyHistogram {
public:
    static constexpr int kSubBits = 5;                       // 32 buckets per power of two
    static constexpr uint64_t kExact = uint64_t{2} << kSubBits;  // values below are their own bucket
    static constexpr size_t kBuckets = kExact + (63 - kSubBits) * (size_t{1} << kSubBits);

    // A negative value (clocks disagreeing) counts as 0.
    void add(int64_t value) noexcept {
        const uint64_t v = value < 0 ? 0 : uint64_t(value);
        ++counts_[bucket(v)];
        ++count_;
        if (v > max_) max_ = v;
    }

    uint64_t count() const noexcept { return count_; }
    uint64_t max() const noexcept { return max_; }

    // The nearest-rank quantile q (0 < q <= 1) to the bucket: the largest value of the bucket
    // holding the ceil(q * count)-th smallest value, never above the maximum; 0 when empty.
    uint64_t quantile(double q) const noexcept {
        if (count_ == 0) return 0;
        uint64_t rank = uint64_t(q * double(count_));
        if (double(rank) < q * double(count_)) ++rank;
        if (rank < 1) rank = 1;
        if (rank > count_) rank = count_;
        uint64_t seen = 0;
        for (size_t b = 0; b < kBuckets; ++b) {
            seen += counts_[b];
            if (seen >= rank) {
                const uint64_t top = bucket_top(b);
                return top < max_ ? top : max_;
            }
        }
        return max_;
    }

    void clear() noexcept {
        for (uint64_t& c : counts_) c = 0;
        count_ = max_ = 0;
    }

    static size_t bucket(uint64_t v) noexcept {
        if (v < kExact) return size_t(v);
        const int e = 63 - __builtin_clzll(v);  // >= kSubBits + 1
        const uint64_t sub = (v >> (e - kSubBits)) & ((uint64_t{1} << kSubBits) - 1);
        return size_t(kExact + uint64_t(e - kSubBits - 1) * (uint64_t{1} << kSubBits) + sub);
    }
    // The largest value of bucket b.
    static uint64_t bucket_top(size_t b) noexcept {
        if (b < kExact) return b;
        const uint64_t k = b - kExact;
        const int e = int(k >> kSubBits) + kSubBits + 1;
        const uint64_t sub = k & ((uint64_t{1} << kSubBits) - 1);
        const uint64_t low = (uint64_t{1} << e) | (sub << (e - kSubBits));
        return low + (uint64_t{1} << (e - kSubBits)) - 1;
    }

private:
    uint64_t counts_[kBuckets] = {};
    uint64_t count_ = 0;
    uint64_t max_ = 0;
};

}  // namespace lockstep
