// Canonical events: the one encoding every part of lockstep speaks.
//
// Events travel as struct-of-arrays batches. The same ten columns are this C++ view, the Arrow
// schema on disk (src/lockstep/events.py) and zero-copy numpy views in Python. docs/encoding.md is
// the normative description; keep the three in step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lockstep {

// Values are part of the on-disk format: never renumber, only add.
enum class EventKind : uint8_t {
    None = 0,
    // Market data, 1..31.
    L2Set = 1,       // absolute quantity `qty` at level `price` on `side`; qty 0 removes the level
    L3Add = 2,       // new order `order_id` at `price` with `qty`, joins the back of its level
    L3Modify = 3,    // order `order_id` now has `price`/`qty`; keeps priority only if the price is
                     // unchanged and the quantity did not grow
    L3Delete = 4,    // order `order_id` leaves the book (price/qty informational)
    L3Execute = 5,   // `qty` of resting order `order_id` traded; the order shrinks or leaves
    BookClear = 6,   // every level of the instrument's book is removed
    Trade = 7,       // a print at `price` for `qty`; `side` is the aggressor's side (None if unknown)
    VenueBbo = 8,    // the venue's own best price/qty on `side` (e.g. Binance bookTicker); not
                     // applied to books, kept as an independent check of them
    // 32..63: execution events of our own orders. `order_id` is the client order id, `side` the
    // order's side; ts_event is the venue's time, ts_recv when the core learned of it.
    OrderSubmitted = 32,   // Queue Processing dispatched a new order (the Order is born): its
                           // price and qty
    OrderAccepted = 33,    // the venue acknowledged the order: its price and qty
    OrderRejected = 34,    // the venue refused the new order; the reason is in `seq`
    OrderFilled = 35,      // one fill: price and qty of this fill; flag MAKER if passive
    OrderCanceled = 36,    // the order left the book on our cancel; qty = canceled remainder
    OrderExpired = 37,     // the order ended unfilled by its time in force (IOC remainder)
    OrderReplaced = 38,    // the venue applied a replace: new price, new total qty
    CancelRejected = 39,   // a cancel was refused (order already gone); reason in `seq`
    ReplaceRejected = 40,  // a replace was refused; the order is unchanged; reason in `seq`
    CancelSubmitted = 41,  // Queue Processing dispatched a cancel of `order_id`
    ReplaceSubmitted = 42, // Queue Processing dispatched a replace: requested price, total qty
    TradeBroken = 43,      // the venue broke one of our fills: its price and qty (the order keeps
                           // its filled qty; the position and cash drop the trade)
    TradeCorrected = 44,   // the venue corrected one of our fills' price: the new price, its qty
    // 64..95: control events (timers, trading mode, kill switch).
    Gap = 64,  // the feed lost messages for `instrument` (seq = the id found, order_id = the id
               // expected): its book is invalid until a BookClear (a snapshot starts with one)
    TradingPhase = 65,  // the venue says `instrument` (order_id kPhaseScopeSession: every
                        // instrument) is now in the TradingPhase held in `side`
};

constexpr uint8_t kMarketKindEnd = 32;
constexpr uint8_t kExecutionKindBegin = 32;
constexpr uint8_t kControlKindBegin = 64;

// Where an instrument's trading session stands, as the venue announces it (a TradingPhase event).
// A crossed book is the venue's business in every phase but Continuous, where it is an error in
// the data; Unknown is what we are told before any announcement. Values are on-disk (the `side`
// of a TradingPhase event): only add.
enum class TradingPhase : uint8_t {
    Unknown = 0,
    PreOpen = 1,     // orders are accepted but do not match (they may rest crossed)
    Auction = 2,     // an opening, closing or reopening cross is being called
    Continuous = 3,  // orders match as they arrive: a crossed book cannot rest
    Halted = 4,      // trading halted or paused; quoting may go on
    Closed = 5,      // the session is over (post-close, end of messages)
    Count = 6,
};

// The `order_id` of a TradingPhase event: whom it concerns.
constexpr uint64_t kPhaseScopeInstrument = 0;  // only `instrument`
constexpr uint64_t kPhaseScopeSession = 1;     // the whole session: every instrument of the stream

// The phase an instrument is in: its own, unless that only says it is free to trade (Continuous)
// or says nothing (Unknown), when the session's phase (if announced) decides: a stock the venue
// marks as trading is still in pre-open until the session opens.
inline TradingPhase effective_phase(TradingPhase own, TradingPhase session) noexcept {
    const bool own_decides = own != TradingPhase::Unknown && own != TradingPhase::Continuous;
    if (own_decides || session == TradingPhase::Unknown) return own;
    return session;
}

// A crossed book is normal outside continuous trading: orders rest there without matching.
inline bool crossing_allowed(TradingPhase p) noexcept {
    return p != TradingPhase::Unknown && p != TradingPhase::Continuous;
}

enum class Side : uint8_t {
    None = 0,
    Bid = 1,  // buy
    Ask = 2,  // sell
};

// Bit flags in the `flags` column.
namespace flags {
constexpr uint8_t kLast = 1u << 0;      // last event of one venue message: books are observable
constexpr uint8_t kSnapshot = 1u << 1;  // part of a snapshot (a clear followed by its levels)
constexpr uint8_t kBadTsRecv = 1u << 2; // ts_recv was raised to keep Processing Order monotone
constexpr uint8_t kMaker = 1u << 3;     // execution: the fill was passive (our order rested)
}  // namespace flags

// A non-owning, mutable view of `size` events in ten parallel columns.
struct EventColumns {
    int64_t* ts_event = nullptr;
    int64_t* ts_recv = nullptr;
    uint64_t* seq = nullptr;
    uint32_t* instrument = nullptr;
    uint8_t* kind = nullptr;
    uint8_t* side = nullptr;
    uint8_t* flags = nullptr;
    int64_t* price = nullptr;
    int64_t* qty = nullptr;
    uint64_t* order_id = nullptr;
    size_t size = 0;      // events present
    size_t capacity = 0;  // events the columns can hold

    bool full() const noexcept { return size >= capacity; }

    void push(int64_t ts_event_, int64_t ts_recv_, uint64_t seq_, uint32_t instrument_,
              EventKind kind_, Side side_, uint8_t flags_, int64_t price_, int64_t qty_,
              uint64_t order_id_) noexcept {
        const size_t i = size++;
        ts_event[i] = ts_event_;
        ts_recv[i] = ts_recv_;
        seq[i] = seq_;
        instrument[i] = instrument_;
        kind[i] = static_cast<uint8_t>(kind_);
        side[i] = static_cast<uint8_t>(side_);
        flags[i] = flags_;
        price[i] = price_;
        qty[i] = qty_;
        order_id[i] = order_id_;
    }
};

// Owning storage for C++-only users (tests, tools); Python owns its columns as numpy arrays and
// hands views to the core.
class EventBuffer {
public:
    explicit EventBuffer(size_t capacity = 0) { reserve(capacity); }

    void reserve(size_t capacity) {
        ts_event_.resize(capacity);
        ts_recv_.resize(capacity);
        seq_.resize(capacity);
        instrument_.resize(capacity);
        kind_.resize(capacity);
        side_.resize(capacity);
        flags_.resize(capacity);
        price_.resize(capacity);
        qty_.resize(capacity);
        order_id_.resize(capacity);
        const size_t size = view_.size < capacity ? view_.size : capacity;
        view_ = EventColumns{ts_event_.data(), ts_recv_.data(), seq_.data(), instrument_.data(),
                             kind_.data(),     side_.data(),    flags_.data(), price_.data(),
                             qty_.data(),      order_id_.data(), size,        capacity};
    }
    EventColumns& columns() noexcept { return view_; }
    void clear() noexcept { view_.size = 0; }

private:
    std::vector<int64_t> ts_event_, ts_recv_;
    std::vector<uint64_t> seq_;
    std::vector<uint32_t> instrument_;
    std::vector<uint8_t> kind_, side_, flags_;
    std::vector<int64_t> price_, qty_;
    std::vector<uint64_t> order_id_;
    EventColumns view_{};
};

}  // namespace lockstep
