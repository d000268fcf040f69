// The Venue Adapter seam and the Simulated Venue behind it.
//
// Queue Processing hands every dispatched message to a VenueAdapter; whatever the venue says back
// comes home as VenueResponses, canonical execution events (events.hpp, kinds 32..63) that enter
// the core's stream like any other event. The Simulated Venue is one implementation of the seam;
// a protocol adapter to a real venue is another and sees exactly the same calls.
//
// Time in the Simulated Venue (docs/venue.md has the whole model):
//   * it sees market events at their ts_event, through the same books the core replays (one copy
//     of Market State: the venue's view and ours differ only in *when* each side looks);
//   * a message the core sends at ts arrives at ts + entry latency (venue clock) and is matched
//     against the book as it stands before the first market event with a later ts_event;
//   * its answers reach the core at the venue time they happened + response latency.
// The two clocks are assumed synchronised; feed latency (ts_recv - ts_event) is what the data say.
//
// Determinism: arrivals and responses are ordered by (time, creation sequence), latency draws
// come from a seeded generator in call order, and order lookups are never iterated.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/core/order_rules.hpp"
#include "lockstep/venue/l3_matching.hpp"
#include "lockstep/venue/matching.hpp"
#include "lockstep/core/replay.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/venue/venue_models.hpp"

namespace lockstep {

// One execution event on its way from a venue to the core.
struct VenueResponse {
    int64_t ts_event = 0;  // venue time
    int64_t ts_recv = 0;   // when the core learns of it
    uint64_t seq = 0;      // creation order, the tie-break among equal ts_recv
    uint64_t order_id = 0;
    int64_t price = 0;
    int64_t qty = 0;
    int64_t fee = 0;       // fills: ticks x lots x 1e-6, positive paid, negative rebate
                           // (TradeBroken: the fill's; TradeCorrected: what it moved by)
    int64_t prior_price = 0;  // TradeCorrected: the fill's price before the correction
    uint32_t instrument = 0;
    EventKind kind{};
    Side side = Side::None;
    uint8_t flags = 0;     // flags::kMaker on passive fills
    uint8_t reason = 0;    // MatchReject code of rejections
};

// Responses in core-arrival order: a binary heap on (ts_recv, seq). Capacity grows to the most
// responses ever in flight and is reused after that.
class ResponseQueue {
public:
    void reserve(size_t n) { heap_.reserve(n); }
    bool empty() const noexcept { return heap_.empty(); }
    size_t size() const noexcept { return heap_.size(); }
    int64_t next_ts() const noexcept { return heap_.empty() ? kNever : heap_.front().ts_recv; }
    const VenueResponse& top() const noexcept { return heap_.front(); }
    void push(VenueResponse r) noexcept {
        r.seq = next_seq_++;
        heap_.push_back(r);
        std::push_heap(heap_.begin(), heap_.end(), later);
    }
    VenueResponse pop() noexcept {
        std::pop_heap(heap_.begin(), heap_.end(), later);
        VenueResponse r = heap_.back();
        heap_.pop_back();
        return r;
    }
    void clear() noexcept { heap_.clear(); }

    static constexpr int64_t kNever = INT64_MAX;

private:
    static bool later(const VenueResponse& a, const VenueResponse& b) noexcept {
        return a.ts_recv != b.ts_recv ? a.ts_recv > b.ts_recv : a.seq > b.seq;
    }
    std::vector<VenueResponse> heap_;
    uint64_t next_seq_ = 0;
};

// The seam. `send` is called once per dispatched message, at the core time of dispatch; Replace
// carries the new total quantity (filled lots included, as Execution State counts it).
class VenueAdapter {
public:
    virtual ~VenueAdapter() = default;
    virtual void send(const Intent& in, int64_t ts, int64_t feed_latency_ns) noexcept = 0;
    // The intents dispatched together (one strategy call's, one control's) have all been sent:
    // an adapter writing to a socket may hand them to the kernel now, in one write.
    virtual void end_batch() noexcept {}
};

struct SimulatedVenueConfig {
    QueueModel queue_model = QueueModel::Conservative;
    double queue_power = 2.0;
    FeeModel fees{};
    LatencyConfig latency{};
};

struct VenueCounters {
    uint64_t messages = 0;  // messages received
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t fills = 0;
    uint64_t canceled = 0;
    uint64_t expired = 0;
    uint64_t replaced = 0;
    uint64_t cancel_rejected = 0;
    uint64_t replace_rejected = 0;
};

// How the simulated venue's matchers follow a replayed market: one market event, shown to the
// instrument's matcher BEFORE its book applies it (matchers read the level or order it changes).
// L2: a level update moves queue-ahead (never fills), a print may fill. L3: the order events and
// prints as the L3 matcher takes them. Other kinds change nothing. The backtests' venue and the
// loopback venue (venue/replayed_markets.hpp) both call these: one rule, one place.
inline void show_market(L2Matcher& m, const L2Book& book, uint8_t kind, uint8_t side,
                        int64_t price, int64_t qty, uint64_t /*order_id*/) {
    const Side s = static_cast<Side>(side);
    if (kind == static_cast<uint8_t>(EventKind::L2Set)) {
        if (s == Side::Bid || s == Side::Ask) m.on_level(s, price, book.qty_at(s, price), qty);
    } else if (kind == static_cast<uint8_t>(EventKind::Trade)) {
        m.on_trade(price, qty, s);
    }
}

inline void show_market(L3Matcher& m, const L3Book& book, uint8_t kind, uint8_t side,
                        int64_t price, int64_t qty, uint64_t order_id) {
    const Side s = static_cast<Side>(side);
    if (kind == static_cast<uint8_t>(EventKind::Trade)) {
        m.on_trade(price, qty, s);
    } else if (kind >= static_cast<uint8_t>(EventKind::L3Add) &&
               kind <= static_cast<uint8_t>(EventKind::BookClear)) {
        m.on_l3(static_cast<EventKind>(kind), s, order_id, price, qty, book);
    }
}

class SimulatedVenue final : public VenueAdapter {
public:
    // Not for the hot path. `market` must outlive the venue: its books are the venue's books.
    Status configure(const SimulatedVenueConfig& c, const Replayer& market,
                     ResponseQueue* out) noexcept {
        if (out == nullptr) return Status::InvalidArgument;
        if (latency_.configure(c.latency) != Status::Ok) return Status::InvalidArgument;
        market_ = &market;
        out_ = out;
        fees_ = c.fees;
        const size_t n = market.instrument_count();
        try {
            l2_.assign(n, L2Matcher{});
            l3_.assign(n, L3Matcher{});
            watching_.assign(n, 0);
            arrivals_.reserve(64);
            orders_.reserve(64);
            index_.reserve(64);
        } catch (...) {
            return Status::InvalidArgument;
        }
        for (auto& m : l2_) m.set_queue_model(c.queue_model, c.queue_power);
        return Status::Ok;
    }

    // The instrument's order-entry rules, in data units (all zero: none). The venue enforces them
    // on submits and replaces whatever Risk decided. Not for the hot path.
    Status set_order_rules(uint32_t inst, const OrderRules& r) noexcept {
        if (!r.valid()) return Status::InvalidArgument;
        if (inst >= watching_.size()) return Status::UnknownInstrument;
        try {
            if (inst >= rules_.size()) rules_.resize(size_t{inst} + 1);
        } catch (...) {
            return Status::InvalidArgument;
        }
        rules_[inst] = r;
        return Status::Ok;
    }

    void send(const Intent& in, int64_t ts, int64_t feed_latency_ns) noexcept override {
        ++counters_.messages;
        const int64_t arrive = ts + latency_.entry(feed_latency_ns);
        arrivals_.push_back(Arrival{arrive, next_arrival_seq_++, in});
        std::push_heap(arrivals_.begin(), arrivals_.end(), Arrival::later);
        if (arrive < next_arrival_) next_arrival_ = arrive;
    }

    // Venue time of the earliest message still travelling to it (ResponseQueue::kNever if none).
    int64_t next_arrival() const noexcept { return next_arrival_; }

    // Matches the earliest arrival against the books as they stand now.
    void process_next_arrival(int64_t feed_latency_ns) noexcept {
        std::pop_heap(arrivals_.begin(), arrivals_.end(), Arrival::later);
        const Arrival a = arrivals_.back();
        arrivals_.pop_back();
        next_arrival_ = arrivals_.empty() ? ResponseQueue::kNever : arrivals_.front().ts;
        response_at_ = a.ts + latency_.response(feed_latency_ns);
        handle(a.intent, a.ts);
    }

    // Whether market events of `inst` can touch one of our resting orders.
    bool watching(uint32_t inst) const noexcept { return watching_[inst] != 0; }

    // A market event at ts_event, shown to the venue BEFORE the books apply it (matchers read the
    // level or order it changes). Only called for instruments the venue is watching. True when
    // it produced responses.
    bool on_market(uint32_t inst, uint8_t kind, uint8_t side, int64_t price, int64_t qty,
                   uint64_t order_id, int64_t ts_event, int64_t feed_latency_ns) noexcept {
        if (market_->book_type(inst) == BookType::L2) {
            L2Matcher& m = l2_[inst];
            show_market(m, market_->l2(inst), kind, side, price, qty, order_id);
            if (m.events().empty()) return false;
            response_at_ = ts_event + latency_.response(feed_latency_ns);
            drain(inst, m, ts_event, /*accepted_first=*/false, nullptr);
            return true;
        }
        L3Matcher& m = l3_[inst];
        show_market(m, market_->l3(inst), kind, side, price, qty, order_id);
        if (m.events().empty()) return false;
        response_at_ = ts_event + latency_.response(feed_latency_ns);
        drain(inst, m, ts_event, false, nullptr);
        return true;
    }

    const VenueCounters& counters() const noexcept { return counters_; }
    size_t in_transit() const noexcept { return arrivals_.size(); }
    size_t resting(uint32_t inst) const noexcept {
        return market_->book_type(inst) == BookType::L2 ? l2_[inst].resting()
                                                        : l3_[inst].resting();
    }

private:
    struct Arrival {
        int64_t ts;
        uint64_t seq;
        Intent intent;
        static bool later(const Arrival& a, const Arrival& b) noexcept {
            return a.ts != b.ts ? a.ts > b.ts : a.seq > b.seq;
        }
    };
    // What the venue remembers of a live order: Execution State counts a replace's quantity as
    // the new total, the matchers as the new remainder.
    struct Live {
        int64_t qty = 0;
        int64_t filled = 0;
    };

    void handle(const Intent& in, int64_t ts) noexcept {
        const uint32_t inst = in.instrument;
        if (inst >= watching_.size()) {
            if (is_submit(in.kind)) {
                respond(inst, EventKind::OrderRejected, in.side, in.client_order_id, in.price,
                        in.qty, ts, 0, 0, static_cast<uint8_t>(MatchReject::BadSide));
            }
            return;
        }
        // A book that lost messages waits for a snapshot: matching a new order or a replace
        // against its stale levels would invent fills. Outside continuous trading the venue
        // matches nothing on arrival (its book may rest crossed) and we simulate no auction.
        // Cancels still work in both.
        const MatchReject refused = !market_->book_valid(inst) ? MatchReject::BookUnavailable
                                    : crossing_allowed(market_->phase(inst)) ? MatchReject::NotTrading
                                    : MatchReject::None;
        if (refused != MatchReject::None && in.kind != IntentKind::Cancel) [[unlikely]] {
            const bool replace = in.kind == IntentKind::Replace;
            if (replace) ++counters_.replace_rejected; else ++counters_.rejected;
            respond(inst, replace ? EventKind::ReplaceRejected : EventKind::OrderRejected, in.side,
                    replace ? in.target_order_id : in.client_order_id, in.price, in.qty, ts, 0, 0,
                    static_cast<uint8_t>(refused));
            return;
        }
        if (in.kind != IntentKind::Cancel && inst < rules_.size() && rules_[inst].any()) [[unlikely]] {
            const MatchReject breach = breaks_rules(rules_[inst], in);
            if (breach != MatchReject::None) {
                const bool replace = in.kind == IntentKind::Replace;
                if (replace) ++counters_.replace_rejected; else ++counters_.rejected;
                respond(inst, replace ? EventKind::ReplaceRejected : EventKind::OrderRejected,
                        in.side, replace ? in.target_order_id : in.client_order_id, in.price,
                        in.qty, ts, 0, 0, static_cast<uint8_t>(breach));
                return;
            }
        }
        if (market_->book_type(inst) == BookType::L2) {
            handle_with(l2_[inst], market_->l2(inst), in, ts);
        } else {
            handle_with(l3_[inst], market_->l3(inst), in, ts);
        }
    }

    // Which order-entry rule the submit or replace breaks (None: none). Orders the matchers refuse
    // anyway (qty <= 0, a bad price) are left to them, so their reject reason stays the same.
    MatchReject breaks_rules(const OrderRules& r, const Intent& in) const noexcept {
        const bool priced = in.kind != IntentKind::SubmitMarket;
        if (in.qty <= 0 || (priced && in.price <= 0)) return MatchReject::None;
        int64_t price = in.price;
        bool price_known = priced;
        if (!priced) {  // a market order's notional at the mid, when the book has both sides
            int64_t bp, bq, ap, aq;
            market_->touch(in.instrument, &bp, &bq, &ap, &aq);
            price_known = bq > 0 && aq > 0;
            price = price_known ? static_cast<int64_t>((static_cast<__int128>(bp) + ap) >> 1) : 0;
        }
        return order_rules_reject(r, priced, price, in.qty, price_known);
    }

    template <class Matcher, class Book>
    void handle_with(Matcher& m, const Book& book, const Intent& in, int64_t ts) noexcept {
        const uint32_t inst = in.instrument;
        switch (in.kind) {
            case IntentKind::SubmitLimit:
            case IntentKind::SubmitMarket: {
                const MatchResult r = m.submit(in, book);
                if (r.outcome != SubmitOutcome::Rejected) {
                    bool inserted = false;
                    uint32_t* cell = index_.find_or_insert(in.client_order_id, &inserted);
                    *cell = slot_for(Live{in.qty, 0});
                }
                drain(inst, m, ts, r.outcome != SubmitOutcome::Rejected, &in);
                break;
            }
            case IntentKind::Cancel:
                m.cancel(in.target_order_id);
                drain(inst, m, ts, false, &in);
                break;
            case IntentKind::Replace: {
                const uint32_t s = index_.find(in.target_order_id);
                if (s == FlatHashMap<uint64_t>::kMissing) {
                    ++counters_.replace_rejected;
                    respond(inst, EventKind::ReplaceRejected, in.side, in.target_order_id,
                            in.price, in.qty, ts, 0, 0,
                            static_cast<uint8_t>(MatchReject::UnknownOrder));
                    return;
                }
                m.replace(in.target_order_id, in.price, in.qty - orders_[s].filled, book);
                drain(inst, m, ts, false, &in);
                break;
            }
        }
    }

    // Turns the matcher's events into responses, all reaching the core at response_at_.
    // `request` is the message being answered (null for market-driven fills): a replace's
    // answer carries its total quantity, which only the request knows.
    template <class Matcher>
    void drain(uint32_t inst, Matcher& m, int64_t ts, bool accepted_first, const Intent* request) noexcept {
        if (accepted_first) {
            ++counters_.accepted;
            respond(inst, EventKind::OrderAccepted, request->side, request->client_order_id,
                    request->price, request->qty, ts, 0, 0, 0);
        }
        for (const MatchEvent& e : m.events()) {
            switch (e.kind) {
                case MatchEventKind::Fill: {
                    ++counters_.fills;
                    respond(inst, EventKind::OrderFilled, e.side, e.client_order_id, e.price,
                            e.qty, ts, fees_.fee64(e.price, e.qty, e.maker),
                            e.maker ? flags::kMaker : uint8_t{0}, 0);
                    Live* live = find_live(e.client_order_id);
                    if (live != nullptr) {
                        live->filled += e.qty;
                        if (live->filled >= live->qty) forget(e.client_order_id);
                    }
                    break;
                }
                case MatchEventKind::Canceled: {
                    // A canceled remainder at submission is an IOC's unfilled rest: it expired.
                    const bool expired = request != nullptr && request->kind != IntentKind::Cancel;
                    if (expired) ++counters_.expired; else ++counters_.canceled;
                    respond(inst, expired ? EventKind::OrderExpired : EventKind::OrderCanceled,
                            e.side, e.client_order_id, e.price, e.qty, ts, 0, 0, 0);
                    forget(e.client_order_id);
                    break;
                }
                case MatchEventKind::Rejected:
                    ++counters_.rejected;
                    respond(inst, EventKind::OrderRejected, e.side, e.client_order_id, e.price,
                            e.qty, ts, 0, 0, static_cast<uint8_t>(e.reason));
                    break;
                case MatchEventKind::CancelRejected:
                    ++counters_.cancel_rejected;
                    respond(inst, EventKind::CancelRejected, request ? request->side : e.side,
                            e.client_order_id, e.price, e.qty, ts, 0, 0,
                            static_cast<uint8_t>(e.reason));
                    break;
                case MatchEventKind::Replaced: {
                    ++counters_.replaced;
                    Live* live = find_live(e.client_order_id);
                    const int64_t total = request ? request->qty
                                                  : (live ? live->filled + e.qty : e.qty);
                    if (live != nullptr) live->qty = total;
                    respond(inst, EventKind::OrderReplaced, e.side, e.client_order_id, e.price,
                            total, ts, 0, 0, 0);
                    break;
                }
                case MatchEventKind::ReplaceRejected:
                    ++counters_.replace_rejected;
                    respond(inst, EventKind::ReplaceRejected, request ? request->side : e.side,
                            e.client_order_id, e.price, request ? request->qty : e.qty, ts, 0, 0,
                            static_cast<uint8_t>(e.reason));
                    break;
            }
        }
        m.clear_events();
        watching_[inst] = m.has_resting() ? 1 : 0;
    }

    void respond(uint32_t inst, EventKind kind, Side side, uint64_t id, int64_t price,
                 int64_t qty, int64_t ts, int64_t fee, uint8_t flag, uint8_t reason) noexcept {
        // seq is the queue's to give.
        out_->push(VenueResponse{.ts_event = ts, .ts_recv = response_at_, .order_id = id,
                                 .price = price, .qty = qty, .fee = fee, .instrument = inst,
                                 .kind = kind, .side = side, .flags = flag, .reason = reason});
    }

    uint32_t slot_for(Live l) noexcept {
        if (!free_.empty()) {
            const uint32_t s = free_.back();
            free_.pop_back();
            orders_[s] = l;
            return s;
        }
        orders_.push_back(l);
        return static_cast<uint32_t>(orders_.size() - 1);
    }
    Live* find_live(uint64_t id) noexcept {
        const uint32_t s = index_.find(id);
        return s == FlatHashMap<uint64_t>::kMissing ? nullptr : &orders_[s];
    }
    void forget(uint64_t id) noexcept {
        const uint32_t s = index_.erase(id);
        if (s != FlatHashMap<uint64_t>::kMissing) free_.push_back(s);
    }

    const Replayer* market_ = nullptr;
    ResponseQueue* out_ = nullptr;
    FeeModel fees_{};
    LatencyModel latency_{};
    std::vector<L2Matcher> l2_;
    std::vector<L3Matcher> l3_;
    std::vector<uint8_t> watching_;
    std::vector<Arrival> arrivals_;
    int64_t next_arrival_ = ResponseQueue::kNever;
    uint64_t next_arrival_seq_ = 0;
    int64_t response_at_ = 0;
    std::vector<Live> orders_;
    std::vector<OrderRules> rules_;  // per instrument; shorter than the table when none were set
    std::vector<uint32_t> free_;
    FlatHashMap<uint64_t> index_;  // client_order_id -> orders_ slot; looked up, never iterated
    VenueCounters counters_{};
};

}  // namespace lockstep
