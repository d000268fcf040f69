// Queue + Queue Processing: holds allowed Intents and decides, inside the same step, which go to
// the Venue Adapter now.
//
// src/lockstep/reference/queue.py is the pure-Python twin; keep the rules below and it in step.
//
// Rules (the order they are applied in dispatch()):
//   * Two lanes, each FIFO by arrival. Cancels go in the priority lane and are always examined
//     before the normal lane. Replaces go in the normal lane with new orders: a replace amends an
//     order, and sending it ahead of the submit it amends (still pending on the same instrument)
//     would reach the venue for an order it does not know yet.
//   * In-flight cap: an instrument with max_in_flight_per_instrument messages awaiting a venue
//     response dispatches nothing more until on_response() frees a slot. Other instruments are
//     not blocked by it (the scan skips, it does not stop).
//   * Rate limit: every message dispatched (cancels included: the venue counts messages, not
//     orders) takes one token from a bucket refilled from the ts passed to dispatch().
//   * A cancel whose target is still pending as a submit (same instrument, target_order_id ==
//     client_order_id) removes that submit and never reaches the venue: CanceledBeforeDispatch.
//     Any pending replace of the same target is dropped too, whether or not the submit was
//     pending: once the cancel is sent first (priority lane), the replace could only be rejected.
//
// Determinism: the only clock is the ts the caller passes in; nothing reads a wall clock. Every
// scan is in arrival order, so the same pushes, dispatches and responses give the same output.
// Storage is fixed at configure(): push/dispatch/on_response never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/intents.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep {

// Values are reported to strategies: never renumber, only add.
enum class QueueResult : uint8_t {
    Queued = 0,
    CanceledBeforeDispatch = 1,  // the cancel removed its pending submit; nothing goes out
    Full = 2,                    // capacity reached: the intent was not queued
    BadInstrument = 3,           // instrument >= config.instruments
};

// 0 disables rate_per_second and max_in_flight_per_instrument.
struct QueueConfig {
    int64_t rate_per_second = 0;  // venue messages per second of ts
    int64_t burst = 0;            // bucket size in messages; >= 1 when rate_per_second > 0
    uint32_t max_in_flight_per_instrument = 0;
    uint32_t capacity = 0;        // pending intents, >= 1
    uint32_t instruments = 0;     // dense ids [0, instruments)
};

struct QueueCounters {
    uint64_t pushed = 0;                    // intents queued (push returned Queued)
    uint64_t dispatched = 0;
    uint64_t canceled_before_dispatch = 0;  // submits removed by a cancel before dispatch
    uint64_t replaces_dropped = 0;          // pending replaces removed by a cancel of their target
    uint64_t rejected_full = 0;
    uint64_t rejected_bad_instrument = 0;
    // Per dispatch() call, each pending intent the scan passes over and leaves pending is counted
    // once: under in-flight if its instrument is at the cap, else under rate if the bucket is
    // empty. Intents after the scan stops because `out` is full are not counted.
    uint64_t deferred_by_rate = 0;
    uint64_t deferred_by_in_flight = 0;
};

class IntentQueue {
public:
    static constexpr int64_t kNsPerSecond = 1'000'000'000;
    // Bounds keep burst * 1e9 inside int64 and a corrupt config from allocating gigabytes.
    static constexpr int64_t kMaxBurst = 1'000'000'000;
    static constexpr int64_t kMaxRate = 1'000'000'000'000;
    static constexpr uint32_t kMaxCapacity = 1u << 24;
    static constexpr uint32_t kMaxInstruments = 1u << 20;

    IntentQueue() = default;

    // Configuration: allocates, not for the hot path. Empties the queue, zeroes in-flight counts
    // and counters, fills the bucket.
    Status configure(const QueueConfig& c) noexcept {
        if (c.rate_per_second < 0 || c.rate_per_second > kMaxRate) return Status::InvalidArgument;
        if (c.burst < 0 || c.burst > kMaxBurst) return Status::InvalidArgument;
        if (c.rate_per_second > 0 && c.burst == 0) return Status::InvalidArgument;
        if (c.capacity == 0 || c.capacity > kMaxCapacity) return Status::InvalidArgument;
        if (c.instruments > kMaxInstruments) return Status::InvalidArgument;
        try {
            nodes_.assign(c.capacity, Node{});
            in_flight_.assign(c.instruments, 0);
        } catch (...) {
            nodes_.clear();
            in_flight_.clear();
            return Status::InvalidArgument;
        }
        config_ = c;
        for (uint32_t i = 0; i < c.capacity; ++i) nodes_[i].next = i + 1 < c.capacity ? i + 1 : kNil;
        free_ = 0;
        for (auto& l : lanes_) l = Lane{};
        pending_ = 0;
        counters_ = QueueCounters{};
        tokens_ = c.burst * kNsPerSecond;
        last_ts_ = 0;
        bucket_started_ = false;
        return Status::Ok;
    }

    const QueueConfig& config() const noexcept { return config_; }

    QueueResult push(const Intent& in, int64_t ts) noexcept {
        (void)ts;  // arrival order is push order; ts only drives the bucket in dispatch()
        if (in.instrument >= config_.instruments) {
            ++counters_.rejected_bad_instrument;
            return QueueResult::BadInstrument;
        }
        if (in.kind == IntentKind::Cancel) {
            const uint32_t submit = find_submit(in.instrument, in.target_order_id);
            if (submit != kNil) {
                unlink(kNormal, submit);
                ++counters_.canceled_before_dispatch;
                drop_replaces(in.instrument, in.target_order_id);
                return QueueResult::CanceledBeforeDispatch;
            }
        }
        // Checked after the cancel match: cancelling pending work needs no room, and a full
        // queue is exactly when the strategy most needs it to work.
        if (free_ == kNil) {
            ++counters_.rejected_full;
            return QueueResult::Full;
        }
        if (in.kind == IntentKind::Cancel) drop_replaces(in.instrument, in.target_order_id);
        const uint32_t n = free_;
        free_ = nodes_[n].next;
        nodes_[n].intent = in;
        append(in.kind == IntentKind::Cancel ? kPriority : kNormal, n);
        ++counters_.pushed;
        return QueueResult::Queued;
    }

    // Writes up to max_out intents to `out` in dispatch order and returns how many. Each one is
    // in flight on its instrument until on_response().
    size_t dispatch(int64_t ts, Intent* out, size_t max_out) noexcept {
        refill(ts);
        size_t n = 0;
        const uint32_t cap = config_.max_in_flight_per_instrument;
        const bool limited = config_.rate_per_second > 0;
        for (int lane = kPriority; lane <= kNormal; ++lane) {
            uint32_t i = lanes_[lane].head;
            while (i != kNil) {
                if (n == max_out) return n;
                const uint32_t next = nodes_[i].next;
                const uint32_t ins = nodes_[i].intent.instrument;
                if (cap > 0 && in_flight_[ins] >= cap) {
                    ++counters_.deferred_by_in_flight;
                } else if (limited && tokens_ < kNsPerSecond) {
                    ++counters_.deferred_by_rate;
                } else {
                    if (limited) tokens_ -= kNsPerSecond;
                    out[n++] = nodes_[i].intent;
                    ++in_flight_[ins];
                    ++counters_.dispatched;
                    unlink(lane, i);
                }
                i = next;
            }
        }
        return n;
    }

    // Which pending submits and replaces withdraw_if() takes (true: take it). It must not throw;
    // the type says nothing of it so that a binding's plain C function can be one.
    using Take = bool (*)(void* context, const Intent& intent);

    // Removes up to max_out pending submits and replaces, oldest first, into `out`; how many.
    // Cancels stay. For the kill switch and a halt: what waits behind a rate limit or an
    // in-flight cap must not leave after them.
    size_t withdraw(Intent* out, size_t max_out) noexcept {
        return withdraw_if([](void*, const Intent&) noexcept { return true; }, nullptr, out, max_out);
    }

    // withdraw(), of those `take` says (in arrival order; the rest keep their place). For
    // reduce-only: what could grow a position goes, what reduces one stays.
    size_t withdraw_if(Take take, void* context, Intent* out, size_t max_out) noexcept {
        size_t n = 0;
        uint32_t i = lanes_[kNormal].head;
        while (i != kNil && n < max_out) {
            const uint32_t next = nodes_[i].next;
            if (take(context, nodes_[i].intent)) {
                out[n++] = nodes_[i].intent;
                unlink(kNormal, i);
            }
            i = next;
        }
        return n;
    }

    // A venue response (ack, reject, cancel ack...) for one message on `instrument`. A response
    // with nothing in flight is ignored: a duplicate must not open a slot that was never taken.
    void on_response(uint32_t instrument) noexcept {
        if (instrument < in_flight_.size() && in_flight_[instrument] > 0) --in_flight_[instrument];
    }

    size_t pending() const noexcept { return pending_; }

    // The pending submit whose client_order_id is `id`, if any (a linear scan: the queue holds
    // the few intents of the last steps, not history).
    bool pending_submit(uint64_t id, Intent* out) const noexcept {
        if (pending_ == 0) return false;
        for (uint32_t i = lanes_[kNormal].head; i != kNil; i = nodes_[i].next) {
            const Intent& x = nodes_[i].intent;
            if (is_submit(x.kind) && x.client_order_id == id) {
                *out = x;
                return true;
            }
        }
        return false;
    }
    uint32_t in_flight(uint32_t instrument) const noexcept {
        return instrument < in_flight_.size() ? in_flight_[instrument] : 0;
    }
    const QueueCounters& counters() const noexcept { return counters_; }

    // Whole tokens available at ts, without spending any (0 when there is no rate limit).
    int64_t tokens(int64_t ts) const noexcept {
        if (config_.rate_per_second == 0) return 0;
        return tokens_at(ts) / kNsPerSecond;
    }

private:
    static constexpr uint32_t kNil = UINT32_MAX;
    static constexpr int kPriority = 0;
    static constexpr int kNormal = 1;

    struct Node {
        Intent intent{};
        uint32_t prev = kNil;
        uint32_t next = kNil;
    };
    struct Lane {
        uint32_t head = kNil;
        uint32_t tail = kNil;
    };

    uint32_t find_submit(uint32_t instrument, uint64_t id) const noexcept {
        for (uint32_t i = lanes_[kNormal].head; i != kNil; i = nodes_[i].next) {
            const Intent& x = nodes_[i].intent;
            if (is_submit(x.kind) && x.instrument == instrument && x.client_order_id == id) return i;
        }
        return kNil;
    }

    void drop_replaces(uint32_t instrument, uint64_t target) noexcept {
        uint32_t i = lanes_[kNormal].head;
        while (i != kNil) {
            const uint32_t next = nodes_[i].next;
            const Intent& x = nodes_[i].intent;
            if (x.kind == IntentKind::Replace && x.instrument == instrument &&
                x.target_order_id == target) {
                unlink(kNormal, i);
                ++counters_.replaces_dropped;
            }
            i = next;
        }
    }

    void append(int lane, uint32_t n) noexcept {
        Lane& l = lanes_[lane];
        nodes_[n].prev = l.tail;
        nodes_[n].next = kNil;
        if (l.tail != kNil) nodes_[l.tail].next = n; else l.head = n;
        l.tail = n;
        ++pending_;
    }

    // Returns the node to the free list; callers read `next` before calling.
    void unlink(int lane, uint32_t n) noexcept {
        Lane& l = lanes_[lane];
        Node& x = nodes_[n];
        if (x.prev != kNil) nodes_[x.prev].next = x.next; else l.head = x.next;
        if (x.next != kNil) nodes_[x.next].prev = x.prev; else l.tail = x.prev;
        x.prev = kNil;
        x.next = free_;
        free_ = n;
        --pending_;
    }

    // Tokens are token-nanoseconds (1 token = 1e9 units) so refill is exact integer arithmetic:
    // floats would make dispatch depend on how often the bucket was looked at.
    int64_t capacity_units() const noexcept { return config_.burst * kNsPerSecond; }
    int64_t tokens_at(int64_t ts) const noexcept {
        if (!bucket_started_ || ts <= last_ts_) return tokens_;  // time never runs backwards here
        const __int128 t = static_cast<__int128>(tokens_) +
                           (static_cast<__int128>(ts) - last_ts_) * config_.rate_per_second;
        return t >= capacity_units() ? capacity_units() : static_cast<int64_t>(t);
    }
    // Refilling eagerly at every dispatch gives the same tokens as refilling only on spend,
    // because the bucket saturates at its capacity either way.
    void refill(int64_t ts) noexcept {
        tokens_ = tokens_at(ts);
        if (!bucket_started_ || ts > last_ts_) last_ts_ = ts;
        bucket_started_ = true;
    }

    QueueConfig config_{};
    std::vector<Node> nodes_;
    std::vector<uint32_t> in_flight_;
    Lane lanes_[2]{};
    uint32_t free_ = kNil;
    size_t pending_ = 0;
    QueueCounters counters_{};
    int64_t tokens_ = 0;
    int64_t last_ts_ = 0;
    bool bucket_started_ = false;
};

}  // namespace lockstep
