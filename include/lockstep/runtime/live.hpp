// The live Core Runtime: the backtest Engine (runtime/engine.hpp) moved by what a venue sends, in
// NASDAQ's protocols, and answering in them. docs/live.md is normative.
//
// LiveCore is deterministic: it opens no socket and reads no clock. Its caller (the socket node,
// or `lockstep replay --journal` reading a journal) hands it each input with the receive stamp it
// took, and reads back the OUCH bytes to send:
//
//   on_itch(blocks, first_sequence, stamp)  MoldUDP64 message blocks in sequence (ITCH 5.0),
//                                           decoded by the ITCH decoder (codecs/itch.hpp) into
//                                           canonical events of the instruments configured here,
//                                           applied with ts_recv = stamp;
//   on_ouch(message, stamp)                 one OUCH 4.2 outbound message from the venue, turned
//                                           into the canonical execution event a backtest's
//                                           simulated venue gives (OuchVenue below);
//   on_tick(stamp)                          the clock alone: timers fire, deferred work is tried;
//   on_feed_gap(expected, stamp)            the feed lost messages it will not get back: every
//                                           book is invalid (GAP) and the strategy is told.
//
// Each returns the Engine's RunStatus; after a failure (a strategy that raised) nothing more is
// dispatched and every later input is refused with it, except the venue's OUCH answers (applied
// to Execution State only) and the order-entry session's state. Stamps never go back: a stamp below
// the last one is taken as the last one, so the same inputs give the same State in any run.
//
// Hot paths are noexcept and allocation-free in steady state (the order pool, maps and the
// outbound buffer grow by doubling only when more is live or queued than ever before).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/base/little_endian.hpp"
#include "lockstep/base/sequence_runs.hpp"
#include "lockstep/base/sha256.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/itch.hpp"
#include "lockstep/codecs/ouch42.hpp"
#include "lockstep/core/events.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/runtime/engine.hpp"
#include "lockstep/venue/venue.hpp"

namespace lockstep::live {

// OUCH 4.2 Rejected reasons LiveCore gives itself when an order cannot be put into OUCH's fields
// (the letters a NASDAQ venue answers with for the same fault).
constexpr uint8_t kRejectInvalidStock = 'S';
constexpr uint8_t kRejectInvalidPrice = 'X';
constexpr uint8_t kRejectInvalidShares = 'Z';
// OUCH Canceled reason of an immediate-or-cancel remainder: the order expired.
constexpr uint8_t kCanceledImmediateOrCancel = 'I';
// Liquidity flag of a fill that added liquidity (a maker fill).
constexpr uint8_t kLiquidityAdded = 'A';
// OUCH time in force: 0 immediate or cancel, 99999 until the end of system hours.
constexpr uint32_t kTifImmediate = 0;
constexpr uint32_t kTifSystemHours = 99999;

// The journal's record layouts, little-endian, no padding (docs/journal.md; Python
// lockstep.live.journal.DECISION and EXECUTION read them).
constexpr size_t kDecisionBytes = 48;   // ts_recv, instrument, intent, side, tif, price, qty,
                                        // client order id, target order id, reason
constexpr size_t kExecutionBytes = 56;  // ts_event, ts_recv, instrument, kind, side, flags,
                                        // reason, price, qty, order id, fee

inline void pack_decision(const DenialRecord& d, uint8_t* p) noexcept {
    const Intent& i = d.intent;
    store_le(p, d.ts_recv), store_le(p + 8, i.instrument);
    p[12] = uint8_t(i.kind), p[13] = uint8_t(i.side), p[14] = uint8_t(i.tif);
    store_le(p + 15, i.price), store_le(p + 23, i.qty), store_le(p + 31, i.client_order_id);
    store_le(p + 39, i.target_order_id);
    p[47] = uint8_t(d.reason);
}

// A PnL sample as the digest hashes it: ts_recv, instrument, position, mid, mid_known, realized,
// unrealized, fees (little-endian, no padding).
constexpr size_t kSampleBytes = 53;

inline void pack_sample(const PnlSample& s, uint8_t* p) noexcept {
    store_le(p, s.ts_recv), store_le(p + 8, s.instrument), store_le(p + 12, s.position);
    store_le(p + 20, s.mid);
    p[28] = s.mid_known ? 1 : 0;
    std::memcpy(p + 29, &s.realized, 8), std::memcpy(p + 37, &s.unrealized, 8);
    std::memcpy(p + 45, &s.fees, 8);
}

inline void pack_execution(const ExecRecord& x, uint8_t* p) noexcept {
    store_le(p, x.ts_event), store_le(p + 8, x.ts_recv), store_le(p + 16, x.instrument);
    p[20] = x.kind, p[21] = x.side, p[22] = x.flags, p[23] = x.reason;
    store_le(p + 24, x.price), store_le(p + 32, x.qty), store_le(p + 40, x.order_id);
    store_le(p + 48, x.fee);
}

struct LiveCounters {
    uint64_t itch_inputs = 0;        // on_itch calls
    uint64_t itch_messages = 0;      // message blocks decoded
    uint64_t itch_duplicates = 0;    // blocks below the next expected sequence (dropped)
    uint64_t itch_skipped = 0;       // sequence numbers jumped over without a gap notice
    uint64_t itch_empty_blocks = 0;  // zero-length blocks (nothing to decode)
    uint64_t itch_problems = 0;      // blocks the decoder refused (malformed, unsupported type)
    uint64_t itch_unmapped = 0;      // events of a stock this session does not trade
    uint64_t off_tick = 0;           // prices (ITCH or OUCH) not a whole number of ticks
    uint64_t ouch_messages = 0;
    uint64_t ouch_undecodable = 0;   // not an OUCH 4.2 outbound message
    uint64_t ouch_unknown_order = 0; // an order message whose token no order of ours has
    uint64_t ouch_system_events = 0;
    uint64_t ouch_broken_trades = 0;      // Broken Trade messages: TradeBroken of the fill named
    uint64_t ouch_price_corrections = 0;  // Price Correction messages: TradeCorrected of it
    uint64_t ouch_unknown_trades = 0;     // either, naming a match number no fill of ours has
                                          // (or a fill already broken, or with the token of
                                          // another live order of ours): nothing changes
    uint64_t ouch_cancel_pending = 0;
    uint64_t ticks = 0;
    uint64_t gaps = 0;
    uint64_t controls = 0;           // trading mode and kill switch inputs
    uint64_t dispatched = 0;         // OUCH messages written for the caller to send
    uint64_t unsendable = 0;         // intents OUCH cannot carry, rejected here
    uint64_t order_entry_downs = 0;  // order-entry session lost (on_order_entry(false))
    uint64_t order_entry_ups = 0;    // ... and back (on_order_entry(true) after a down)
    uint64_t held = 0;               // messages not written while order entry was down
    uint64_t resent = 0;             // messages written again when it came back (reconcile)
    uint64_t feed_sessions = 0;      // feed session changes (on_feed_session)
    uint64_t snapshots = 0;          // book snapshots applied (on_snapshot)
    uint64_t snapshot_messages = 0;  // their message blocks decoded
    uint64_t snapshot_continued = 0; // feed blocks applied again after a snapshot, from those
                                     // the core held since the books went invalid
    uint64_t held_overflows = 0;     // held feed blocks dropped: more than the core holds came
    uint64_t told_runs_forgotten = 0;  // runs of feed messages whose trades were told, past
                                       // the 65,536 the core remembers (SequenceRuns): a
                                       // snapshot reaching back to one tells them again
    uint64_t trades_told_before = 0; // trades of feed messages applied again after a snapshot,
                                     // not told again: told when the message first came
};

// The Venue Adapter of a live session: dispatches become OUCH 4.2 Enter/Replace/Cancel Order
// messages appended to an outbound buffer ([u16 big-endian length][message] each, the caller's
// to send as SoupBinTCP unsequenced data), and the venue's OUCH answers become VenueResponses.
//
// Units: an instrument's OUCH stock is its feed stock name; a price is ticks x its price
// multiplier (Price(4) units per tick, as the feed publishes); one share is one lot, as the feed
// counts them. Order tokens are the configured prefix and a decimal counter from 1, so the same
// inputs give the same tokens. A token names one order; a replace gets a new token and the
// order lives on under it once the venue says Replaced.
// Orders waiting for an answer from the venue (OuchVenue::unanswered).
struct Unanswered {
    uint32_t orders = 0;
    int64_t oldest_ns = INT64_MAX;  // when the earliest of their requests left (INT64_MAX: none)
};

class OuchVenue final : public VenueAdapter {
public:
    static constexpr size_t kTokenPrefixMax = 4;

    OuchVenue() {
        out_.reserve(64 * 1024);
        pool_.reserve(64);
        by_token_.reserve(128);
        by_order_.reserve(128);
    }

    // Setup (allocates). The prefix: up to 4 printable ASCII characters, not digits or spaces.
    Status configure(const uint8_t* prefix, size_t prefix_len, const uint8_t* firm4) {
        if (prefix_len > kTokenPrefixMax) return Status::InvalidArgument;
        for (size_t i = 0; i < prefix_len; ++i)
            if (prefix[i] <= ' ' || prefix[i] > '~' || (prefix[i] >= '0' && prefix[i] <= '9'))
                return Status::InvalidArgument;
        std::memcpy(prefix_, prefix, prefix_len);
        prefix_len_ = prefix_len;
        std::memcpy(firm_, firm4, ouch42::kFirmLength);
        return Status::Ok;
    }
    Status add_instrument(uint32_t index, const uint8_t* stock8, uint32_t price_multiplier) {
        if (price_multiplier == 0) return Status::InvalidArgument;
        if (index >= instruments_.size()) instruments_.resize(size_t{index} + 1);
        Instrument& in = instruments_[index];
        std::memcpy(in.stock, stock8, ouch42::kStockLength);
        in.multiplier = price_multiplier;
        in.known = true;
        return Status::Ok;
    }
    void attach(Engine& engine) noexcept { engine_ = &engine; }
    // The fee schedule fills are charged by: OUCH reports no fees, so a session charges what its
    // config's [venue] says, as the backtest of the same config did (maker: liquidity flag A).
    void set_fees(const FeeModel& fees) noexcept { fees_ = fees; }

    void end_batch() noexcept override {
        if (hook_ != nullptr && !out_.empty()) hook_(hook_context_);
    }

    void send(const Intent& in, int64_t ts, int64_t) noexcept override {
        switch (in.kind) {
            case IntentKind::SubmitLimit:
            case IntentKind::SubmitMarket: return enter(in, ts);
            case IntentKind::Replace: return replace(in, ts);
            case IntentKind::Cancel: return cancel(in, ts);
        }
    }

    // One OUCH outbound message received at `stamp` (day_start_ns + its timestamp is its
    // ts_event): the execution event it means goes to the engine (push_response).
    void receive(const uint8_t* p, size_t len, int64_t stamp, int64_t day_start_ns,
                 LiveCounters& c) noexcept {
        ouch42::Outbound m;
        wire::WireError err;
        ++c.ouch_messages;
        if (ouch42::decode_outbound(p, len, m, &err) != Status::Ok) {
            ++c.ouch_undecodable;
            return;
        }
        const ouch42::OutboundBody& b = m.body;
        switch (m.type) {
            case ouch42::SystemEvent::kType: ++c.ouch_system_events; return;
            case ouch42::CancelPending::kType: ++c.ouch_cancel_pending; return;
            case ouch42::BrokenTrade::kType: {
                ++c.ouch_broken_trades;
                const ouch42::BrokenTrade& t = b.broken_trade;
                return correct(t.match_number, t.token, day_start_ns + int64_t(t.timestamp),
                               stamp, /*broken=*/true, 0, t.reason, c);
            }
            case ouch42::PriceCorrection::kType: {
                ++c.ouch_price_corrections;
                const ouch42::PriceCorrection& t = b.price_correction;
                return correct(t.match_number, t.token, day_start_ns + int64_t(t.timestamp),
                               stamp, /*broken=*/false, t.new_execution_price, t.reason, c);
            }
            default: break;
        }
        // Every other message is about one order: the token is at the same place in each.
        const uint8_t* token = b.accepted.token;
        switch (m.type) {
            case ouch42::Accepted::kType: token = b.accepted.token; break;
            case ouch42::Replaced::kType: token = b.replaced.token; break;
            case ouch42::Canceled::kType: token = b.canceled.token; break;
            case ouch42::AiqCanceled::kType: token = b.aiq_canceled.token; break;
            case ouch42::Executed::kType: token = b.executed.token; break;
            case ouch42::Rejected::kType: token = b.rejected.token; break;
            case ouch42::CancelReject::kType: token = b.cancel_reject.token; break;
            default: break;
        }
        uint64_t number = 0;
        const uint32_t slot = find(token, &number);
        if (slot == kNone) {
            ++c.ouch_unknown_order;
            return;
        }
        Order& o = pool_[slot];
        const Instrument& in = instruments_[o.instrument];
        VenueResponse r;
        r.ts_recv = stamp;
        r.order_id = o.client_order_id;
        r.instrument = o.instrument;
        r.side = o.side;
        switch (m.type) {
            case ouch42::Accepted::kType:
                r.ts_event = day_start_ns + int64_t(b.accepted.timestamp);
                r.kind = EventKind::OrderAccepted;
                o.accepted = true;
                r.price = ticks(in, b.accepted.price, c);
                r.qty = b.accepted.shares;
                break;
            case ouch42::Replaced::kType:
                r.ts_event = day_start_ns + int64_t(b.replaced.timestamp);
                r.kind = EventKind::OrderReplaced;
                r.price = ticks(in, b.replaced.price, c);
                r.qty = o.filled + int64_t(b.replaced.shares);  // the new total, fills included
                forget_token(o.token);
                o.token = number;
                o.replacement = 0;
                o.accepted = true;
                o.price = r.price;
                o.total = r.qty;
                release_held(o);
                break;
            case ouch42::Canceled::kType:
            case ouch42::AiqCanceled::kType: {
                const bool aiq = m.type == ouch42::AiqCanceled::kType;
                r.ts_event = day_start_ns + int64_t(aiq ? b.aiq_canceled.timestamp
                                                        : b.canceled.timestamp);
                const int64_t decrement = aiq ? b.aiq_canceled.decrement_shares
                                              : b.canceled.decrement_shares;
                const uint8_t reason = aiq ? b.aiq_canceled.reason : b.canceled.reason;
                if (decrement < o.total - o.filled) {
                    // Part of the order left: Execution State knows it as a smaller total.
                    r.kind = EventKind::OrderReplaced;
                    r.price = o.price;
                    o.total -= decrement;
                    r.qty = o.total;
                } else {
                    r.kind = reason == kCanceledImmediateOrCancel ? EventKind::OrderExpired
                                                                  : EventKind::OrderCanceled;
                    r.price = o.price;
                    r.qty = decrement;
                    r.reason = reason;
                    release(slot);
                }
                break;
            }
            case ouch42::Executed::kType:
                r.ts_event = day_start_ns + int64_t(b.executed.timestamp);
                r.kind = EventKind::OrderFilled;
                r.price = ticks(in, b.executed.execution_price, c);
                r.qty = b.executed.executed_shares;
                r.flags = b.executed.liquidity_flag == kLiquidityAdded ? flags::kMaker : 0;
                r.fee = fees_.fee64(r.price, r.qty, r.flags != 0);
                remember_fill(b.executed.match_number, r);
                o.filled += r.qty;
                if (o.filled >= o.total) release(slot);
                break;
            case ouch42::Rejected::kType:
                r.ts_event = day_start_ns + int64_t(b.rejected.timestamp);
                r.reason = b.rejected.reason;
                r.price = o.price;
                if (number == o.token) {
                    r.kind = EventKind::OrderRejected;
                    r.qty = o.total;
                    release(slot);
                } else {  // the token a replace asked for: the order stays as it was
                    r.kind = EventKind::ReplaceRejected;
                    r.qty = o.total;
                    forget_token(number);
                    if (o.replacement == number) {
                        o.replacement = 0;
                        release_held(o);
                    }
                }
                break;
            case ouch42::CancelReject::kType:
                r.ts_event = day_start_ns + int64_t(b.cancel_reject.timestamp);
                r.kind = EventKind::CancelRejected;
                o.cancel_asked = false;
                break;
            default: return;
        }
        engine_->push_response(r);
    }

    // A Cancel Order for every order still open at the venue, in slot order (the kill path:
    // it asks no strategy and no Risk), asked at `ts`.
    void cancel_all(int64_t ts) noexcept {
        for (Order& o : pool_)
            if (o.live) ask_cancel(o, ts);
    }

    // Live orders waiting for an answer the venue owes them (an Enter Order not Accepted, a
    // replace or a cancel not answered) that was asked at or before `asked_by`: how many, and
    // when the earliest such request left (core stamps). OUCH has no order status request, so
    // an order the venue lost without a word would stay open for ever; this is how a caller
    // notices. A scan of the live orders: a query for a report, not a per-event path.
    Unanswered unanswered(int64_t asked_by) const noexcept {
        Unanswered u;
        for (const Order& o : pool_) {
            if (!o.live) continue;
            int64_t since = INT64_MAX;
            if (!o.accepted && o.enter_ns < since) since = o.enter_ns;
            if (o.replacement != 0 && o.replace_ns < since) since = o.replace_ns;
            if (o.replace_held && o.held_ns < since) since = o.held_ns;
            if (o.cancel_asked && o.cancel_ns < since) since = o.cancel_ns;
            if (since > asked_by) continue;
            ++u.orders;
            if (since < u.oldest_ns) u.oldest_ns = since;
        }
        return u;
    }

    // The order-entry session went down (false) or is logged in again (true). While down nothing
    // is written: what is dispatched only changes the orders' state here. Coming back, every
    // live order is reconciled with what the venue may have missed, in slot order: an Enter
    // Order not yet Accepted, a replace not yet answered and a cancel not yet answered are
    // written again under their own tokens. The venue ignores a token it has seen (OUCH:
    // duplicate tokens, cancels of orders no longer live), so whatever it did receive before the
    // drop is not doubled, and its answers, missed or not, come back by the SoupBinTCP replay.
    void set_up(bool up) noexcept {
        if (up == up_) return;
        up_ = up;
        if (!up) return;
        uint64_t written = 0;
        for (Order& o : pool_) {
            if (!o.live) continue;
            if (!o.accepted) put_enter(o), ++written;
            if (o.replacement != 0) put_replace(o), ++written;
            if (o.cancel_asked) put_cancel(o), ++written;
        }
        if (counters != nullptr) counters->resent += written;
    }
    bool up() const noexcept { return up_; }

    const std::vector<uint8_t>& outbound() const noexcept { return out_; }
    void clear_outbound() noexcept { out_.clear(); }

    // Called at the end of each batch of dispatches (end_batch: the messages one strategy call
    // made), so that a caller owning the socket can write them at once, in one write, before the
    // rest of the input that caused them is applied.
    using OutboundHook = void (*)(void* context) noexcept;
    void set_outbound_hook(OutboundHook hook, void* context) noexcept {
        hook_ = hook;
        hook_context_ = context;
    }
    size_t live_orders() const noexcept { return by_order_.size(); }
    LiveCounters* counters = nullptr;  // where dispatches are counted (LiveCore's)

private:
    struct Instrument {
        uint8_t stock[ouch42::kStockLength] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
        uint32_t multiplier = 1;
        bool known = false;
    };
    // What the adapter remembers of a live order, in data units.
    struct Order {
        uint64_t client_order_id = 0;
        uint64_t token = 0;        // the token the venue knows it by
        uint64_t replacement = 0;  // the token of the replace in flight (0: none)
        int64_t price = 0;
        int64_t total = 0;         // shares ordered (a replace's new total, fills included)
        int64_t filled = 0;
        uint32_t instrument = 0;
        uint32_t tif_seconds = 0;
        uint32_t ouch_price = 0;         // the Enter Order's price (Price(4))
        uint32_t replace_price = 0;      // the replace in flight's price and shares
        uint32_t replace_shares = 0;
        // A replace asked while another is in flight waits for that one's answer: the venue
        // ignores a replace of a token it has not made live yet or has just replaced. The
        // latest such request (its price and new total), written once the answer comes.
        bool replace_held = false;
        uint32_t held_price = 0;
        int64_t held_total = 0;
        int64_t held_ns = 0;
        uint8_t display = 'Y';
        Side side = Side::None;
        bool live = false;
        bool accepted = false;           // the venue answered the Enter Order (or a replace)
        bool cancel_asked = false;       // a Cancel Order left and no answer came yet
        // When the Enter Order, the replace in flight and the cancel in flight were asked (core
        // stamps; a resend after a re-login keeps the first): what unanswered() reports.
        int64_t enter_ns = 0, replace_ns = 0, cancel_ns = 0;
    };
    static constexpr uint32_t kNone = FlatHashMap<uint64_t>::kMissing;

    void enter(const Intent& in, int64_t ts) noexcept {
        const bool known = in.instrument < instruments_.size() && instruments_[in.instrument].known;
        uint32_t price = 0;
        uint8_t reject = known ? 0 : kRejectInvalidStock;
        if (known) {
            const uint32_t mult = instruments_[in.instrument].multiplier;
            if (in.kind == IntentKind::SubmitMarket) {
                // OUCH has no market order: an immediate-or-cancel order at the far price.
                price = in.side == Side::Bid ? uint32_t(0x7FFFFFFFu / mult * mult) : mult;
            } else if (!to_price(in.instrument, in.price, &price)) {
                reject = kRejectInvalidPrice;
            }
            if (reject == 0 && (in.qty <= 0 || in.qty > int64_t(UINT32_MAX)))
                reject = kRejectInvalidShares;
        }
        const uint64_t number = next_token_++;
        Order o;
        o.client_order_id = in.client_order_id;
        o.token = number;
        o.price = in.kind == IntentKind::SubmitMarket ? 0 : in.price;
        o.total = in.qty;
        o.instrument = in.instrument;
        o.side = in.side;
        o.tif_seconds = in.tif == TimeInForce::IOC ? kTifImmediate : kTifSystemHours;
        o.display = in.tif == TimeInForce::PostOnly ? 'P' : 'Y';
        o.ouch_price = price;
        o.enter_ns = ts;
        if (reject != 0) {
            refuse(EventKind::OrderRejected, in, o.price, ts, reject);
            return;
        }
        const uint32_t slot = hold(o);
        by_token_.insert(number, slot);
        by_order_.insert(in.client_order_id, slot);
        put_enter(pool_[slot]);
    }

    void put_enter(const Order& o) noexcept {
        ouch42::EnterOrder m{};
        write_token(m.token, o.token);
        m.side = o.side == Side::Bid ? 'B' : 'S';
        m.shares = uint32_t(o.total);
        std::memcpy(m.stock, instruments_[o.instrument].stock, ouch42::kStockLength);
        m.price = o.ouch_price;
        m.time_in_force = o.tif_seconds;
        std::memcpy(m.firm, firm_, ouch42::kFirmLength);
        m.display = o.display;
        m.capacity = 'P';
        m.intermarket_sweep = 'N';
        m.minimum_quantity = 0;
        m.cross_type = 'N';
        m.customer_type = ' ';
        put(m);
    }

    void put_replace(const Order& o) noexcept {
        ouch42::ReplaceOrder m{};
        write_token(m.existing_token, o.token);
        write_token(m.replacement_token, o.replacement);
        m.shares = o.replace_shares;
        m.price = o.replace_price;
        m.time_in_force = o.tif_seconds;
        m.display = o.display;
        m.intermarket_sweep = 'N';
        m.minimum_quantity = 0;
        put(m);
    }

    // While a replace is in flight the order is live at the venue under one of two tokens (the
    // venue answers in order, but we do not know yet whether it took the replace): a Cancel
    // Order for each, of which the venue ignores the one no longer (or never) live. A replace
    // held behind the one in flight is dropped: the cancel supersedes it.
    void put_cancel(Order& o) noexcept {
        o.cancel_asked = true;
        o.replace_held = false;
        ouch42::CancelOrder m{};
        write_token(m.token, o.token);
        m.shares = 0;
        put(m);
        if (o.replacement != 0) {
            write_token(m.token, o.replacement);
            put(m);
        }
    }

    void replace(const Intent& in, int64_t ts) noexcept {
        const uint32_t slot = by_order_.find(in.target_order_id);
        if (slot == kNone) {  // ended at the venue before the replace left: nothing to move
            refuse(EventKind::ReplaceRejected, in, in.price, ts, kRejectInvalidShares);
            return;
        }
        Order& o = pool_[slot];
        uint32_t price = 0;
        const int64_t open = in.qty - o.filled;
        if (!to_price(o.instrument, in.price, &price)) {
            refuse(EventKind::ReplaceRejected, in, in.price, ts, kRejectInvalidPrice);
            return;
        }
        if (open <= 0 || open > int64_t(UINT32_MAX)) {
            refuse(EventKind::ReplaceRejected, in, in.price, ts, kRejectInvalidShares);
            return;
        }
        if (o.replacement != 0) {  // one in flight: this one follows its answer
            o.replace_held = true;
            o.held_price = price;
            o.held_total = in.qty;
            o.held_ns = ts;
            return;
        }
        send_replace(o, price, uint32_t(open), ts);
    }

    void send_replace(Order& o, uint32_t price, uint32_t shares, int64_t ts) noexcept {
        const uint64_t number = next_token_++;
        o.replacement = number;
        o.replace_ns = ts;
        o.replace_price = price;
        o.replace_shares = shares;
        by_token_.insert(number, uint32_t(&o - pool_.data()));
        put_replace(o);
    }

    // The replace in flight was answered: the one held behind it (if any) goes now, for what is
    // still open of its total; nothing open any more, it is dropped (the fills ended the order).
    void release_held(Order& o) noexcept {
        if (!o.replace_held) return;
        o.replace_held = false;
        const int64_t open = o.held_total - o.filled;
        if (open > 0 && open <= int64_t(UINT32_MAX))
            send_replace(o, o.held_price, uint32_t(open), o.held_ns);
    }

    void cancel(const Intent& in, int64_t ts) noexcept {
        const uint32_t slot = by_order_.find(in.target_order_id);
        if (slot == kNone) {
            refuse(EventKind::CancelRejected, in, 0, ts, 0);
            return;
        }
        ask_cancel(pool_[slot], ts);
    }

    void ask_cancel(Order& o, int64_t ts) noexcept {
        if (!o.cancel_asked) o.cancel_ns = ts;
        put_cancel(o);
    }

    // An intent OUCH cannot carry: answered here, as the venue would, when the clock next moves.
    void refuse(EventKind kind, const Intent& in, int64_t price, int64_t ts, uint8_t reason) noexcept {
        if (counters != nullptr) ++counters->unsendable;
        VenueResponse r;
        r.ts_event = ts;
        r.ts_recv = ts;
        r.order_id = kind == EventKind::OrderRejected ? in.client_order_id : in.target_order_id;
        r.price = price;
        r.qty = in.qty;
        r.instrument = in.instrument;
        r.kind = kind;
        r.side = in.side;
        r.reason = reason;
        engine_->push_response(r);
    }

    // Writes one message for the caller to send; while order entry is down only counts it (the
    // order's state says what set_up(true) writes again).
    template <class M>
    void put(const M& m) noexcept {
        if (!up_) {
            if (counters != nullptr) ++counters->held;
            return;
        }
        const size_t at = out_.size();
        out_.resize(at + 2 + M::kLength);  // grows only past the largest batch ever queued
        store_be16(out_.data() + at, uint16_t(M::kLength));
        size_t written = 0;
        ouch42::encode_message(m, out_.data() + at + 2, M::kLength, &written);
        if (counters != nullptr) ++counters->dispatched;
    }

    bool to_price(uint32_t inst, int64_t ticks, uint32_t* out) const noexcept {
        if (ticks <= 0 || ticks > int64_t(UINT32_MAX)) return false;
        const uint64_t p = uint64_t(ticks) * instruments_[inst].multiplier;  // both < 2^32
        if (p > 0x7FFFFFFFu) return false;  // OUCH prices are signed in practice: stay below
        *out = uint32_t(p);
        return true;
    }

    static int64_t ticks(const Instrument& in, uint32_t price, LiveCounters& c) noexcept {
        if (price % in.multiplier != 0) ++c.off_tick;
        return int64_t(price / in.multiplier);
    }

    void write_token(uint8_t* out, uint64_t number) const noexcept {
        std::memset(out, ' ', ouch42::kTokenLength);
        std::memcpy(out, prefix_, prefix_len_);
        char digits[20];
        size_t n = 0;
        do {
            digits[n++] = char('0' + number % 10);
            number /= 10;
        } while (number != 0 && n < sizeof digits);
        for (size_t i = 0; i < n && prefix_len_ + i < ouch42::kTokenLength; ++i)
            out[prefix_len_ + i] = uint8_t(digits[n - 1 - i]);
    }

    // The slot of the order a token names (and the token's number), or kNone.
    uint32_t find(const uint8_t* token, uint64_t* number_out) const noexcept {
        if (std::memcmp(token, prefix_, prefix_len_) != 0) return kNone;
        uint64_t number = 0;
        size_t i = prefix_len_;
        for (; i < ouch42::kTokenLength && token[i] >= '0' && token[i] <= '9'; ++i)
            number = number * 10 + (token[i] - '0');
        if (i == prefix_len_ || number == 0) return kNone;
        for (size_t k = i; k < ouch42::kTokenLength; ++k)
            if (token[k] != ' ') return kNone;
        if (number_out != nullptr) *number_out = number;
        return by_token_.find(number);
    }

    uint32_t hold(Order o) noexcept {
        o.live = true;
        if (!free_.empty()) {
            const uint32_t s = free_.back();
            free_.pop_back();
            pool_[s] = o;
            return s;
        }
        pool_.push_back(o);  // grows with the most orders ever live at once
        return uint32_t(pool_.size() - 1);
    }
    // Our fills by the venue's match number, kept for the session (a Broken Trade or a Price
    // Correction may come long after the order ended): 32 bytes a fill. A match number seen
    // again keeps its first fill.
    void remember_fill(uint64_t match, const VenueResponse& r) noexcept {
        bool inserted = false;
        uint32_t* k = by_match_.find_or_insert(match, &inserted);
        if (!inserted) return;
        *k = uint32_t(fills_.size());
        fills_.push_back({r.order_id, r.price, r.qty, r.instrument, r.side, r.flags != 0, false});
    }

    // A Broken Trade (the fill never happened) or a Price Correction (it happened at
    // `new_price`) of the fill with match number `match`: an execution event of its order, with
    // the fill's side and qty. Found by the match number (the venue's, unique in its day): the
    // message's token may be one a replace has retired since, or one of an order long ended
    // and forgotten. A token that names a live order of ours other than the fill's contradicts
    // the match number: counted as unknown, nothing changes.
    void correct(uint64_t match, const uint8_t* token, int64_t ts_event, int64_t stamp,
                 bool broken, uint32_t new_price, uint8_t reason, LiveCounters& c) noexcept {
        const uint32_t k = by_match_.find(match);
        const uint32_t named = find(token, nullptr);
        if (k == kNone || fills_[k].broken ||
            (named != kNone && pool_[named].client_order_id != fills_[k].order_id)) {
            ++c.ouch_unknown_trades;
            return;
        }
        Fill& f = fills_[k];
        VenueResponse r;
        r.ts_event = ts_event;
        r.ts_recv = stamp;
        r.order_id = f.order_id;
        r.instrument = f.instrument;
        r.side = f.side;
        r.qty = f.qty;
        r.reason = reason;
        const int64_t fee = fees_.fee64(f.price, f.qty, f.maker);  // as the fill was charged
        if (broken) {
            r.kind = EventKind::TradeBroken;
            r.price = f.price;
            r.fee = fee;  // given back
            f.broken = true;
        } else {
            r.kind = EventKind::TradeCorrected;
            r.prior_price = f.price;
            r.price = ticks(instruments_[f.instrument], new_price, c);
            r.fee = fees_.fee64(r.price, f.qty, f.maker) - fee;
            f.price = r.price;
        }
        engine_->push_response(r);
    }

    void forget_token(uint64_t number) noexcept {
        if (number != 0) by_token_.erase(number);
    }
    void release(uint32_t slot) noexcept {
        Order& o = pool_[slot];
        o.live = false;
        forget_token(o.token);
        forget_token(o.replacement);
        by_order_.erase(o.client_order_id);
        if (free_.size() == free_.capacity()) free_.reserve(free_.capacity() * 2 + 64);
        free_.push_back(slot);
    }

    Engine* engine_ = nullptr;
    std::vector<Instrument> instruments_;
    std::vector<Order> pool_;
    std::vector<uint32_t> free_;
    FlatHashMap<uint64_t> by_token_;  // token number -> pool slot
    FlatHashMap<uint64_t> by_order_;  // client order id -> pool slot
    struct Fill {
        uint64_t order_id;
        int64_t price, qty;  // its fee follows from them and the session's fee schedule
        uint32_t instrument;
        Side side;
        bool maker, broken;
    };
    std::vector<Fill> fills_;           // every fill of the session, in arrival order
    FeeModel fees_{};
    FlatHashMap<uint64_t> by_match_;    // match number -> fills_ index
    std::vector<uint8_t> out_;
    OutboundHook hook_ = nullptr;
    void* hook_context_ = nullptr;
    uint8_t prefix_[kTokenPrefixMax] = {};
    size_t prefix_len_ = 0;
    uint8_t firm_[ouch42::kFirmLength] = {' ', ' ', ' ', ' '};
    uint64_t next_token_ = 1;
    bool up_ = true;
};

// The decoder reads the orders of the session's stocks from the engine's L3 books (its
// OrderSource): one order table for both, looked up once per message.
class LiveCore final : private itch::OrderSource {
public:
    static constexpr size_t kChunkEvents = 1024;
    static constexpr uint32_t kUnmapped = UINT32_MAX;
    static constexpr uint32_t kNotOurs = UINT32_MAX - 1;

    // `engine` is configured (risk, queue, strategy) by the caller and must outlive the core; its
    // instruments are the session's, each an L3 book (ITCH is order by order).
    LiveCore(Engine& engine, int64_t day_start_ns)
        : engine_(engine), day_start_(day_start_ns), decoder_(1 << 14) {
        decoder_.begin_file(0, day_start_ns);
        ts_event_.resize(kChunkEvents);
        ts_recv_.resize(kChunkEvents);
        seq_.resize(kChunkEvents);
        instrument_.resize(kChunkEvents);
        kind_.resize(kChunkEvents);
        side_.resize(kChunkEvents);
        flags_.resize(kChunkEvents);
        price_.resize(kChunkEvents);
        qty_.resize(kChunkEvents);
        order_id_.resize(kChunkEvents);
        event_record_.resize(kChunkEvents);
        rec_file_.resize(kChunkEvents);
        rec_offset_.resize(kChunkEvents);
        rec_length_.resize(kChunkEvents);
        rec_problem_.resize(kChunkEvents);
        venue_.counters = &counters_;
        venue_.attach(engine);
        engine.use_venue(venue_);
        engine.set_record_decisions(true);
        decoder_.set_order_source(this);
        reset_sink();
    }
    LiveCore(const LiveCore&) = delete;
    LiveCore& operator=(const LiveCore&) = delete;

    // ---- setup (allocates) -----------------------------------------------------------------

    Status configure_orders(const uint8_t* token_prefix, size_t prefix_len, const uint8_t* firm4) {
        return venue_.configure(token_prefix, prefix_len, firm4);
    }
    // Fills are charged maker_ppm / taker_ppm of their notional (OuchVenue::set_fees).
    void configure_fees(int64_t maker_ppm, int64_t taker_ppm) noexcept {
        venue_.set_fees(FeeModel{maker_ppm, taker_ppm});
    }
    // Engine instrument `index` is the feed's stock `stock8` (space-padded) and is traded under
    // that name; its prices are Price(4) / price_multiplier ticks.
    Status add_instrument(uint32_t index, const uint8_t* stock8, uint32_t price_multiplier) {
        if (index >= engine_.instrument_count() || price_multiplier == 0)
            return Status::InvalidArgument;
        if (venue_.add_instrument(index, stock8, price_multiplier) != Status::Ok)
            return Status::InvalidArgument;
        if (index >= stocks_.size()) stocks_.resize(size_t{index} + 1);
        Stock& s = stocks_[index];
        size_t n = 8;
        while (n > 0 && stock8[n - 1] == ' ') --n;
        std::memset(s.name, 0, sizeof s.name);
        std::memcpy(s.name, stock8, n);
        s.set_multiplier(price_multiplier);
        s.known = true;
        for (uint32_t& m : map_)
            if (m == kNotOurs) m = kUnmapped;  // named stocks are matched again
        return Status::Ok;
    }
    void set_next_sequence(uint64_t sequence) noexcept { next_sequence_ = sequence; }
    // How much feed the core holds while its books are invalid (kHeldBytes unless set here).
    void set_held_bytes(size_t bytes) noexcept { held_bytes_ = bytes; }

    // ---- inputs ----------------------------------------------------------------------------

    RunStatus on_itch(const uint8_t* blocks, size_t len, uint64_t first_sequence,
                      int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        const RunStatus st = apply_itch(blocks, len, first_sequence, stamp);
        return st == RunStatus::Ok ? st : halt();
    }

    // Applied after a failure too, to Execution State only (Engine::settle_after_failure): the
    // venue's answers to the halt's cancels, and the fills crossing them, still end the orders.
    RunStatus on_ouch(const uint8_t* message, size_t len, int64_t stamp) noexcept {
        stamp_ = clamp(stamp);
        venue_.receive(message, len, stamp_, day_start_, counters_);
        if (engine_.failed() != RunStatus::Ok) return engine_.settle_after_failure(stamp_);
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    RunStatus on_tick(int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.ticks;
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // Control State, from a signal, `lockstep live ctl` or a risk breach: journaled inputs like
    // any other, so a replay sees them where the session did. The trading mode (Risk: halted
    // passes only cancels, reduce-only only what cannot grow a position).
    RunStatus on_mode(TradingMode mode, int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.controls;
        engine_.risk().set_mode(mode);
        const RunStatus withdrawn = mode == TradingMode::Halted ? engine_.withdraw_queued(RiskReason::Halted)
                                    : mode == TradingMode::ReduceOnly ? engine_.withdraw_growing()
                                                                      : RunStatus::Ok;
        if (withdrawn != RunStatus::Ok) return halt();
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // The kill switch: on, every open order is cancelled (through Risk and the queue, as a
    // strategy's cancels go, so State records each) and nothing but cancels passes until off.
    RunStatus on_kill(bool on, int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.controls;
        if (engine_.advance_to(stamp_) != RunStatus::Ok) return halt();
        engine_.risk().set_kill_switch(on);
        if (on) {
            const ExecutionState& x = engine_.execution();
            for (uint32_t s = 0; s < x.order_count(); ++s)
                if (!is_terminal(x.status(s))) engine_.cancel(x.client_order_id(s));
            if (engine_.withdraw_queued(RiskReason::KillSwitch) != RunStatus::Ok) return halt();
        }
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // The order-entry session is down (false: nothing is written, submits and replaces are denied
    // OrderEntryDown, cancels wait) or logged in again (true: OuchVenue::set_up reconciles the
    // open orders). Applied after a failure too: the cancels of the halt still have to leave.
    RunStatus on_order_entry(bool up, int64_t stamp) noexcept {
        stamp_ = clamp(stamp);
        if (up != venue_.up()) ++(up ? counters_.order_entry_ups : counters_.order_entry_downs);
        engine_.set_order_entry_up(up);
        venue_.set_up(up);
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // The feed's MoldUDP64 session changed (the venue restarted): the new session is a new ITCH
    // day, numbered from 1 again, with its own stock locates and order references, so what the
    // books hold can no longer be continued. Every book is invalid from here (a feed gap: the
    // strategy is told), the decoder starts the new day, and the next block is taken whatever
    // its sequence number. If that block is the new session's message 1, the books are rebuilt
    // from it (apply_itch: Engine::feed_restart); a node that joined the new session later
    // keeps them invalid.
    RunStatus on_feed_session(int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.feed_sessions;
        next_sequence_ = 0;
        session_start_ = true;
        decoder_.begin_day();
        for (uint32_t& m : map_) m = kUnmapped;
        hold_from_here(true);
        told_.clear();  // the new session's numbers name other messages
        if (engine_.feed_gap(stamp_, 0) != RunStatus::Ok) return halt();
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // A snapshot of the venue's books (GLIMPSE-style, docs/protocols.md "Snapshots": the
    // directory of its stocks, then an Add Order for every live order, oldest first), taken
    // before the feed's message `next_sequence`. After a gap the feed could not fill, it is how
    // the books become valid again. The decoder starts a new picture of the day (the snapshot's
    // locates and references), every book gets a BOOK_CLEAR and then the snapshot's orders, all
    // flagged kSnapshot and none observable. The feed is then taken from `next_sequence` on;
    // what is below is in the snapshot (dropped as duplicates). What the books had applied from
    // `next_sequence` on is applied again, not observable either, from the blocks held since
    // they went invalid (hold_block), so the venue is not asked for it; only when those do not
    // reach back to `next_sequence` (the snapshot is older than the gap, or more than
    // kHeldBytes came) does the core take the feed from `next_sequence` again, and the
    // receiver's rewind asks for what it applied since. Then the strategy is told once per
    // book, with the whole book as it now is (Engine::show_changed_books), as a backtest's
    // snapshot tells it: never a book half rebuilt, or one the held feed is about to move.
    // The trades of the feed taken while the books were invalid were told as they came
    // (on_trade does not wait for a valid book): applied again, continued or taken again (held
    // or not), they are not told twice (told_).
    RunStatus on_snapshot(const uint8_t* blocks, size_t len, uint64_t next_sequence,
                          int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.snapshots;
        if (settle() != RunStatus::Ok) return halt();
        decoder_.begin_day();
        for (uint32_t& m : map_) m = kUnmapped;
        const uint32_t books = static_cast<uint32_t>(engine_.market().instrument_count());
        for (uint32_t inst = 0; inst < books; ++inst) {
            if (flush_if_full(1) != RunStatus::Ok) return halt();
            put_book_clear(inst, flags::kSnapshot);
        }
        size_t pos = 0;
        while (pos + 2 <= len) {
            const size_t n = load_be16(blocks + pos);
            if (pos + 2 + n > len) break;  // framed by the caller: cannot happen
            const uint8_t* block = blocks + pos;
            pos += 2 + n;
            if (n == 0) continue;
            if (decode_unobserved(block, n, next_sequence, flags::kSnapshot) != RunStatus::Ok)
                return halt();
            ++counters_.snapshot_messages;
        }
        if (flush_events() != RunStatus::Ok) return halt();
        next_sequence_ = next_sequence;
        session_start_ = false;
        // What was told: taken while the books were invalid, now or before an earlier snapshot;
        // nothing below next_sequence comes again (dropped as duplicates).
        told_.unite(taken_invalid_);
        told_.drop_below(next_sequence);
        count_forgotten_runs();
        if (continue_from_held(next_sequence) != RunStatus::Ok) return halt();
        if (engine_.show_changed_books(stamp_) != RunStatus::Ok) return halt();
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    RunStatus on_feed_gap(uint64_t expected, int64_t stamp) noexcept {
        if (engine_.failed() != RunStatus::Ok) return engine_.failed();
        stamp_ = clamp(stamp);
        ++counters_.gaps;
        hold_from_here(false);
        if (engine_.feed_gap(stamp_, expected) != RunStatus::Ok) return halt();
        return settle() == RunStatus::Ok ? RunStatus::Ok : halt();
    }

    // ---- outputs ---------------------------------------------------------------------------

    // Moves the engine's decisions and execution records into the journal layouts (appended to
    // decisions() and executions()) and clears them from the engine; its samples stay.
    void pack_records() noexcept {
        const std::vector<DenialRecord>& d = engine_.decisions();
        const std::vector<ExecRecord>& x = engine_.exec_records();
        const size_t d0 = decisions_.size(), x0 = executions_.size();
        decisions_.resize(d0 + d.size() * kDecisionBytes);  // grows to the largest input's only
        executions_.resize(x0 + x.size() * kExecutionBytes);
        for (size_t k = 0; k < d.size(); ++k) pack_decision(d[k], decisions_.data() + d0 + k * kDecisionBytes);
        for (size_t k = 0; k < x.size(); ++k) pack_execution(x[k], executions_.data() + x0 + k * kExecutionBytes);
        engine_.clear_execution_records();
    }
    const std::vector<uint8_t>& decisions() const noexcept { return decisions_; }
    const std::vector<uint8_t>& executions() const noexcept { return executions_; }

    // Ends an applied input (both drivers, the Python session and the C++ loop, call it once
    // after each input the core applied, refused ones excepted): its records packed
    // (pack_records), then its outputs hashed for the digest in order: packed decisions, packed
    // execution records, dispatched OUCH bytes (the journal's payloads) and the PnL samples the
    // engine took (kSampleBytes each; they stay in the engine for the caller to move out).
    void end_input() noexcept {
        const size_t d0 = decisions_.size(), x0 = executions_.size();
        pack_records();
        outputs_hash_.update(decisions_.data() + d0, decisions_.size() - d0);
        outputs_hash_.update(executions_.data() + x0, executions_.size() - x0);
        outputs_hash_.update(venue_.outbound().data(), venue_.outbound().size());
        uint8_t packed[kSampleBytes];
        for (const PnlSample& s : engine_.samples()) {
            pack_sample(s, packed);
            outputs_hash_.update(packed, kSampleBytes);
        }
    }
    // SHA-256 of every output end_input() hashed so far.
    void outputs_digest(uint8_t out[Sha256::kDigestBytes]) const noexcept { outputs_hash_.digest(out); }

    void clear_packed() noexcept {
        decisions_.clear();
        executions_.clear();
    }

    // OUCH inbound messages to send, in dispatch order: [u16 big-endian length][message] each.
    const std::vector<uint8_t>& outbound() const noexcept { return venue_.outbound(); }
    void clear_outbound() noexcept { venue_.clear_outbound(); }
    void set_outbound_hook(OuchVenue::OutboundHook hook, void* context) noexcept {
        venue_.set_outbound_hook(hook, context);
    }

    const LiveCounters& counters() const noexcept { return counters_; }
    const itch::ItchDecoder& decoder() const noexcept { return decoder_; }
    uint64_t next_sequence() const noexcept { return next_sequence_; }
    int64_t stamp() const noexcept { return stamp_; }
    size_t live_orders() const noexcept { return venue_.live_orders(); }
    // OuchVenue::unanswered: orders waiting for an answer asked at or before `asked_by`.
    Unanswered unanswered(int64_t asked_by) const noexcept { return venue_.unanswered(asked_by); }
    Engine& engine() noexcept { return engine_; }

private:
    struct Stock {
        char name[9] = {};
        uint32_t multiplier = 1;
        // ceil(2^64 / multiplier) (0 for 1: prices are ticks already): a price divides by a
        // multiply, as an idiv per event was a tenth of the core's own walk over a datagram
        uint64_t reciprocal = 0;
        bool known = false;

        void set_multiplier(uint32_t m) noexcept {
            multiplier = m;
            reciprocal = m > 1 ? UINT64_MAX / m + 1 : 0;
        }
        // Price(4) -> ticks, truncated; *off_tick when the price is not a whole number of ticks.
        // The multiply is exact for prices below 2^32 (price x multiplier < 2^64), which is all a
        // Price(4) can be.
        int64_t ticks(int64_t price, bool* off_tick) const noexcept {
            if (multiplier == 1) {
                *off_tick = false;
                return price;
            }
            if (uint64_t(price) > UINT32_MAX) [[unlikely]] {
                *off_tick = price % multiplier != 0;
                return price / multiplier;
            }
            const auto wide = static_cast<unsigned __int128>(uint64_t(price)) * reciprocal;
            const int64_t q = int64_t(wide >> 64);
            *off_tick = q * int64_t(multiplier) != price;
            return q;
        }
    };

    // The strategy failed: trading stops here. Every order still open is cancelled (the Cancel
    // Orders go out with this input's dispatches); State stays as the failure left it.
    RunStatus halt() noexcept {
        venue_.cancel_all(stamp_);
        return engine_.failed();
    }

    int64_t clamp(int64_t stamp) const noexcept { return stamp < stamp_ ? stamp_ : stamp; }

    RunStatus apply_itch(const uint8_t* blocks, size_t len, uint64_t first_sequence,
                         int64_t stamp) noexcept {
        stamp_ = clamp(stamp);
        ++counters_.itch_inputs;
        prefetch(blocks, len);
        uint64_t seq = first_sequence;
        size_t pos = 0;
        while (pos + 2 <= len) {
            const size_t n = load_be16(blocks + pos);
            if (pos + 2 + n > len) break;  // the reader framed the blocks: cannot happen
            const uint8_t* block = blocks + pos;
            pos += 2 + n;
            if (seq < next_sequence_) {
                ++counters_.itch_duplicates;
                ++seq;
                continue;
            }
            if (seq > next_sequence_ && next_sequence_ != 0) counters_.itch_skipped += seq - next_sequence_;
            if (session_start_) {  // the first block taken of a new feed session
                session_start_ = false;
                if (seq == 1) {
                    if (flush_events() != RunStatus::Ok || engine_.feed_restart(stamp_) != RunStatus::Ok)
                        return engine_.failed();
                    stop_holding();  // the books are rebuilt from the new session's start
                }
            }
            next_sequence_ = seq + 1;
            if (invalid_) [[unlikely]] applied_while_invalid(seq, block, n);
            if (n == 0) {
                ++counters_.itch_empty_blocks;
                ++seq;
                continue;
            }
            // Each message is applied before the next is decoded: the one that moves the
            // strategy waits for no later one of its datagram.
            if (decode_block(block, 2 + n, seq) != RunStatus::Ok || flush_events() != RunStatus::Ok)
                return engine_.failed();
            ++counters_.itch_messages;
            ++seq;
        }
        if (flush_events() != RunStatus::Ok) return engine_.failed();
        return settle();
    }

    // What a datagram's messages will look up, asked for before any of them is decoded, in
    // two walks over its references: the table slots of the decoder's order map and of the
    // books, then (the slots there by now) the records they lead to. The books of a stock not
    // mapped yet are not asked.
    void prefetch(const uint8_t* blocks, size_t len) const noexcept {
        for (const bool near : {false, true}) {
            decoder_.for_each_reference(blocks, len, [&](uint8_t kind, uint16_t locate, uint64_t ref,
                                                         uint8_t side, int64_t price) {
                const uint32_t decoded = decoder_.instrument_of(locate);
                if (decoded >= map_.size() || map_[decoded] == kUnmapped) {
                    decoder_.prefetch(kind, ref, near);  // the decoder tracks its orders
                    return;
                }
                if (map_[decoded] == kNotOurs) return;  // no one does
                const uint32_t inst = map_[decoded];
                // Only an add whose side is known looks a level up by its price (in ticks).
                bool off_tick;
                if (side != 0) price = stocks_[inst].ticks(price, &off_tick);
                engine_.prefetch(inst, kind, side, price, ref, near);
            });
        }
    }

    // ---- the feed held while the books are invalid -----------------------------------------
    // From a gap given up (or a new feed session) until a snapshot, every block the core takes
    // is also kept, [u64 sequence][u16 n][message] each: the last run without a hole of what it
    // took (taken_invalid_'s last run; a hole starts the holding again). A snapshot taken before
    // some of them is continued with them (on_snapshot). At most kHeldBytes (set_held_bytes):
    // past that the run's held blocks are dropped (counted) and it is not held further, and a
    // snapshot from inside it takes the feed from its own sequence number again.
    static constexpr size_t kHeldBytes = size_t{64} << 20;
    static constexpr size_t kHeldHeader = 10;

    // The books went invalid (a gap given up, a new feed session), or a later gap came while
    // they were: what was taken since they went invalid is still remembered, and still held if
    // no hole follows (a snapshot may reach back past this gap), unless the feed's numbers start
    // over (`new_numbers`).
    // Holding starts with the first block taken (applied_while_invalid: a new run).
    void hold_from_here(bool new_numbers) noexcept {
        if (!invalid_ || new_numbers) {
            taken_invalid_.clear();
            held_.clear();
        }
        invalid_ = true;
    }
    // The books are valid again (a snapshot, or the new session's first message).
    void stop_holding() noexcept {
        held_.clear();
        holding_ = false;
        invalid_ = false;
    }

    // A block taken while the books are invalid: its trades are told now, so a snapshot later
    // does not tell them again (taken_invalid_), and it is held while there is room.
    void applied_while_invalid(uint64_t seq, const uint8_t* block, size_t n) noexcept {
        if (taken_invalid_.add(seq)) {  // a new run: the held blocks are the last run's
            count_forgotten_runs();
            held_.clear();
            holding_ = true;
        }
        if (holding_) hold_block(seq, block, n);
    }

    void count_forgotten_runs() noexcept {
        counters_.told_runs_forgotten = taken_invalid_.forgotten() + told_.forgotten();
    }

    void hold_block(uint64_t seq, const uint8_t* block, size_t n) noexcept {
        if (held_.size() + kHeldHeader + n > held_bytes_) {
            ++counters_.held_overflows;
            held_.clear();
            holding_ = false;  // the books stay invalid
            return;
        }
        const size_t at = held_.size();
        held_.resize(at + kHeldHeader + n);  // amortized growth, only while the books are invalid
        std::memcpy(held_.data() + at, &seq, 8);
        std::memcpy(held_.data() + at + 8, block, 2 + n);
    }

    // After a snapshot taken before feed message `from`: the held blocks from `from` on,
    // applied again at the snapshot's stamp, when the held run reaches back to `from`.
    RunStatus continue_from_held(uint64_t from) noexcept {
        const uint64_t held_last = taken_invalid_.last();
        if (!held_.empty() && taken_invalid_.last_first() <= from && from <= held_last) {
            for (size_t pos = 0; pos + kHeldHeader <= held_.size();) {
                uint64_t seq;
                std::memcpy(&seq, held_.data() + pos, 8);
                const uint8_t* block = held_.data() + pos + 8;
                const size_t n = load_be16(block);
                pos += kHeldHeader + n;
                if (seq < from || n == 0) continue;
                // Applied before the next is decoded: the decoder reads its orders from the books.
                if (decode_unobserved(block, n, seq, 0) != RunStatus::Ok || flush_events() != RunStatus::Ok)
                    return engine_.failed();
                ++counters_.snapshot_continued;
            }
            next_sequence_ = held_last + 1;
        }
        stop_holding();
        return RunStatus::Ok;
    }

    // Responses pushed by the input (or by the dispatches it caused: an order OUCH cannot carry
    // is answered at once) are applied at its stamp, with the timers due by then.
    RunStatus settle() noexcept { return engine_.advance_to(stamp_); }

    void reset_sink() noexcept {
        sink_.ev.ts_event = ts_event_.data();
        sink_.ev.ts_recv = ts_recv_.data();
        sink_.ev.seq = seq_.data();
        sink_.ev.instrument = instrument_.data();
        sink_.ev.kind = kind_.data();
        sink_.ev.side = side_.data();
        sink_.ev.flags = flags_.data();
        sink_.ev.price = price_.data();
        sink_.ev.qty = qty_.data();
        sink_.ev.order_id = order_id_.data();
        sink_.ev.size = 0;
        sink_.ev.capacity = kChunkEvents;
        sink_.event_record = event_record_.data();
        sink_.rec_file = rec_file_.data();
        sink_.rec_offset = rec_offset_.data();
        sink_.rec_length = rec_length_.data();
        sink_.rec_problem = rec_problem_.data();
        sink_.rec_size = 0;
        sink_.rec_capacity = kChunkEvents;
    }

    RunStatus decode_block(const uint8_t* block, size_t len, uint64_t seq) noexcept {
        for (int attempt = 0; attempt < 2; ++attempt) {
            const size_t first = sink_.ev.size;
            const size_t first_record = sink_.rec_size;
            size_t consumed = 0;
            const Status st = decoder_.feed(block, len, true, sink_, &consumed);
            for (size_t r = first_record; r < sink_.rec_size; ++r)
                if (sink_.rec_problem[r] != itch::kRuleOk) ++counters_.itch_problems;
            map_events(first, seq);
            if (st != Status::OutputFull || consumed == len) return RunStatus::Ok;
            if (flush_events() != RunStatus::Ok) return engine_.failed();
        }
        return RunStatus::Ok;
    }

    // The decoder's events [first, size) in the engine's terms, those of other stocks dropped,
    // and the trades of a message applied again whose trade the strategy was told when it
    // first came (told_).
    void map_events(size_t first, uint64_t seq) noexcept {
        EventColumns& e = sink_.ev;
        const bool told = told_.contains(seq);
        size_t out = first;
        for (size_t i = first; i < e.size; ++i) {
            const uint32_t inst = engine_instrument(e.instrument[i], e.kind[i], e.order_id[i]);
            if (inst == kUnmapped) {
                ++counters_.itch_unmapped;
                continue;
            }
            if (told && e.kind[i] == static_cast<uint8_t>(EventKind::Trade)) [[unlikely]] {
                ++counters_.trades_told_before;
                continue;
            }
            const Stock& s = stocks_[inst];
            bool off_tick;
            const int64_t price = s.ticks(e.price[i], &off_tick);
            counters_.off_tick += off_tick;
            e.ts_event[out] = e.ts_event[i];
            e.ts_recv[out] = stamp_;
            e.seq[out] = seq;
            e.instrument[out] = inst;
            e.kind[out] = e.kind[i];
            e.side[out] = e.side[i];
            e.flags[out] = e.flags[i];
            e.price[out] = price;
            e.qty[out] = e.qty[i];
            e.order_id[out] = e.order_id[i];
            ++out;
        }
        e.size = out;
    }

    // The engine instrument of a decoder instrument: the configured stock of its name. A phase of
    // the whole session concerns every instrument: it goes to the first.
    uint32_t engine_instrument(uint32_t decoded, uint8_t kind, uint64_t scope) noexcept {
        const uint32_t known = decoded < map_.size() ? map_[decoded] : kUnmapped;
        if (known < kNotOurs) return known;
        if (kind == static_cast<uint8_t>(EventKind::TradingPhase) && scope == kPhaseScopeSession)
            return stocks_.empty() ? kUnmapped : 0;
        if (known == kNotOurs || decoded >= decoder_.instrument_count()) return kUnmapped;
        if (decoded >= map_.size()) map_.resize(size_t{decoded} + 1, kUnmapped);  // once per stock
        const char* name = decoder_.instrument_symbol(decoded);
        if (name[0] == 0) return kUnmapped;  // no directory yet: resolved when it comes
        for (uint32_t k = 0; k < stocks_.size(); ++k) {
            if (stocks_[k].known && std::strcmp(stocks_[k].name, name) == 0) {
                map_[decoded] = k;
                return k;
            }
        }
        map_[decoded] = kNotOurs;  // a stock's first name is its name for the day
        return kUnmapped;
    }

    // itch::OrderSource: the engine's book keeps the orders of every stock of the session (each
    // an L3 book), from its first message after its directory names it; no one keeps those of a
    // named stock not of the session (its events are dropped). Called by the decoder while it
    // decodes a message, whose events reach the book before the next one is decoded.
    itch::OrderKeeper keeper(uint32_t decoded) noexcept override {
        const uint32_t inst = engine_instrument(decoded, 0, 0);
        if (inst != kUnmapped)
            return engine_.market().book_type(inst) == BookType::L3 ? itch::OrderKeeper::Source
                                                                    : itch::OrderKeeper::Decoder;
        return decoded < map_.size() && map_[decoded] == kNotOurs ? itch::OrderKeeper::Nobody
                                                                 : itch::OrderKeeper::Decoder;
    }

    bool find(uint32_t decoded, uint64_t ref, uint8_t* side, int64_t* price,
              int64_t* qty) const noexcept override {
        const uint32_t inst = map_[decoded];  // keeper(decoded) was Source for this message
        Side s;
        int64_t ticks;
        if (!engine_.market().l3(inst).order(ref, &s, &ticks, qty)) return false;
        *side = static_cast<uint8_t>(s);
        *price = ticks * stocks_[inst].multiplier;
        return true;
    }

    static constexpr size_t kEventsPerMessage = 4;  // the most one ITCH message decodes to

    // One block ([u16 n][message]) decoded with none of its events observable (kLast cleared,
    // `flag` set on each): the books change, and the strategy is told once, later
    // (Engine::show_changed_books). Room first, so that no event runs before its flags are set.
    RunStatus decode_unobserved(const uint8_t* block, size_t n, uint64_t seq, uint8_t flag) noexcept {
        if (flush_if_full(kEventsPerMessage) != RunStatus::Ok) return engine_.failed();
        const size_t first = sink_.ev.size;
        if (decode_block(block, 2 + n, seq) != RunStatus::Ok) return engine_.failed();
        EventColumns& e = sink_.ev;
        for (size_t i = first; i < e.size; ++i)
            e.flags[i] = static_cast<uint8_t>((e.flags[i] & ~flags::kLast) | flag);
        return RunStatus::Ok;
    }

    RunStatus flush_if_full(size_t room) noexcept {
        return sink_.ev.size + room > sink_.ev.capacity ? flush_events() : RunStatus::Ok;
    }

    void put_book_clear(uint32_t inst, uint8_t flag) noexcept {
        EventColumns& e = sink_.ev;
        const size_t i = e.size++;
        e.ts_event[i] = stamp_;
        e.ts_recv[i] = stamp_;
        e.seq[i] = 0;
        e.instrument[i] = inst;
        e.kind[i] = static_cast<uint8_t>(EventKind::BookClear);
        e.side[i] = 0;
        e.flags[i] = flag;
        e.price[i] = 0;
        e.qty[i] = 0;
        e.order_id[i] = 0;
    }

    // Runs the events decoded so far and empties the sink (its columns stay where reset_sink
    // put them: nothing else moves them, and this runs once per message).
    RunStatus flush_events() noexcept {
        const RunStatus st = sink_.ev.size == 0 ? RunStatus::Ok : engine_.run(sink_.ev);
        sink_.ev.size = 0;
        sink_.rec_size = 0;  // records of messages with no event too (a directory, a problem)
        return st == RunStatus::Ok ? st : engine_.failed();
    }

    Engine& engine_;
    int64_t day_start_;
    itch::ItchDecoder decoder_;
    OuchVenue venue_;
    LiveCounters counters_{};
    std::vector<Stock> stocks_;
    Sha256 outputs_hash_;
    // decoder instrument -> engine instrument; kUnmapped: not known yet (no directory), kNotOurs:
    // named, and no stock of the session
    std::vector<uint32_t> map_;
    std::vector<uint8_t> decisions_, executions_;  // packed records not yet taken
    uint64_t next_sequence_ = 0;  // 0: take the first block's
    bool session_start_ = false;  // a new feed session began: its first block not taken yet
    std::vector<uint8_t> held_;    // the feed held while the books are invalid (hold_block)
    bool holding_ = false;
    size_t held_bytes_ = kHeldBytes;
    // The feed messages taken since the books went invalid (their trades told as they came),
    // held or not; and those whose trades were told, from the last snapshot's number on.
    bool invalid_ = false;
    SequenceRuns taken_invalid_, told_;
    int64_t stamp_ = INT64_MIN;
    itch::Sink sink_{};
    std::vector<int64_t> ts_event_, ts_recv_, price_, qty_, event_record_, rec_offset_, rec_length_;
    std::vector<uint64_t> seq_, order_id_;
    std::vector<uint32_t> instrument_;
    std::vector<int32_t> rec_file_;
    std::vector<uint8_t> kind_, side_, flags_, rec_problem_;
};

}  // namespace lockstep::live
