// Binance websocket captures -> canonical events.
//
// Input: text, one message per line, `<receive ns> <JSON>`, where the JSON is a combined-stream
// message {"stream":"<sym>@<type>","data":{...}} or a bare REST depth snapshot
// {"lastUpdateId":N,"bids":[...],"asks":[...]} (which names no symbol). Several files given in
// order are one stream (daily rotation): all state carries across begin_file().
//
// Encoding choices (docs/encoding.md is normative; these are the Binance specifics):
// - ts_recv: the line's receive ns, raised to the previous line's when the capture clock steps back
//   (flag BadTsRecv, counted with locations), so the output is always in Processing Order.
// - ts_event: the transaction time T when present (the matching-engine time at which the book or
//   trade happened), else the event time E (when Binance pushed it), in ms -> ns. Spot bookTicker
//   and the spot REST snapshot carry neither: ts_event = ts_recv for them.
// - seq: final update id `u` (depth, bookTicker), trade id `t`, lastUpdateId (snapshot events).
// - depth diff -> one L2Set per level (bids first, then asks; qty 0 removes), LAST on the final one.
//   A diff with no levels is valid and advances the update-id chain, but has nothing to emit: it is
//   counted (skip reason depth_no_levels) instead of inventing a no-op event.
// - trade -> Trade, side = aggressor: `m` (buyer is maker) true -> Ask, false -> Bid. USD-M trades
//   whose order type X is not MARKET (insurance fund, ADL) did not cross the book: skipped, counted.
// - bookTicker -> two VenueBbo events, bid then ask (LAST on the ask).
// - snapshot -> BookClear then one L2Set per level (bids, then asks), all flagged Snapshot.
// - Update-id reconciliation, per instrument, by Binance's documented rules:
//     before the instrument's first snapshot, diffs are buffered (bounded);
//     after a snapshot with id L, diffs it already contains are dropped (spot u <= L, USD-M u < L),
//     the first applied one should bridge it (spot U <= L+1 <= u, USD-M U <= L <= u), and each later
//     one must continue the chain (spot U == prev u + 1, USD-M pu == prev u).
//   Buffered diffs applied after the snapshot are emitted right after it with the snapshot line's
//   ts_recv (the first moment a book could know them) and their own ts_event and seq. A broken
//   chain is counted as a sequence gap (file, line, expected, got) and decoding goes on. Diffs that
//   never meet a snapshot (buffer overflow, end of stream) are counted as skipped.
// - Market type: USD-M depth diffs carry `pu`, spot ones do not; mixing them is an error.
//
// Errors vs skips: input we cannot interpret without guessing (malformed JSON, a known message
// type with missing or ill-typed fields, a value that is not an exact multiple of its increment,
// overflow, an unknown symbol) stops decoding with a Status and error() naming file, line and
// reason. Input that is valid but not ours (other streams, subscription replies, blank lines) and
// a truncated final line are skipped and counted per reason with their first locations.
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

#include "lockstep/decimal.hpp"
#include "lockstep/events.hpp"
#include "lockstep/json_scan.hpp"
#include "lockstep/status.hpp"

namespace lockstep::binance {

enum class MarketType : uint8_t { Unknown = 0, Spot = 1, UsdM = 2 };

inline const char* market_type_name(MarketType m) noexcept {
    switch (m) {
        case MarketType::Spot: return "spot";
        case MarketType::UsdM: return "usdm";
        default: return "unknown";
    }
}

// Where an instrument's increments came from; reported, never interpreted by the decoder.
enum class IncrementSource : uint8_t { Explicit = 0, Option = 1, BuiltIn = 2, Inferred = 3 };

enum class Skip : uint8_t {
    EmptyLine = 0,      // blank line
    NotStreamMessage,   // valid JSON that is neither a stream message nor a snapshot (e.g. a reply)
    UnknownStream,      // a stream we do not decode (aggTrade, kline, partial depth, ...)
    NonMarketTrade,     // USD-M trade with X != MARKET
    DepthNoLevels,      // depth diff without levels (chain advanced, nothing to emit)
    DepthInSnapshot,    // depth diff already contained in the snapshot that preceded it
    DepthStale,         // depth diff older than the chain position after sync (u <= prev u)
    DepthUnsynced,      // depth diff that never met a snapshot (buffer bound or end of stream)
    TruncatedLine,      // final line of a file without newline that ends mid-message
    Count
};
constexpr size_t kSkipCount = static_cast<size_t>(Skip::Count);

inline const char* skip_name(size_t i) noexcept {
    static const char* const names[kSkipCount] = {
        "empty_line",        "not_stream_message", "unknown_stream",
        "non_market_trade",  "depth_no_levels",    "depth_in_snapshot",
        "depth_stale",       "depth_unsynced",     "truncated_line",
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
    uint64_t depth_messages = 0;
    uint64_t trade_messages = 0;
    uint64_t book_ticker_messages = 0;
    uint64_t snapshot_messages = 0;
    uint64_t depth_buffered = 0;   // diffs received before their instrument's first snapshot
    uint64_t depth_replayed = 0;   // ... of which were applied right after it
    uint64_t events[9] = {};       // emitted events per EventKind
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

    // Scan mode emits nothing and needs no increments: it collects, per symbol, the exact decimal
    // GCD of every price and size (the inferred increments), plus symbols and market type.
    void set_scan_mode(bool on) noexcept { scan_ = on; }

    // Bound on depth diffs buffered before a snapshot (levels); beyond it the oldest half is
    // dropped and counted (depth_unsynced).
    void set_pending_limit(size_t levels, size_t messages) noexcept {
        max_pending_levels_ = levels ? levels : 1;
        max_pending_msgs_ = messages ? messages : 1;
    }
    void set_max_line(size_t bytes) noexcept { max_line_ = bytes ? bytes : 1; }

    // ---- decoding ----

    // Starts file `file_index` (as the caller numbers its inputs): line numbers restart, every
    // other piece of state carries on. A partial line left by a previous file without finish()
    // is dropped.
    void begin_file(uint32_t file_index) noexcept {
        file_ = file_index;
        line_no_ = 0;
        file_bytes_ = 0;
        carry_.clear();
    }

    // Decodes the complete lines in data[0, len) into `out` (appending at out.size). Returns Ok
    // with *consumed == len when everything was taken (a trailing partial line is kept inside for
    // the next call or finish()); OutputFull when `out` filled: drain it (out.size = 0) and call
    // again with data + *consumed; an error status with error() filled, after which every call
    // returns the same error.
    Status feed(const char* data, size_t len, EventColumns& out, size_t* consumed) noexcept {
        *consumed = 0;
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && out.capacity == 0) return Status::InvalidArgument;
        Status st = drain(out);
        if (st != Status::Ok || len == 0) return st;
        size_t pos = 0;
        if (!carry_.empty()) {
            const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
            if (!nl) {
                if (!append_carry(data, len)) return error_.status;
                *consumed = len;
                return Status::Ok;
            }
            const size_t part = size_t(nl - data);
            st = choose_sink(out, carry_.size() + part);
            if (st != Status::Ok) return st;
            if (!append_carry(data, part)) return error_.status;
            st = line(carry_.data(), carry_.size(), false);
            if (st != Status::Ok) return st;
            carry_.clear();
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
            if (n > max_line_) {
                ++line_no_;
                line_offset_ = file_bytes_;
                *consumed = pos;
                return fail(Status::DecodeError, "line longer than %zu bytes", max_line_);
            }
            st = choose_sink(out, n);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
            st = line(b, n, false);
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
    // mid-message it is counted as truncated (skip), not an error. Call again after OutputFull.
    Status finish(EventColumns& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && out.capacity == 0) return Status::InvalidArgument;
        Status st = drain(out);
        if (st != Status::Ok) return st;
        if (!carry_.empty()) {
            st = choose_sink(out, carry_.size());
            if (st != Status::Ok) return st;
            st = line(carry_.data(), carry_.size(), true);
            carry_.clear();
            if (st != Status::Ok) return st;
            return after_line(out);
        }
        return Status::Ok;
    }

    // After the last file: buffered diffs that never met a snapshot are counted as skipped.
    Status end_stream(EventColumns& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        Status st = drain(out);
        if (st != Status::Ok) return st;
        for (auto& s : slots_) {
            for (const auto& m : s->pending) skip_at(Skip::DepthUnsynced, m.loc);
            s->pending.clear();
            s->pending_levels.clear();
        }
        pending_levels_total_ = 0;
        pending_msgs_total_ = 0;
        return Status::Ok;
    }

    // ---- reports ----

    const ErrorInfo& error() const noexcept { return error_; }
    const Counts& counts() const noexcept { return counts_; }
    const LocationLog& skips(size_t reason) const noexcept { return skips_[reason]; }
    const LocationLog& gaps() const noexcept { return gaps_; }
    const LocationLog& ts_recv_raised() const noexcept { return ts_raised_; }
    uint64_t lines_in_file() const noexcept { return line_no_; }
    uint64_t file_bytes() const noexcept { return file_bytes_; }
    size_t carried_bytes() const noexcept { return carry_.size(); }

    // Authoritative from depth diffs (`pu` present or not); when the capture has none, from the
    // fields that only USD-M sends (trade X, bookTicker e/E/T, snapshot E/T).
    MarketType market_type() const noexcept {
        if (market_ != MarketType::Unknown) return market_;
        if (hint_usdm_ && !hint_spot_) return MarketType::UsdM;
        if (hint_spot_ && !hint_usdm_) return MarketType::Spot;
        return MarketType::Unknown;
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
                fail(Status::UnknownInstrument,
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
                    fail(st, "cannot register symbol \"%s\"", snip(sym));
                    return nullptr;
                }
            } catch (...) {
                fail(Status::InvalidArgument, "out of memory registering a symbol");
                return nullptr;
            }
        }
        if (!scan_ && !s->has_increments) {
            fail(Status::UnknownInstrument, "no price/size increments for symbol \"%s\"",
                 snip(sym));
            return nullptr;
        }
        last_slot_ = s;
        return touch(s);
    }

    Slot* touch(Slot* s) noexcept {
        if (!s->seen) {
            s->seen = true;
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
        kLastUpdateId, kBids, kAsks, kStream, kData, kFieldCount
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
                case 'a': want = Want::StrOrLevels; return kAskStr;
                case 'B': want = Want::Str; return kBidQty;
                case 'A': want = Want::Str; return kAskQty;
                default: return kFieldCount;
            }
        }
        if (k == "pu") {
            want = Want::Num;
            return kPrevId;
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
                (fld == kAskStr && ((f.has | f.bad) & bit(kAskLevels)))) {
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
            "B", "A", "lastUpdateId", "bids", "asks", "stream", "data"};
        return f < kFieldCount ? names[f] : "?";
    }

    static const char* field_expect(Field f) noexcept {
        switch (f) {
            case kEventTime: case kTxTime: case kFirstId: case kFinalId: case kPrevId:
            case kTradeId: case kLastUpdateId:
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
            if (other)
                return fail(Status::DecodeError, "%s: field \"%s\" is not %s", what,
                            field_name(fld), field_expect(fld));
            return fail(Status::DecodeError, "%s: missing field \"%s\"", what, field_name(fld));
        }
        return Status::Ok;
    }

    // ---- lines ----

    Status line(const char* b, size_t n, bool unterminated) noexcept {
        ++line_no_;
        ++counts_.lines;
        line_offset_ = file_bytes_;
        const size_t adv = n + (unterminated ? 0 : 1);
        file_bytes_ += adv;
        counts_.bytes += adv;
        eof_error_ = false;
        err_col_ = 0;
        const size_t mark = sink_ ? sink_->size : 0;
        const Status st = decode_line(b, n);
        if (st == Status::Ok) return st;
        if (sink_) sink_->size = mark;
        if (unterminated && eof_error_ && st == Status::DecodeError) {
            // The capture stopped mid-write: the usual end of a killed recorder, not corruption.
            error_ = ErrorInfo{};
            skip_at(Skip::TruncatedLine, here());
            return Status::Ok;
        }
        return st;
    }

    Status decode_line(const char* b, size_t n) noexcept {
        const char* p = b;
        const char* end = b + n;
        {
            const char* q = p;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) ++q;
            if (q == end) {
                skip_at(Skip::EmptyLine, here());
                return Status::Ok;
            }
        }
        uint64_t ts = 0;
        bool overflow = false;
        int digits = 0;
        for (; p < end && json::detail::is_digit(*p); ++p, ++digits) {
            overflow |= __builtin_mul_overflow(ts, 10u, &ts);
            overflow |= __builtin_add_overflow(ts, uint64_t(*p - '0'), &ts);
        }
        if (digits == 0)
            return fail(Status::DecodeError, "line does not start with a receive timestamp");
        if (overflow || ts > uint64_t(INT64_MAX))
            return fail(Status::Overflow, "receive timestamp %.*s is out of range", digits, b);
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

    enum class StreamKind : uint8_t { Unknown, Depth, Trade, BookTicker };

    static StreamKind classify(json::Span st, json::Span& prefix) noexcept {
        const char* at = static_cast<const char*>(std::memchr(st.ptr, '@', st.len));
        if (!at) return StreamKind::Unknown;
        prefix = json::Span{st.ptr, uint32_t(at - st.ptr)};
        const json::Span rest{at + 1, uint32_t(st.len - prefix.len - 1)};
        if (rest == "trade") return StreamKind::Trade;
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
                return Status::Ok;
            }
            if (!(top_.has & bit(kData)))
                return require(top_, bit(kData), kind_name(kind));
            uint8_t lf;
            const int64_t tr = recv_time(ts, lf);
            switch (kind) {
                case StreamKind::Depth: return on_depth(tr, lf, prefix);
                case StreamKind::Trade: return on_trade(tr, lf, prefix);
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
            case StreamKind::BookTicker: return "bookTicker message";
            default: return "message";
        }
    }

    int64_t recv_time(int64_t ts, uint8_t& line_flags) noexcept {
        line_flags = 0;
        if (ts < last_ts_recv_) {
            Location l = here();
            l.expected = uint64_t(last_ts_recv_);
            l.got = uint64_t(ts);
            ts_raised_.add(l);
            line_flags = flags::kBadTsRecv;
            return last_ts_recv_;
        }
        last_ts_recv_ = ts;
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
                fail(Status::InvalidArgument, "out of memory");
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
        for (int side = 0; side < 2; ++side) {
            for (uint32_t i = f.lv_begin[side]; i < f.lv_end[side]; ++i) {
                const uint32_t k = i - f.lv_begin[side];
                if (!gcd_add(s.price_gcd, lv_[i].price, side == 0 ? "bid price" : "ask price", k))
                    return false;
                if (!gcd_add(s.size_gcd, lv_[i].qty, side == 0 ? "bid quantity" : "ask quantity",
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
        if (!s) return error_.status;
        ++s->messages;
        ++counts_.trade_messages;
        if ((f.has & bit(kOrderType)) && !(f.str[kOrderType] == "MARKET")) {
            skip_at(Skip::NonMarketTrade, here());
            return Status::Ok;
        }
        if (scan_) {
            if (!gcd_add(s->price_gcd, f.str[kPrice], "trade price", kNoLevel) ||
                !gcd_add(s->size_gcd, f.str[kQty], "trade quantity", kNoLevel))
                return error_.status;
            return Status::Ok;
        }
        int64_t px, qty, te;
        if (!convert(f.str[kPrice], s->price_fs, s->price_inc, "trade price", kNoLevel, px) ||
            !convert(f.str[kQty], s->size_fs, s->size_inc, "trade quantity", kNoLevel, qty) ||
            !event_time(f, tr, what, te))
            return error_.status;
        emit(te, tr, f.num[kTradeId], s->index, EventKind::Trade,
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
        if (!s) return error_.status;
        ++s->messages;
        ++counts_.book_ticker_messages;
        if (scan_) {
            if (!gcd_add(s->price_gcd, f.str[kBidStr], "best bid price", kNoLevel) ||
                !gcd_add(s->size_gcd, f.str[kBidQty], "best bid quantity", kNoLevel) ||
                !gcd_add(s->price_gcd, f.str[kAskStr], "best ask price", kNoLevel) ||
                !gcd_add(s->size_gcd, f.str[kAskQty], "best ask quantity", kNoLevel))
                return error_.status;
            return Status::Ok;
        }
        int64_t bp, bq, ap, aq, te;
        if (!convert(f.str[kBidStr], s->price_fs, s->price_inc, "best bid price", kNoLevel, bp) ||
            !convert(f.str[kBidQty], s->size_fs, s->size_inc, "best bid quantity", kNoLevel, bq) ||
            !convert(f.str[kAskStr], s->price_fs, s->price_inc, "best ask price", kNoLevel, ap) ||
            !convert(f.str[kAskQty], s->size_fs, s->size_inc, "best ask quantity", kNoLevel, aq) ||
            !event_time(f, tr, what, te))
            return error_.status;
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
            return fail(Status::DecodeError,
                        "%s %s \"pu\" but earlier ones did %s: spot and USD-M depth mixed", what,
                        has_prev ? "has" : "lacks", has_prev ? "not" : "");
        }
        Slot* s = resolve(f.str[kSym]);
        if (!s) return error_.status;
        ++s->messages;
        ++counts_.depth_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : error_.status;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return error_.status;
        const uint64_t prev_id = has_prev ? f.num[kPrevId] : 0;
        if (s->sync == Sync::NoSnapshot) return buffer_diff(*s, first_id, final_id, prev_id,
                                                            has_prev, te);
        apply_diff(*s, first_id, final_id, prev_id, te, lvl_.data(), uint32_t(lvl_.size()), tr, lf,
                   here());
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
            if (!s) return error_.status;
        } else if (n_seen_ == 1) {
            s = seen_slot_;
        } else if (n_seen_ == 0) {
            return fail(Status::DecodeError,
                        "depth snapshot names no symbol and none was seen before it: configure "
                        "the snapshot symbol");
        } else {
            return fail(Status::DecodeError,
                        "depth snapshot names no symbol and %zu symbols were seen before it: "
                        "configure the snapshot symbol",
                        n_seen_);
        }
        (f.has & (bit(kEventTime) | bit(kTxTime)) ? hint_usdm_ : hint_spot_) = true;
        ++s->messages;
        ++counts_.snapshot_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : error_.status;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return error_.status;
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
        // Diffs that arrived before the snapshot: only now can a book know them.
        for (const PendingMsg& m : s->pending) {
            if (apply_diff(*s, m.first_id, m.final_id, m.prev_id, m.ts_event,
                           s->pending_levels.data() + m.level_begin, m.level_count, tr, lf, m.loc))
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
            return Status::Ok;
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
            s.pending_levels.insert(s.pending_levels.end(), lvl_.begin(), lvl_.end());
            s.pending.push_back(m);
        } catch (...) {
            return fail(Status::InvalidArgument, "out of memory buffering depth diffs");
        }
        pending_levels_total_ += n;
        ++pending_msgs_total_;
        return Status::Ok;
    }

    // Buffer bound reached: the oldest diffs are the least likely to be bridged by a snapshot
    // that has not come yet, so they go first (counted), down to half the bound.
    void trim_pending(Slot& s, size_t incoming) noexcept {
        size_t drop = 0, levels = 0;
        const size_t keep_levels = max_pending_levels_ / 2, keep_msgs = max_pending_msgs_ / 2;
        while (drop < s.pending.size() &&
               (s.pending_levels.size() - levels + incoming > keep_levels ||
                s.pending.size() - drop + 1 > keep_msgs)) {
            skip_at(Skip::DepthUnsynced, s.pending[drop].loc);
            levels += s.pending[drop].level_count;
            ++drop;
        }
        s.pending.erase(s.pending.begin(), s.pending.begin() + ptrdiff_t(drop));
        s.pending_levels.erase(s.pending_levels.begin(),
                               s.pending_levels.begin() + ptrdiff_t(levels));
        for (auto& m : s.pending) m.level_begin -= uint32_t(levels);
        pending_msgs_total_ -= drop;
        pending_levels_total_ -= levels;
    }

    // Applies one diff after a snapshot by the update-id rules; false if it was dropped.
    bool apply_diff(Slot& s, uint64_t first_id, uint64_t final_id, uint64_t prev_id, int64_t te,
                    const Level* levels, uint32_t n, int64_t tr, uint8_t lf,
                    const Location& loc) noexcept {
        const bool spot = market_ != MarketType::UsdM;
        if (s.sync == Sync::AwaitFirst) {
            const uint64_t l = s.anchor;
            if (spot ? final_id <= l : final_id < l) {
                skip_at(Skip::DepthInSnapshot, loc);
                return false;
            }
            const bool bridged =
                spot ? (first_id <= l + 1 && l + 1 <= final_id) : (first_id <= l && l <= final_id);
            if (!bridged) {
                Location g = loc;
                g.expected = spot ? l + 1 : l;
                g.got = first_id;
                gaps_.add(g);
            }
            s.sync = Sync::Live;
        } else {
            if (final_id <= s.last_u) {
                skip_at(Skip::DepthStale, loc);
                return false;
            }
            const bool chained = spot ? first_id == s.last_u + 1 : prev_id == s.last_u;
            if (!chained) {
                Location g = loc;
                g.expected = spot ? s.last_u + 1 : s.last_u;
                g.got = spot ? first_id : prev_id;
                gaps_.add(g);
            }
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

    void emit(int64_t te, int64_t tr, uint64_t seq, uint32_t inst, EventKind kind, Side side,
              uint8_t fl, int64_t price, int64_t qty) noexcept {
        sink_->push(te, tr, seq, inst, kind, side, fl, price, qty, 0);
        ++counts_.events[static_cast<size_t>(kind)];
    }

    // Events go straight into the caller's columns when the line surely fits (bound: a level is
    // at least 8 bytes of text, plus the buffered diffs a snapshot may release). A line that
    // cannot fit even an empty batch is staged and handed out piecewise.
    Status choose_sink(EventColumns& out, size_t n) noexcept {
        staged_ = false;
        if (scan_) {
            sink_ = nullptr;
            return Status::Ok;
        }
        const size_t bound = n / 8 + 4 + pending_levels_total_ + pending_msgs_total_;
        if (out.capacity - out.size >= bound) {
            sink_ = &out;
            return Status::Ok;
        }
        if (out.size > 0) return Status::OutputFull;
        try {
            if (staging_.columns().capacity < bound) staging_.reserve(bound);
        } catch (...) {
            return fail(Status::InvalidArgument, "out of memory staging a large message");
        }
        staging_.clear();
        stage_pos_ = 0;
        sink_ = &staging_.columns();
        staged_ = true;
        return Status::Ok;
    }

    Status after_line(EventColumns& out) noexcept {
        sink_ = nullptr;
        if (!staged_) return Status::Ok;
        staged_ = false;
        return drain(out);
    }

    Status drain(EventColumns& out) noexcept {
        EventColumns& st = staging_.columns();
        if (stage_pos_ >= st.size) return Status::Ok;
        const size_t room = out.capacity - out.size;
        const size_t left = st.size - stage_pos_;
        const size_t n = room < left ? room : left;
        const size_t i = stage_pos_, o = out.size;
        std::memcpy(out.ts_event + o, st.ts_event + i, n * sizeof(int64_t));
        std::memcpy(out.ts_recv + o, st.ts_recv + i, n * sizeof(int64_t));
        std::memcpy(out.seq + o, st.seq + i, n * sizeof(uint64_t));
        std::memcpy(out.instrument + o, st.instrument + i, n * sizeof(uint32_t));
        std::memcpy(out.kind + o, st.kind + i, n);
        std::memcpy(out.side + o, st.side + i, n);
        std::memcpy(out.flags + o, st.flags + i, n);
        std::memcpy(out.price + o, st.price + i, n * sizeof(int64_t));
        std::memcpy(out.qty + o, st.qty + i, n * sizeof(int64_t));
        std::memcpy(out.order_id + o, st.order_id + i, n * sizeof(uint64_t));
        out.size += n;
        stage_pos_ += n;
        if (stage_pos_ < st.size) return Status::OutputFull;
        staging_.clear();
        stage_pos_ = 0;
        return Status::Ok;
    }

    bool append_carry(const char* d, size_t n) noexcept {
        if (carry_.size() + n > max_line_) {
            ++line_no_;  // the error concerns the line being assembled
            line_offset_ = file_bytes_;
            fail(Status::DecodeError, "line longer than %zu bytes", max_line_);
            return false;
        }
        try {
            carry_.append(d, n);
        } catch (...) {
            fail(Status::InvalidArgument, "out of memory assembling a line");
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

    __attribute__((format(printf, 3, 4))) Status fail(Status st, const char* fmt, ...) noexcept {
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
    size_t max_line_ = size_t(64) << 20;

    // symbols
    std::vector<std::unique_ptr<Slot>> slots_;
    std::unordered_map<std::string, uint32_t, SvHash, std::equal_to<>> by_symbol_;
    Slot* last_slot_ = nullptr;
    Slot* seen_slot_ = nullptr;
    size_t n_seen_ = 0;
    uint32_t next_index_ = 0;
    MarketType market_ = MarketType::Unknown;
    bool hint_spot_ = false, hint_usdm_ = false;
    size_t pending_levels_total_ = 0, pending_msgs_total_ = 0;

    // position
    uint32_t file_ = 0;
    uint64_t line_no_ = 0;
    uint64_t file_bytes_ = 0;
    uint64_t line_offset_ = 0;
    size_t err_col_ = 0;
    bool eof_error_ = false;
    int64_t last_ts_recv_ = INT64_MIN;
    std::string carry_;

    // per-line scratch (capacity reused: no allocation per line)
    Fields top_, data_;
    std::vector<LevelSpan> lv_;
    std::vector<Level> lvl_;
    json::Span dup_key_;

    // output
    EventColumns* sink_ = nullptr;
    bool staged_ = false;
    EventBuffer staging_;
    size_t stage_pos_ = 0;

    // reports
    ErrorInfo error_;
    Counts counts_;
    LocationLog skips_[kSkipCount];
    LocationLog gaps_;
    LocationLog ts_raised_;
    char snip_buf_[2][56] = {};
    int snip_next_ = 0;
};

}  // namespace lockstep::binance
