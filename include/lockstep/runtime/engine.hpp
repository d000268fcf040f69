// The Core Runtime's processing chain, one step per event (docs/architecture.md):
//
//   Event -> State -> Strategy -> Risk -> Queue + Queue Processing -> Venue Adapter -> Venue
//              ^                                                                 |
//              +------------- execution events (acks, fills, cancels) ----------+
//
// Engine owns Market State (a Replayer), Execution State, Risk, the Intent queue and, for
// backtests, the Simulated Venue behind the VenueAdapter seam. Live (runtime/live.hpp), the same
// Engine drives an external VenueAdapter (use_venue) and is moved by what arrives: market events
// through run() with ts_recv = their receive stamp, venue responses through push_response(), the
// clock through advance_to(); docs/live.md. run() takes canonical market
// events in Processing Order; between two market events it works off, in time order, whatever is
// due: messages reaching the venue (venue clock <= the next event's ts_event), venue responses
// and timers reaching the core (core clock <= the next event's ts_recv). Ties go arrivals, then
// responses, then timers; among equals, creation order. So the merged stream is a total order
// that depends only on the events and the configuration.
//
// Strategies plug in as a table of C function pointers (StrategyHooks): the Cython layer points
// them at a Python object's methods (taking the GIL) or at a compiled cdef class (no GIL). A hook
// returning nonzero stops the run where it is; what was produced so far stays readable.
//
// Denials carry one RiskReason: the built-in checks of risk.hpp, Custom rules, and three the
// engine itself decides because they need State (unknown cancel/replace target, duplicate client
// order id, full queue).
//
// Hot paths are noexcept and allocation-free in steady state; record buffers grow with what a
// batch produces and are drained by the caller after each run().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/execution.hpp"
#include "lockstep/core/intents.hpp"
#include "lockstep/base/little_endian.hpp"
#include "lockstep/core/queue.hpp"
#include "lockstep/core/replay.hpp"
#include "lockstep/core/risk.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/venue/venue.hpp"

namespace lockstep {

// Which market events call the strategy, per instrument (bit set).
namespace subscribe {
constexpr uint8_t kBook = 1u << 0;    // every complete venue message that changed the book
constexpr uint8_t kTouch = 1u << 1;   // complete messages that changed the best bid or ask
constexpr uint8_t kTrades = 1u << 2;  // every trade print
}  // namespace subscribe

// An own-order update as a strategy sees it: the execution event plus the order after it.
struct OrderUpdate {
    int64_t ts_event = 0;
    int64_t ts_recv = 0;
    uint64_t order_id = 0;
    int64_t price = 0;       // the event's price (fill price, new price of a replace...)
    int64_t qty = 0;         // the event's qty (fill qty, canceled remainder, new total...)
    int64_t fee = 0;         // fills: ticks x lots x 1e-6
    int64_t filled_qty = 0;  // the order's cumulative fills after the event
    int64_t leaves_qty = 0;  // still open after the event (0 once terminal)
    uint32_t instrument = 0;
    EventKind kind{};
    Side side = Side::None;
    OrderStatus status{};    // after the event; 0 if Execution State does not know the order
    uint8_t reason = 0;      // MatchReject code of rejections
    bool maker = false;
};

class Engine;

// Nonzero return = the strategy failed; the run stops at once. The pointers are not noexcept
// in their type because Cython-generated functions cannot say so; they must not throw.
struct StrategyHooks {
    void* self = nullptr;
    int (*on_start)(void* self, Engine& ctx) = nullptr;
    int (*on_book)(void* self, Engine& ctx, uint32_t instrument) = nullptr;
    int (*on_trade)(void* self, Engine& ctx, uint32_t instrument, int64_t price, int64_t qty,
                    Side aggressor) = nullptr;
    int (*on_order)(void* self, Engine& ctx, const OrderUpdate& update) = nullptr;
    int (*on_timer)(void* self, Engine& ctx, uint64_t timer_id) = nullptr;
    int (*on_stop)(void* self, Engine& ctx) = nullptr;
};

// Custom risk rules (the slower, documented path): asked about submits and replaces the built-in
// checks allowed. Returns 0 to allow, 1 to deny (RiskReason::Custom), anything else = failure.
struct RiskHook {
    void* self = nullptr;
    int (*check)(void* self, const Intent& intent, const RiskView& view) = nullptr;
};

// One execution event, as recorded (the orders log; fills are its OrderFilled rows).
struct ExecRecord {
    int64_t ts_event = 0;
    int64_t ts_recv = 0;
    uint64_t order_id = 0;
    int64_t price = 0;
    int64_t qty = 0;
    int64_t fee = 0;
    uint32_t instrument = 0;
    uint8_t kind = 0;
    uint8_t side = 0;
    uint8_t flags = 0;
    uint8_t reason = 0;
};

struct DenialRecord {
    int64_t ts_recv = 0;
    Intent intent{};
    RiskReason reason = RiskReason::Allowed;
};

// State of one instrument at a sampling boundary. Money in ticks x lots (fees x 1e-6), as
// doubles: samples are for reports, never read back into State.
struct PnlSample {
    int64_t ts_recv = 0;
    uint32_t instrument = 0;
    int64_t position = 0;
    int64_t mid = 0;         // ticks; 0 with mid_known false
    bool mid_known = false;
    double realized = 0;
    double unrealized = 0;   // at mid (or the last known mid)
    double fees = 0;         // ticks x lots x 1e-6
};

enum class RunStatus : uint8_t {
    Ok = 0,
    StrategyFailed = 1,
    RiskHookFailed = 2,
    // More than kMaxStepsBetweenEvents arrivals/responses/timers between two market events: a
    // strategy answering every response with a new message at zero latency never lets time
    // move. Stopped rather than hung.
    Livelock = 3,
};

struct EngineCounters {
    uint64_t events = 0;          // market events applied
    uint64_t strategy_calls = 0;
    uint64_t intents = 0;
    uint64_t denied = 0;
    uint64_t orders = 0;          // orders dispatched (born)
    uint64_t cancels = 0;         // cancels dispatched
    uint64_t replaces = 0;        // replaces dispatched
    uint64_t responses = 0;       // venue responses applied
    uint64_t fills = 0;
    uint64_t state_errors = 0;    // responses Execution State refused (counted, never applied)
    uint64_t timers = 0;
};

class Engine {
public:
    static constexpr int64_t kNever = ResponseQueue::kNever;
    static constexpr size_t kDispatchBatch = 64;
    // Room for a batch of intents the queue fills, left uninitialized: the queue writes each one
    // it returns. An Intent[64] zeroes its 2.5 KB (a rep stos) on every dispatch, on the way to
    // the venue.
    union IntentBatch {
        IntentBatch() noexcept {}
        Intent at[kDispatchBatch];
    };
    static constexpr uint64_t kMaxStepsBetweenEvents = 10'000'000;

    explicit Engine(const std::vector<BookType>& book_types)
        : market_(book_types),
          subscriptions_(book_types.size(), 0),
          last_touch_(book_types.size()),
          last_mid_(book_types.size(), 0) {
        exec_.reserve(1024, static_cast<uint32_t>(book_types.size()));
        responses_.reserve(1024);
        exec_records_.reserve(1024);
    }
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // ---- configuration (not for the hot path) -------------------------------------------------

    RiskEngine& risk() noexcept { return risk_; }
    const RiskEngine& risk() const noexcept { return risk_; }
    Status configure_queue(const QueueConfig& c) noexcept { return queue_.configure(c); }
    Status configure_venue(const SimulatedVenueConfig& c) noexcept {
        const Status s = sim_.configure(c, market_, &responses_);
        if (s == Status::Ok) venue_ = &sim_;
        return s;
    }
    // The simulated venue's order-entry rules of an instrument, in data units (after
    // configure_venue). Risk holds its own copy (risk().set_order_rules): a venue enforces its
    // rules whatever Risk was told.
    Status set_venue_order_rules(uint32_t inst, const OrderRules& r) noexcept {
        if (inst >= market_.instrument_count()) return Status::UnknownInstrument;
        return sim_.set_order_rules(inst, r);
    }
    // Live: dispatches go to `venue` (which must outlive the engine) instead of the simulated
    // venue; its answers come back through push_response().
    void use_venue(VenueAdapter& venue) noexcept {
        venue_ = &venue;
        refresh_wake();
    }
    // Every intent with its verdict (RiskReason::Allowed for the ones queued) into decisions():
    // live sessions journal them. Off by default.
    void set_record_decisions(bool on) noexcept { record_decisions_ = on; }
    // Live: whether the venue's order-entry session is up (a journaled input of the live core).
    // While down, submits and replaces are denied OrderEntryDown.
    void set_order_entry_up(bool up) noexcept { order_entry_up_ = up; }
    bool order_entry_up() const noexcept { return order_entry_up_; }
    // PnL/position samples every interval_ns of core time (0: none but the first and last).
    void set_sample_interval(int64_t interval_ns) noexcept { sample_interval_ = interval_ns; }
    void set_strategy(const StrategyHooks& h) noexcept { hooks_ = h; }
    void set_risk_hook(const RiskHook& h) noexcept { risk_hook_ = h; }
    // Instruments whose samples are recorded (the traded ones); others are not sampled.
    void track(uint32_t instrument) {
        if (instrument < market_.instrument_count()) tracked_.push_back(instrument);
    }

    // ---- running -------------------------------------------------------------------------------

    // Applies market events in order, acting between them. Stops early, returning a failure,
    // when a hook fails; failed_position() then tells which event was being processed.
    RunStatus run(const EventColumns& ev) noexcept {
        if (failed_ != RunStatus::Ok) return failed_;
        const size_t n = ev.size;
        const uint32_t n_inst = static_cast<uint32_t>(market_.instrument_count());
        const bool simulated = venue_ == &sim_;
        for (size_t i = 0; i < n; ++i) {
            const int64_t t = ev.ts_recv[i];
            const int64_t e = ev.ts_event[i];
            if (t >= wake_recv_ || e >= wake_event_) [[unlikely]] {
                if (pump(t, e) != RunStatus::Ok) return failed_;
            }
            const uint32_t inst = ev.instrument[i];
            const uint8_t kind = ev.kind[i];
            if (simulated && inst < n_inst && sim_.watching(inst)) [[unlikely]] {
                if (sim_.on_market(inst, kind, ev.side[i], ev.price[i], ev.qty[i], ev.order_id[i],
                                   e, t - e))
                    refresh_wake();
            }
            const bool changed = market_.apply_event(inst, kind, ev.side[i], ev.flags[i],
                                                     ev.price[i], ev.qty[i], ev.order_id[i], t);
            ++counters_.events;
            if (inst < n_inst && subscriptions_[inst] != 0 &&
                (changed || kind == static_cast<uint8_t>(EventKind::Trade))) [[unlikely]] {
                if (notify(inst, kind, changed, ev, i, t, e) != RunStatus::Ok) return failed_;
            }
        }
        maybe_compact();
        return RunStatus::Ok;
    }

    // A hint that a market event (instrument, kind, side, price, order_id) comes soon, for a
    // caller that waits on each event (live: a datagram's few): the books start loading what it
    // will look up, in two stages (`near`: the table slots asked for earlier are there by now,
    // the records they lead to are next; Replayer::prefetch). Asked for all of a datagram's events
    // first, their cache misses overlap instead of following one another. A backtest's run()
    // does not ask: a look-ahead there cost more than it saved (measured: 6% of an L3
    // backtest). No effect on State.
    void prefetch(uint32_t instrument, uint8_t kind, uint8_t side, int64_t price,
                  uint64_t order_id, bool near) const noexcept {
        market_.prefetch(instrument, kind, side, price, order_id, near);
    }

    // End of data: the strategy's on_stop, then the last samples. Messages still travelling stay
    // in flight (reported, never matched): the data say nothing of what happened to them.
    RunStatus finish() noexcept {
        if (finished_) return failed_;
        finished_ = true;
        if (started_ && failed_ == RunStatus::Ok && hooks_.on_stop != nullptr) {
            if (hooks_.on_stop(hooks_.self, *this) != 0) fail(RunStatus::StrategyFailed);
            else dispatch_pending();
        }
        if (started_) sample(now_);
        return failed_;
    }

    // ---- live ----------------------------------------------------------------------------------

    // The core clock moves to ts (a receive stamp): what is due by then happens, in the order
    // run() would work it off before a market event received at ts (responses, then timers;
    // the first call starts the strategy).
    RunStatus advance_to(int64_t ts) noexcept {
        if (failed_ != RunStatus::Ok) return failed_;
        if (pump(ts, ts - feed_latency_) != RunStatus::Ok) return failed_;
        maybe_compact();
        return RunStatus::Ok;
    }

    // A venue response, applied when the core clock reaches r.ts_recv (advance_to or run()).
    void push_response(const VenueResponse& r) noexcept {
        responses_.push(r);
        refresh_wake();
    }
    ResponseQueue& response_queue() noexcept { return responses_; }

    // The kill switch went on or trading halted (Risk says so already): submits and replaces
    // still waiting in the queue (behind a rate limit or an in-flight cap) must not leave after
    // it. Each is withdrawn and denied `why`, as if asked now, and the strategy is told with an
    // on_order: ORDER_CANCELED of a submit (status Canceled, though it never was an Order:
    // nothing was dispatched), REPLACE_REJECTED of a replace (its order as State has it).
    RunStatus withdraw_queued(RiskReason why) noexcept {
        return withdraw(why, [](void*, const Intent&) noexcept { return true; });
    }

    // Trading went reduce-only: submits and replaces waiting in the queue that could grow a
    // position (Risk's reduce-only rule, judged now) are withdrawn and denied ReduceOnly as
    // withdraw_queued does; those that reduce one keep their place. Judged in arrival order, each
    // one kept counts as open for those after it: two queued sells of a long position's size
    // would take it short.
    RunStatus withdraw_growing() noexcept {
        return withdraw(RiskReason::ReduceOnly, &Engine::could_grow);
    }

    // The feed lost messages it will not get back: every instrument's book is invalid (a GAP
    // event each, as a backtest's data would carry) until a BOOK_CLEAR restores it. A subscribed
    // strategy is told with one on_book call per book that was valid: touch() and depth() then
    // show it empty, so a quoting strategy pulls its quotes rather than leave them on stale levels.
    RunStatus feed_gap(int64_t ts, uint64_t expected) noexcept {
        return mark_books(ts, EventKind::Gap, expected);
    }

    // The feed starts over from an empty market: a new session of a venue whose feed rebuilds
    // every book from its first message (an ITCH day). Every book gets a BOOK_CLEAR, the snapshot
    // of an empty book, so a book a GAP made invalid is valid again, empty, and the messages that
    // follow rebuild it. A subscribed strategy is told with one on_book call per book that was
    // invalid.
    RunStatus feed_restart(int64_t ts) noexcept {
        return mark_books(ts, EventKind::BookClear, 0);
    }

    // Books changed by events that no kLast made observable (a live snapshot and the feed it is
    // continued with) are observable now: at ts, the subscribed strategy is told once of each
    // that changed and is valid, as the end of a message would tell it.
    RunStatus show_changed_books(int64_t ts) noexcept {
        if (advance_to(ts) != RunStatus::Ok) return failed_;
        const uint32_t n = static_cast<uint32_t>(market_.instrument_count());
        for (uint32_t inst = 0; inst < n; ++inst) {
            if (!market_.end_message(inst) || subscriptions_[inst] == 0) continue;
            in_event_ = true;
            const RunStatus status = tell_book(inst);
            in_event_ = false;
            if (status != RunStatus::Ok) return failed_;
            dispatch_pending();
        }
        refresh_wake();
        return RunStatus::Ok;
    }

    // After a failure the strategy is never called again, but the venue still answers what left
    // before it (the cancels of a halt, fills crossing them). Those answers due by ts reach
    // Execution State (orders end, fills and positions count, execution records are written)
    // with no hook called, no timer fired and nothing dispatched. Before a failure: advance_to.
    RunStatus settle_after_failure(int64_t ts) noexcept {
        if (failed_ == RunStatus::Ok) return advance_to(ts);
        while (responses_.next_ts() <= ts) {
            const VenueResponse r = responses_.pop();
            sample_before(r.ts_recv);
            deliver(r);
        }
        maybe_compact();
        refresh_wake();
        return failed_;
    }

    RunStatus failed() const noexcept { return failed_; }
    uint64_t failed_position() const noexcept { return failed_position_; }
    int64_t failed_ts() const noexcept { return failed_ts_; }

    // ---- the strategy's context ----------------------------------------------------------------

    int64_t now() const noexcept { return now_; }
    uint32_t instrument_count() const noexcept {
        return static_cast<uint32_t>(market_.instrument_count());
    }
    void set_subscriptions(uint32_t instrument, uint8_t mask) noexcept {
        if (instrument < subscriptions_.size()) subscriptions_[instrument] = mask;
    }
    uint8_t subscriptions(uint32_t instrument) const noexcept {
        return instrument < subscriptions_.size() ? subscriptions_[instrument] : 0;
    }

    // Best bid/ask; a qty of 0 means that side is empty. False for an unknown instrument. An
    // invalid book (after a GAP, until a snapshot) shows both sides empty: never stale prices.
    bool touch(uint32_t inst, int64_t* bid_px, int64_t* bid_qty, int64_t* ask_px,
               int64_t* ask_qty) const noexcept {
        if (inst >= market_.instrument_count()) return false;
        if (!market_.book_valid(inst)) [[unlikely]] {
            *bid_px = *bid_qty = *ask_px = *ask_qty = 0;
            return true;
        }
        market_.touch(inst, bid_px, bid_qty, ask_px, ask_qty);
        return true;
    }
    // False from a GAP for the instrument until a BOOK_CLEAR (a snapshot) restores its book.
    bool book_valid(uint32_t inst) const noexcept {
        return inst < market_.instrument_count() && market_.book_valid(inst);
    }
    // The trading phase the venue last announced for the instrument (Unknown if none, or for an
    // unknown instrument); outside Continuous the simulated venue matches nothing.
    TradingPhase trading_phase(uint32_t inst) const noexcept {
        return inst < market_.instrument_count() ? market_.phase(inst) : TradingPhase::Unknown;
    }
    // Up to n best levels of one side, best first; returns how many were written.
    size_t depth(uint32_t inst, Side side, size_t n, int64_t* prices, int64_t* qtys) const noexcept {
        if (inst >= market_.instrument_count() || (side != Side::Bid && side != Side::Ask)) return 0;
        if (!market_.book_valid(inst)) [[unlikely]] return 0;
        return market_.book_type(inst) == BookType::L2 ? market_.l2(inst).top(side, n, prices, qtys)
                                                       : market_.l3(inst).top(side, n, prices, qtys);
    }
    // (bid + ask) / 2 rounded down, when both sides are present.
    bool mid(uint32_t inst, int64_t* out) const noexcept {
        int64_t bp, bq, ap, aq;
        if (!touch(inst, &bp, &bq, &ap, &aq) || bq == 0 || aq == 0) return false;
        *out = static_cast<int64_t>((static_cast<__int128>(bp) + ap) >> 1);
        return true;
    }
    int64_t position(uint32_t inst) const noexcept { return exec_.position(inst).position; }
    PositionView position_view(uint32_t inst) const noexcept { return exec_.position(inst); }
    // Unrealized PnL at the mid (or the last mid seen), ticks x lots.
    Wide unrealized(uint32_t inst) const noexcept {
        return exec_.unrealized_wide(inst, mark(inst));
    }
    uint32_t open_orders(uint32_t inst) const noexcept { return exec_.open_orders(inst); }
    const ExecutionState& execution() const noexcept { return exec_; }
    RiskReason last_denial() const noexcept { return last_denial_; }

    // Intents. Each is judged at once (Risk, then the queue); the return value is the client
    // order id (submits; 0 = denied, see last_denial()) or true when queued (cancel/replace).
    // A client_order_id of 0 asks the engine for a fresh one. Dispatch happens after the hook
    // returns, so cancels emitted in the same step still go first.
    uint64_t submit_limit(uint32_t inst, Side side, int64_t price, int64_t qty, TimeInForce tif,
                          uint64_t client_order_id = 0) noexcept {
        Intent in;
        in.instrument = inst;
        in.kind = IntentKind::SubmitLimit;
        in.side = side;
        in.tif = tif;
        in.price = price;
        in.qty = qty;
        in.client_order_id = client_order_id;
        return submit(in);
    }
    uint64_t submit_market(uint32_t inst, Side side, int64_t qty,
                           uint64_t client_order_id = 0) noexcept {
        Intent in;
        in.instrument = inst;
        in.kind = IntentKind::SubmitMarket;
        in.side = side;
        in.tif = TimeInForce::IOC;
        in.qty = qty;
        in.client_order_id = client_order_id;
        return submit(in);
    }
    bool cancel(uint64_t order_id) noexcept {
        Intent in;
        in.kind = IntentKind::Cancel;
        in.target_order_id = order_id;
        return amend(in);
    }
    // `qty` is the new total quantity, filled lots included (FIX OrderQty).
    bool replace(uint64_t order_id, int64_t price, int64_t qty) noexcept {
        Intent in;
        in.kind = IntentKind::Replace;
        in.target_order_id = order_id;
        in.price = price;
        in.qty = qty;
        return amend(in);
    }
    // A one-shot timer at core time ts (not before now); on_timer gets timer_id.
    void set_timer(int64_t ts, uint64_t timer_id) noexcept {
        timers_.push_back(Timer{ts < now_ ? now_ : ts, timer_seq_++, timer_id});
        std::push_heap(timers_.begin(), timers_.end(), Timer::later);
        refresh_wake();
    }

    // ---- records (drained by the caller after each run) -----------------------------------------

    const std::vector<ExecRecord>& exec_records() const noexcept { return exec_records_; }
    const std::vector<DenialRecord>& denials() const noexcept { return denials_; }
    const std::vector<PnlSample>& samples() const noexcept { return samples_; }
    const std::vector<DenialRecord>& decisions() const noexcept { return decisions_; }
    void clear_records() noexcept {
        clear_execution_records();
        samples_.clear();
    }
    // Everything but the samples: what a live session journals after each input.
    void clear_execution_records() noexcept {
        exec_records_.clear();
        denials_.clear();
        decisions_.clear();
    }

    const Replayer& market() const noexcept { return market_; }
    const IntentQueue& queue() const noexcept { return queue_; }
    const SimulatedVenue& venue() const noexcept { return sim_; }
    const EngineCounters& counters() const noexcept { return counters_; }
    size_t responses_in_flight() const noexcept { return responses_.size(); }

    // Execution-side State for the digest (docs/backtest.md "Digest"): little-endian, fixed
    // order. Market State is the Replayer's own serialization.
    std::string serialize_state() const {
        std::string out;
        put_le(out, uint64_t{0x4c4b5354455845ull});  // "EXETSKL" tag, v1
        put_le(out, static_cast<uint64_t>(market_.instrument_count()));
        for (uint32_t i = 0; i < market_.instrument_count(); ++i) {
            const PositionView p = exec_.position(i);
            put_le(out, p.position);
            put_wide(out, p.cost);
            put_wide(out, p.realized);
            put_wide(out, p.fees);
        }
        put_le(out, static_cast<uint64_t>(exec_.order_count()));
        for (uint32_t s = 0; s < exec_.order_count(); ++s) {
            if (is_terminal(exec_.status(s))) continue;
            put_le(out, exec_.client_order_id(s));
            put_le(out, static_cast<uint64_t>(exec_.instrument(s)));
            put_le(out, static_cast<uint64_t>(exec_.side(s)));
            put_le(out, exec_.price(s));
            put_le(out, exec_.qty(s));
            put_le(out, exec_.filled_qty(s));
            put_le(out, static_cast<uint64_t>(exec_.status(s)));
        }
        for (size_t r = 0; r < kRiskReasonCount; ++r) put_le(out, risk_.count(static_cast<RiskReason>(r)));
        const QueueCounters& q = queue_.counters();
        for (uint64_t v : {q.pushed, q.dispatched, q.canceled_before_dispatch, q.replaces_dropped,
                           q.rejected_full, q.rejected_bad_instrument})
            put_le(out, v);
        const EngineCounters& c = counters_;
        for (uint64_t v : {c.events, c.intents, c.denied, c.orders, c.cancels, c.replaces,
                           c.responses, c.fills, c.state_errors, c.timers})
            put_le(out, v);
        return out;
    }

private:
    struct Timer {
        int64_t ts;
        uint64_t seq;
        uint64_t id;
        static bool later(const Timer& a, const Timer& b) noexcept {
            return a.ts != b.ts ? a.ts > b.ts : a.seq > b.seq;
        }
    };

    // Everything due before the market event at (t, e), in time order.
    RunStatus pump(int64_t t, int64_t e) noexcept {
        feed_latency_ = t - e;
        if (!started_) [[unlikely]] {
            started_ = true;
            now_ = t;
            sample_at_ = sample_interval_ > 0 ? (t / sample_interval_ + 1) * sample_interval_ : kNever;
            sample(t);
            if (hooks_.on_start != nullptr) {
                if (call_guard(hooks_.on_start(hooks_.self, *this))) return failed_;
                dispatch_pending();
            }
        }
        for (uint64_t steps = 0;; ++steps) {
            if (steps == kMaxStepsBetweenEvents) [[unlikely]] {
                fail(RunStatus::Livelock);
                return failed_;
            }
            const int64_t a = venue_ == &sim_ ? sim_.next_arrival() : kNever;
            const int64_t r = responses_.next_ts();
            const int64_t tm = timers_.empty() ? kNever : timers_.front().ts;
            const bool a_due = a <= e;
            const bool r_due = r <= t;
            const bool tm_due = tm <= t;
            if (!a_due && !r_due && !tm_due) break;
            if (a_due && (!r_due || a <= r) && (!tm_due || a <= tm)) {
                sim_.process_next_arrival(feed_latency_);  // venue side: no State changes here
            } else if (r_due && (!tm_due || r <= tm)) {
                sample_before(r);
                if (deliver(responses_.pop()) != RunStatus::Ok) return failed_;
            } else {
                sample_before(tm);
                std::pop_heap(timers_.begin(), timers_.end(), Timer::later);
                const Timer tmr = timers_.back();
                timers_.pop_back();
                advance(tmr.ts);
                ++counters_.timers;
                if (hooks_.on_timer != nullptr) {
                    ++counters_.strategy_calls;
                    if (call_guard(hooks_.on_timer(hooks_.self, *this, tmr.id))) return failed_;
                }
                dispatch_pending();
            }
        }
        sample_before(t);
        advance(t);
        dispatch_pending();  // work deferred by the rate limit gets another chance at every event
        refresh_wake();
        return RunStatus::Ok;
    }

    // One control event on every book at ts (a GAP, or the BOOK_CLEAR of a feed restart), the
    // subscribed strategy told once for each book whose validity the event changed.
    RunStatus mark_books(int64_t ts, EventKind kind, uint64_t order_id) noexcept {
        if (advance_to(ts) != RunStatus::Ok) return failed_;
        const uint32_t n = static_cast<uint32_t>(market_.instrument_count());
        for (uint32_t inst = 0; inst < n; ++inst) {
            const bool was_valid = market_.book_valid(inst);
            market_.apply_event(inst, static_cast<uint8_t>(kind), 0, flags::kLast, 0, 0, order_id,
                                now_);
            ++counters_.events;
            if (market_.book_valid(inst) == was_valid || subscriptions_[inst] == 0 ||
                hooks_.on_book == nullptr)
                continue;
            ++counters_.strategy_calls;
            in_event_ = true;
            const bool failed = call_guard(hooks_.on_book(hooks_.self, *this, inst));
            in_event_ = false;
            if (failed) return failed_;
            dispatch_pending();
        }
        refresh_wake();
        return RunStatus::Ok;
    }

    RunStatus notify(uint32_t inst, uint8_t kind, bool changed, const EventColumns& ev, size_t i,
                     int64_t t, int64_t e) noexcept {
        advance(t);
        feed_latency_ = t - e;
        in_event_ = true;
        const RunStatus status = notify_strategy(inst, kind, changed, ev, i);
        in_event_ = false;
        return status;
    }

    // on_book of a book that changed, when its subscription asks for it. An invalid book is not
    // observable: on_book resumes after the snapshot that restores it.
    RunStatus tell_book(uint32_t inst) noexcept {
        if (hooks_.on_book == nullptr || !market_.book_valid(inst)) return RunStatus::Ok;
        const uint8_t sub = subscriptions_[inst];
        bool call = (sub & subscribe::kBook) != 0;
        if (!call && (sub & subscribe::kTouch) != 0) {
            Touch now;
            market_.touch(inst, &now.bid_px, &now.bid_qty, &now.ask_px, &now.ask_qty);
            call = !(now == last_touch_[inst]);
            last_touch_[inst] = now;
        }
        if (call) {
            ++counters_.strategy_calls;
            if (call_guard(hooks_.on_book(hooks_.self, *this, inst))) return failed_;
        }
        return RunStatus::Ok;
    }

    RunStatus notify_strategy(uint32_t inst, uint8_t kind, bool changed, const EventColumns& ev,
                              size_t i) noexcept {
        const uint8_t sub = subscriptions_[inst];
        if (changed && tell_book(inst) != RunStatus::Ok) return failed_;
        if (kind == static_cast<uint8_t>(EventKind::Trade) && (sub & subscribe::kTrades) != 0 &&
            hooks_.on_trade != nullptr) {
            ++counters_.strategy_calls;
            if (call_guard(hooks_.on_trade(hooks_.self, *this, inst, ev.price[i], ev.qty[i],
                                           static_cast<Side>(ev.side[i]))))
                return failed_;
        }
        dispatch_pending();
        refresh_wake();
        return RunStatus::Ok;
    }

    RunStatus deliver(const VenueResponse& r) noexcept {
        advance(r.ts_recv);
        ++counters_.responses;
        ExecResult x = ExecResult::Ok;
        bool frees_slot = true;
        switch (r.kind) {
            case EventKind::OrderAccepted: x = exec_.on_accepted(r.order_id, now_); break;
            case EventKind::OrderRejected: x = exec_.on_rejected(r.order_id, now_); break;
            case EventKind::OrderFilled:
                ++counters_.fills;
                frees_slot = false;
                x = exec_.on_fill(r.order_id, r.price, r.qty, r.fee,
                                  (r.flags & flags::kMaker) != 0, now_);
                break;
            case EventKind::OrderCanceled: x = exec_.on_canceled(r.order_id, now_); break;
            case EventKind::OrderExpired:
                frees_slot = false;
                x = exec_.on_expired(r.order_id, now_);
                break;
            case EventKind::OrderReplaced:
                x = exec_.on_replaced(r.order_id, r.price, r.qty, now_);
                break;
            case EventKind::TradeBroken:  // the venue's correction of a past fill: no slot
                frees_slot = false;
                x = exec_.on_trade_broken(r.instrument, r.side, r.price, r.qty, r.fee);
                break;
            case EventKind::TradeCorrected:
                frees_slot = false;
                x = exec_.on_trade_corrected(r.instrument, r.side, r.prior_price, r.price, r.qty,
                                             r.fee);
                break;
            default: break;  // CancelRejected / ReplaceRejected change no order
        }
        if (x != ExecResult::Ok) ++counters_.state_errors;
        if (frees_slot) queue_.on_response(r.instrument);
        record(r.ts_event, r.instrument, r.kind, r.side, r.flags, r.reason, r.price, r.qty,
               r.order_id, r.fee);
        if (failed_ != RunStatus::Ok) return failed_;  // settle_after_failure: State only
        if (hooks_.on_order != nullptr) {
            OrderUpdate u;
            u.ts_event = r.ts_event;
            u.ts_recv = now_;
            u.order_id = r.order_id;
            u.price = r.price;
            u.qty = r.qty;
            u.fee = r.fee;
            u.instrument = r.instrument;
            u.kind = r.kind;
            u.side = r.side;
            u.reason = r.reason;
            u.maker = (r.flags & flags::kMaker) != 0;
            order_state(u);
            ++counters_.strategy_calls;
            if (call_guard(hooks_.on_order(hooks_.self, *this, u))) return failed_;
        }
        dispatch_pending();
        return RunStatus::Ok;
    }

    uint64_t submit(Intent in) noexcept {
        ++counters_.intents;
        if (in.client_order_id == 0) {
            do {
                in.client_order_id = next_order_id_++;
            } while (id_in_use(in.client_order_id));
        } else if (id_in_use(in.client_order_id)) {
            deny(in, RiskReason::DuplicateOrderId);
            return 0;
        }
        return judge_and_queue(in) ? in.client_order_id : 0;
    }

    bool amend(Intent in) noexcept {
        ++counters_.intents;
        // The target's instrument, side and tif come from State (or from its pending submit).
        const uint32_t s = exec_.slot(in.target_order_id);
        Intent pending;
        if (s != ExecutionState::kNoSlot && !is_terminal(exec_.status(s))) {
            in.instrument = exec_.instrument(s);
            in.side = exec_.side(s);
            in.tif = exec_.tif(s);
        } else if (queue_.pending_submit(in.target_order_id, &pending)) {
            in.instrument = pending.instrument;
            in.side = pending.side;
            in.tif = pending.tif;
        } else {
            deny(in, RiskReason::UnknownOrder);
            return false;
        }
        if (in.kind == IntentKind::Cancel) in.client_order_id = in.target_order_id;
        return judge_and_queue(in);
    }

    bool judge_and_queue(const Intent& in) noexcept {
        RiskView view;
        int64_t m = 0;
        const bool mid_known = in.instrument < market_.instrument_count() && mid(in.instrument, &m);
        exec_.fill_risk_view(in.instrument, mid_known, m, &view);
        RiskReason r = risk_.evaluate(in, view, now_);
        // Live: nothing new may leave while the venue cannot be told; cancels still pass (the
        // venue adapter holds them until the session is back).
        if (r == RiskReason::Allowed && !order_entry_up_ && in.kind != IntentKind::Cancel)
            r = RiskReason::OrderEntryDown;
        if (r == RiskReason::Allowed && in.kind != IntentKind::Cancel && risk_hook_.check) {
            const int verdict = risk_hook_.check(risk_hook_.self, in, view);
            if (verdict == 1) {
                r = RiskReason::Custom;
            } else if (verdict != 0) {
                fail(RunStatus::RiskHookFailed);
                return false;
            }
        }
        if (r != RiskReason::Allowed) {
            risk_.record(in, r, now_);
            deny(in, r, /*counted_by_risk=*/true);
            return false;
        }
        // Queued before Risk records the verdict: an intent the queue refuses is denied
        // queue_full and, like every denial, takes no rate token.
        const QueueResult q = queue_.push(in, now_);
        if (q == QueueResult::Full || q == QueueResult::BadInstrument) {
            deny(in, RiskReason::QueueFull);
            return false;
        }
        risk_.record(in, r, now_);
        if (record_decisions_) decisions_.push_back(DenialRecord{now_, in, r});
        if (queue_.pending() != 0) wake_recv_ = kNeverBefore;
        return true;
    }

    // The order's status, fills and open qty after the update, as Execution State has them
    // (left 0 when it does not know the order).
    void order_state(OrderUpdate& u) const noexcept {
        const uint32_t s = exec_.slot(u.order_id);
        if (s == ExecutionState::kNoSlot) return;
        u.status = exec_.status(s);
        u.filled_qty = exec_.filled_qty(s);
        u.leaves_qty = is_terminal(u.status) ? 0 : exec_.qty(s) - u.filled_qty;
    }

    // What `take` picks of the queue's submits and replaces, withdrawn, denied `why`, the
    // strategy told (withdraw_queued).
    RunStatus withdraw(RiskReason why, IntentQueue::Take take) noexcept {
        if (failed_ != RunStatus::Ok) return failed_;
        IntentBatch out;
        for (;;) {
            // Each withdraw_if walks the queue from its start: what could_grow keeps is counted
            // afresh.
            kept_count_ = 0;
            const size_t n = queue_.withdraw_if(take, this, out.at, kDispatchBatch);
            if (n == 0) break;
            for (size_t k = 0; k < n; ++k) {
                deny(out.at[k], why);
                if (tell_withdrawn(out.at[k]) != RunStatus::Ok) return failed_;
            }
        }
        dispatch_pending();
        return failed_;
    }

    // withdraw_growing's judge: Risk's reduce-only rule with the open orders and the queued ones
    // kept before this one. Kept quantities are summed per instrument and side in a fixed table;
    // an intent that would need a row more than it has is withdrawn (the safe way to be wrong).
    static bool could_grow(void* self, const Intent& in) noexcept {
        Engine& e = *static_cast<Engine*>(self);
        RiskView view;
        e.exec_.fill_risk_view(in.instrument, false, 0, &view);
        size_t row = 0;
        while (row < e.kept_count_ &&
               (e.kept_[row].instrument != in.instrument || e.kept_[row].side != in.side))
            ++row;
        const __int128 kept = row < e.kept_count_ ? e.kept_[row].qty : 0;
        if (RiskEngine::could_grow_position(in, view, kept)) return true;
        if (row == e.kept_count_) {
            if (row == kKeptRows) return true;
            e.kept_[e.kept_count_++] = Kept{in.instrument, in.side, 0};
        }
        e.kept_[row].qty += in.qty;
        return false;
    }

    RunStatus tell_withdrawn(const Intent& in) noexcept {
        if (hooks_.on_order == nullptr) return RunStatus::Ok;
        const bool submit = is_submit(in.kind);
        OrderUpdate u;
        u.ts_event = now_;
        u.ts_recv = now_;
        u.order_id = submit ? in.client_order_id : in.target_order_id;
        u.price = in.price;
        u.qty = in.qty;
        u.instrument = in.instrument;
        u.side = in.side;
        if (submit) {
            u.kind = EventKind::OrderCanceled;
            u.status = OrderStatus::Canceled;
        } else {
            u.kind = EventKind::ReplaceRejected;
            order_state(u);
        }
        ++counters_.strategy_calls;
        return call_guard(hooks_.on_order(hooks_.self, *this, u)) ? failed_ : RunStatus::Ok;
    }

    void deny(const Intent& in, RiskReason r, bool counted_by_risk = false) noexcept {
        if (!counted_by_risk) risk_.record(in, r, now_);
        ++counters_.denied;
        last_denial_ = r;
        denials_.push_back(DenialRecord{now_, in, r});
        if (record_decisions_) decisions_.push_back(DenialRecord{now_, in, r});
    }

    bool id_in_use(uint64_t id) const noexcept {
        Intent ignored;
        return exec_.slot(id) != ExecutionState::kNoSlot || queue_.pending_submit(id, &ignored);
    }

    void dispatch_pending() noexcept {
        if (queue_.pending() == 0 || venue_ == nullptr) return;
        IntentBatch out;
        for (;;) {
            const size_t n = queue_.dispatch(now_, out.at, kDispatchBatch);
            for (size_t k = 0; k < n; ++k) send(out.at[k]);
            if (n < kDispatchBatch) break;
        }
        venue_->end_batch();
    }

    void send(const Intent& in) noexcept {
        switch (in.kind) {
            case IntentKind::SubmitLimit:
            case IntentKind::SubmitMarket:
                if (exec_.submit(in, now_) != ExecResult::Ok) {  // pre-checked: a bug if hit
                    ++counters_.state_errors;
                    queue_.on_response(in.instrument);
                    return;
                }
                ++counters_.orders;
                record(now_, in.instrument, EventKind::OrderSubmitted, in.side, 0, 0,
                       in.kind == IntentKind::SubmitMarket ? 0 : in.price, in.qty,
                       in.client_order_id, 0);
                break;
            case IntentKind::Cancel:
                ++counters_.cancels;
                record(now_, in.instrument, EventKind::CancelSubmitted, in.side, 0, 0, 0, 0,
                       in.target_order_id, 0);
                break;
            case IntentKind::Replace:
                ++counters_.replaces;
                record(now_, in.instrument, EventKind::ReplaceSubmitted, in.side, 0, 0, in.price,
                       in.qty, in.target_order_id, 0);
                break;
        }
        venue_->send(in, now_, feed_latency_);
    }

    void record(int64_t ts_event, uint32_t inst, EventKind kind, Side side, uint8_t flag,
                uint8_t reason, int64_t price, int64_t qty, uint64_t id, int64_t fee) noexcept {
        exec_records_.push_back(ExecRecord{.ts_event = ts_event, .ts_recv = now_, .order_id = id,
                                           .price = price, .qty = qty, .fee = fee,
                                           .instrument = inst,
                                           .kind = static_cast<uint8_t>(kind),
                                           .side = static_cast<uint8_t>(side),
                                           .flags = flag, .reason = reason});
    }

    int64_t mark(uint32_t inst) const noexcept {
        int64_t m;
        return mid(inst, &m) ? m : (inst < last_mid_.size() ? last_mid_[inst] : 0);
    }

    void sample(int64_t ts) noexcept {
        for (uint32_t inst : tracked_) {
            PnlSample s;
            s.ts_recv = ts;
            s.instrument = inst;
            s.mid_known = mid(inst, &s.mid);
            if (s.mid_known) last_mid_[inst] = s.mid;
            const PositionView p = exec_.position(inst);
            s.position = p.position;
            s.realized = to_double(p.realized);
            s.fees = to_double(p.fees);
            s.unrealized = last_mid_[inst] != 0 || s.mid_known
                               ? to_double(exec_.unrealized_wide(inst, last_mid_[inst]))
                               : 0.0;
            if (!s.mid_known) s.mid = 0;
            samples_.push_back(s);
        }
    }

    // State is about to change at core time x: if a sampling boundary passed since the last
    // change, sample State as it stood there. One sample per boundary crossed by something that
    // happens: a quiet hour gives one row, not 3600.
    void sample_before(int64_t x) noexcept {
        if (x < sample_at_) return;
        const int64_t boundary = x / sample_interval_ * sample_interval_;
        sample(boundary);
        sample_at_ = boundary + sample_interval_;
    }

    void advance(int64_t ts) noexcept {
        if (ts > now_) now_ = ts;
    }

    bool call_guard(int rc) noexcept {
        if (rc == 0) return false;
        fail(RunStatus::StrategyFailed);
        return true;
    }

    void fail(RunStatus s) noexcept {
        if (failed_ != RunStatus::Ok) return;
        failed_ = s;
        // In notify() the event was applied already; elsewhere the next event is the one due.
        failed_position_ = market_.events_applied() - (in_event_ ? 1 : 0);
        failed_ts_ = now_;
    }

    void refresh_wake() noexcept {
        if (queue_.pending() != 0) {
            wake_recv_ = kNeverBefore;
        } else {
            int64_t w = responses_.next_ts();
            if (!timers_.empty() && timers_.front().ts < w) w = timers_.front().ts;
            if (sample_at_ < w) w = sample_at_;
            wake_recv_ = w;
        }
        wake_event_ = venue_ == &sim_ ? sim_.next_arrival() : kNever;
    }

    // Terminal orders are history (already in the records): dropping them keeps memory flat
    // however long the run.
    void maybe_compact() noexcept {
        const size_t terminal = exec_.order_count() - exec_.open_orders_total();
        if (terminal >= 4096 && terminal > 4 * exec_.open_orders_total()) exec_.compact();
    }

    static void put_wide(std::string& out, Wide w) {
        put_le(out, w.lo);
        put_le(out, w.hi);
    }

    struct Touch {
        int64_t bid_px = 0, bid_qty = 0, ask_px = 0, ask_qty = 0;
        bool operator==(const Touch& o) const noexcept {
            return bid_px == o.bid_px && bid_qty == o.bid_qty && ask_px == o.ask_px &&
                   ask_qty == o.ask_qty;
        }
    };

    static constexpr int64_t kNeverBefore = INT64_MIN;

    Replayer market_;
    ExecutionState exec_;
    RiskEngine risk_;
    IntentQueue queue_;
    struct Kept {
        uint32_t instrument;
        Side side;
        __int128 qty;
    };
    static constexpr size_t kKeptRows = 64;
    Kept kept_[kKeptRows] = {};  // withdraw_growing: what it kept, by instrument and side
    size_t kept_count_ = 0;
    ResponseQueue responses_;
    SimulatedVenue sim_;
    VenueAdapter* venue_ = nullptr;
    StrategyHooks hooks_{};
    RiskHook risk_hook_{};
    std::vector<uint8_t> subscriptions_;
    std::vector<Touch> last_touch_;
    std::vector<int64_t> last_mid_;
    std::vector<uint32_t> tracked_;
    std::vector<Timer> timers_;
    uint64_t timer_seq_ = 0;
    std::vector<ExecRecord> exec_records_;
    std::vector<DenialRecord> denials_;
    std::vector<DenialRecord> decisions_;  // live: every intent's verdict (set_record_decisions)
    std::vector<PnlSample> samples_;
    EngineCounters counters_{};
    RiskReason last_denial_ = RiskReason::Allowed;
    uint64_t next_order_id_ = 1;
    int64_t now_ = 0;
    int64_t feed_latency_ = 0;
    int64_t sample_interval_ = 0;
    int64_t sample_at_ = kNever;
    int64_t wake_recv_ = kNeverBefore;  // the first event starts the strategy
    int64_t wake_event_ = kNever;
    bool started_ = false;
    bool finished_ = false;
    bool in_event_ = false;
    bool record_decisions_ = false;
    bool order_entry_up_ = true;
    RunStatus failed_ = RunStatus::Ok;
    uint64_t failed_position_ = 0;
    int64_t failed_ts_ = 0;
};

}  // namespace lockstep
