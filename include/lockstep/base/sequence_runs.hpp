// A set of sequence numbers kept as runs without a hole, in increasing order: numbers are added
// one at a time, each above the last, so a set of a million numbers with three holes is four
// runs. Sets can be united and cut below a number.
//
// Memory is one run per hole, at most max_runs of them: past that the oldest run is forgotten
// (counted by forgotten()), never more memory. A run is added only at a hole, so a feed path
// that adds every number allocates only then (amortized growth up to max_runs); forgetting is
// amortized O(1). Out of memory ends the process (noexcept), as a FlatHashMap's growth does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lockstep {

class SequenceRuns {
public:
    static constexpr size_t kDefaultMaxRuns = size_t{1} << 16;  // 1 MiB of runs

    explicit SequenceRuns(size_t max_runs = kDefaultMaxRuns)
        : max_runs_(max_runs == 0 ? 1 : max_runs) {
        runs_.reserve(std::min(max_runs_, kReserved));
    }

    // True when `seq` starts a new run (the first number, or one after a hole). `seq` is above
    // every number added before; one that is not is ignored (false).
    bool add(uint64_t seq) noexcept {
        if (size() != 0) {
            Run& back = runs_.back();
            if (seq == back.last + 1) {
                back.last = seq;
                return false;
            }
            if (seq <= back.last) return false;
        }
        if (size() == max_runs_) forget_oldest();
        runs_.push_back(Run{seq, seq});
        return true;
    }

    bool contains(uint64_t seq) const noexcept {
        if (size() == 0 || seq > runs_.back().last) return false;  // a feed's usual case
        // The first run whose last number is at or above seq.
        const auto it = std::lower_bound(runs_.begin() + first_, runs_.end(), seq,
                                         [](const Run& r, uint64_t s) { return r.last < s; });
        return it != runs_.end() && it->first <= seq;
    }

    // Every number of `other` joins these (runs that meet or overlap become one); past max_runs
    // the oldest are forgotten.
    void unite(const SequenceRuns& other) noexcept {
        std::vector<Run> all;
        all.reserve(size() + other.size());
        size_t a = first_, b = other.first_;
        while (a < runs_.size() || b < other.runs_.size()) {
            const bool mine = b == other.runs_.size() ||
                              (a < runs_.size() && runs_[a].first <= other.runs_[b].first);
            const Run r = mine ? runs_[a++] : other.runs_[b++];
            if (!all.empty() && r.first <= all.back().last + 1) {
                all.back().last = std::max(all.back().last, r.last);
            } else {
                all.push_back(r);
            }
        }
        const size_t excess = all.size() > max_runs_ ? all.size() - max_runs_ : 0;
        forgotten_ += excess;
        all.erase(all.begin(), all.begin() + excess);
        runs_.swap(all);
        first_ = 0;
    }

    // Every number below `seq` leaves (not counted as forgotten: the caller no longer needs it).
    void drop_below(uint64_t seq) noexcept {
        while (first_ < runs_.size() && runs_[first_].last < seq) ++first_;
        if (first_ < runs_.size() && runs_[first_].first < seq) runs_[first_].first = seq;
        compact_if_sparse();
    }

    // The last run's first and last numbers (0 and 0: none).
    uint64_t last_first() const noexcept { return size() == 0 ? 0 : runs_.back().first; }
    uint64_t last() const noexcept { return size() == 0 ? 0 : runs_.back().last; }
    size_t size() const noexcept { return runs_.size() - first_; }  // runs
    // Runs forgotten past max_runs since construction (clear() does not reset it).
    uint64_t forgotten() const noexcept { return forgotten_; }
    void clear() noexcept {
        runs_.clear();
        first_ = 0;
    }

private:
    static constexpr size_t kReserved = 64;
    struct Run {
        uint64_t first, last;
    };

    void forget_oldest() noexcept {
        ++first_;
        ++forgotten_;
        compact_if_sparse();
    }
    // The runs before first_ are gone; their room is given back once they are half the vector.
    void compact_if_sparse() noexcept {
        if (first_ != 0 && first_ * 2 >= runs_.size()) {
            runs_.erase(runs_.begin(), runs_.begin() + first_);
            first_ = 0;
        }
    }

    std::vector<Run> runs_;  // [first_, size) are the set's
    size_t first_ = 0;
    size_t max_runs_;
    uint64_t forgotten_ = 0;
};

}  // namespace lockstep
