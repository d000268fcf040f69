// The JSON shapes of Binance websocket captures and the fields the decoder reads from them.
//
// A line's JSON is a combined-stream message {"stream":"<sym>@<type>","data":{...}} or a bare
// REST depth snapshot {"lastUpdateId":N,"bids":[...],"asks":[...]}. MessageReader reads the
// top-level object and its "data" into two Fields: each known key's value (numbers, strings,
// the maker flag, level arrays as spans into the line), or the mark that it had another type,
// which is an error only if the message needs the field. Nothing is interpreted here: which
// fields a message needs, and what they mean, is the decoder's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/grow_capacity.hpp"
#include "lockstep/codecs/json_scan.hpp"

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

// The keys the decoder reads. "b"/"a" are strings in bookTicker and level arrays in depth diffs
// ("a" is a number in aggTrade): one key, several fields, told apart by the value's type.
enum Field : uint32_t {
    kE = 0, kEventTime, kTxTime, kSym, kFirstId, kFinalId, kPrevId, kTradeId, kPrice, kQty,
    kMaker, kOrderType, kBidStr, kAskStr, kBidLevels, kAskLevels, kBidQty, kAskQty,
    kLastUpdateId, kBids, kAsks, kStream, kData, kAggId, kFirstTrade, kLastTrade, kPair,
    kFieldCount
};
constexpr uint32_t bit(Field f) noexcept { return 1u << f; }

inline const char* field_name(Field f) noexcept {
    static const char* const names[kFieldCount] = {
        "e", "E", "T", "s", "U", "u", "pu", "t", "p", "q", "m", "X", "b", "a", "b", "a",
        "B", "A", "lastUpdateId", "bids", "asks", "stream", "data", "a", "f", "l", "ps"};
    return f < kFieldCount ? names[f] : "?";
}

// What a field must be, for messages.
inline const char* field_expect(Field f) noexcept {
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

// One price level as read: spans into the line.
struct LevelSpan {
    json::Span price, qty;
};

// One JSON object's fields of interest.
struct Fields {
    uint32_t has = 0;  // present with the expected type
    uint32_t bad = 0;  // present with another type: an error only if the message needs it
    uint64_t num[kFieldCount];
    json::Span str[kFieldCount];
    bool maker = false;
    uint32_t lv_begin[2] = {0, 0}, lv_end[2] = {0, 0};  // [bids, asks] ranges of the levels

    void reset() noexcept {
        has = 0;
        bad = 0;
    }

    // The first field of `mask` that is not present with its expected type (kFieldCount if
    // none); `ill_typed` tells a value of another type from a missing one.
    Field first_missing(uint32_t mask, bool& ill_typed) const noexcept {
        for (uint32_t i = 0; i < kFieldCount; ++i) {
            const Field fld = Field(i);
            if (!(mask & bit(fld)) || (has & bit(fld))) continue;
            uint32_t other = bad & bit(fld);
            // The other form of a key read as several fields is a type error, not a missing field.
            if (fld == kBidStr) other |= has & bit(kBidLevels);
            if (fld == kAskStr) other |= has & bit(kAskLevels);
            if (fld == kBidLevels) other |= has & bit(kBidStr);
            if (fld == kAskLevels) other |= has & bit(kAskStr);
            if (fld == kAskStr) other |= has & bit(kAggId);
            if (fld == kAggId) other |= (has | bad) & (bit(kAskStr) | bit(kAskLevels));
            ill_typed = other != 0;
            return fld;
        }
        ill_typed = false;
        return kFieldCount;
    }
};

// Reads one line's JSON object into Fields; level spans stay valid until the next clear().
class MessageReader {
public:
    MessageReader() { levels_.reserve(4096); }

    void clear() noexcept {
        top_.reset();
        data_.reset();
        levels_.clear();
    }

    // The object at the cursor, and its "data" member when it has one. On false the scanner
    // says what went wrong; a duplicate key is refused (json.loads would keep the last one, and
    // silently choosing is worse than refusing) and named by duplicate_key().
    bool read(json::Scanner& s) noexcept { return parse_object(s, top_, &data_); }

    const Fields& top() const noexcept { return top_; }
    const Fields& data() const noexcept { return data_; }
    const LevelSpan& level(uint32_t i) const noexcept { return levels_[i]; }
    json::Span duplicate_key() const noexcept { return dup_key_; }

private:
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
        const size_t mark = levels_.size();
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
                if (levels_.size() == levels_.capacity() && !grow_capacity(levels_))
                    return s.fail("out of memory");
                levels_.push_back(l);
            }
        }
        if (s.failed()) return false;
        s.close();
        f.lv_begin[side] = uint32_t(mark);
        f.lv_end[side] = uint32_t(levels_.size());
        f.has |= bit(fld);
        return true;
    other_shape:
        levels_.resize(mark);
        s.rewind(start, depth);
        if (!s.skip_value()) return false;
        f.bad |= bit(fld);
        return true;
    }

    Fields top_, data_;
    std::vector<LevelSpan> levels_;
    json::Span dup_key_;
};

// The streams the decoder reads, told by the name after '@' in "<sym>@<type>".
enum class StreamKind : uint8_t { Unknown, Depth, Trade, AggTrade, BookTicker };

inline StreamKind classify_stream(json::Span st, json::Span& prefix) noexcept {
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

inline const char* stream_message_name(StreamKind k) noexcept {
    switch (k) {
        case StreamKind::Depth: return "depth message";
        case StreamKind::Trade: return "trade message";
        case StreamKind::AggTrade: return "aggTrade message";
        case StreamKind::BookTicker: return "bookTicker message";
        default: return "message";
    }
}

// Stream names carry the symbol in lower case, the data in upper case.
inline bool same_symbol(json::Span stream_prefix, json::Span symbol) noexcept {
    if (stream_prefix.len != symbol.len) return false;
    for (uint32_t i = 0; i < symbol.len; ++i) {
        char a = stream_prefix.ptr[i], b = symbol.ptr[i];
        if (a >= 'A' && a <= 'Z') a = char(a + 32);
        if (b >= 'A' && b <= 'Z') b = char(b + 32);
        if (a != b) return false;
    }
    return true;
}

}  // namespace lockstep::binance
