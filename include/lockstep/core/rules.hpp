// Why a record is not in canonical data: the validation rules. Values and names are stable (they
// appear in manifests and quarantine entries) and mirror lockstep.data.importers.normalized.Rule;
// docs/data.md describes each one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep {

enum class Rule : uint8_t {
    Ok = 0,
    SequenceGap = 1,           // a sequence break: the book is unknown until a snapshot or clear
    TsRecvBackwards = 2,       // the receive clock went back
    FeedLatency = 3,           // ts_recv - ts_event outside the configured bounds
    CrossedBook = 4,           // best bid >= best ask after a complete message, in continuous trading
    UnknownOrderRef = 5,       // L3 modify/delete/execute of an unknown order, or a duplicate add
    BadPriceQty = 6,           // zero or negative price or quantity where not allowed
    DuplicateMessage = 7,      // a message already seen (same or older sequence id)
    DeltasBeforeSnapshot = 8,  // book deltas before the instrument's first snapshot
    MalformedRecord = 9,       // bytes that do not parse as the format
    UnsupportedMessage = 10,   // a well-formed message we do not decode
    TruncatedRecord = 11,      // the input ends inside a record
    CrossedBookPhaseUnknown = 12,  // crossed after a complete message while no trading phase was
                                   // announced: it may be a pre-open book, or an error
    Count = 13,
};

constexpr size_t kRuleCount = static_cast<size_t>(Rule::Count);

inline const char* rule_name(Rule r) noexcept {
    static const char* const names[kRuleCount] = {
        "ok",           "sequence_gap",     "ts_recv_backwards",     "feed_latency",
        "crossed_book", "unknown_order_ref", "bad_price_qty",        "duplicate_message",
        "deltas_before_snapshot", "malformed_record", "unsupported_message", "truncated_record",
        "crossed_book_phase_unknown",
    };
    const size_t i = static_cast<size_t>(r);
    return i < kRuleCount ? names[i] : "unknown_rule";
}

}  // namespace lockstep
