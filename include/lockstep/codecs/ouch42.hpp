// NASDAQ OUCH 4.2: order entry messages, carried in SoupBinTCP unsequenced (client to venue) and
// sequenced (venue to client) packets.
//
// Layouts are the specification's, field for field: integers big-endian and unsigned, prices
// Price(4) with 4 implied decimals, alpha fields (order token 14, stock 8, firm 4) left-justified
// and space-padded, one-byte codes as the ASCII letters the specification lists, outbound
// timestamps 8 bytes of nanoseconds since midnight. Each struct lists its fields in wire order
// (wire.hpp), which both encoding and decoding walk; its length is the specification's.
//
// The codec checks framing only (type byte, exact length): whether a side, a time in force or a
// display code is one the venue accepts is the venue's decision, answered with a Rejected
// message as NASDAQ does, not a decode error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/base/status.hpp"
#include "lockstep/codecs/wire.hpp"

namespace lockstep::ouch42 {

using wire::WireError;
using wire::WireProblem;

constexpr size_t kTokenLength = 14;
constexpr size_t kStockLength = 8;
constexpr size_t kFirmLength = 4;

using Token = uint8_t[kTokenLength];
using Stock = uint8_t[kStockLength];
using Firm = uint8_t[kFirmLength];

// ------------------------------------------------------------------------------------------
// Inbound (client to venue)

struct EnterOrder : wire::Message<'O', 49> {
    Token token;
    uint8_t side;  // B buy, S sell, T sell short, E sell short exempt
    uint32_t shares;
    Stock stock;
    uint32_t price;
    uint32_t time_in_force;  // seconds; 0 immediate or cancel, 99998 market hours, 99999 system
    Firm firm;
    uint8_t display, capacity, intermarket_sweep;
    uint32_t minimum_quantity;
    uint8_t cross_type, customer_type;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        f(m.token), f(m.side), f(m.shares), f(m.stock), f(m.price), f(m.time_in_force);
        f(m.firm), f(m.display), f(m.capacity), f(m.intermarket_sweep), f(m.minimum_quantity);
        f(m.cross_type), f(m.customer_type);
    }
};

struct ReplaceOrder : wire::Message<'U', 47> {
    Token existing_token, replacement_token;
    uint32_t shares, price, time_in_force;
    uint8_t display, intermarket_sweep;
    uint32_t minimum_quantity;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        f(m.existing_token), f(m.replacement_token), f(m.shares), f(m.price);
        f(m.time_in_force), f(m.display), f(m.intermarket_sweep), f(m.minimum_quantity);
    }
};

struct CancelOrder : wire::Message<'X', 19> {
    Token token;
    uint32_t shares;  // the shares to leave on the order: 0 cancels it
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { f(m.token), f(m.shares); }
};

// ------------------------------------------------------------------------------------------
// Outbound (venue to client): a timestamp first, and for orders the token after it.

struct SystemEvent : wire::Message<'S', 10> {
    uint64_t timestamp;
    uint8_t event_code;  // S start of day, E end of day
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { f(m.timestamp), f(m.event_code); }
};

struct OrderNotice {
    uint64_t timestamp;
    Token token;
    template <class Self, class F>
    static constexpr void notice_fields(Self& m, F& f) { f(m.timestamp), f(m.token); }
};

// Accepted's and Replaced's fields up to the order state.
struct OrderView : OrderNotice {
    uint8_t side;
    uint32_t shares;
    Stock stock;
    uint32_t price, time_in_force;
    Firm firm;
    uint8_t display;
    uint64_t order_reference;
    uint8_t capacity, intermarket_sweep;
    uint32_t minimum_quantity;
    uint8_t cross_type;
    uint8_t order_state;  // L live, D dead
    template <class Self, class F>
    static constexpr void view_fields(Self& m, F& f) {
        notice_fields(m, f), f(m.side), f(m.shares), f(m.stock), f(m.price);
        f(m.time_in_force), f(m.firm), f(m.display), f(m.order_reference), f(m.capacity);
        f(m.intermarket_sweep), f(m.minimum_quantity), f(m.cross_type), f(m.order_state);
    }
};

struct Accepted : wire::Message<'A', 66>, OrderView {
    uint8_t bbo_weight;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { view_fields(m, f), f(m.bbo_weight); }
};

// The order as replaced, under the replacement token; the previous token comes between the
// order state and the BBO weight indicator.
struct Replaced : wire::Message<'U', 80>, OrderView {
    Token previous_token;
    uint8_t bbo_weight;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        view_fields(m, f), f(m.previous_token), f(m.bbo_weight);
    }
};

struct Canceled : wire::Message<'C', 28>, OrderNotice {
    uint32_t decrement_shares;
    uint8_t reason;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        notice_fields(m, f), f(m.decrement_shares), f(m.reason);
    }
};

struct AiqCanceled : wire::Message<'D', 37>, OrderNotice {
    uint32_t decrement_shares;
    uint8_t reason;
    uint32_t quantity_prevented, execution_price;
    uint8_t liquidity_flag;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        notice_fields(m, f), f(m.decrement_shares), f(m.reason), f(m.quantity_prevented);
        f(m.execution_price), f(m.liquidity_flag);
    }
};

struct Executed : wire::Message<'E', 40>, OrderNotice {
    uint32_t executed_shares, execution_price;
    uint8_t liquidity_flag;
    uint64_t match_number;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        notice_fields(m, f), f(m.executed_shares), f(m.execution_price), f(m.liquidity_flag);
        f(m.match_number);
    }
};

struct BrokenTrade : wire::Message<'B', 32>, OrderNotice {
    uint64_t match_number;
    uint8_t reason;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        notice_fields(m, f), f(m.match_number), f(m.reason);
    }
};

struct PriceCorrection : wire::Message<'K', 36>, OrderNotice {
    uint64_t match_number;
    uint32_t new_execution_price;
    uint8_t reason;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        notice_fields(m, f), f(m.match_number), f(m.new_execution_price), f(m.reason);
    }
};

struct Rejected : wire::Message<'J', 24>, OrderNotice {
    uint8_t reason;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { notice_fields(m, f), f(m.reason); }
};

// Cancel Pending ('P') and Cancel Reject ('I') carry the notice alone.
template <uint8_t Type>
struct BareNotice : wire::Message<Type, 23>, OrderNotice {
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { OrderNotice::notice_fields(m, f); }
};
using CancelPending = BareNotice<'P'>;
using CancelReject = BareNotice<'I'>;

// ------------------------------------------------------------------------------------------
// Decoding by type byte

union InboundBody {
    EnterOrder enter;
    ReplaceOrder replace;
    CancelOrder cancel;
};

struct Inbound {
    uint8_t type;
    InboundBody body;
};

// One inbound message (a SoupBinTCP unsequenced payload): Ok with out.type and the member of
// that type set, or DecodeError (Truncated, TrailingBytes, UnknownType) with err set.
inline Status decode_inbound(const uint8_t* p, size_t len, Inbound& out, WireError* err) noexcept {
    if (len == 0) return wire::fail(err, WireProblem::Truncated, 0);
    out.type = p[0];
    switch (p[0]) {
        case EnterOrder::kType: return wire::decode_message(p, len, out.body.enter, err);
        case ReplaceOrder::kType: return wire::decode_message(p, len, out.body.replace, err);
        case CancelOrder::kType: return wire::decode_message(p, len, out.body.cancel, err);
        default: return wire::fail(err, WireProblem::UnknownType, 0);
    }
}

union OutboundBody {
    SystemEvent system_event;
    Accepted accepted;
    Replaced replaced;
    Canceled canceled;
    AiqCanceled aiq_canceled;
    Executed executed;
    BrokenTrade broken_trade;
    PriceCorrection price_correction;
    Rejected rejected;
    CancelPending cancel_pending;
    CancelReject cancel_reject;
};

struct Outbound {
    uint8_t type;
    OutboundBody body;
};

inline Status decode_outbound(const uint8_t* p, size_t len, Outbound& out,
                              WireError* err) noexcept {
    if (len == 0) return wire::fail(err, WireProblem::Truncated, 0);
    out.type = p[0];
    OutboundBody& b = out.body;
    switch (p[0]) {
        case SystemEvent::kType: return wire::decode_message(p, len, b.system_event, err);
        case Accepted::kType: return wire::decode_message(p, len, b.accepted, err);
        case Replaced::kType: return wire::decode_message(p, len, b.replaced, err);
        case Canceled::kType: return wire::decode_message(p, len, b.canceled, err);
        case AiqCanceled::kType: return wire::decode_message(p, len, b.aiq_canceled, err);
        case Executed::kType: return wire::decode_message(p, len, b.executed, err);
        case BrokenTrade::kType: return wire::decode_message(p, len, b.broken_trade, err);
        case PriceCorrection::kType: return wire::decode_message(p, len, b.price_correction, err);
        case Rejected::kType: return wire::decode_message(p, len, b.rejected, err);
        case CancelPending::kType: return wire::decode_message(p, len, b.cancel_pending, err);
        case CancelReject::kType: return wire::decode_message(p, len, b.cancel_reject, err);
        default: return wire::fail(err, WireProblem::UnknownType, 0);
    }
}

// Encoding is wire::encode_message(m, out, capacity, &written) for any struct above.
using wire::encode_message;

// The type sets for wire's generic access by type byte (bindings, tools).
using InboundTypes = wire::TypeSet<EnterOrder, ReplaceOrder, CancelOrder>;
using OutboundTypes = wire::TypeSet<SystemEvent, Accepted, Replaced, Canceled, AiqCanceled,
                                    Executed, BrokenTrade, PriceCorrection, Rejected,
                                    CancelPending, CancelReject>;

}  // namespace lockstep::ouch42
