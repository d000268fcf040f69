// What the Binance decoder reports besides its output: where things happened, why records carried
// no events, running counts, the first reasons per Rule and the fatal error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/base/status.hpp"
#include "lockstep/core/rules.hpp"

namespace lockstep::binance {

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

}  // namespace lockstep::binance
