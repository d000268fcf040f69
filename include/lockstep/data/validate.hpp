// Validation of normalized records: decides, record by record, what is promoted to canonical data
// and what goes to quarantine, and under which rule (rules.hpp; docs/data.md is normative).
//
// Input is a decoder's chunk: canonical events, the record each event came from, and the records'
// own problems as the decoder saw them. The validator keeps the books (a Replayer) so it can judge
// what only a book can tell (crossed after a complete message, an unknown order reference).
//
// Decisions are per record, never per event: a venue message is promoted whole or not at all.
// - A record the decoder marked keeps the decoder's rule.
// - Otherwise its events are checked in order; the first rule whose action is Quarantine decides.
//   Rules with action Warn are counted (first positions kept) and the record stays.
// - A quarantined record that touched a book (book events, a GAP, or a book anomaly found while
//   applying it) makes that book invalid: a GAP marker is emitted into the canonical output there
//   (docs/encoding.md, kind 64), and every later book record of that instrument is quarantined
//   under the same rule, pointing at the record that caused it, until a BOOK_CLEAR (a snapshot)
//   restores the book. Trades and the venue's BBO keep flowing: they do not depend on our book.
//   Each invalidation starts a new segment of the output.
// - ts_recv must not decrease along what is promoted (Processing Order); a record that would break
//   that is quarantined whatever the action of ts_recv_backwards, which governs only events that
//   a decoder already raised (flag BAD_TS_RECV).
// - A decoder-marked record never invalidates a book by itself: formats with sequence ids see the
//   consequence as a gap on the next message; formats without cannot tell which book it was for.
// - A crossed book after a complete message is judged by the instrument's trading phase (the
//   TradingPhase events, ValidatorConfig::session_phase before any): nothing outside continuous
//   trading (orders rest crossed in pre-open, auctions, halts), CrossedBook in continuous trading,
//   CrossedBookPhaseUnknown while no phase is known (by default a warning: the book stays valid).
//
// Hot path: one pass over the events, no allocation per event (outputs are caller buffers; the
// marker list grows only on invalidations, which are rare by nature).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/replay.hpp"
#include "lockstep/core/rules.hpp"

namespace lockstep {

enum class RuleAction : uint8_t { Off = 0, Warn = 1, Quarantine = 2 };

struct ValidatorConfig {
    std::vector<BookType> book_types;         // per instrument
    std::vector<uint8_t> requires_snapshot;   // per instrument: L2 deltas need a snapshot first
    std::array<RuleAction, kRuleCount> action{};
    int64_t min_feed_latency_ns = 0;          // ts_recv - ts_event below this: feed_latency
    int64_t max_feed_latency_ns = 60'000'000'000;
    // The session's phase until a TradingPhase event says otherwise: Continuous for venues that
    // trade around the clock (a crossed book is then an error from the first message on),
    // Unknown for venues that announce their phases.
    TradingPhase session_phase = TradingPhase::Unknown;
};

// Per-record verdicts of one chunk, written into caller buffers of n_records entries.
struct RecordVerdicts {
    uint8_t* rule = nullptr;          // Rule: Ok = promoted
    uint8_t* warn = nullptr;          // first warned Rule of a promoted record, Ok if none
    int64_t* cause = nullptr;         // quarantined: the record whose failure invalidated the book, else -1
    uint32_t* instrument = nullptr;   // the instrument concerned (0 when none)
    int64_t* detail_a = nullptr;      // rule-specific numbers for the reason text (docs/data.md)
    int64_t* detail_b = nullptr;
};

// A GAP marker to insert into the promoted events, before the chunk's event `before_event`.
struct Marker {
    uint64_t before_event;
    uint32_t instrument;
    uint8_t rule;
    int64_t record;    // the record that invalidated the book
    int64_t ts_event;
    int64_t ts_recv;
    uint64_t seq;      // the GAP's own ids when a GAP caused it, else 0
    uint64_t order_id;
};

class Validator {
public:
    explicit Validator(ValidatorConfig cfg)
        : cfg_(std::move(cfg)), books_(cfg_.book_types) {
        books_.set_session_phase(cfg_.session_phase);
        const size_t n = cfg_.book_types.size();
        cfg_.requires_snapshot.resize(n, 0);
        state_.resize(n);
        cleared_in_record_.reserve(n + 8);  // clears per record are at most one per instrument
        for (size_t i = 0; i < n; ++i) {
            state_[i].book = cfg_.requires_snapshot[i] ? BookState::NeverSnapshotted : BookState::Valid;
        }
    }

    // An instrument a decoder learned mid-stream (an ITCH stock directory), at the next index.
    void add_instrument(BookType t, bool requires_snapshot) {
        cfg_.book_types.push_back(t);
        cfg_.requires_snapshot.push_back(requires_snapshot ? 1 : 0);
        books_.add_instrument(t);
        InstrumentState s;
        s.book = requires_snapshot ? BookState::NeverSnapshotted : BookState::Valid;
        state_.push_back(s);
        cleared_in_record_.reserve(state_.size() + 8);
    }

    Validator(const Validator&) = delete;
    Validator& operator=(const Validator&) = delete;

    // Judges records [first_record, first_record + n_records) and fills `out`; `keep` (one byte
    // per event) says which events are promoted; markers are appended to `markers`.
    Status check(const EventColumns& ev, const int64_t* event_record, int64_t first_record,
                 size_t n_records, const uint8_t* rec_problem, RecordVerdicts out, uint8_t* keep,
                 std::vector<Marker>& markers) noexcept {
        size_t e = 0;
        const size_t n = ev.size;
        for (size_t r = 0; r < n_records; ++r) {
            const int64_t rec = first_record + static_cast<int64_t>(r);
            const size_t e_begin = e;
            while (e < n && event_record[e] == rec) ++e;
            if (e < n && event_record[e] < rec) return Status::InvalidArgument;  // not contiguous
            const size_t e_end = e;
            out.rule[r] = 0;
            out.warn[r] = 0;
            out.cause[r] = -1;
            out.instrument[r] = e_begin < e_end ? ev.instrument[e_begin] : 0;
            out.detail_a[r] = 0;
            out.detail_b[r] = 0;
            ++records_;
            if (rec_problem[r] != 0) {
                out.rule[r] = rec_problem[r] < kRuleCount ? rec_problem[r]
                                                          : static_cast<uint8_t>(Rule::MalformedRecord);
                count_quarantined(out.rule[r]);
                for (size_t i = e_begin; i < e_end; ++i) keep[i] = 0;
                continue;
            }
            judge_record(ev, rec, e_begin, e_end, r, out, keep, markers);
        }
        if (e != n) return Status::InvalidArgument;  // events naming records outside the chunk
        return Status::Ok;
    }

    uint64_t records() const noexcept { return records_; }
    uint64_t quarantined(size_t rule) const noexcept { return quarantined_[rule]; }
    uint64_t warned(size_t rule) const noexcept { return warned_[rule]; }
    uint64_t invalidations() const noexcept { return invalidations_; }
    const Replayer& books() const noexcept { return books_; }
    bool book_valid(uint32_t inst) const noexcept { return state_[inst].book == BookState::Valid; }

private:
    enum class BookState : uint8_t { Valid, NeverSnapshotted, Invalid };
    struct InstrumentState {
        BookState book = BookState::Valid;
        uint8_t cause_rule = 0;
        int64_t cause_record = -1;
    };

    static bool is_book_kind(uint8_t k) noexcept {
        return k >= static_cast<uint8_t>(EventKind::L2Set) && k <= static_cast<uint8_t>(EventKind::BookClear);
    }

    // Price/qty sanity of one event; Ok or BadPriceQty.
    static bool bad_price_qty(uint8_t kind, int64_t price, int64_t qty) noexcept {
        switch (static_cast<EventKind>(kind)) {
            case EventKind::Trade:
            case EventKind::L3Add:
                return price <= 0 || qty <= 0;
            case EventKind::L2Set:
                return price <= 0 || qty < 0;
            case EventKind::L3Modify:
                return qty < 0 || (qty > 0 && price <= 0);
            case EventKind::L3Execute:
                return qty <= 0;
            case EventKind::VenueBbo:
                return qty < 0 || (qty > 0 && price <= 0);
            default:
                return false;
        }
    }

    struct Hit {
        Rule rule = Rule::Ok;
        uint32_t inst = 0;
        int64_t cause = -1;
        int64_t a = 0, b = 0;
    };

    // Records the first hit of each action class.
    void hit(Hit& q, Hit& w, Rule rule, uint32_t inst, int64_t a, int64_t b, int64_t cause = -1) noexcept {
        const RuleAction act = cfg_.action[static_cast<size_t>(rule)];
        Hit& slot = act == RuleAction::Quarantine ? q : w;
        if (act == RuleAction::Off || slot.rule != Rule::Ok) return;
        slot = Hit{rule, inst, cause, a, b};
    }

    void judge_record(const EventColumns& ev, int64_t rec, size_t e_begin, size_t e_end, size_t r,
                      RecordVerdicts out, uint8_t* keep, std::vector<Marker>& markers) noexcept {
        Hit q, w;
        const uint32_t n_inst = static_cast<uint32_t>(state_.size());
        // Pass 1: everything that can be judged without changing a book. The snapshot state is
        // followed through the record (a snapshot message starts with its own clear).
        cleared_in_record_.clear();
        for (size_t i = e_begin; i < e_end; ++i) {
            const uint32_t inst = ev.instrument[i];
            const uint8_t kind = ev.kind[i];
            if (inst >= n_inst) {
                hit(q, w, Rule::MalformedRecord, 0, inst, kind);
                continue;
            }
            if (ev.ts_recv[i] < last_ts_recv_) {
                // Promoting it would break Processing Order: never only a warning.
                if (q.rule == Rule::Ok) q = Hit{Rule::TsRecvBackwards, inst, -1, last_ts_recv_, ev.ts_recv[i]};
            } else if (ev.flags[i] & flags::kBadTsRecv) {
                hit(q, w, Rule::TsRecvBackwards, inst, ev.ts_recv[i], ev.ts_event[i]);
            }
            if (kind < kMarketKindEnd && kind != static_cast<uint8_t>(EventKind::BookClear) && ev.ts_event[i] != 0) {
                const int64_t latency = ev.ts_recv[i] - ev.ts_event[i];
                if (latency < cfg_.min_feed_latency_ns || latency > cfg_.max_feed_latency_ns) {
                    hit(q, w, Rule::FeedLatency, inst, latency, ev.ts_event[i]);
                }
            }
            if (bad_price_qty(kind, ev.price[i], ev.qty[i])) {
                hit(q, w, Rule::BadPriceQty, inst, ev.price[i], ev.qty[i]);
            }
            if (kind == static_cast<uint8_t>(EventKind::Gap)) {
                hit(q, w, Rule::SequenceGap, inst, static_cast<int64_t>(ev.order_id[i]),
                    static_cast<int64_t>(ev.seq[i]));
            } else if (kind == static_cast<uint8_t>(EventKind::TradingPhase)) {
                if (ev.side[i] >= static_cast<uint8_t>(TradingPhase::Count) ||
                    ev.order_id[i] > kPhaseScopeSession) {
                    hit(q, w, Rule::MalformedRecord, inst, ev.side[i],
                        static_cast<int64_t>(ev.order_id[i]));
                }
            } else if (is_book_kind(kind)) {
                if (kind == static_cast<uint8_t>(EventKind::BookClear)) {
                    cleared_in_record_.push_back(inst);
                } else if (!cleared(inst)) {
                    const InstrumentState& s = state_[inst];
                    if (s.book == BookState::NeverSnapshotted) {
                        hit(q, w, Rule::DeltasBeforeSnapshot, inst, 0, 0);
                    } else if (s.book == BookState::Invalid && q.rule == Rule::Ok) {
                        // Not subject to an action: the book it would change is unknown.
                        q = Hit{static_cast<Rule>(s.cause_rule), inst, s.cause_record, 0, 0};
                    }
                }
            }
        }
        if (q.rule == Rule::Ok) {
            // Pass 2: apply to the books; an anomaly means the message does not fit them.
            for (size_t i = e_begin; i < e_end; ++i) {
                const uint32_t inst = ev.instrument[i];
                const uint8_t kind = ev.kind[i];
                if (kind == static_cast<uint8_t>(EventKind::BookClear)) state_[inst].book = BookState::Valid;
                if (kind == static_cast<uint8_t>(EventKind::Gap)) {
                    // Kept (sequence_gap is not set to quarantine): the canonical data carries it.
                    invalidate(inst, Rule::SequenceGap, rec);
                    continue;
                }
                const uint64_t before = books_.anomalies_noted();
                books_.apply_event(inst, kind, ev.side[i], ev.flags[i], ev.price[i], ev.qty[i],
                                   ev.order_id[i], ev.ts_recv[i]);
                if (books_.anomalies_noted() != before) {
                    Rule rule = rule_of_last_anomaly();
                    if (rule == Rule::Ok) continue;
                    // The replay counts a crossed book only in continuous trading or while the
                    // phase is unknown; unknown is a warning by default, not a lost book.
                    if (rule == Rule::CrossedBook && books_.phase(inst) == TradingPhase::Unknown) {
                        rule = Rule::CrossedBookPhaseUnknown;
                    }
                    int64_t a = 0, b = 0;
                    if (rule == Rule::CrossedBook || rule == Rule::CrossedBookPhaseUnknown) {
                        touch_prices(inst, &a, &b);
                    }
                    if (rule == Rule::UnknownOrderRef) a = static_cast<int64_t>(ev.order_id[i]);
                    if (rule == Rule::BadPriceQty) { a = ev.price[i]; b = ev.qty[i]; }
                    Hit before_q = q;
                    hit(q, w, rule, inst, a, b);
                    if (q.rule != Rule::Ok && before_q.rule == Rule::Ok) {
                        // The book has taken part of a message that does not fit it.
                        invalidate(inst, rule, rec);
                        emit_marker(markers, e_begin, inst, static_cast<uint8_t>(rule), rec, ev, e_begin, 0, 0);
                        break;
                    }
                }
            }
        } else {
            // Quarantined before touching a book: the books it concerns become unknown.
            for (size_t i = e_begin; i < e_end; ++i) {
                const uint32_t inst = ev.instrument[i];
                if (inst >= n_inst) continue;
                const uint8_t kind = ev.kind[i];
                const bool concerns_book = kind == static_cast<uint8_t>(EventKind::Gap) || is_book_kind(kind);
                if (!concerns_book || state_[inst].book != BookState::Valid) continue;
                if (q.rule == Rule::DuplicateMessage) continue;  // dropping a repeat loses nothing
                invalidate(inst, q.rule, rec);
                const bool gap = kind == static_cast<uint8_t>(EventKind::Gap);
                emit_marker(markers, e_begin, inst, static_cast<uint8_t>(q.rule), rec, ev, i,
                            gap ? ev.seq[i] : 0, gap ? ev.order_id[i] : 0);
            }
        }
        if (q.rule != Rule::Ok) {
            for (size_t i = e_begin; i < e_end; ++i) keep[i] = 0;
            out.rule[r] = static_cast<uint8_t>(q.rule);
            out.cause[r] = q.cause;
            out.instrument[r] = q.inst;
            out.detail_a[r] = q.a;
            out.detail_b[r] = q.b;
            count_quarantined(out.rule[r]);
            return;
        }
        for (size_t i = e_begin; i < e_end; ++i) {
            keep[i] = 1;
            if (ev.ts_recv[i] > last_ts_recv_) last_ts_recv_ = ev.ts_recv[i];
        }
        if (w.rule != Rule::Ok) {
            out.warn[r] = static_cast<uint8_t>(w.rule);
            out.instrument[r] = w.inst;
            out.detail_a[r] = w.a;
            out.detail_b[r] = w.b;
            ++warned_[static_cast<size_t>(w.rule)];
        }
    }

    bool cleared(uint32_t inst) const noexcept {
        return std::find(cleared_in_record_.begin(), cleared_in_record_.end(), inst) != cleared_in_record_.end();
    }

    void invalidate(uint32_t inst, Rule rule, int64_t rec) noexcept {
        InstrumentState& s = state_[inst];
        if (s.book != BookState::Valid) return;
        s.book = BookState::Invalid;
        s.cause_rule = static_cast<uint8_t>(rule);
        s.cause_record = rec;
        ++invalidations_;
    }

    void emit_marker(std::vector<Marker>& markers, size_t before_event, uint32_t inst, uint8_t rule,
                     int64_t rec, const EventColumns& ev, size_t at, uint64_t seq, uint64_t order_id) noexcept {
        // Promoted events stay in Processing Order after the marker: later records stamped
        // before it are judged as ts_recv going backwards.
        const int64_t ts_recv = std::max(ev.ts_recv[at], last_ts_recv_);
        last_ts_recv_ = ts_recv;
        try {
            markers.push_back(Marker{before_event, inst, rule, rec, ev.ts_event[at], ts_recv, seq, order_id});
        } catch (...) {
            // Out of memory for a rare marker: the invalidation is still counted and reported.
        }
    }

    // Which anomaly the last apply_event noted, as a rule. UnknownLevel (an L2 removal of a level
    // we never had) is normal for depth-limited feeds and is not a rule.
    Rule rule_of_last_anomaly() noexcept {
        Rule found = Rule::Ok;
        for (size_t a = 0; a < kAnomalyKinds; ++a) {
            const uint64_t c = books_.anomaly(static_cast<Anomaly>(a)).count;
            if (c == seen_[a]) continue;
            seen_[a] = c;
            switch (static_cast<Anomaly>(a)) {
                case Anomaly::UnknownLevel: break;
                case Anomaly::CrossedBook: found = Rule::CrossedBook; break;
                case Anomaly::UnknownOrder:
                case Anomaly::DuplicateOrder: if (found == Rule::Ok) found = Rule::UnknownOrderRef; break;
                case Anomaly::BadQuantity:
                case Anomaly::BadPrice:
                case Anomaly::BadSide: if (found == Rule::Ok) found = Rule::BadPriceQty; break;
                default: if (found == Rule::Ok) found = Rule::MalformedRecord; break;
            }
        }
        return found;
    }

    void touch_prices(uint32_t inst, int64_t* bid, int64_t* ask) const noexcept {
        int64_t bq, aq;
        books_.touch(inst, bid, &bq, ask, &aq);
    }

    void count_quarantined(uint8_t rule) noexcept { ++quarantined_[rule < kRuleCount ? rule : 0]; }

    ValidatorConfig cfg_;
    Replayer books_;
    std::vector<InstrumentState> state_;
    std::vector<uint32_t> cleared_in_record_;
    std::array<uint64_t, kAnomalyKinds> seen_{};
    std::array<uint64_t, kRuleCount> quarantined_{};
    std::array<uint64_t, kRuleCount> warned_{};
    int64_t last_ts_recv_ = std::numeric_limits<int64_t>::min();
    uint64_t records_ = 0;
    uint64_t invalidations_ = 0;
};

}  // namespace lockstep
