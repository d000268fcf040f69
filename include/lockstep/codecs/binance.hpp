// Binance websocket captures -> canonical events, with every input record accounted for.
//
// Input: text, one message per line, `<receive ns> <JSON>`, where the JSON is a combined-stream
// message {"stream":"<sym>@<type>","data":{...}} or a bare REST depth snapshot
// {"lastUpdateId":N,"bids":[...],"asks":[...]} (which names no symbol). Several files given in
// order are one stream (daily rotation): all state carries across begin_file().
// Markets: spot, USD-M futures and COIN-M futures (symbols like BTCUSD_PERP / ETHUSD_241227,
// depth diffs with `pu` and the pair field `ps`, quantities in contracts).
//
// Records (lockstep.data.importers.normalized is the contract): one non-empty line is one record; blank
// lines are not records (counted as empty_line). Every record goes out exactly once, in input
// order, with its file, 1-based line, byte offset in the file's text, length (the line's bytes
// without its '\n') and a Rule code;
// every event names the global index of its record. A record the decoder cannot use gets a Rule
// and no events, and decoding goes on with the next line:
//   MALFORMED_RECORD     bad JSON, a known message with missing or ill-typed fields, a value that
//                        is not an exact multiple of its increment, overflow, a line too long;
//   UNSUPPORTED_MESSAGE  a stream we do not decode (kline, partial depth, ...);
//   DUPLICATE_MESSAGE    a depth diff older than the chain (u <= previous u);
//   DELTAS_BEFORE_SNAPSHOT  a depth diff that never met a snapshot (buffer bound, end of stream);
//   TRUNCATED_RECORD     the final line of a file ends mid-message (a killed recorder).
// Records understood but without a canonical form are ordinary zero-event records: subscription
// replies and other non-market JSON, USD-M trades with X != MARKET, depth diffs without levels or
// already inside the snapshot, aggTrades duplicating a trade stream. Each is counted per reason.
// Fatal (a Status and error() naming file, line, offset): configuration problems only -- spot and
// futures depth mixed in one stream, a symbol with no increments while inference is off, a
// snapshot whose symbol cannot be attributed, out of memory.
//
// Encoding choices (docs/encoding.md is normative; these are the Binance specifics):
// - ts_recv: the line's receive ns, raised to the previous accepted line's when the capture clock
//   steps back (flag BadTsRecv, counted with locations), so the output is in Processing Order.
//   Only records without a problem move this clock: a garbage line cannot drag it forward.
// - ts_event: the transaction time T when present (the matching-engine time at which the book or
//   trade happened), else the event time E (when Binance pushed it), in ms -> ns. Spot bookTicker
//   and the spot REST snapshot carry neither: ts_event = ts_recv for them.
// - seq: final update id `u` (depth, bookTicker), trade id `t`, aggregate id `a` (aggTrade),
//   lastUpdateId (snapshot events).
// - depth diff -> one L2Set per level (bids first, then asks; qty 0 removes), LAST on the final one.
//   A diff with no levels is valid and advances the update-id chain, but has nothing to emit: a
//   zero-event record (counted depth_no_levels) instead of an invented no-op event.
// - trade / aggTrade -> Trade, side = aggressor: `m` (buyer is maker) true -> Ask, false -> Bid.
//   USD-M trades whose order type X is not MARKET (insurance fund, ADL) did not cross the book:
//   zero-event records (non_market_trade); futures aggTrades never aggregate those.
// - trade and aggTrade of one symbol are the same prints. Decided per symbol, in the one pass, on
//   first sight of a `trade` message: from then on its aggTrades are zero-event records
//   (agg_trade_duplicate). aggTrades before that first trade are emitted (there was no trade
//   stream yet to carry them), and a trade whose id t is within the last emitted aggTrade's range
//   (t <= its `l`) is a zero-event record (trade_in_agg_trade) so no print is emitted twice. A
//   sniff-based decision would depend on how far the sniff reads; this one only on the data.
// - bookTicker -> two VenueBbo events, bid then ask (LAST on the ask).
// - snapshot -> BookClear then one L2Set per level (bids, then asks), all flagged Snapshot.
// - Update-id reconciliation, per instrument, by Binance's documented rules:
//     before the instrument's first snapshot, diffs are buffered (bounded);
//     after a snapshot with id L, diffs it already contains are zero-event records (spot u <= L,
//     futures u < L), the first applied one should bridge it (spot U <= L+1 <= u, futures
//     U <= L <= u), and each later one must continue the chain (spot U == prev u + 1, futures
//     pu == prev u).
//   A broken chain emits a Gap event (kind 64, seq = the id found: U for spot, pu for futures, or
//   U for a diff not bridging the snapshot; order_id = the id expected; flags LAST; the diff's
//   ts_event) before that diff's own events, which follow as usual: the chain continues from it.
//   Gaps are also counted with locations.
// - Buffered diffs applied after the snapshot are emitted right after it with the snapshot line's
//   ts_recv (the first moment a book could know them) and their own ts_event and seq, and their
//   events (Gap included) are attributed to the snapshot's record: event_record never decreases
//   and chunks stay contiguous. Their own records are zero-event records (or DUPLICATE_MESSAGE /
//   DELTAS_BEFORE_SNAPSHOT if the reconciliation drops them).
// - Holding back: a buffered diff's disposition is known only when its snapshot arrives, and a
//   record must not be handed out before its disposition is known. So while any diff is buffered,
//   records (from the oldest buffered one on) and their events wait in an internal window; only
//   the settled prefix goes to the caller. The window is bounded: when it holds more than
//   max_held_records records, the oldest buffered diffs are given up (DELTAS_BEFORE_SNAPSHOT),
//   which depends only on the data, never on the caller's batch size.
// - Market type: futures depth diffs carry `pu`, spot ones do not; mixing them is fatal. COIN-M is
//   told from USD-M by an underscore contract suffix in a symbol or the `ps` field, or given.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lockstep/base/decimal.hpp"
#include "lockstep/core/events.hpp"
#include "lockstep/codecs/json_scan.hpp"
#include "lockstep/core/rules.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep::binance {

enum class MarketType : uint8_t { Unknown = 0, Spot = 1, UsdM = 2, CoinM = 3 };

inline const char* market_type_name(MarketType m) noexcept {
    switch (m) {
        case MarketType::Spot: return "spot";
        case MarketType::UsdM: return "usdm";
        case MarketType::CoinM: return "coinm";
        default: return "unknown";
    }
}

// Where an instrument's increments came from; reported, never interpreted by the decoder.
enum class IncrementSource : uint8_t { Explicit = 0, Option = 1, BuiltIn = 2, Inferred = 3 };

// Why a line produced no events, counted per reason (the Rule, if any, is in the comment).
enum class Skip : uint8_t {
    EmptyLine = 0,      // blank line: not a record
    NotStreamMessage,   // valid JSON that is neither a stream message nor a snapshot (a reply)
    UnknownStream,      // a stream we do not decode (kline, partial depth, ...): UNSUPPORTED
    NonMarketTrade,     // USD-M trade with X != MARKET
    DepthNoLevels,      // depth diff without levels (chain advanced, nothing to emit)
    DepthInSnapshot,    // depth diff already contained in the snapshot that preceded it
    DepthStale,         // depth diff older than the chain position (u <= prev u): DUPLICATE
    DepthUnsynced,      // depth diff that never met a snapshot: DELTAS_BEFORE_SNAPSHOT
    TruncatedLine,      // final line of a file without newline that ends mid-message: TRUNCATED
    Malformed,          // a line that does not decode: MALFORMED_RECORD
    AggTradeDuplicate,  // aggTrade of a symbol that has a trade stream (same prints)
    TradeInAggTrade,    // trade already emitted as part of an aggTrade (t <= its `l`)
    Count
};
constexpr size_t kSkipCount = static_cast<size_t>(Skip::Count);

inline const char* skip_name(size_t i) noexcept {
    static const char* const names[kSkipCount] = {
        "empty_line",        "not_stream_message", "unknown_stream",
        "non_market_trade",  "depth_no_levels",    "depth_in_snapshot",
        "depth_stale",       "depth_unsynced",     "truncated_line",
        "malformed",         "agg_trade_duplicate", "trade_in_agg_trade",
    };
    return i < kSkipCount ? names[i] : "?";
}

struct Location {
    uint32_t file = 0;
    uint64_t line = 0;      // 1-based within the file
    uint64_t offset = 0;    // byte offset of the line in the file's text
    uint64_t expected = 0;  // gaps: the update id the chain required; ts: the previous ts_recv
    uint64_t got = 0;       // gaps: the id found; ts: the line's own ts_recv
};

// A count plus the first few locations: enough to find the problem without unbounded memory.
class LocationLog {
public:
    static constexpr size_t kKeep = 20;
    LocationLog() { first_.reserve(kKeep); }
    void add(const Location& l) noexcept {
        ++count_;
        if (first_.size() < kKeep) first_.push_back(l);  // reserved: never reallocates
    }
    uint64_t count() const noexcept { return count_; }
    const std::vector<Location>& first() const noexcept { return first_; }

private:
    uint64_t count_ = 0;
    std::vector<Location> first_;
};

struct Counts {
    uint64_t lines = 0;            // every line, blank and skipped ones included
    uint64_t bytes = 0;            // bytes of text in those lines, newlines included
    uint64_t records = 0;          // non-empty lines
    uint64_t depth_messages = 0;
    uint64_t trade_messages = 0;
    uint64_t agg_trade_messages = 0;
    uint64_t book_ticker_messages = 0;
    uint64_t snapshot_messages = 0;
    uint64_t depth_buffered = 0;   // diffs received before their instrument's first snapshot
    uint64_t depth_replayed = 0;   // ... of which were applied right after it
    uint64_t events[65] = {};      // emitted events per EventKind (Gap = 64)
};

// Per-record columns of one output chunk (the caller's arrays).
struct RecordColumns {
    int32_t* file = nullptr;
    int64_t* line = nullptr;
    int64_t* offset = nullptr;
    int64_t* length = nullptr;
    uint8_t* problem = nullptr;
    size_t size = 0;
    size_t capacity = 0;
};

// Where feed() writes: events (with the global record index of each) and records.
struct Output {
    EventColumns ev;
    int64_t* ev_record = nullptr;
    RecordColumns rec;
};

// The reason a record got its Rule, kept for the first few records of each rule.
struct Reason {
    uint64_t record = 0;
    Rule rule = Rule::Ok;
    Location loc;
    char text[240] = {};
};

struct ErrorInfo {
    Status status = Status::Ok;
    uint32_t file = 0;
    uint64_t line = 0;
    uint64_t offset = 0;  // byte offset in the file's text of the error (line start + column)
    char message[320] = {};
};

// One row of the decoder's symbol table, for reports (allocates; not for hot paths).
struct SymbolInfo {
    std::string symbol;
    bool has_increments = false;
    Increment price_increment;
    Increment size_increment;
    IncrementSource source = IncrementSource::Explicit;
    bool indexed = false;  // has an instrument index (explicit, or resolved and seen)
    uint32_t index = 0;
    bool seen = false;
    uint64_t messages = 0;
    // Scan mode: exact decimal GCD of every price / size seen (zeros excluded).
    bool price_inferred_ok = false;
    Increment price_inferred;
    bool size_inferred_ok = false;
    Increment size_inferred;
    uint64_t price_values = 0;
    uint64_t size_values = 0;
};

// Decimal text of an increment for messages ("0.001", "0.25", "100").
inline void format_increment(Increment inc, char* buf, size_t n) noexcept {
    if (n == 0) return;
    char digits[24];
    const int len = inc.valid() ? std::snprintf(digits, sizeof digits, "%lld",
                                                static_cast<long long>(inc.mantissa))
                                : 0;
    if (len <= 0 || inc.exponent < -40 || inc.exponent > 40) {
        std::snprintf(buf, n, "?");
        return;
    }
    char text[96];
    size_t o = 0;
    if (inc.exponent >= 0) {
        for (int i = 0; i < len; ++i) text[o++] = digits[i];
        for (int i = 0; i < inc.exponent; ++i) text[o++] = '0';
    } else {
        const int frac = -inc.exponent;
        const int whole = len - frac;  // digits before the point (<= 0: only leading zeros)
        if (whole > 0) {
            for (int i = 0; i < whole; ++i) text[o++] = digits[i];
        } else {
            text[o++] = '0';
        }
        text[o++] = '.';
        for (int i = whole; i < 0; ++i) text[o++] = '0';
        for (int i = whole > 0 ? whole : 0; i < len; ++i) text[o++] = digits[i];
    }
    text[o] = 0;
    std::snprintf(buf, n, "%s", text);
}

class BinanceDecoder {
public:
    BinanceDecoder() {
        lv_.reserve(4096);
        lvl_.reserve(4096);
        carry_.reserve(1 << 16);
        win_ev_.reserve(1024);
        win_recs_.reserve(256);
        reasons_.reserve(kRuleCount * LocationLog::kKeep);  // never reallocates afterwards
    }
    BinanceDecoder(const BinanceDecoder&) = delete;
    BinanceDecoder& operator=(const BinanceDecoder&) = delete;

    // ---- configuration (allocates; call before feeding) ----

    // A symbol with a fixed instrument index.
    Status add_instrument(const char* sym, size_t n, uint32_t index, Increment price, Increment size,
                          IncrementSource source) {
        Slot* s = nullptr;
        const Status st = new_slot(sym, n, price, size, source, &s);
        if (st != Status::Ok) return st;
        for (const auto& o : slots_) {
            if (o.get() != s && o->indexed && o->index == index) {
                remove_last_slot();
                return Status::InvalidArgument;
            }
        }
        s->indexed = true;
        s->index = index;
        if (index >= next_index_) next_index_ = index + 1;
        return Status::Ok;
    }

    // A symbol whose increments are known but which gets an index only if it appears in the data
    // (built-in or inferred tables), so unused catalogue entries do not pollute the table.
    Status add_catalog(const char* sym, size_t n, Increment price, Increment size,
                       IncrementSource source) {
        return new_slot(sym, n, price, size, source, nullptr);
    }

    // Increments for every symbol not otherwise known (one-symbol captures, explicit options).
    Status set_default_increments(Increment price, Increment size) {
        FixedScale a, b;
        Status st = FixedScale::make(price, a);
        if (st == Status::Ok) st = FixedScale::make(size, b);
        if (st != Status::Ok) return st;
        default_price_ = price;
        default_size_ = size;
        has_default_ = true;
        return Status::Ok;
    }

    // Snapshot lines name no symbol: normally the one symbol seen so far; this overrides it.
    Status set_snapshot_symbol(const char* sym, size_t n) {
        if (!valid_symbol(sym, n)) return Status::InvalidArgument;
        snapshot_symbol_.assign(sym, n);
        return Status::Ok;
    }

    // The market, when the caller knows it: depth diffs of the other family are then fatal.
    void set_market_type(MarketType m) noexcept {
        forced_market_ = m;
        if (m == MarketType::Spot) market_ = MarketType::Spot;
        if (m == MarketType::UsdM || m == MarketType::CoinM) market_ = MarketType::UsdM;
    }

    // Scan mode emits nothing and needs no increments: it collects, per symbol, the exact decimal
    // GCD of every price and size (the inferred increments), plus symbols and market type.
    void set_scan_mode(bool on) noexcept { scan_ = on; }

    // Bound on depth diffs buffered before a snapshot (levels); beyond it the oldest half is
    // dropped and counted (depth_unsynced).
    void set_pending_limit(size_t levels, size_t messages) noexcept {
        max_pending_levels_ = levels ? levels : 1;
        max_pending_msgs_ = messages ? messages : 1;
    }
    // Bound on records held back behind a buffered diff (see the header comment).
    void set_max_held_records(size_t n) noexcept { max_held_records_ = n ? n : 1; }
    void set_max_line(size_t bytes) noexcept { max_line_ = bytes ? bytes : 1; }

    // ---- decoding ----

    // Starts file `file_index` (as the caller numbers its inputs): line numbers restart, every
    // other piece of state carries on. A partial line left by a previous file without finish()
    // is dropped.
    void begin_file(uint32_t file_index) noexcept {
        file_ = file_index;
        line_no_ = 0;
        file_bytes_ = 0;
        file_records_ = 0;
        carry_.clear();
        discarding_ = false;
        discard_len_ = 0;
    }

    // Decodes the complete lines in data[0, len) into `out` (appending at its sizes). Returns Ok
    // with *consumed == len when everything was taken (a trailing partial line is kept inside for
    // the next call or finish()); OutputFull when `out` is full: hand out its records and events,
    // reset the sizes and call again with data + *consumed (if `out` holds no record, one record
    // needs more event room than it has: needed_events() says how much); a fatal status with
    // error() filled, after which every call returns the same error.
    Status feed(const char* data, size_t len, Output& out, size_t* consumed) noexcept {
        *consumed = 0;
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        Status st = drain(out);
        if (st != Status::Ok || len == 0) return st;
        size_t pos = 0;
        if (discarding_ || !carry_.empty()) {
            const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
            if (!nl) {
                if (!append_carry(data, len)) return error_.status;
                *consumed = len;
                return Status::Ok;
            }
            const size_t part = size_t(nl - data);
            st = choose_sink(out, discarding_ ? 0 : carry_.size() + part);
            if (st != Status::Ok) return st;
            if (!append_carry(data, part)) return error_.status;
            st = discarding_ ? line(nullptr, discard_len_, false, true)
                             : line(carry_.data(), carry_.size(), false, false);
            carry_.clear();
            discarding_ = false;
            discard_len_ = 0;
            if (st != Status::Ok) return st;
            pos = part + 1;
            st = after_line(out);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
        }
        while (pos < len) {
            const char* b = data + pos;
            const char* nl = static_cast<const char*>(std::memchr(b, '\n', len - pos));
            if (!nl) {
                if (!append_carry(b, len - pos)) {
                    *consumed = pos;
                    return error_.status;
                }
                pos = len;
                break;
            }
            const size_t n = size_t(nl - b);
            const bool too_long = n > max_line_;
            st = choose_sink(out, too_long ? 0 : n);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
            st = line(b, n, false, too_long);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
            pos += n + 1;
            st = after_line(out);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
        }
        *consumed = pos;
        return Status::Ok;
    }

    // End of the current file: decodes a final line that lacks its newline; if that line ends
    // mid-message it becomes a TRUNCATED_RECORD. Call again after OutputFull.
    Status finish(Output& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        Status st = drain(out);
        if (st != Status::Ok) return st;
        if (discarding_ || !carry_.empty()) {
            st = choose_sink(out, discarding_ ? 0 : carry_.size());
            if (st != Status::Ok) return st;
            st = discarding_ ? line(nullptr, discard_len_, true, true)
                             : line(carry_.data(), carry_.size(), true, false);
            carry_.clear();
            discarding_ = false;
            discard_len_ = 0;
            if (st != Status::Ok) return st;
            return after_line(out);
        }
        return Status::Ok;
    }

    // After the last file: buffered diffs that never met a snapshot become DELTAS_BEFORE_SNAPSHOT
    // records and the held window is handed out. Call again after OutputFull.
    Status end_stream(Output& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        for (auto& s : slots_) {
            for (const auto& m : s->pending) unsynced(m, "the stream ended before a snapshot");
            s->pending.clear();
            s->pending_levels.clear();
        }
        pending_levels_total_ = 0;
        pending_msgs_total_ = 0;
        return drain(out);
    }

    // ---- reports ----

    const ErrorInfo& error() const noexcept { return error_; }
    const Counts& counts() const noexcept { return counts_; }
    const LocationLog& skips(size_t reason) const noexcept { return skips_[reason]; }
    const LocationLog& problems(size_t rule) const noexcept { return problems_[rule]; }
    const std::vector<Reason>& reasons() const noexcept { return reasons_; }
    const LocationLog& gaps() const noexcept { return gaps_; }
    const LocationLog& ts_recv_raised() const noexcept { return ts_raised_; }
    uint64_t lines_in_file() const noexcept { return line_no_; }
    uint64_t records_in_file() const noexcept { return file_records_; }
    uint64_t file_bytes() const noexcept { return file_bytes_; }
    size_t carried_bytes() const noexcept { return carry_.size() + discard_len_; }
    size_t needed_events() const noexcept { return need_events_; }
    uint64_t next_record() const noexcept { return next_record_; }

    // Authoritative from depth diffs (`pu` present or not) or the caller; when the capture has
    // none, from the fields that only futures send (trade X, bookTicker e/E/T, snapshot E/T).
    // COIN-M from its symbols (contract suffix after '_') or the `ps` field.
    MarketType market_type() const noexcept {
        if (forced_market_ != MarketType::Unknown) return forced_market_;
        MarketType m = market_;
        if (m == MarketType::Unknown) {
            if (hint_coinm_) return MarketType::CoinM;
            if (hint_usdm_ && !hint_spot_) return MarketType::UsdM;
            if (hint_spot_ && !hint_usdm_) return MarketType::Spot;
            return MarketType::Unknown;
        }
        if (m == MarketType::UsdM && hint_coinm_) return MarketType::CoinM;
        return m;
    }

    std::vector<SymbolInfo> symbols() const {
        std::vector<SymbolInfo> out;
        out.reserve(slots_.size());
        for (const auto& s : slots_) {
            SymbolInfo i;
            i.symbol = s->symbol;
            i.has_increments = s->has_increments;
            i.price_increment = s->price_inc;
            i.size_increment = s->size_inc;
            i.source = s->source;
            i.indexed = s->indexed;
            i.index = s->index;
            i.seen = s->seen;
            i.messages = s->messages;
            i.price_inferred_ok = s->price_gcd.result(i.price_inferred);
            i.size_inferred_ok = s->size_gcd.result(i.size_inferred);
            i.price_values = s->price_gcd.count();
            i.size_values = s->size_gcd.count();
            out.push_back(std::move(i));
        }
        return out;
    }

private:
    // ---- per-symbol state ----

    struct Level {
        int64_t price;
        int64_t qty;
        Side side;
    };

    struct PendingMsg {
        uint64_t first_id, final_id, prev_id;
        bool has_prev;
        int64_t ts_event;
        uint32_t level_begin, level_count;
        Location loc;
        uint64_t record;  // global index: its disposition is settled when the snapshot comes
    };

    enum class Sync : uint8_t { NoSnapshot, AwaitFirst, Live };

    struct Slot {
        std::string symbol;
        bool has_increments = false;
        Increment price_inc, size_inc;
        FixedScale price_fs, size_fs;
        IncrementSource source = IncrementSource::Explicit;
        bool indexed = false;
        uint32_t index = 0;
        bool seen = false;
        uint64_t messages = 0;
        Sync sync = Sync::NoSnapshot;
        uint64_t anchor = 0;  // lastUpdateId of the latest snapshot
        uint64_t last_u = 0;  // final update id of the last applied diff
        std::vector<PendingMsg> pending;
        std::vector<Level> pending_levels;
        DecimalGcd price_gcd, size_gcd;
        bool has_trade_stream = false;  // a `trade` message was seen: aggTrades are duplicates
        bool agg_emitted = false;       // an aggTrade was emitted as Trade ...
        uint64_t agg_last_l = 0;        // ... covering trade ids up to this `l`
    };

    struct SvHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    static bool valid_symbol(const char* s, size_t n) noexcept {
        if (n == 0 || n > 32) return false;
        for (size_t i = 0; i < n; ++i) {
            const char c = s[i];
            const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
            if (!ok) return false;
        }
        return true;
    }

    Status new_slot(const char* sym, size_t n, Increment price, Increment size,
                    IncrementSource source, Slot** out) {
        if (!valid_symbol(sym, n)) return Status::InvalidArgument;
        if (by_symbol_.find(std::string_view(sym, n)) != by_symbol_.end())
            return Status::InvalidArgument;
        auto s = std::make_unique<Slot>();
        s->symbol.assign(sym, n);
        if (price.valid() || size.valid()) {
            Status st = FixedScale::make(price, s->price_fs);
            if (st == Status::Ok) st = FixedScale::make(size, s->size_fs);
            if (st != Status::Ok) return st;
            s->has_increments = true;
            s->price_inc = price;
            s->size_inc = size;
        }
        s->source = source;
        s->pending.reserve(64);
        by_symbol_.emplace(s->symbol, uint32_t(slots_.size()));
        slots_.push_back(std::move(s));
        if (out) *out = slots_.back().get();
        last_slot_ = nullptr;
        return Status::Ok;
    }

    void remove_last_slot() {
        by_symbol_.erase(slots_.back()->symbol);
        slots_.pop_back();
        last_slot_ = nullptr;
    }

    // Symbol -> slot, creating it on first sight when allowed. Hot: the last hit is cached.
    Slot* resolve(json::Span sym) noexcept {
        if (last_slot_ && last_slot_->symbol.size() == sym.len &&
            std::memcmp(last_slot_->symbol.data(), sym.ptr, sym.len) == 0) {
            return touch(last_slot_);
        }
        auto it = by_symbol_.find(std::string_view(sym.ptr, sym.len));
        Slot* s = nullptr;
        if (it != by_symbol_.end()) {
            s = slots_[it->second].get();
        } else {
            if (!valid_symbol(sym.ptr, sym.len)) {
                fail(Status::DecodeError, "invalid symbol \"%s\"", snip(sym));
                return nullptr;
            }
            if (!scan_ && !has_default_) {
                fatal(Status::UnknownInstrument,
                     "no price/size increments for symbol \"%s\" (first seen here): configure it "
                     "or let increments be inferred",
                     snip(sym));
                return nullptr;
            }
            try {
                const Status st = new_slot(sym.ptr, sym.len, scan_ ? Increment{} : default_price_,
                                           scan_ ? Increment{} : default_size_,
                                           IncrementSource::Option, &s);
                if (st != Status::Ok) {
                    fatal(st, "cannot register symbol \"%s\"", snip(sym));
                    return nullptr;
                }
            } catch (...) {
                fatal(Status::InvalidArgument, "out of memory registering a symbol");
                return nullptr;
            }
        }
        if (!scan_ && !s->has_increments) {
            fatal(Status::UnknownInstrument, "no price/size increments for symbol \"%s\"",
                 snip(sym));
            return nullptr;
        }
        last_slot_ = s;
        return touch(s);
    }

    Slot* touch(Slot* s) noexcept {
        if (!s->seen) {
            s->seen = true;
            // COIN-M contracts are named <pair>_PERP or <pair>_<yymmdd>; spot and USD-M never
            // carry an underscore.
            if (std::memchr(s->symbol.data(), '_', s->symbol.size())) hint_coinm_ = true;
            ++n_seen_;
            seen_slot_ = s;
            if (!scan_ && !s->indexed) {
                s->indexed = true;
                s->index = next_index_++;
            }
        }
        return s;
    }

    // ---- one JSON object's fields of interest ----

    enum Field : uint32_t {
        kE = 0, kEventTime, kTxTime, kSym, kFirstId, kFinalId, kPrevId, kTradeId, kPrice, kQty,
        kMaker, kOrderType, kBidStr, kAskStr, kBidLevels, kAskLevels, kBidQty, kAskQty,
        kLastUpdateId, kBids, kAsks, kStream, kData, kAggId, kFirstTrade, kLastTrade, kPair,
        kFieldCount
    };
    static constexpr uint32_t bit(Field f) noexcept { return 1u << f; }

    struct Fields {
        uint32_t has = 0;  // present with the expected type
        uint32_t bad = 0;  // present with another type: an error only if the message needs it
        uint64_t num[kFieldCount];
        json::Span str[kFieldCount];
        bool maker = false;
        uint32_t lv_begin[2] = {0, 0}, lv_end[2] = {0, 0};  // [bids, asks] ranges in lv_
        void reset() noexcept {
            has = 0;
            bad = 0;
        }
    };

    struct LevelSpan {
        json::Span price, qty;
    };

    enum class Want : uint8_t { None, Num, Str, Bool, StrOrLevels, Levels, Object };

    static Field key_field(json::Span k, bool top, Want& want) noexcept {
        want = Want::None;
        if (k.len == 1) {
            switch (k.ptr[0]) {
                case 'e': want = Want::Str; return kE;
                case 'E': want = Want::Num; return kEventTime;
                case 'T': want = Want::Num; return kTxTime;
                case 's': want = Want::Str; return kSym;
                case 'U': want = Want::Num; return kFirstId;
                case 'u': want = Want::Num; return kFinalId;
                case 't': want = Want::Num; return kTradeId;
                case 'p': want = Want::Str; return kPrice;
                case 'q': want = Want::Str; return kQty;
                case 'm': want = Want::Bool; return kMaker;
                case 'X': want = Want::Str; return kOrderType;
                case 'b': want = Want::StrOrLevels; return kBidStr;
                case 'a': want = Want::StrOrLevels; return kAskStr;  // aggTrade: a number
                case 'f': want = Want::Num; return kFirstTrade;
                case 'l': want = Want::Num; return kLastTrade;
                case 'B': want = Want::Str; return kBidQty;
                case 'A': want = Want::Str; return kAskQty;
                default: return kFieldCount;
            }
        }
        if (k == "pu") {
            want = Want::Num;
            return kPrevId;
        }
        if (k == "ps") {
            want = Want::Str;
            return kPair;
        }
        if (!top) return kFieldCount;
        if (k == "stream") {
            want = Want::Str;
            return kStream;
        }
        if (k == "data") {
            want = Want::Object;
            return kData;
        }
        if (k == "bids") {
            want = Want::Levels;
            return kBids;
        }
        if (k == "asks") {
            want = Want::Levels;
            return kAsks;
        }
        if (k == "lastUpdateId") {
            want = Want::Num;
            return kLastUpdateId;
        }
        return kFieldCount;
    }

    // Parses the object at the cursor into `f` (and, at the top level, "data" into `data`).
    bool parse_object(json::Scanner& s, Fields& f, Fields* data) noexcept {
        if (!s.begin_object()) return false;
        bool first = true;
        json::Span key;
        while (s.next_member(key, first)) {
            Want want;
            const Field fld = key_field(key, data != nullptr, want);
            if (want == Want::None) {
                if (!s.skip_value()) return false;
                continue;
            }
            const json::Type t = s.peek();
            if ((f.has | f.bad) & bit(fld) ||
                (fld == kBidStr && ((f.has | f.bad) & bit(kBidLevels))) ||
                (fld == kAskStr && ((f.has | f.bad) & (bit(kAskLevels) | bit(kAggId))))) {
                // json.loads would keep the last one; silently choosing is worse than refusing.
                dup_key_ = key;
                return s.fail("duplicate key");
            }
            switch (want) {
                case Want::Num:
                    if (t == json::Type::Number) {
                        bool is_uint;
                        if (!s.number(f.num[fld], is_uint)) return false;
                        (is_uint ? f.has : f.bad) |= bit(fld);
                        continue;
                    }
                    break;
                case Want::Str:
                    if (t == json::Type::String) {
                        if (!s.string(f.str[fld])) return false;
                        f.has |= bit(fld);
                        continue;
                    }
                    break;
                case Want::Bool:
                    if (t == json::Type::True || t == json::Type::False) {
                        if (!s.literal(t)) return false;
                        f.maker = t == json::Type::True;
                        f.has |= bit(fld);
                        continue;
                    }
                    break;
                case Want::StrOrLevels:
                    if (t == json::Type::String) {
                        if (!s.string(f.str[fld])) return false;
                        f.has |= bit(fld);
                        continue;
                    }
                    if (t == json::Type::Array) {
                        const int side = fld == kBidStr ? 0 : 1;
                        const Field lf = side == 0 ? kBidLevels : kAskLevels;
                        if (!parse_levels(s, f, side, lf)) return false;
                        continue;
                    }
                    if (t == json::Type::Number && fld == kAskStr) {
                        bool is_uint;
                        if (!s.number(f.num[kAggId], is_uint)) return false;
                        (is_uint ? f.has : f.bad) |= bit(kAggId);
                        continue;
                    }
                    break;
                case Want::Levels:
                    if (t == json::Type::Array) {
                        if (!parse_levels(s, f, fld == kBids ? 0 : 1, fld)) return false;
                        continue;
                    }
                    break;
                case Want::Object:
                    if (t == json::Type::Object) {
                        if (!parse_object(s, *data, nullptr)) return false;
                        f.has |= bit(fld);
                        continue;
                    }
                    break;
                case Want::None:
                    break;
            }
            f.bad |= bit(fld);
            if (!s.skip_value()) return false;
        }
        if (s.failed()) return false;
        s.close();
        return true;
    }

    // [[price, qty, ...], ...] with price and qty strings (extra elements, which old spot captures
    // carry as `[]`, are validated and ignored). Another shape that is still valid JSON marks the
    // field as ill-typed instead of failing: it matters only if the message needs the field.
    bool parse_levels(json::Scanner& s, Fields& f, int side, Field fld) noexcept {
        const char* start = s.pos();
        const int depth = s.depth();
        const size_t mark = lv_.size();
        if (!s.begin_array()) return false;
        bool first = true;
        while (s.next_element(first)) {
            if (s.peek() != json::Type::Array) goto other_shape;
            {
                if (!s.begin_array()) return false;
                bool f2 = true;
                LevelSpan l;
                if (!s.next_element(f2)) {
                    if (s.failed()) return false;
                    goto other_shape;
                }
                if (s.peek() != json::Type::String) goto other_shape;
                if (!s.string(l.price)) return false;
                if (!s.next_element(f2)) {
                    if (s.failed()) return false;
                    goto other_shape;
                }
                if (s.peek() != json::Type::String) goto other_shape;
                if (!s.string(l.qty)) return false;
                while (s.next_element(f2)) {
                    if (!s.skip_value()) return false;
                }
                if (s.failed()) return false;
                s.close();
                if (lv_.size() == lv_.capacity() && !grow(lv_)) return s.fail("out of memory");
                lv_.push_back(l);
            }
        }
        if (s.failed()) return false;
        s.close();
        f.lv_begin[side] = uint32_t(mark);
        f.lv_end[side] = uint32_t(lv_.size());
        f.has |= bit(fld);
        return true;
    other_shape:
        lv_.resize(mark);
        s.rewind(start, depth);
        if (!s.skip_value()) return false;
        f.bad |= bit(fld);
        return true;
    }

    template <class V>
    static bool grow(V& v) noexcept {
        try {
            v.reserve(v.capacity() < 64 ? 128 : v.capacity() * 2);
            return true;
        } catch (...) {
            return false;
        }
    }

    static const char* field_name(Field f) noexcept {
        static const char* const names[kFieldCount] = {
            "e", "E", "T", "s", "U", "u", "pu", "t", "p", "q", "m", "X", "b", "a", "b", "a",
            "B", "A", "lastUpdateId", "bids", "asks", "stream", "data", "a", "f", "l", "ps"};
        return f < kFieldCount ? names[f] : "?";
    }

    static const char* field_expect(Field f) noexcept {
        switch (f) {
            case kEventTime: case kTxTime: case kFirstId: case kFinalId: case kPrevId:
            case kTradeId: case kLastUpdateId: case kAggId: case kFirstTrade: case kLastTrade:
                return "a non-negative integer";
            case kMaker: return "true or false";
            case kBidLevels: case kAskLevels: case kBids: case kAsks:
                return "an array of [price, quantity] string pairs";
            case kData: return "an object";
            default: return "a string";
        }
    }

    // Every field in `mask` must be present with its expected type.
    Status require(const Fields& f, uint32_t mask, const char* what) noexcept {
        if ((f.has & mask) == mask) return Status::Ok;
        for (uint32_t i = 0; i < kFieldCount; ++i) {
            const Field fld = Field(i);
            if (!(mask & bit(fld)) || (f.has & bit(fld))) continue;
            uint32_t other = f.bad & bit(fld);
            // "b"/"a" are strings in bookTicker and level arrays in depth: the other form is a
            // type error, not a missing field.
            if (fld == kBidStr) other |= f.has & bit(kBidLevels);
            if (fld == kAskStr) other |= f.has & bit(kAskLevels);
            if (fld == kBidLevels) other |= f.has & bit(kBidStr);
            if (fld == kAskLevels) other |= f.has & bit(kAskStr);
            if (fld == kAskStr) other |= f.has & bit(kAggId);
            if (fld == kAggId) other |= (f.has | f.bad) & (bit(kAskStr) | bit(kAskLevels));
            if (other)
                return fail(Status::DecodeError, "%s: field \"%s\" is not %s", what,
                            field_name(fld), field_expect(fld));
            return fail(Status::DecodeError, "%s: missing field \"%s\"", what, field_name(fld));
        }
        return Status::Ok;
    }

    // ---- lines ----

    static bool blank(const char* b, size_t n) noexcept {
        for (size_t i = 0; i < n; ++i)
            if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r') return false;
        return true;
    }

    // One line: a record unless blank. Returns Ok unless a fatal error stopped the decoder; a
    // record the decoder cannot use gets its Rule and no events.
    Status line(const char* b, size_t n, bool unterminated, bool too_long) noexcept {
        ++line_no_;
        ++counts_.lines;
        line_offset_ = file_bytes_;
        const size_t adv = n + (unterminated ? 0 : 1);
        file_bytes_ += adv;
        counts_.bytes += adv;
        if (!too_long && blank(b, n)) {
            skip_at(Skip::EmptyLine, here());
            return Status::Ok;
        }
        rec_index_ = next_record_++;
        ++counts_.records;
        ++file_records_;
        problem_ = Rule::Ok;
        reason_[0] = 0;
        eof_error_ = false;
        err_col_ = 0;
        ts_raise_ = false;
        ts_commit_ = last_ts_recv_;
        in_line_ = true;
        scan_slot_ = nullptr;
        if (scan_) {
            line_pgcd_ = DecimalGcd{};
            line_sgcd_ = DecimalGcd{};
        }
        const size_t mark = direct_ ? out_->ev.size : win_ev_.size();
        const Status st = too_long ? fail(Status::DecodeError, "line longer than %zu bytes", max_line_) : decode_line(b, n);
        in_line_ = false;
        if (error_.status != Status::Ok) return error_.status;  // fatal
        if (st != Status::Ok) {
            if (direct_)
                out_->ev.size = mark;
            else
                win_ev_.resize(mark);
            if (unterminated && eof_error_ && problem_ == Rule::MalformedRecord) {
                // The capture stopped mid-write: the usual end of a killed recorder.
                problem_ = Rule::TruncatedRecord;
                skip_at(Skip::TruncatedLine, here());
            } else if (problem_ == Rule::MalformedRecord) {
                skip_at(Skip::Malformed, here());
            }
        }
        if (problem_ == Rule::Ok) {
            if (ts_raise_) ts_raised_.add(ts_loc_);
            last_ts_recv_ = ts_commit_;
            if (scan_slot_) {
                scan_slot_->price_gcd.merge(line_pgcd_);
                scan_slot_->size_gcd.merge(line_sgcd_);
            }
        } else {
            log_problem(rec_index_, problem_, here(), reason_);
        }
        if (scan_) return Status::Ok;
        return push_record(uint64_t(n), uint8_t(problem_));
    }

    Status decode_line(const char* b, size_t n) noexcept {
        const char* p = b;
        const char* end = b + n;
        uint64_t ts = 0;
        bool overflow = false;
        int digits = 0;
        for (; p < end && json::detail::is_digit(*p); ++p, ++digits) {
            overflow |= __builtin_mul_overflow(ts, 10u, &ts);
            overflow |= __builtin_add_overflow(ts, uint64_t(*p - '0'), &ts);
        }
        if (digits == 0) return fail(Status::DecodeError, "line does not start with a receive timestamp");
        if (overflow || ts > uint64_t(INT64_MAX))
            return fail(Status::Overflow, "receive timestamp %.*s is out of range", digits > 40 ? 40 : digits, b);
        if (p == end) {
            eof_error_ = true;
            err_col_ = n;
            return fail(Status::DecodeError, "line ends after the receive timestamp");
        }
        if (*p != ' ') {
            err_col_ = size_t(p - b);
            return fail(Status::DecodeError, "expected a space after the receive timestamp");
        }
        ++p;
        json::Scanner s(p, end);
        top_.reset();
        data_.reset();
        lv_.clear();
        if (s.peek() != json::Type::Object) {
            if (!s.skip_value() || !s.finish()) return json_error(s, size_t(p - b));
            skip_at(Skip::NotStreamMessage, here());
            return Status::Ok;
        }
        if (!parse_object(s, top_, &data_) || !s.finish()) return json_error(s, size_t(p - b));
        return dispatch(int64_t(ts));
    }

    Status json_error(const json::Scanner& s, size_t base) noexcept {
        eof_error_ = s.error_at_end();
        err_col_ = base + s.error_offset();
        if (std::strcmp(s.what(), "duplicate key") == 0)
            return fail(Status::DecodeError, "duplicate key \"%s\" at column %zu", snip(dup_key_),
                        err_col_ + 1);
        return fail(Status::DecodeError, "malformed JSON: %s at column %zu", s.what(),
                    err_col_ + 1);
    }

    enum class StreamKind : uint8_t { Unknown, Depth, Trade, AggTrade, BookTicker };

    static StreamKind classify(json::Span st, json::Span& prefix) noexcept {
        const char* at = static_cast<const char*>(std::memchr(st.ptr, '@', st.len));
        if (!at) return StreamKind::Unknown;
        prefix = json::Span{st.ptr, uint32_t(at - st.ptr)};
        const json::Span rest{at + 1, uint32_t(st.len - prefix.len - 1)};
        if (rest == "trade") return StreamKind::Trade;
        if (rest == "aggTrade") return StreamKind::AggTrade;
        if (rest == "bookTicker") return StreamKind::BookTicker;
        // "depth" and "depth@100ms" are diffs; "depth5"/"depth20@100ms" are partial books.
        if (rest.len >= 5 && std::memcmp(rest.ptr, "depth", 5) == 0 &&
            (rest.len == 5 || rest.ptr[5] == '@'))
            return StreamKind::Depth;
        return StreamKind::Unknown;
    }

    Status dispatch(int64_t ts) noexcept {
        if (top_.has & bit(kStream)) {
            const json::Span stream = top_.str[kStream];
            json::Span prefix;
            const StreamKind kind = classify(stream, prefix);
            if (kind == StreamKind::Unknown) {
                skip_at(Skip::UnknownStream, here());
                return reject(Rule::UnsupportedMessage, "stream \"%s\" is not decoded",
                              snip(stream));
            }
            if (!(top_.has & bit(kData)))
                return require(top_, bit(kData), kind_name(kind));
            uint8_t lf;
            const int64_t tr = recv_time(ts, lf);
            switch (kind) {
                case StreamKind::Depth: return on_depth(tr, lf, prefix);
                case StreamKind::Trade: return on_trade(tr, lf, prefix);
                case StreamKind::AggTrade: return on_agg_trade(tr, lf, prefix);
                default: return on_book_ticker(tr, lf, prefix);
            }
        }
        if (top_.bad & bit(kStream))
            return fail(Status::DecodeError, "field \"stream\" is not a string");
        if ((top_.has | top_.bad) & bit(kLastUpdateId)) {
            uint8_t lf;
            const int64_t tr = recv_time(ts, lf);
            return on_snapshot(tr, lf);
        }
        skip_at(Skip::NotStreamMessage, here());
        return Status::Ok;
    }

    static const char* kind_name(StreamKind k) noexcept {
        switch (k) {
            case StreamKind::Depth: return "depth message";
            case StreamKind::Trade: return "trade message";
            case StreamKind::AggTrade: return "aggTrade message";
            case StreamKind::BookTicker: return "bookTicker message";
            default: return "message";
        }
    }

    // The line's ts_recv; the clock only moves (and a raise is only counted) if the record is
    // accepted, which line() decides at its end.
    int64_t recv_time(int64_t ts, uint8_t& line_flags) noexcept {
        line_flags = 0;
        if (ts < last_ts_recv_) {
            ts_loc_ = here();
            ts_loc_.expected = uint64_t(last_ts_recv_);
            ts_loc_.got = uint64_t(ts);
            ts_raise_ = true;
            ts_commit_ = last_ts_recv_;
            line_flags = flags::kBadTsRecv;
            return last_ts_recv_;
        }
        ts_commit_ = ts;
        return ts;
    }

    bool ms_to_ns(uint64_t ms, const char* name, int64_t& out) noexcept {
        if (ms > uint64_t(INT64_MAX / 1000000)) {
            fail(Status::Overflow, "%s %llu ms is out of the nanosecond range", name,
                 static_cast<unsigned long long>(ms));
            return false;
        }
        out = int64_t(ms) * 1000000;
        return true;
    }

    // T (transaction time) when present, else E (event time), else the receive time. A time
    // field that is present but not an integer is an error, not a reason to use the other one.
    bool event_time(const Fields& f, int64_t fallback, const char* what, int64_t& out) noexcept {
        const uint32_t bad = f.bad & (bit(kTxTime) | bit(kEventTime));
        if (bad) {
            require(f, bad, what);
            return false;
        }
        if (f.has & bit(kTxTime)) return ms_to_ns(f.num[kTxTime], "transaction time T", out);
        if (f.has & bit(kEventTime)) return ms_to_ns(f.num[kEventTime], "event time E", out);
        out = fallback;
        return true;
    }

    Status check_symbol(json::Span prefix, json::Span sym, const char* what) noexcept {
        bool ok = prefix.len == sym.len;
        for (uint32_t i = 0; ok && i < sym.len; ++i) {
            char a = prefix.ptr[i], b = sym.ptr[i];
            if (a >= 'A' && a <= 'Z') a = char(a + 32);
            if (b >= 'A' && b <= 'Z') b = char(b + 32);
            ok = a == b;
        }
        if (ok) return Status::Ok;
        return fail(Status::DecodeError, "%s: stream prefix \"%s\" does not match symbol \"%s\"",
                    what, snip(prefix), snip(sym));
    }

    Status check_event_type(const Fields& f, const char* expect, bool required,
                            const char* what) noexcept {
        if (!(f.has & bit(kE))) {
            if (f.bad & bit(kE) || required) return require(f, bit(kE), what);
            return Status::Ok;
        }
        if (f.str[kE].equals(expect, std::strlen(expect))) return Status::Ok;
        return fail(Status::DecodeError, "%s: event type \"%s\" where \"%s\" was expected", what,
                    snip(f.str[kE]), expect);
    }

    // ---- values ----

    bool convert(json::Span v, const FixedScale& fs, const Increment& inc, const char* what,
                 uint32_t level, int64_t& out) noexcept {
        const Status st = to_fixed(v.ptr, v.len, fs, out);
        if (st == Status::Ok) {
            if (out >= 0) return true;
            value_error(Status::DecodeError, v, what, level, "is negative", inc);
            return false;
        }
        value_error(st, v, what, level,
                    st == Status::NotMultiple ? "is not a multiple of the increment"
                    : st == Status::Overflow  ? "overflows int64 multiples of the increment"
                                              : "is not a decimal number",
                    inc);
        return false;
    }

    bool gcd_add(DecimalGcd& g, json::Span v, const char* what, uint32_t level) noexcept {
        Decimal d;
        const Status st = parse_decimal(v.ptr, v.len, d);
        if (st == Status::Ok && !d.negative) {
            g.add(d);
            return true;
        }
        value_error(st == Status::Ok ? Status::DecodeError : st, v, what, level,
                    st == Status::Ok         ? "is negative"
                    : st == Status::Overflow ? "has more than 19 significant digits"
                                             : "is not a decimal number",
                    Increment{});
        return false;
    }

    void value_error(Status st, json::Span v, const char* what, uint32_t level, const char* why,
                     const Increment& inc) noexcept {
        char incs[48] = "";
        if (inc.valid() && st != Status::DecodeError) {
            char tmp[40];
            format_increment(inc, tmp, sizeof tmp);
            std::snprintf(incs, sizeof incs, " %s", tmp);
        }
        if (level == kNoLevel)
            fail(st, "%s \"%s\" %s%s", what, snip(v), why, incs);
        else
            fail(st, "%s of level %u \"%s\" %s%s", what, level, snip(v), why, incs);
    }

    static constexpr uint32_t kNoLevel = ~0u;

    // Levels of `f` (bids, then asks) into lvl_, converted with the slot's increments.
    bool convert_levels(const Slot& s, const Fields& f) noexcept {
        lvl_.clear();
        const size_t total = (f.lv_end[0] - f.lv_begin[0]) + (f.lv_end[1] - f.lv_begin[1]);
        if (lvl_.capacity() < total) {
            try {
                lvl_.reserve(total * 2);
            } catch (...) {
                fatal(Status::InvalidArgument, "out of memory");
                return false;
            }
        }
        for (int side = 0; side < 2; ++side) {
            const Side sd = side == 0 ? Side::Bid : Side::Ask;
            for (uint32_t i = f.lv_begin[side]; i < f.lv_end[side]; ++i) {
                Level l;
                l.side = sd;
                const uint32_t k = i - f.lv_begin[side];
                if (!convert(lv_[i].price, s.price_fs, s.price_inc,
                             side == 0 ? "bid price" : "ask price", k, l.price))
                    return false;
                if (!convert(lv_[i].qty, s.size_fs, s.size_inc,
                             side == 0 ? "bid quantity" : "ask quantity", k, l.qty))
                    return false;
                lvl_.push_back(l);
            }
        }
        return true;
    }

    bool scan_levels(Slot& s, const Fields& f) noexcept {
        scan_slot_ = &s;
        for (int side = 0; side < 2; ++side) {
            for (uint32_t i = f.lv_begin[side]; i < f.lv_end[side]; ++i) {
                const uint32_t k = i - f.lv_begin[side];
                if (!gcd_add(line_pgcd_, lv_[i].price, side == 0 ? "bid price" : "ask price", k))
                    return false;
                if (!gcd_add(line_sgcd_, lv_[i].qty, side == 0 ? "bid quantity" : "ask quantity",
                             k))
                    return false;
            }
        }
        return true;
    }

    // ---- messages ----

    Status on_trade(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = data_;
        const char* what = "trade message";
        constexpr uint32_t req =
            bit(kSym) | bit(kTradeId) | bit(kPrice) | bit(kQty) | bit(kMaker);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "trade", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kTxTime), what);
        if (st == Status::Ok && (f.bad & bit(kOrderType))) st = require(f, bit(kOrderType), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        (f.has & bit(kOrderType) ? hint_usdm_ : hint_spot_) = true;
        Slot* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.trade_messages;
        s->has_trade_stream = true;
        if ((f.has & bit(kOrderType)) && !(f.str[kOrderType] == "MARKET")) {
            skip_at(Skip::NonMarketTrade, here());
            return Status::Ok;
        }
        if (scan_) {
            scan_slot_ = s;
            if (!gcd_add(line_pgcd_, f.str[kPrice], "trade price", kNoLevel) ||
                !gcd_add(line_sgcd_, f.str[kQty], "trade quantity", kNoLevel))
                return Status::DecodeError;
            return Status::Ok;
        }
        int64_t px, qty, te;
        if (!convert(f.str[kPrice], s->price_fs, s->price_inc, "trade price", kNoLevel, px) ||
            !convert(f.str[kQty], s->size_fs, s->size_inc, "trade quantity", kNoLevel, qty) ||
            !event_time(f, tr, what, te))
            return Status::DecodeError;
        if (s->agg_emitted && f.num[kTradeId] <= s->agg_last_l) {
            skip_at(Skip::TradeInAggTrade, here());
            return Status::Ok;
        }
        emit(te, tr, f.num[kTradeId], s->index, EventKind::Trade,
             f.maker ? Side::Ask : Side::Bid, uint8_t(flags::kLast | lf), px, qty);
        return Status::Ok;
    }

    Status on_agg_trade(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = data_;
        const char* what = "aggTrade message";
        constexpr uint32_t req = bit(kSym) | bit(kAggId) | bit(kPrice) | bit(kQty) | bit(kMaker);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "aggTrade", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kTxTime), what);
        if (st == Status::Ok && (f.bad & (bit(kFirstTrade) | bit(kLastTrade))))
            st = require(f, f.bad & (bit(kFirstTrade) | bit(kLastTrade)), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        if (f.has & bit(kPair)) hint_coinm_ = true;
        Slot* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.agg_trade_messages;
        if (scan_) {
            scan_slot_ = s;
            if (!gcd_add(line_pgcd_, f.str[kPrice], "aggTrade price", kNoLevel) ||
                !gcd_add(line_sgcd_, f.str[kQty], "aggTrade quantity", kNoLevel))
                return Status::DecodeError;
            return Status::Ok;
        }
        int64_t px, qty, te;
        if (!convert(f.str[kPrice], s->price_fs, s->price_inc, "aggTrade price", kNoLevel, px) ||
            !convert(f.str[kQty], s->size_fs, s->size_inc, "aggTrade quantity", kNoLevel, qty) ||
            !event_time(f, tr, what, te))
            return Status::DecodeError;
        if (s->has_trade_stream) {
            skip_at(Skip::AggTradeDuplicate, here());
            return Status::Ok;
        }
        if (f.has & bit(kLastTrade)) {
            if (!s->agg_emitted || f.num[kLastTrade] > s->agg_last_l)
                s->agg_last_l = f.num[kLastTrade];
            s->agg_emitted = true;
        }
        emit(te, tr, f.num[kAggId], s->index, EventKind::Trade,
             f.maker ? Side::Ask : Side::Bid, uint8_t(flags::kLast | lf), px, qty);
        return Status::Ok;
    }

    Status on_book_ticker(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = data_;
        const char* what = "bookTicker message";
        constexpr uint32_t req = bit(kSym) | bit(kFinalId) | bit(kBidStr) | bit(kBidQty) |
                                 bit(kAskStr) | bit(kAskQty);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "bookTicker", false, what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        (f.has & (bit(kE) | bit(kEventTime) | bit(kTxTime)) ? hint_usdm_ : hint_spot_) = true;
        Slot* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.book_ticker_messages;
        if (scan_) {
            scan_slot_ = s;
            if (!gcd_add(line_pgcd_, f.str[kBidStr], "best bid price", kNoLevel) ||
                !gcd_add(line_sgcd_, f.str[kBidQty], "best bid quantity", kNoLevel) ||
                !gcd_add(line_pgcd_, f.str[kAskStr], "best ask price", kNoLevel) ||
                !gcd_add(line_sgcd_, f.str[kAskQty], "best ask quantity", kNoLevel))
                return Status::DecodeError;
            return Status::Ok;
        }
        int64_t bp, bq, ap, aq, te;
        if (!convert(f.str[kBidStr], s->price_fs, s->price_inc, "best bid price", kNoLevel, bp) ||
            !convert(f.str[kBidQty], s->size_fs, s->size_inc, "best bid quantity", kNoLevel, bq) ||
            !convert(f.str[kAskStr], s->price_fs, s->price_inc, "best ask price", kNoLevel, ap) ||
            !convert(f.str[kAskQty], s->size_fs, s->size_inc, "best ask quantity", kNoLevel, aq) ||
            !event_time(f, tr, what, te))
            return Status::DecodeError;
        const uint64_t seq = f.num[kFinalId];
        emit(te, tr, seq, s->index, EventKind::VenueBbo, Side::Bid, lf, bp, bq);
        emit(te, tr, seq, s->index, EventKind::VenueBbo, Side::Ask, uint8_t(flags::kLast | lf), ap,
             aq);
        return Status::Ok;
    }

    Status on_depth(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = data_;
        const char* what = "depth message";
        constexpr uint32_t req = bit(kSym) | bit(kFirstId) | bit(kFinalId) | bit(kBidLevels) |
                                 bit(kAskLevels);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "depthUpdate", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kEventTime), what);
        if (st == Status::Ok && (f.bad & bit(kPrevId))) st = require(f, bit(kPrevId), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        const uint64_t first_id = f.num[kFirstId], final_id = f.num[kFinalId];
        if (first_id > final_id)
            return fail(Status::DecodeError,
                        "%s: first update id U=%llu is after final update id u=%llu", what,
                        static_cast<unsigned long long>(first_id),
                        static_cast<unsigned long long>(final_id));
        const bool has_prev = f.has & bit(kPrevId);
        const MarketType mt = has_prev ? MarketType::UsdM : MarketType::Spot;
        if (market_ == MarketType::Unknown) {
            market_ = mt;
        } else if (market_ != mt) {
            // Not a bad line but a bad stream: the update-id rules differ between the two.
            return fatal(Status::DecodeError,
                         "%s %s \"pu\" but %s: spot and futures depth mixed in one stream", what,
                         has_prev ? "has" : "lacks",
                         forced_market_ != MarketType::Unknown ? "the market type was given"
                         : has_prev                           ? "earlier ones did not"
                                                              : "earlier ones did");
        }
        if (f.has & bit(kPair)) hint_coinm_ = true;
        Slot* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.depth_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : Status::DecodeError;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return Status::DecodeError;
        const uint64_t prev_id = has_prev ? f.num[kPrevId] : 0;
        if (s->sync == Sync::NoSnapshot)
            return buffer_diff(*s, first_id, final_id, prev_id, has_prev, te);
        apply_diff(*s, first_id, final_id, prev_id, te, lvl_.data(), uint32_t(lvl_.size()), tr, lf,
                   here(), rec_index_);
        return Status::Ok;
    }

    Status on_snapshot(int64_t tr, uint8_t lf) noexcept {
        const Fields& f = top_;
        const char* what = "depth snapshot";
        Status st = require(f, bit(kLastUpdateId) | bit(kBids) | bit(kAsks), what);
        if (st != Status::Ok) return st;
        Slot* s = nullptr;
        if (!snapshot_symbol_.empty()) {
            s = resolve(json::Span{snapshot_symbol_.data(), uint32_t(snapshot_symbol_.size())});
            if (!s) return Status::DecodeError;
        } else if (n_seen_ == 1) {
            s = seen_slot_;
        } else if (n_seen_ == 0) {
            return fatal(Status::DecodeError,
                         "depth snapshot names no symbol and none was seen before it: configure "
                         "the snapshot symbol");
        } else {
            return fatal(Status::DecodeError,
                         "depth snapshot names no symbol and %zu symbols were seen before it: "
                         "configure the snapshot symbol",
                         n_seen_);
        }
        (f.has & (bit(kEventTime) | bit(kTxTime)) ? hint_usdm_ : hint_spot_) = true;
        ++s->messages;
        ++counts_.snapshot_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : Status::DecodeError;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return Status::DecodeError;
        const uint64_t id = f.num[kLastUpdateId];
        const uint8_t fl = uint8_t(flags::kSnapshot | lf);
        const size_t n = lvl_.size();
        emit(te, tr, id, s->index, EventKind::BookClear, Side::None,
             uint8_t(fl | (n == 0 ? flags::kLast : 0)), 0, 0);
        for (size_t i = 0; i < n; ++i) {
            const Level& l = lvl_[i];
            emit(te, tr, id, s->index, EventKind::L2Set, l.side,
                 uint8_t(fl | (i + 1 == n ? flags::kLast : 0)), l.price, l.qty);
        }
        s->sync = Sync::AwaitFirst;
        s->anchor = id;
        // Diffs that arrived before the snapshot: only now can a book know them. Their events
        // belong to this record (see the header comment); their own records stay event-less.
        for (const PendingMsg& m : s->pending) {
            if (apply_diff(*s, m.first_id, m.final_id, m.prev_id, m.ts_event,
                           s->pending_levels.data() + m.level_begin, m.level_count, tr, lf, m.loc,
                           m.record))
                ++counts_.depth_replayed;
        }
        pending_msgs_total_ -= s->pending.size();
        pending_levels_total_ -= s->pending_levels.size();
        s->pending.clear();
        s->pending_levels.clear();
        return Status::Ok;
    }

    Status buffer_diff(Slot& s, uint64_t first_id, uint64_t final_id, uint64_t prev_id,
                       bool has_prev, int64_t te) noexcept {
        ++counts_.depth_buffered;
        const size_t n = lvl_.size();
        if (n > max_pending_levels_) {
            skip_at(Skip::DepthUnsynced, here());
            return reject(Rule::DeltasBeforeSnapshot,
                          "depth diff before the first snapshot with more levels (%zu) than the "
                          "buffer holds", n);
        }
        if (s.pending_levels.size() + n > max_pending_levels_ ||
            s.pending.size() + 1 > max_pending_msgs_)
            trim_pending(s, n);
        try {
            PendingMsg m;
            m.first_id = first_id;
            m.final_id = final_id;
            m.prev_id = prev_id;
            m.has_prev = has_prev;
            m.ts_event = te;
            m.level_begin = uint32_t(s.pending_levels.size());
            m.level_count = uint32_t(n);
            m.loc = here();
            m.record = rec_index_;
            s.pending_levels.insert(s.pending_levels.end(), lvl_.begin(), lvl_.end());
            s.pending.push_back(m);
        } catch (...) {
            return fatal(Status::InvalidArgument, "out of memory buffering depth diffs");
        }
        pending_levels_total_ += n;
        ++pending_msgs_total_;
        return Status::Ok;
    }

    // Buffer bound reached: the oldest diffs are the least likely to be bridged by a snapshot
    // that has not come yet, so they go first (counted), down to half the bound.
    void trim_pending(Slot& s, size_t incoming) noexcept {
        size_t drop = 0;
        const size_t keep_levels = max_pending_levels_ / 2, keep_msgs = max_pending_msgs_ / 2;
        size_t levels = 0;
        while (drop < s.pending.size() &&
               (s.pending_levels.size() - levels + incoming > keep_levels ||
                s.pending.size() - drop + 1 > keep_msgs)) {
            levels += s.pending[drop].level_count;
            ++drop;
        }
        drop_pending(s, drop, "the buffer of diffs waiting for a snapshot overflowed");
    }

    // Gives up the `drop` oldest buffered diffs of `s`: DELTAS_BEFORE_SNAPSHOT records.
    void drop_pending(Slot& s, size_t drop, const char* why) noexcept {
        size_t levels = 0;
        for (size_t i = 0; i < drop; ++i) {
            unsynced(s.pending[i], why);
            levels += s.pending[i].level_count;
        }
        s.pending.erase(s.pending.begin(), s.pending.begin() + ptrdiff_t(drop));
        s.pending_levels.erase(s.pending_levels.begin(),
                               s.pending_levels.begin() + ptrdiff_t(levels));
        for (auto& m : s.pending) m.level_begin -= uint32_t(levels);
        pending_msgs_total_ -= drop;
        pending_levels_total_ -= levels;
    }

    void unsynced(const PendingMsg& m, const char* why) noexcept {
        skip_at(Skip::DepthUnsynced, m.loc);
        mark(m.record, m.loc, Rule::DeltasBeforeSnapshot, "depth diff U=%llu u=%llu never met a snapshot: %s",
             static_cast<unsigned long long>(m.first_id),
             static_cast<unsigned long long>(m.final_id), why);
    }

    // The window may not hold more than max_held_records_ records behind the oldest buffered
    // diff: beyond that, the oldest buffered diffs are given up.
    void bound_held() noexcept {
        while (pending_msgs_total_ > 0) {
            Slot* oldest = nullptr;
            for (auto& s : slots_)
                if (!s->pending.empty() &&
                    (!oldest || s->pending.front().record < oldest->pending.front().record))
                    oldest = s.get();
            if (next_record_ - oldest->pending.front().record <= max_held_records_) return;
            drop_pending(*oldest, 1, "it waited longer than the held-record bound");
        }
    }

    uint64_t oldest_pending_record() const noexcept {
        uint64_t r = UINT64_MAX;
        for (const auto& s : slots_)
            if (!s->pending.empty() && s->pending.front().record < r) r = s->pending.front().record;
        return r;
    }

    // Applies one diff after a snapshot by the update-id rules; false if it was dropped. `record`
    // is the diff's own record (an earlier one for a buffered diff).
    bool apply_diff(Slot& s, uint64_t first_id, uint64_t final_id, uint64_t prev_id, int64_t te,
                    const Level* levels, uint32_t n, int64_t tr, uint8_t lf, const Location& loc,
                    uint64_t record) noexcept {
        const bool spot = market_ != MarketType::UsdM;
        bool gap = false;
        uint64_t expected = 0, got = 0;
        if (s.sync == Sync::AwaitFirst) {
            const uint64_t l = s.anchor;
            if (spot ? final_id <= l : final_id < l) {
                skip_at(Skip::DepthInSnapshot, loc);
                return false;
            }
            const bool bridged =
                spot ? (first_id <= l + 1 && l + 1 <= final_id) : (first_id <= l && l <= final_id);
            if (!bridged) {
                gap = true;
                expected = spot ? l + 1 : l;
                got = first_id;
            }
            s.sync = Sync::Live;
        } else {
            if (final_id <= s.last_u) {
                skip_at(Skip::DepthStale, loc);
                mark(record, loc, Rule::DuplicateMessage,
                     "depth diff u=%llu is not after the chain's last u=%llu",
                     static_cast<unsigned long long>(final_id),
                     static_cast<unsigned long long>(s.last_u));
                return false;
            }
            const bool chained = spot ? first_id == s.last_u + 1 : prev_id == s.last_u;
            if (!chained) {
                gap = true;
                expected = spot ? s.last_u + 1 : s.last_u;
                got = spot ? first_id : prev_id;
            }
        }
        if (gap) {
            Location g = loc;
            g.expected = expected;
            g.got = got;
            gaps_.add(g);
            emit(te, tr, got, s.index, EventKind::Gap, Side::None, uint8_t(flags::kLast | lf), 0, 0,
                 expected);
        }
        s.last_u = final_id;
        if (n == 0) {
            skip_at(Skip::DepthNoLevels, loc);
            return true;
        }
        for (uint32_t i = 0; i < n; ++i) {
            emit(te, tr, final_id, s.index, EventKind::L2Set, levels[i].side,
                 uint8_t(lf | (i + 1 == n ? flags::kLast : 0)), levels[i].price, levels[i].qty);
        }
        return true;
    }

    // ---- output ----

    struct WinEvent {
        int64_t ts_event, ts_recv;
        uint64_t seq;
        uint32_t instrument;
        uint8_t kind, side, flags;
        int64_t price, qty;
        uint64_t order_id;
        uint64_t record;
    };
    struct WinRecord {
        uint32_t file;
        uint64_t line, offset, length;
        uint8_t problem;
    };

    void emit(int64_t te, int64_t tr, uint64_t seq, uint32_t inst, EventKind kind, Side side,
              uint8_t fl, int64_t price, int64_t qty, uint64_t order_id = 0) noexcept {
        ++counts_.events[static_cast<size_t>(kind)];
        if (direct_) {
            EventColumns& ev = out_->ev;
            out_->ev_record[ev.size] = int64_t(rec_index_);
            ev.push(te, tr, seq, inst, kind, side, fl, price, qty, order_id);
            return;
        }
        if (win_ev_.size() == win_ev_.capacity() && !grow(win_ev_)) {
            fatal(Status::InvalidArgument, "out of memory holding events");
            return;
        }
        win_ev_.push_back(WinEvent{te, tr, seq, inst, static_cast<uint8_t>(kind),
                                   static_cast<uint8_t>(side), fl, price, qty, order_id,
                                   rec_index_});
    }

    Status push_record(uint64_t length, uint8_t problem) noexcept {
        if (direct_ && pending_msgs_total_ == 0 && win_recs_.empty()) {
            RecordColumns& r = out_->rec;
            const size_t i = r.size++;
            r.file[i] = int32_t(file_);
            r.line[i] = int64_t(line_no_);
            r.offset[i] = int64_t(line_offset_);
            r.length[i] = int64_t(length);
            r.problem[i] = problem;
            return Status::Ok;
        }
        if (win_recs_.size() == win_rec_pos_) {  // empty window: restart it at this record
            win_recs_.clear();
            win_rec_pos_ = 0;
            win_first_ = rec_index_;
        }
        if (win_recs_.size() == win_recs_.capacity() && !grow(win_recs_))
            return fatal(Status::InvalidArgument, "out of memory holding records");
        win_recs_.push_back(WinRecord{file_, line_no_, line_offset_, length, problem});
        return Status::Ok;
    }

    // Events go straight into the caller's columns when nothing is held back and the line surely
    // fits (bound: a level is at least 8 bytes of text, plus a gap). Otherwise the line goes to
    // the window, from which drain() hands out settled records whole.
    Status choose_sink(Output& out, size_t n) noexcept {
        direct_ = false;
        if (scan_) return Status::Ok;
        if (pending_msgs_total_ == 0 && win_recs_.size() == win_rec_pos_) {
            const size_t bound = n / 8 + 4;
            if (out.rec.size < out.rec.capacity && out.ev.capacity - out.ev.size >= bound) {
                direct_ = true;
                return Status::Ok;
            }
            if (out.rec.size > 0) return Status::OutputFull;
        }
        return Status::Ok;
    }

    Status after_line(Output& out) noexcept {
        direct_ = false;
        if (error_.status != Status::Ok) return error_.status;
        if (pending_msgs_total_ > 0) bound_held();
        if (win_recs_.size() == win_rec_pos_) return Status::Ok;
        return drain(out);
    }

    // Hands out the window's settled records (those before the oldest buffered diff), each with
    // all its events, as far as `out` has room.
    Status drain(Output& out) noexcept {
        need_events_ = 0;
        if (scan_ || win_rec_pos_ == win_recs_.size()) return Status::Ok;
        const uint64_t limit = pending_msgs_total_ ? oldest_pending_record() : UINT64_MAX;
        while (win_rec_pos_ < win_recs_.size()) {
            const uint64_t r = win_first_ + win_rec_pos_;
            if (r >= limit) break;
            size_t k = 0;
            while (win_ev_pos_ + k < win_ev_.size() && win_ev_[win_ev_pos_ + k].record == r) ++k;
            if (out.rec.size >= out.rec.capacity || out.ev.capacity - out.ev.size < k) {
                if (out.rec.size == 0) need_events_ = k;  // one record larger than the columns
                return Status::OutputFull;
            }
            EventColumns& ev = out.ev;
            for (size_t j = 0; j < k; ++j) {
                const WinEvent& e = win_ev_[win_ev_pos_ + j];
                out.ev_record[ev.size] = int64_t(e.record);
                ev.push(e.ts_event, e.ts_recv, e.seq, e.instrument, static_cast<EventKind>(e.kind),
                        static_cast<Side>(e.side), e.flags, e.price, e.qty, e.order_id);
            }
            win_ev_pos_ += k;
            const WinRecord& w = win_recs_[win_rec_pos_++];
            RecordColumns& rc = out.rec;
            const size_t i = rc.size++;
            rc.file[i] = int32_t(w.file);
            rc.line[i] = int64_t(w.line);
            rc.offset[i] = int64_t(w.offset);
            rc.length[i] = int64_t(w.length);
            rc.problem[i] = w.problem;
        }
        if (win_rec_pos_ == win_recs_.size()) {
            win_recs_.clear();
            win_ev_.clear();
            win_rec_pos_ = win_ev_pos_ = 0;
        } else if (win_rec_pos_ >= 4096 && 2 * win_rec_pos_ >= win_recs_.size()) {
            // A long hold (a symbol that never gets its snapshot): keep the window compact.
            win_recs_.erase(win_recs_.begin(), win_recs_.begin() + ptrdiff_t(win_rec_pos_));
            win_ev_.erase(win_ev_.begin(), win_ev_.begin() + ptrdiff_t(win_ev_pos_));
            win_first_ += win_rec_pos_;
            win_rec_pos_ = win_ev_pos_ = 0;
        }
        return Status::Ok;
    }

    // Lines longer than max_line_ are not assembled: their bytes are counted and the record is
    // malformed.
    bool append_carry(const char* d, size_t n) noexcept {
        if (discarding_) {
            discard_len_ += n;
            return true;
        }
        if (carry_.size() + n > max_line_) {
            discarding_ = true;
            discard_len_ = carry_.size() + n;
            carry_.clear();
            return true;
        }
        try {
            carry_.append(d, n);
        } catch (...) {
            fatal(Status::InvalidArgument, "out of memory assembling a line");
            return false;
        }
        return true;
    }

    // ---- reporting ----

    Location here() const noexcept {
        Location l;
        l.file = file_;
        l.line = line_no_;
        l.offset = line_offset_;
        return l;
    }

    void skip_at(Skip r, const Location& l) noexcept { skips_[static_cast<size_t>(r)].add(l); }

    void log_problem(uint64_t record, Rule rule, const Location& loc, const char* text) noexcept {
        LocationLog& log = problems_[static_cast<size_t>(rule)];
        const bool keep = log.first().size() < LocationLog::kKeep;
        log.add(loc);
        if (keep && reasons_.size() < reasons_.capacity()) {
            Reason r;
            r.record = record;
            r.rule = rule;
            r.loc = loc;
            std::snprintf(r.text, sizeof r.text, "%s", text);
            reasons_.push_back(r);
        }
    }

    // Sets the Rule of `record`: the current line's (logged when the line ends) or a held one.
    __attribute__((format(printf, 5, 6))) void mark(uint64_t record, const Location& loc, Rule rule,
                                                    const char* fmt, ...) noexcept {
        char text[sizeof reason_];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (in_line_ && record == rec_index_) {
            problem_ = rule;
            std::memcpy(reason_, text, sizeof text);
            return;
        }
        if (!scan_ && record >= win_first_ + win_rec_pos_ && record - win_first_ < win_recs_.size())
            win_recs_[size_t(record - win_first_)].problem = uint8_t(rule);
        log_problem(record, rule, loc, text);
    }

    // A printable excerpt of untrusted text for messages (two live at once).
    const char* snip(json::Span v) noexcept {
        char* buf = snip_buf_[snip_next_ ^= 1];
        constexpr size_t kMax = 48;
        size_t o = 0;
        for (uint32_t i = 0; i < v.len && o < kMax; ++i) {
            const unsigned char c = static_cast<unsigned char>(v.ptr[i]);
            buf[o++] = (c >= 0x20 && c < 0x7f) ? char(c) : '?';
        }
        if (v.len > kMax) {
            buf[o++] = '.';
            buf[o++] = '.';
            buf[o++] = '.';
        }
        buf[o] = 0;
        return buf;
    }

    // The current record cannot be used: it gets `rule` and no events; decoding goes on.
    __attribute__((format(printf, 3, 4))) Status reject(Rule rule, const char* fmt, ...) noexcept {
        if (problem_ == Rule::Ok) {
            problem_ = rule;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(reason_, sizeof reason_, fmt, ap);
            va_end(ap);
        }
        return Status::DecodeError;
    }

    // A malformed record (the status only tells the kind of trouble; the rule is the same).
    __attribute__((format(printf, 3, 4))) Status fail(Status, const char* fmt, ...) noexcept {
        if (problem_ == Rule::Ok) {
            problem_ = Rule::MalformedRecord;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(reason_, sizeof reason_, fmt, ap);
            va_end(ap);
        }
        return Status::DecodeError;
    }

    // A problem of the stream or its configuration: decoding stops.
    __attribute__((format(printf, 3, 4))) Status fatal(Status st, const char* fmt, ...) noexcept {
        if (error_.status == Status::Ok) {
            error_.status = st;
            error_.file = file_;
            error_.line = line_no_;
            error_.offset = line_offset_ + err_col_;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(error_.message, sizeof error_.message, fmt, ap);
            va_end(ap);
        }
        return st;
    }

    // ---- state ----

    // configuration
    bool scan_ = false;
    bool has_default_ = false;
    Increment default_price_, default_size_;
    std::string snapshot_symbol_;
    size_t max_pending_levels_ = size_t(1) << 20;  // ~24 MB per symbol at worst
    size_t max_pending_msgs_ = size_t(1) << 14;
    size_t max_held_records_ = size_t(1) << 16;
    size_t max_line_ = size_t(64) << 20;
    MarketType forced_market_ = MarketType::Unknown;

    // symbols
    std::vector<std::unique_ptr<Slot>> slots_;
    std::unordered_map<std::string, uint32_t, SvHash, std::equal_to<>> by_symbol_;
    Slot* last_slot_ = nullptr;
    Slot* seen_slot_ = nullptr;
    size_t n_seen_ = 0;
    uint32_t next_index_ = 0;
    MarketType market_ = MarketType::Unknown;  // Spot or UsdM (= the futures rules) once known
    bool hint_spot_ = false, hint_usdm_ = false, hint_coinm_ = false;
    size_t pending_levels_total_ = 0, pending_msgs_total_ = 0;

    // position
    uint32_t file_ = 0;
    uint64_t line_no_ = 0;
    uint64_t file_bytes_ = 0;
    uint64_t file_records_ = 0;
    uint64_t line_offset_ = 0;
    size_t err_col_ = 0;
    bool eof_error_ = false;
    int64_t last_ts_recv_ = INT64_MIN;
    std::string carry_;
    bool discarding_ = false;  // inside a line longer than max_line_
    size_t discard_len_ = 0;

    // the current record
    uint64_t next_record_ = 0;
    uint64_t rec_index_ = 0;
    bool in_line_ = false;
    Rule problem_ = Rule::Ok;
    char reason_[240] = {};
    bool ts_raise_ = false;
    int64_t ts_commit_ = INT64_MIN;
    Location ts_loc_;
    Slot* scan_slot_ = nullptr;
    DecimalGcd line_pgcd_, line_sgcd_;

    // per-line scratch (capacity reused: no allocation per line)
    Fields top_, data_;
    std::vector<LevelSpan> lv_;
    std::vector<Level> lvl_;
    json::Span dup_key_;

    // output
    Output* out_ = nullptr;
    bool direct_ = false;
    std::vector<WinEvent> win_ev_;
    std::vector<WinRecord> win_recs_;
    size_t win_ev_pos_ = 0, win_rec_pos_ = 0;
    uint64_t win_first_ = 0;  // global index of win_recs_[0]
    size_t need_events_ = 0;

    // reports
    ErrorInfo error_;
    Counts counts_;
    LocationLog skips_[kSkipCount];
    LocationLog problems_[kRuleCount];
    std::vector<Reason> reasons_;
    LocationLog gaps_;
    LocationLog ts_raised_;
    char snip_buf_[2][56] = {};
    int snip_next_ = 0;
};

}  // namespace lockstep::binance
