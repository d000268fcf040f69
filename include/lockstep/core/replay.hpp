// Deterministic replay of canonical events through the order books.
//
// Events are applied in the order given, which the dataset guarantees is Processing Order
// (ts_recv, then stream position). The Replayer keeps Market State (one book per instrument, the
// last trade) and data-quality counters; it never stops on bad data: every anomaly is counted, its
// first positions remembered, and the replay goes on.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "lockstep/core/events.hpp"
#include "lockstep/core/l2_book.hpp"
#include "lockstep/base/little_endian.hpp"
#include "lockstep/core/l3_book.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep {

enum class BookType : uint8_t { L2 = 0, L3 = 1 };

// Data-quality anomalies the replay counts. Values index arrays and are reported by name.
enum class Anomaly : uint8_t {
    UnknownLevel = 0,       // L2 delete (qty 0) of a level that is not in the book
    UnknownOrder = 1,       // L3 modify/delete/execute of an order id that is not in the book
    DuplicateOrder = 2,     // L3 add of an order id already resting
    CrossedBook = 3,        // best bid >= best ask after a complete venue message changed the book,
                            // in continuous trading or before any trading phase was announced
    BadInstrument = 4,      // instrument index outside the dataset's table
    WrongBookKind = 5,      // L2 event for an L3 instrument or the reverse
    BadSide = 6,            // book event whose side is neither bid nor ask, or a TradingPhase
                            // event whose phase is not a TradingPhase
    BadQuantity = 7,        // negative quantity, or a non-positive one where a size is required
    UnknownKind = 8,        // kind the replay does not know (reserved ranges included)
    BadPrice = 9,           // price outside the books' range (beyond +-2^62 ticks)
    Count = 10,
};

inline const char* anomaly_name(Anomaly a) noexcept {
    switch (a) {
        case Anomaly::UnknownLevel: return "unknown_level";
        case Anomaly::UnknownOrder: return "unknown_order";
        case Anomaly::DuplicateOrder: return "duplicate_order";
        case Anomaly::CrossedBook: return "crossed_book";
        case Anomaly::BadInstrument: return "bad_instrument";
        case Anomaly::WrongBookKind: return "wrong_book_kind";
        case Anomaly::BadSide: return "bad_side";
        case Anomaly::BadQuantity: return "bad_quantity";
        case Anomaly::UnknownKind: return "unknown_kind";
        case Anomaly::BadPrice: return "bad_price";
        case Anomaly::Count: break;
    }
    return "unknown";
}

constexpr size_t kAnomalyKinds = static_cast<size_t>(Anomaly::Count);
constexpr size_t kAnomalyPositionsKept = 16;

struct AnomalyLog {
    uint64_t count = 0;
    uint32_t kept = 0;
    std::array<uint64_t, kAnomalyPositionsKept> positions{};      // stream positions of the first ones
    std::array<uint32_t, kAnomalyPositionsKept> instruments{};

    void note(uint64_t position, uint32_t instrument) noexcept {
        if (kept < kAnomalyPositionsKept) {
            positions[kept] = position;
            instruments[kept] = instrument;
            ++kept;
        }
        ++count;
    }
};

// One row per complete venue message: the instrument's touch after it. A zero quantity means the
// side is empty (its price is then meaningless).
struct TopOfBookColumns {
    int64_t* ts_recv = nullptr;
    int64_t* ts_event = nullptr;
    uint32_t* instrument = nullptr;
    int64_t* bid_price = nullptr;
    int64_t* bid_qty = nullptr;
    int64_t* ask_price = nullptr;
    int64_t* ask_qty = nullptr;
    uint8_t* valid = nullptr;  // optional: 0 while the book is invalid (after a GAP, before a clear)
    size_t size = 0;
    size_t capacity = 0;
};

// Where an instrument's book could not be trusted: from a GAP to the BOOK_CLEAR that restored it
// (to_position -1: still invalid at the end).
struct InvalidStretch {
    uint32_t instrument = 0;
    uint64_t from_position = 0;
    int64_t from_ts_recv = 0;
    int64_t to_position = -1;
    int64_t to_ts_recv = 0;
};
constexpr size_t kInvalidStretchesKept = 4096;

struct LastTrade {
    int64_t ts_recv = 0;
    int64_t price = 0;
    int64_t qty = 0;
    uint8_t side = 0;
    bool seen = false;
};

class Replayer {
public:
    explicit Replayer(const std::vector<BookType>& book_types) {
        for (BookType t : book_types) add_instrument(t);
    }

    // A new instrument at index instrument_count(), with an empty (valid) book: decoders learn
    // instruments as they go (an ITCH stock directory arrives mid-stream). Books live in deques,
    // so the pointers the hot loop uses stay put.
    void add_instrument(BookType t) {
        const uint32_t inst = static_cast<uint32_t>(types_.size());
        types_.push_back(t);
        if (t == BookType::L3) {
            slot_.push_back(static_cast<uint32_t>(l3_.size()));
            l3_.emplace_back();
            l2_of_.push_back(nullptr);
            l3_of_.push_back(&l3_.back());
        } else {
            slot_.push_back(static_cast<uint32_t>(l2_.size()));
            l2_.emplace_back();
            l2_of_.push_back(&l2_.back());
            l3_of_.push_back(nullptr);
        }
        dirty_.push_back(0);
        phase_.push_back(static_cast<uint8_t>(TradingPhase::Unknown));
        last_trade_.emplace_back();
        invalid_since_.push_back(-1);
        (void)inst;
    }

    // Books are addressed through l2_of_/l3_of_; copying would leave them pointing at the source.
    Replayer(const Replayer&) = delete;
    Replayer& operator=(const Replayer&) = delete;

    // Applies every event of `ev` in order. When `tob` is given it receives one row per event
    // flagged kLast; it must have room for ev.size rows.
    Status apply(const EventColumns& ev, TopOfBookColumns* tob) noexcept {
        if (tob != nullptr && tob->capacity - tob->size < ev.size) return Status::InvalidArgument;
        // Columns and tables in locals: the loop stores bytes (last trade side, flags of state)
        // that may alias anything, and members would be reloaded after each such store.
        const size_t n = ev.size;
        const uint32_t n_instruments = static_cast<uint32_t>(types_.size());
        const uint32_t* const instrument = ev.instrument;
        const uint8_t* const kinds = ev.kind;
        const uint8_t* const sides = ev.side;
        const uint8_t* const flag = ev.flags;
        const int64_t* const prices = ev.price;
        const int64_t* const qtys = ev.qty;
        const uint64_t* const order_ids = ev.order_id;
        L2Book* const* const l2_of = l2_of_.data();
        L3Book* const* const l3_of = l3_of_.data();
        const uint64_t position0 = position_;
        for (size_t i = 0; i < n; ++i) {
            const uint64_t position = position0 + i;
            const uint32_t inst = instrument[i];
            if (inst >= n_instruments) [[unlikely]] {
                note(Anomaly::BadInstrument, position, inst);
                continue;
            }
            const uint8_t kind = kinds[i];
            const L2Book* levels;  // the book's aggregated levels, for the crossing test
            if (L2Book* l2 = l2_of[inst]) [[likely]] {
                apply_l2(*l2, kind, sides[i], prices[i], qtys[i], order_ids[i], ev.ts_recv[i], inst,
                         position);
                levels = l2;
            } else {
                L3Book* l3 = l3_of[inst];
                apply_l3(*l3, kind, sides[i], prices[i], qtys[i], order_ids[i], ev.ts_recv[i],
                         inst, position);
                levels = &l3->levels();
            }
            if (tob == nullptr) [[likely]] {
                // End of message without a branch on the flag, which is set on a random part of
                // the events (a quarter in practice): the crossing test is a few loads, cheaper
                // than the mispredictions, and only its rare hit branches.
                const uint32_t last = (flag[i] & flags::kLast) != 0;
                const uint32_t dirty = dirty_[inst];
                dirty_[inst] = dirty & (last ^ 1u);
                if ((dirty & last & static_cast<uint32_t>(levels->crossed())) != 0) [[unlikely]] {
                    note_crossed(position, inst);
                }
            } else if (flag[i] & flags::kLast) {
                end_of_message(inst, position, ev.ts_recv[i], ev.ts_event[i], tob);
            }
        }
        position_ = position0 + n;
        return Status::Ok;
    }

    // One event, for drivers that act between events (the backtest engine). Same effects as
    // apply() without top-of-book rows. Returns true when the event completes a venue message
    // that changed the instrument's book: the moment a book is observable and new.
    bool apply_event(uint32_t inst, uint8_t kind, uint8_t side, uint8_t flag, int64_t price,
                     int64_t qty, uint64_t order_id, int64_t ts_recv) noexcept {
        const uint64_t position = position_++;
        if (inst >= types_.size()) [[unlikely]] {
            note(Anomaly::BadInstrument, position, inst);
            return false;
        }
        const L2Book* levels;
        if (L2Book* l2 = l2_of_[inst]) [[likely]] {
            apply_l2(*l2, kind, side, price, qty, order_id, ts_recv, inst, position);
            levels = l2;
        } else {
            L3Book* l3 = l3_of_[inst];
            apply_l3(*l3, kind, side, price, qty, order_id, ts_recv, inst, position);
            levels = &l3->levels();
        }
        if ((flag & flags::kLast) == 0 || dirty_[inst] == 0) return false;
        dirty_[inst] = 0;
        if (levels->crossed()) [[unlikely]] note_crossed(position, inst);
        return true;
    }

    // Ends, on `inst`, a run of events no kLast ended (Engine::show_changed_books): true when they
    // changed its book, which is then observable and new (the crossed check as at a kLast).
    bool end_message(uint32_t inst) noexcept {
        if (inst >= types_.size() || dirty_[inst] == 0) return false;
        dirty_[inst] = 0;
        const L2Book& levels = l2_of_[inst] ? *l2_of_[inst] : l3_of_[inst]->levels();
        if (levels.crossed()) [[unlikely]] note_crossed(position_ == 0 ? 0 : position_ - 1, inst);
        return true;
    }

    // Hints that the event (kind, side, price, order_id) on `inst` comes soon (Engine::prefetch):
    // an L3 book starts loading what it will look up, far stage then `near` (L3Book::prefetch).
    // No effect on State.
    void prefetch(uint32_t inst, uint8_t kind, uint8_t side, int64_t price, uint64_t order_id,
                  bool near) const noexcept {
        if (inst >= types_.size() || kind < static_cast<uint8_t>(EventKind::L3Add) ||
            kind > static_cast<uint8_t>(EventKind::L3Execute))
            return;
        if (const L3Book* l3 = l3_of_[inst])
            l3->prefetch(kind == static_cast<uint8_t>(EventKind::L3Add), static_cast<Side>(side),
                         price, order_id, near);
    }

    uint64_t events_applied() const noexcept { return position_; }
    // Every anomaly of every kind so far: one compare tells a caller whether an event added one.
    uint64_t anomalies_noted() const noexcept { return anomalies_noted_; }
    // False from a GAP for the instrument until a BOOK_CLEAR restores its book.
    bool book_valid(uint32_t inst) const noexcept { return invalid_since_[inst] < 0; }
    const std::vector<InvalidStretch>& invalid_stretches() const noexcept { return stretches_; }
    uint64_t invalid_stretch_count() const noexcept { return stretch_count_; }
    const AnomalyLog& anomaly(Anomaly a) const noexcept { return log_[static_cast<size_t>(a)]; }
    uint64_t kind_count(uint8_t kind) const noexcept { return kind_counts_[kind]; }
    size_t instrument_count() const noexcept { return types_.size(); }
    BookType book_type(uint32_t inst) const noexcept { return types_[inst]; }
    const L2Book& l2(uint32_t inst) const noexcept { return l2_[slot_[inst]]; }
    const L3Book& l3(uint32_t inst) const noexcept { return l3_[slot_[inst]]; }
    const LastTrade& last_trade(uint32_t inst) const noexcept { return last_trade_[inst]; }
    // The phase the instrument trades in (effective_phase of its own and the session's).
    TradingPhase phase(uint32_t inst) const noexcept {
        return effective_phase(static_cast<TradingPhase>(phase_[inst]), session_phase_);
    }
    TradingPhase own_phase(uint32_t inst) const noexcept {
        return static_cast<TradingPhase>(phase_[inst]);
    }
    TradingPhase session_phase() const noexcept { return session_phase_; }
    // The session's phase before any TradingPhase event: what a venue is known to do all day
    // (a crypto venue trades continuously), so its crossed books stay errors.
    void set_session_phase(TradingPhase p) noexcept { session_phase_ = p; }

    // Touch of an instrument's book whatever its type; qty 0 = empty side.
    void touch(uint32_t inst, int64_t* bid_px, int64_t* bid_qty, int64_t* ask_px,
               int64_t* ask_qty) const noexcept {
        if (l2_of_[inst]) {
            touch_of(*l2_of_[inst], bid_px, bid_qty, ask_px, ask_qty);
        } else {
            touch_of(*l3_of_[inst], bid_px, bid_qty, ask_px, ask_qty);
        }
    }

    // Canonical serialization of the final State, the input of the state digest. Little-endian
    // fixed-width fields in a documented order (docs/encoding.md, "State digest"), so the digest
    // is the same on every machine.
    std::string serialize_state() const {
        std::string out;
        put_le(out, uint64_t{0x4c4f434b53544550ull});  // "LOCKSTEP" tag, digest format v2
        put_le(out, uint64_t{2});
        put_le(out, position_);
        put_le(out, static_cast<uint64_t>(types_.size()));
        for (size_t a = 0; a < kAnomalyKinds; ++a) put_le(out, log_[a].count);
        put_le(out, static_cast<uint64_t>(session_phase_));
        for (uint32_t inst = 0; inst < types_.size(); ++inst) {
            put_le(out, static_cast<uint64_t>(types_[inst]));
            put_le(out, static_cast<uint64_t>(phase_[inst]));
            const LastTrade& t = last_trade_[inst];
            put_le(out, static_cast<uint64_t>(t.seen));
            put_le(out, t.ts_recv);
            put_le(out, t.price);
            put_le(out, t.qty);
            put_le(out, static_cast<uint64_t>(t.side));
            for (Side side : {Side::Bid, Side::Ask}) {
                if (types_[inst] == BookType::L2) {
                    const L2Book& b = l2_[slot_[inst]];
                    put_le(out, static_cast<uint64_t>(b.level_count(side)));
                    b.for_each_level(side, [&](int64_t px, int64_t q) {
                        put_le(out, px);
                        put_le(out, q);
                    });
                } else {
                    const L3Book& b = l3_[slot_[inst]];
                    put_le(out, static_cast<uint64_t>(b.level_count(side)));
                    uint64_t orders = 0;
                    b.for_each_order(side, [&](uint64_t, int64_t, int64_t) { ++orders; });
                    put_le(out, orders);
                    b.for_each_order(side, [&](uint64_t id, int64_t px, int64_t q) {
                        put_le(out, id);
                        put_le(out, px);
                        put_le(out, q);
                    });
                }
            }
        }
        return out;
    }

private:
    template <class Book>
    static void touch_of(const Book& b, int64_t* bid_px, int64_t* bid_qty, int64_t* ask_px,
                         int64_t* ask_qty) noexcept {
        const bool has_bid = !b.empty(Side::Bid);
        const bool has_ask = !b.empty(Side::Ask);
        *bid_px = has_bid ? b.best_price(Side::Bid) : 0;
        *bid_qty = has_bid ? b.best_qty(Side::Bid) : 0;
        *ask_px = has_ask ? b.best_price(Side::Ask) : 0;
        *ask_qty = has_ask ? b.best_qty(Side::Ask) : 0;
    }

    [[gnu::noinline]] void invalidate(uint32_t inst, uint64_t position, int64_t ts_recv) noexcept {
        if (invalid_since_[inst] >= 0) return;
        invalid_since_[inst] = static_cast<int64_t>(position);
        ++stretch_count_;
        if (stretches_.size() < kInvalidStretchesKept) {
            try {
                stretches_.push_back(InvalidStretch{inst, position, ts_recv, -1, 0});
            } catch (...) {
                // Counted in stretch_count_ even when its details cannot be kept.
            }
        }
    }

    [[gnu::noinline]] void restore(uint32_t inst, uint64_t position, int64_t ts_recv) noexcept {
        const auto since = static_cast<uint64_t>(invalid_since_[inst]);
        invalid_since_[inst] = -1;
        for (auto it = stretches_.rbegin(); it != stretches_.rend(); ++it) {
            if (it->instrument == inst && it->from_position == since) {
                it->to_position = static_cast<int64_t>(position);
                it->to_ts_recv = ts_recv;
                break;
            }
        }
    }

    void note(Anomaly a, uint64_t position, uint32_t inst) noexcept {
        ++anomalies_noted_;
        log_[static_cast<size_t>(a)].note(position, inst);
    }

    // A crossed book after a complete message is an anomaly only where the venue matches orders
    // as they come (or where we were never told it does not).
    [[gnu::noinline]] void note_crossed(uint64_t position, uint32_t inst) noexcept {
        if (!crossing_allowed(phase(inst))) note(Anomaly::CrossedBook, position, inst);
    }

    [[gnu::noinline]] void set_phase(uint8_t phase, uint64_t scope, uint32_t inst,
                                     uint64_t position) noexcept {
        if (phase >= static_cast<uint8_t>(TradingPhase::Count)) {
            note(Anomaly::BadSide, position, inst);
        } else if (scope == kPhaseScopeSession) {
            session_phase_ = static_cast<TradingPhase>(phase);
        } else {
            phase_[inst] = phase;
        }
    }

    void apply_common(uint8_t kind, uint8_t side, int64_t price, int64_t qty, uint64_t order_id,
                      int64_t ts_recv, uint32_t inst, uint64_t position) noexcept {
        // Trades are the one frequent kind here: a compare, not the switch's indirect jump.
        if (kind == static_cast<uint8_t>(EventKind::Trade)) [[likely]] {
            last_trade_[inst] = LastTrade{ts_recv, price, qty, side, true};
            if (qty <= 0) [[unlikely]] note(Anomaly::BadQuantity, position, inst);
            return;
        }
        switch (static_cast<EventKind>(kind)) {
            case EventKind::Trade:
                break;
            case EventKind::VenueBbo:
            case EventKind::None:
                break;
            case EventKind::L2Set:
            case EventKind::L3Add:
            case EventKind::L3Modify:
            case EventKind::L3Delete:
            case EventKind::L3Execute:
                note(Anomaly::WrongBookKind, position, inst);
                break;
            case EventKind::Gap:
                invalidate(inst, position, ts_recv);
                break;
            case EventKind::TradingPhase:
                set_phase(side, order_id, inst, position);
                break;
            default:
                // Execution and other control kinds have no effect on Market State; anything
                // else is unknown to this build.
                if (kind < kMarketKindEnd) note(Anomaly::UnknownKind, position, inst);
                break;
        }
    }

    void apply_l2(L2Book& book, uint8_t kind, uint8_t side, int64_t price, int64_t qty,
                  uint64_t order_id, int64_t ts_recv, uint32_t inst, uint64_t position) noexcept {
        ++kind_counts_[kind];
        if (kind == static_cast<uint8_t>(EventKind::L2Set)) [[likely]] {
            // The book validates side, quantity and price itself; only its verdict is read here,
            // with one compare on the common path (Ok and Removed are the two lowest codes).
            const L2Result r = book.set(static_cast<Side>(side), price, qty);
            if (static_cast<uint8_t>(r) > static_cast<uint8_t>(L2Result::Removed)) [[unlikely]] {
                note_l2(r, position, inst);  // rejected: the book did not change
            } else {
                dirty_[inst] = 1;
            }
        } else if (kind == static_cast<uint8_t>(EventKind::BookClear)) {
            book.clear();
            dirty_[inst] = 1;
            if (invalid_since_[inst] >= 0) [[unlikely]] restore(inst, position, ts_recv);
        } else {
            apply_common(kind, side, price, qty, order_id, ts_recv, inst, position);
        }
    }

    [[gnu::noinline]] void note_l2(L2Result r, uint64_t position, uint32_t inst) noexcept {
        switch (r) {
            case L2Result::Ok:
            case L2Result::Removed:
                break;
            case L2Result::UnknownLevel: note(Anomaly::UnknownLevel, position, inst); break;
            case L2Result::BadQty: note(Anomaly::BadQuantity, position, inst); break;
            case L2Result::BadPrice: note(Anomaly::BadPrice, position, inst); break;
            case L2Result::BadSide: note(Anomaly::BadSide, position, inst); break;
        }
    }

    void apply_l3(L3Book& book, uint8_t kind, uint8_t side, int64_t price, int64_t qty,
                  uint64_t order_id, int64_t ts_recv, uint32_t inst, uint64_t position) noexcept {
        ++kind_counts_[kind];
        L3Result r = L3Result::Ok;
        switch (static_cast<EventKind>(kind)) {
            case EventKind::L3Add:
                r = book.add(order_id, static_cast<Side>(side), price, qty);
                break;
            case EventKind::L3Modify:
                r = book.modify(order_id, price, qty);
                break;
            case EventKind::L3Delete:
                r = book.remove(order_id);
                break;
            case EventKind::L3Execute:
                r = book.execute(order_id, qty);
                break;
            case EventKind::BookClear:
                book.clear();
                if (invalid_since_[inst] >= 0) [[unlikely]] restore(inst, position, ts_recv);
                break;
            default:
                apply_common(kind, side, price, qty, order_id, ts_recv, inst, position);
                return;
        }
        switch (r) {
            case L3Result::Ok: dirty_[inst] = 1; break;  // rejections leave the book unchanged
            case L3Result::UnknownOrder: note(Anomaly::UnknownOrder, position, inst); break;
            case L3Result::DuplicateOrder: note(Anomaly::DuplicateOrder, position, inst); break;
            case L3Result::BadQty: note(Anomaly::BadQuantity, position, inst); break;
            case L3Result::BadPrice: note(Anomaly::BadPrice, position, inst); break;
            case L3Result::BadSide: note(Anomaly::BadSide, position, inst); break;
        }
    }

    void end_of_message(uint32_t inst, uint64_t position, int64_t ts_recv, int64_t ts_event,
                        TopOfBookColumns* tob) noexcept {
        if (dirty_[inst]) {
            dirty_[inst] = 0;
            const bool crossed = l2_of_[inst] ? l2_of_[inst]->crossed() : l3_of_[inst]->crossed();
            if (crossed) note_crossed(position, inst);
        }
        if (tob != nullptr) {
            const size_t r = tob->size++;
            tob->ts_recv[r] = ts_recv;
            tob->ts_event[r] = ts_event;
            tob->instrument[r] = inst;
            touch(inst, &tob->bid_price[r], &tob->bid_qty[r], &tob->ask_price[r], &tob->ask_qty[r]);
            if (tob->valid != nullptr) tob->valid[r] = invalid_since_[inst] < 0 ? 1 : 0;
        }
    }


    std::vector<BookType> types_;
    std::vector<uint32_t> slot_;  // instrument -> index into l2_ or l3_
    std::deque<L2Book> l2_;
    std::deque<L3Book> l3_;
    std::vector<L2Book*> l2_of_;  // per instrument: its L2 book, or null
    std::vector<L3Book*> l3_of_;  // per instrument: its L3 book, or null
    // Book changed since the instrument's last complete message. Not bytes: a byte store may
    // alias anything, and one per event would make the compiler reload the books' state.
    std::vector<uint32_t> dirty_;
    std::vector<LastTrade> last_trade_;
    // Per instrument: its own TradingPhase as last announced (Unknown until then).
    std::vector<uint8_t> phase_;
    TradingPhase session_phase_ = TradingPhase::Unknown;
    // Per instrument: the position of the GAP that made its book invalid, -1 while valid.
    std::vector<int64_t> invalid_since_;
    std::vector<InvalidStretch> stretches_;
    uint64_t stretch_count_ = 0;
    std::array<AnomalyLog, kAnomalyKinds> log_{};
    uint64_t anomalies_noted_ = 0;
    std::array<uint64_t, 256> kind_counts_{};
    uint64_t position_ = 0;
};

}  // namespace lockstep
