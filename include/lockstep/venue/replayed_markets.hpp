// The loopback venue's trading side in the replay loop: one book and one simulated-venue matcher
// per instrument, moved by every event the feed sends (include/lockstep/venue/itch_feed.hpp calls
// on_event inside its encode loop).
//
// The books are Market State's (core/replay.hpp, `Replayer::apply_event`, as the backtest engine
// applies events); the matchers are the backtests' (venue/matching.hpp, venue/l3_matching.hpp),
// told each event before the book applies it by the simulated venue's own rule (`show_market`,
// venue/venue.hpp). A matcher is told only while it holds resting orders of ours, so an
// instrument without any costs one book update per event. Orders enter through submit / replace /
// cancel (the order-entry side, per OUCH message: not hot); what the matchers report waits in
// their event buffers until the caller reads and clears them.
//
// docs/loopback-venue.md is normative; lockstep.reference.replayed_markets is the twin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/replay.hpp"
#include "lockstep/venue/l3_matching.hpp"
#include "lockstep/venue/matching.hpp"
#include "lockstep/venue/venue.hpp"

namespace lockstep::venue {

class ReplayedMarkets {
public:
    // One instrument per entry of `book_types`, in table order (allocates; setup only).
    explicit ReplayedMarkets(const std::vector<BookType>& book_types)
        : market_(book_types), l2_(book_types.size()), l3_(book_types.size()) {}

    ReplayedMarkets(const ReplayedMarkets&) = delete;
    ReplayedMarkets& operator=(const ReplayedMarkets&) = delete;

    size_t instrument_count() const noexcept { return market_.instrument_count(); }
    bool is_l2(uint32_t inst) const noexcept { return market_.book_type(inst) == BookType::L2; }
    const Replayer& market() const noexcept { return market_; }

    // Event i of `ev`: to its instrument's matcher (while it holds our orders), then to the book.
    // True when the matcher reported something (fills): the caller reads events(inst) now, at
    // this event's place in the stream. Allocation-free unless the matcher fills (its event
    // buffer may grow).
    bool on_event(const EventColumns& ev, size_t i) noexcept {
        const uint32_t inst = ev.instrument[i];
        bool reported = false;
        if (inst < instrument_count() && resting(inst) != 0) [[unlikely]] {
            reported = tell(inst, ev.kind[i], ev.side[i], ev.price[i], ev.qty[i], ev.order_id[i]);
        }
        market_.apply_event(inst, ev.kind[i], ev.side[i], ev.flags[i], ev.price[i], ev.qty[i],
                            ev.order_id[i], ev.ts_recv[i]);
        return reported;
    }

    // Order entry against the book as it stands (the caller checked inst < instrument_count()).
    MatchResult submit(uint32_t inst, uint64_t client_order_id, Side side, TimeInForce tif,
                       int64_t price, int64_t qty) {
        return is_l2(inst) ? l2_[inst].submit(client_order_id, side, tif, price, qty, market_.l2(inst))
                           : l3_[inst].submit(client_order_id, side, tif, price, qty, market_.l3(inst));
    }
    MatchResult replace(uint32_t inst, uint64_t client_order_id, int64_t price, int64_t qty) {
        return is_l2(inst) ? l2_[inst].replace(client_order_id, price, qty, market_.l2(inst))
                           : l3_[inst].replace(client_order_id, price, qty, market_.l3(inst));
    }
    bool cancel(uint32_t inst, uint64_t client_order_id) {
        return is_l2(inst) ? l2_[inst].cancel(client_order_id) : l3_[inst].cancel(client_order_id);
    }

    // What the matchers report, per instrument, oldest first, until cleared.
    const std::vector<MatchEvent>& events(uint32_t inst) const noexcept {
        return is_l2(inst) ? l2_[inst].events() : l3_[inst].events();
    }
    void clear_events(uint32_t inst) noexcept {
        if (is_l2(inst)) l2_[inst].clear_events();
        else l3_[inst].clear_events();
    }

    // Our resting orders, per instrument, in the matcher's insertion order.
    size_t resting(uint32_t inst) const noexcept {
        return is_l2(inst) ? l2_[inst].resting() : l3_[inst].resting();
    }
    const RestingOrder& resting_at(uint32_t inst, size_t k) const noexcept {
        return is_l2(inst) ? l2_[inst].resting_at(k) : l3_[inst].resting_at(k);
    }
    const RestingOrder* find_order(uint32_t inst, uint64_t client_order_id) const noexcept {
        return is_l2(inst) ? l2_[inst].find_order(client_order_id)
                           : l3_[inst].find_order(client_order_id);
    }

private:
    bool tell(uint32_t inst, uint8_t kind, uint8_t side, int64_t price, int64_t qty,
              uint64_t order_id) noexcept {
        // The matchers allocate only when their event buffer outgrows anything seen before; a
        // failed allocation loses that report rather than the replay.
        try {
            if (is_l2(inst)) {
                show_market(l2_[inst], market_.l2(inst), kind, side, price, qty, order_id);
                return !l2_[inst].events().empty();
            }
            show_market(l3_[inst], market_.l3(inst), kind, side, price, qty, order_id);
            return !l3_[inst].events().empty();
        } catch (...) {
            return false;
        }
    }

    Replayer market_;
    std::vector<L2Matcher> l2_;  // used where the instrument is L2
    std::vector<L3Matcher> l3_;  // used where it is L3
};

}  // namespace lockstep::venue
