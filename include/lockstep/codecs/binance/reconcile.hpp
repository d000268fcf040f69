// Update-id reconciliation of one instrument's depth, by Binance's documented rules:
//   before the instrument's first snapshot, diffs are buffered (bounded);
//   after a snapshot with id L, diffs it already contains are dropped (spot u <= L, futures
//   u < L), the first applied one should bridge it (spot U <= L+1 <= u, futures U <= L <= u),
//   and each later one must continue the chain (spot U == prev u + 1, futures pu == prev u);
//   a diff that is not after the chain's last u is stale.
// A broken chain is a gap (the id expected, the id found: U for spot, pu for futures, or U for a
// diff not bridging the snapshot); the chain continues from the diff that broke it.
//
// DepthSync decides and keeps the buffer; what a decision emits or how a dropped diff is
// accounted for is the decoder's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/codecs/binance/reports.hpp"
#include "lockstep/core/events.hpp"

namespace lockstep::binance {

// Which chain rules apply: spot diffs carry U/u, futures diffs also pu.
enum class ChainRules : uint8_t { Spot, Futures };

struct UpdateIds {
    uint64_t first_id = 0;  // U
    uint64_t final_id = 0;  // u
    uint64_t prev_id = 0;   // pu (futures)
};

// What the chain makes of one diff.
struct ChainStep {
    enum Kind : uint8_t {
        Apply,       // apply its levels (after a gap, if `gap`)
        InSnapshot,  // already contained in the snapshot
        Stale,       // not after the chain's last u
    };
    Kind kind = Apply;
    bool gap = false;
    uint64_t expected = 0;  // with gap: the id the chain required ...
    uint64_t got = 0;       // ... and the id found
};

// One converted price level of a diff or snapshot.
struct BookLevel {
    int64_t price;
    int64_t qty;
    Side side;
};

// A diff waiting for its instrument's first snapshot.
struct BufferedDiff {
    UpdateIds ids;
    int64_t ts_event = 0;
    uint32_t level_begin = 0, level_count = 0;
    Location loc;
    uint64_t record = 0;  // global index: its disposition is settled when the snapshot comes
};

// Bounds on one instrument's buffered diffs; beyond them the oldest half is given up.
struct BufferBounds {
    size_t levels = size_t(1) << 20;  // ~24 MB per symbol at worst
    size_t messages = size_t(1) << 14;
};

class DepthSync {
public:
    DepthSync() { diffs_.reserve(64); }

    bool has_snapshot() const noexcept { return sync_ != Sync::NoSnapshot; }
    uint64_t last_final_id() const noexcept { return last_u_; }

    // The chain's verdict on a diff after a snapshot; an applied diff advances the chain.
    ChainStep next(const UpdateIds& d, ChainRules rules) noexcept {
        const bool spot = rules == ChainRules::Spot;
        ChainStep step;
        if (sync_ == Sync::AwaitFirst) {
            const uint64_t l = anchor_;
            if (spot ? d.final_id <= l : d.final_id < l) {
                step.kind = ChainStep::InSnapshot;
                return step;
            }
            const bool bridged = spot ? (d.first_id <= l + 1 && l + 1 <= d.final_id)
                                      : (d.first_id <= l && l <= d.final_id);
            if (!bridged) {
                step.gap = true;
                step.expected = spot ? l + 1 : l;
                step.got = d.first_id;
            }
            sync_ = Sync::Live;
        } else {
            if (d.final_id <= last_u_) {
                step.kind = ChainStep::Stale;
                return step;
            }
            const bool chained = spot ? d.first_id == last_u_ + 1 : d.prev_id == last_u_;
            if (!chained) {
                step.gap = true;
                step.expected = spot ? last_u_ + 1 : last_u_;
                step.got = spot ? d.first_id : d.prev_id;
            }
        }
        last_u_ = d.final_id;
        return step;
    }

    // A snapshot with lastUpdateId `id`: the chain restarts from it, then the buffered diffs are
    // handed to replay(diff, levels) in arrival order (they go through next() like any other)
    // and the buffer empties. Returns how many diffs were buffered.
    template <class Replay>
    size_t restart(uint64_t id, Replay&& replay) noexcept {
        sync_ = Sync::AwaitFirst;
        anchor_ = id;
        for (const BufferedDiff& m : diffs_) replay(m, levels_.data() + m.level_begin);
        const size_t n = diffs_.size();
        diffs_.clear();
        levels_.clear();
        return n;
    }

    // ---- the buffer before the first snapshot ----

    size_t buffered() const noexcept { return diffs_.size(); }
    uint64_t oldest_record() const noexcept { return diffs_.front().record; }

    // How many of the oldest diffs must go before one more of `incoming` levels is buffered:
    // none while it fits the bounds, else down to half of them. The oldest go first: they are the
    // least likely to be bridged by a snapshot that has not come yet.
    size_t overflow(size_t incoming, const BufferBounds& b) const noexcept {
        if (levels_.size() + incoming <= b.levels && diffs_.size() + 1 <= b.messages) return 0;
        const size_t keep_levels = b.levels / 2, keep_msgs = b.messages / 2;
        size_t drop = 0, levels = 0;
        while (drop < diffs_.size() && (levels_.size() - levels + incoming > keep_levels ||
                                         diffs_.size() - drop + 1 > keep_msgs)) {
            levels += diffs_[drop].level_count;
            ++drop;
        }
        return drop;
    }

    // Buffers `m` with its levels (level_begin/level_count are set here). false: out of memory.
    bool buffer(BufferedDiff m, const BookLevel* levels, size_t n) noexcept {
        try {
            m.level_begin = uint32_t(levels_.size());
            m.level_count = uint32_t(n);
            levels_.insert(levels_.end(), levels, levels + n);
            diffs_.push_back(m);
        } catch (...) {
            return false;
        }
        return true;
    }

    // Gives up the `n` oldest buffered diffs, each shown to each(diff) first.
    template <class Each>
    void give_up(size_t n, Each&& each) noexcept {
        size_t levels = 0;
        for (size_t i = 0; i < n; ++i) {
            each(diffs_[i]);
            levels += diffs_[i].level_count;
        }
        diffs_.erase(diffs_.begin(), diffs_.begin() + ptrdiff_t(n));
        levels_.erase(levels_.begin(), levels_.begin() + ptrdiff_t(levels));
        for (auto& m : diffs_) m.level_begin -= uint32_t(levels);
    }

private:
    enum class Sync : uint8_t { NoSnapshot, AwaitFirst, Live };

    Sync sync_ = Sync::NoSnapshot;
    uint64_t anchor_ = 0;  // lastUpdateId of the latest snapshot
    uint64_t last_u_ = 0;  // final update id of the last applied diff
    std::vector<BufferedDiff> diffs_;
    std::vector<BookLevel> levels_;
};

}  // namespace lockstep::binance
